//! The simulation examples of docs/protocol.md ("Simulation shards"):
//! every ```json sim block is one message (`mm_ticket` included) that decodes and re-encodes to
//! the same JSON and survives postcard; together they show every message;
//! the pinned postcard bytes are what the encoder writes; the error table
//! lists every code with its status.

use pylon_workers::protocol::{Encoding, Frame, FrameRef};
use pylon_workers::sim::counter::{Add, Total};
use pylon_workers::sim::matchmaking::{decode_ticket_msg, encode_ticket_msg};
use pylon_workers::sim::wire::*;
use pylon_workers::sim::SimErrorCode;

const DOC: &str = include_str!("../docs/protocol.md");

fn blocks(fence: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut rest = DOC;
    while let Some(start) = rest.find(fence) {
        let body = &rest[start + fence.len()..];
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

fn name<P>(m: &SimServerMsg<P>) -> &'static str {
    match m {
        SimServerMsg::Welcome(_) => "sim_welcome",
        SimServerMsg::Snapshot(_) => "sim_snapshot",
        SimServerMsg::Ack(_) => "sim_ack",
        SimServerMsg::Err(_) => "sim_err",
    }
}

#[test]
fn examples_decode_reencode_and_cover_every_message() {
    let found = blocks("```json sim\n");
    assert!(found.len() >= 8, "found {}", found.len());
    let mut seen = std::collections::BTreeSet::new();
    for text in found {
        let frame = FrameRef::Text(text.trim());
        if let Ok(m) = decode_client::<Add>(Encoding::Json, frame, 1 << 20) {
            let again = encode_client(Encoding::Json, &m);
            assert!(
                matches!(&again, Frame::Text(t) if same_json(t, text)),
                "{text}"
            );
            let f = encode_client(Encoding::Postcard, &m);
            assert_eq!(
                decode_client::<Add>(Encoding::Postcard, f.as_ref(), 1 << 20).unwrap(),
                m
            );
            seen.insert("sim_input");
            continue;
        }
        if text.contains(r#""type":"mm_ticket""#) {
            let m = decode_ticket_msg(Encoding::Json, frame).unwrap();
            let again = encode_ticket_msg(Encoding::Json, &m);
            assert!(
                matches!(&again, Frame::Text(t) if same_json(t, text)),
                "{text}"
            );
            let f = encode_ticket_msg(Encoding::Postcard, &m);
            assert_eq!(
                decode_ticket_msg(Encoding::Postcard, f.as_ref()).unwrap(),
                m
            );
            seen.insert("mm_ticket");
            continue;
        }
        let m =
            decode_server::<Total>(Encoding::Json, frame).unwrap_or_else(|e| panic!("{text}: {e}"));
        let again = encode_server(Encoding::Json, &m);
        assert!(
            matches!(&again, Frame::Text(t) if same_json(t, text)),
            "{text}\n{again:?}"
        );
        let f = encode_server(Encoding::Postcard, &m);
        assert_eq!(
            decode_server::<Total>(Encoding::Postcard, f.as_ref()).unwrap(),
            m
        );
        seen.insert(name(&m));
    }
    assert_eq!(seen.len(), 6, "{seen:?}");
}

#[test]
fn the_pinned_postcard_bytes_are_what_is_written() {
    let hex = |f: Frame| {
        f.as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let input = SimClientMsg::Input(InputMsg {
        seq: 3,
        input: Add::new(5).unwrap(),
    });
    let snap = SimServerMsg::Snapshot(SnapshotMsg {
        tick: 4,
        acked: 3,
        is_final: false,
        snapshot: Total { total: 12 },
    });
    let ack = SimServerMsg::<Total>::Ack(Ack {
        seq: 3,
        tick: 4,
        dup: false,
    });
    for (label, bytes) in [
        (
            "sim_input { seq: 3, input: {add: 5} }",
            hex(encode_client(Encoding::Postcard, &input)),
        ),
        (
            "sim_snapshot { tick: 4, acked: 3, total: 12 }",
            hex(encode_server(Encoding::Postcard, &snap)),
        ),
        (
            "sim_ack { seq: 3, tick: 4 }",
            hex(encode_server(Encoding::Postcard, &ack)),
        ),
    ] {
        let line = DOC
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("{label} is not in the doc"));
        assert_eq!(line[label.len()..].trim(), bytes, "{label}");
    }
}

#[test]
fn the_error_table_lists_every_code_with_its_status() {
    for &c in SimErrorCode::ALL {
        let row = format!("| `{}` | {} |", c.as_str(), c.status());
        assert!(DOC.contains(&row), "{row} missing");
    }
    assert!(DOC.contains(&format!("**{}**", close::FINISHED)));
}
