//! The JSON examples of docs/protocol.md: every one decodes and re-encodes
//! to the same JSON, and together they show every message type.

use std::collections::BTreeSet;

use pylon_workers::protocol::*;

const DOC: &str = include_str!("../docs/protocol.md");

/// The bodies of the ```json blocks.
fn json_blocks() -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut rest = DOC;
    while let Some(start) = rest.find("```json\n") {
        let body = &rest[start + 8..];
        let end = body.find("```").expect("unterminated block");
        out.push(&body[..end]);
        rest = &body[end + 3..];
    }
    out
}

fn same_json(a: &str, b: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(a).unwrap()
        == serde_json::from_str::<serde_json::Value>(b).unwrap()
}

#[test]
fn doc_examples_decode_and_reencode() {
    let blocks = json_blocks();
    assert!(blocks.len() >= 20, "found {} blocks", blocks.len());
    let mut client = BTreeSet::new();
    let mut server = BTreeSet::new();
    for text in blocks {
        // `bcast` exists both ways; the exact re-encoding decides.
        let as_client = decode_client(Encoding::Json, text.as_bytes()).ok().filter(
            |m| matches!(encode_client(Encoding::Json, m), Frame::Text(t) if same_json(&t, text)),
        );
        let as_server = decode_server(Encoding::Json, text.as_bytes()).ok().filter(
            |m| matches!(encode_server(Encoding::Json, m), Frame::Text(t) if same_json(&t, text)),
        );
        match (as_client, as_server) {
            (Some(m), None) => {
                client.insert(m.name());
                // And through postcard.
                let f = encode_client(Encoding::Postcard, &m);
                assert_eq!(decode_client(Encoding::Postcard, f.as_bytes()).unwrap(), m);
            }
            (None, Some(m)) => {
                server.insert(m.name());
                let f = encode_server(Encoding::Postcard, &m);
                // `welcome.window` is JSON only: postcard has no room for it.
                let mut want = m.clone();
                if let ServerMsg::Welcome(w) = &mut want {
                    w.window = None;
                }
                assert_eq!(
                    decode_server(Encoding::Postcard, f.as_bytes()).unwrap(),
                    want
                );
            }
            (c, s) => {
                panic!("example must be exactly one message: {text}\nclient: {c:?}\nserver: {s:?}")
            }
        }
    }
    assert_eq!(client.len(), 9, "{client:?}");
    assert_eq!(server.len(), 12, "{server:?}");
}

#[test]
fn doc_lists_every_error_code() {
    for &c in ErrorCode::ALL {
        if c != ErrorCode::Unknown {
            assert!(
                DOC.contains(&format!("| `{}`", c.as_str())),
                "{c} missing from the error table"
            );
        }
    }
}

#[test]
fn doc_lists_every_close_code() {
    for c in [
        close::NORMAL,
        close::GOING_AWAY,
        close::POLICY,
        close::TOO_LARGE,
        close::INTERNAL,
        close::PROTOCOL,
        close::UNAUTHORIZED,
        close::FORBIDDEN,
        close::BEHIND,
        close::RATE_LIMITED,
        close::OVERLOADED,
    ] {
        assert!(
            DOC.contains(&format!("| {c} ")),
            "{c} missing from the close code table"
        );
    }
}

#[test]
fn doc_states_the_default_limits() {
    let l = Limits::default();
    assert_eq!(l.max_frame_bytes, 1 << 20);
    assert!(DOC.contains("| 1 MiB"));
    assert!(DOC.contains(&format!("| {}  ", l.max_subs_per_conn)));
    assert!(DOC.contains(&format!("{}, burst of {}", l.msgs_per_sec, l.msg_burst)));
    assert!(DOC.contains(&format!("**{MAX_VALUE_DEPTH}**")));
}
