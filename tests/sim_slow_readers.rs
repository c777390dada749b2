//! Simulation sockets have the host's send window too (issue #18): a
//! socket that stops reading the 20 Hz snapshots is closed with 4408 once
//! a window (1 MiB) of them is unreceipted, while a reader that receipts
//! keeps every tick; a bad receipt is a `sim_err BAD_FRAME`.

mod sim_support;

use pylon_workers::host::window::{receipt_frame, RECEIPT_STEP};
use pylon_workers::protocol::{close, Encoding, FrameRef};
use pylon_workers::sim::SimErrorCode;
use sim_support::*;

type A = Arena;

#[test]
fn a_simulation_socket_that_stops_reading_is_closed_with_4408() {
    let (mut h, _) = host::<A>("slow");
    let reader = h.connect(Encoding::Json).unwrap();
    let stalled = h.connect(Encoding::Json).unwrap();

    // A bad receipt: answered, and the socket stays.
    h.message(&reader, FrameRef::Text(r#"{"type":"recv","bytes":"x"}"#))
        .unwrap();
    let errs = errors(&received::<A, View>(&mut h, &reader));
    assert!(
        matches!(errs.as_slice(), [e] if e.code == SimErrorCode::BadFrame && e.message.contains("recv:")),
        "{errs:?}"
    );

    let (mut unreceipted, mut ticks, mut last) = (0u64, 0u64, 0u64);
    let mut seconds = 0;
    while h.socket(&stalled).unwrap().closed.is_none() && seconds < 3_000 {
        h.advance(1_000).unwrap();
        seconds += 1;
        let frames = h.take_sent(&reader);
        unreceipted += frames.iter().map(|f| f.len() as u64).sum::<u64>();
        for f in &frames {
            let v: serde_json::Value = match f {
                pylon_workers::protocol::Frame::Text(t) => serde_json::from_str(t).unwrap(),
                other => panic!("{other:?}"),
            };
            if v["type"] == "sim_snapshot" {
                let t = v["tick"].as_u64().unwrap();
                assert!(last == 0 || t == last + 1, "tick {t} after {last}");
                last = t;
                ticks += 1;
            }
        }
        if unreceipted >= RECEIPT_STEP {
            h.message(&reader, receipt_frame(Encoding::Json, unreceipted).as_ref())
                .unwrap();
            unreceipted = 0;
        }
    }
    let closed = h.socket(&stalled).unwrap().closed.clone();
    assert_eq!(
        closed.map(|c| c.0),
        Some(close::BEHIND),
        "after {seconds} s"
    );
    assert_eq!(h.socket(&reader).unwrap().closed, None);
    assert!(ticks >= 20 * seconds - 1, "{ticks} ticks in {seconds} s");
    let sent: u64 = h.take_sent(&stalled).iter().map(|f| f.len() as u64).sum();
    assert!(sent > 1 << 20 && sent < (1 << 20) + 4096, "{sent}");
}

/// Bad receipts take the socket's rate like any frame: the burst's worth
/// are answered `BAD_FRAME`, then each is a rate refusal, and the burst's
/// worth of refusals close the socket with 4429; valid receipts never
/// count, and the other socket is untouched.
#[test]
fn a_flood_of_bad_receipts_is_closed_with_4429() {
    let burst = pylon_workers::protocol::Limits::default().msg_burst as usize;
    let (mut h, _) = host::<A>("bad-receipts");
    let flood = h.connect(Encoding::Postcard).unwrap();
    let other = h.connect(Encoding::Json).unwrap();
    h.take_sent(&flood);
    h.take_sent(&other);
    let bad = [0x7f, 0x80];
    for _ in 0..burst {
        h.message(&flood, FrameRef::Binary(&bad)).unwrap();
    }
    for _ in 0..1_000 {
        h.message(&flood, receipt_frame(Encoding::Postcard, 0).as_ref())
            .unwrap();
    }
    for i in 0..burst {
        assert_eq!(h.socket(&flood).unwrap().closed, None, "{i}");
        h.message(&flood, FrameRef::Binary(&bad)).unwrap();
    }
    let codes: Vec<_> = errors(&received::<A, View>(&mut h, &flood))
        .into_iter()
        .map(|e| e.code)
        .collect();
    let mut want = vec![SimErrorCode::BadFrame; burst];
    want.extend(vec![SimErrorCode::RateLimited; burst]);
    assert_eq!(codes, want);
    let closed = h.socket(&flood).unwrap().closed.clone();
    assert_eq!(closed.map(|c| c.0), Some(close::RATE_LIMITED));
    assert_eq!(h.socket(&other).unwrap().closed, None);
}
