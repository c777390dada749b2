//! Entry points for fuzzing. A cargo-fuzz target is one line:
//!
//! ```ignore
//! libfuzzer_sys::fuzz_target!(|data: &[u8]| pylon_workers::protocol::fuzz::fuzz_decode(data));
//! ```
//!
//! `tests/protocol_roundtrip.rs` runs it on random and mutated frames.

use super::*;

/// Runs every decoder on `data` (as a payload and as both frame kinds). For
/// anything that decodes, checks that encoding is stable: encoding the
/// message, decoding that and encoding again gives the same frame.
///
/// Panics only on a bug: a decoder panicking, or an unstable round trip.
pub fn fuzz_decode(data: &[u8]) {
    let text = std::str::from_utf8(data).ok();
    for enc in Encoding::ALL {
        if let Ok(m) = decode_client(enc, data) {
            check_stable_client(enc, &m);
        }
        if let Ok(m) = decode_server(enc, data) {
            check_stable_server(enc, &m);
        }
        let _ = decode_client_frame(enc, FrameRef::Binary(data), usize::MAX);
        let _ = decode_server_frame(enc, FrameRef::Binary(data), 64);
        if let Some(t) = text {
            let _ = decode_client_frame(enc, FrameRef::Text(t), usize::MAX);
            let _ = decode_server_frame(enc, FrameRef::Text(t), usize::MAX);
        }
    }
}

fn check_stable_client(enc: Encoding, m: &ClientMsg) {
    for out in Encoding::ALL {
        let first = encode_client(out, m);
        let again = decode_client(out, first.as_bytes()).unwrap_or_else(|e| {
            panic!("{enc:?} message does not decode after encoding as {out:?}: {e}")
        });
        assert_eq!(
            first,
            encode_client(out, &again),
            "unstable {out:?} encoding"
        );
    }
}

fn check_stable_server(enc: Encoding, m: &ServerMsg) {
    for out in Encoding::ALL {
        let first = encode_server(out, m);
        let again = decode_server(out, first.as_bytes()).unwrap_or_else(|e| {
            panic!("{enc:?} message does not decode after encoding as {out:?}: {e}")
        });
        assert_eq!(
            first,
            encode_server(out, &again),
            "unstable {out:?} encoding"
        );
    }
}
