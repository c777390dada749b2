//! Decoding never reserves memory out of proportion to the frame, whatever
//! its length prefixes claim. Measured with a counting allocator that
//! counts each thread's own allocations: this file is a module of the one
//! native test binary, whose other tests allocate on other threads at the
//! same time.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use pylon_workers::protocol::*;

struct Counting;

thread_local! {
    // `const` and no destructor: the allocator may touch them at any time
    // on any thread, even while it exits.
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = LIVE.try_with(|live| {
            let now = live.get() + l.size();
            live.set(now);
            let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
        });
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // Memory freed on another thread than it was allocated on saturates
        // at zero there rather than wrapping.
        let _ = LIVE.try_with(|live| live.set(live.get().saturating_sub(l.size())));
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Peak bytes this thread allocated while running `f` (beyond what was live).
fn peak_while(f: impl FnOnce()) -> usize {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    f();
    PEAK.with(Cell::get) - base
}

fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

#[test]
fn lying_length_prefixes_do_not_allocate() {
    // Strings and lists that claim 2^63 elements.
    let mut frames: Vec<Vec<u8>> = Vec::new();
    for tag in [1u8, 2, 3, 5] {
        let mut f = vec![tag];
        varint(1 << 62, &mut f);
        f.extend([0u8; 16]);
        frames.push(f);
    }
    // snap with rows claiming u32::MAX.
    let mut f = vec![1u8, 1, b'a', 1];
    varint(u32::MAX.into(), &mut f);
    frames.push(f);

    // presence(state) = 64 nested lists, each claiming exactly the bytes
    // left, so postcard passes the claim on as a size hint at every level.
    let mut f = vec![4u8];
    let levels = 64;
    for i in 0..levels {
        f.push(5);
        let left = 2 * (levels - i) as u64 + 1000;
        varint(left, &mut f);
    }
    f.extend([0u8; 1000]);
    frames.push(f);

    // diff with added / changed / removed each claiming the bytes left.
    let mut f = vec![2u8, 1, b'a', 1, 2];
    varint(4000, &mut f);
    f.extend([0u8; 4000]);
    frames.push(f);

    for frame in &frames {
        let mut out = None;
        let peak = peak_while(|| {
            out = Some((
                decode_client(Encoding::Postcard, frame),
                decode_server(Encoding::Postcard, frame),
            ));
        });
        // What decodes takes up to 32 bytes per `Value` or row slot, and a
        // growing `Vec` briefly holds old and new buffers: at most 64 bytes
        // per frame byte. Anything beyond would be a reservation on a claim.
        assert!(
            peak < 16 * 1024 + 64 * frame.len(),
            "{} byte frame: peak {peak} bytes: {out:?}",
            frame.len()
        );
    }

    // JSON: a frame full of unknown fields and empty containers.
    let mut text = String::from(r#"{"type":"ping""#);
    for i in 0..10_000 {
        text.push_str(&format!(r#","k{i}":[[],{{}}]"#));
    }
    text.push('}');
    let peak = peak_while(|| {
        decode_client(Encoding::Json, text.as_bytes()).unwrap();
    });
    assert!(
        peak < 4096,
        "peak {peak} for {} bytes of ignored fields",
        text.len()
    );
}
