//! Golden vectors for the TypeScript client's postcard codec
//! (clients/ts/src/postcard*.ts): messages of both directions, of
//! `pylon.v1` and of the counter simulation, each with the JSON the Rust
//! encoder writes and the postcard bytes it writes, plus frames the Rust
//! decoder refuses. The TypeScript tests (clients/ts/test/postcard.test.ts)
//! decode and encode every vector both ways.
//!
//! The fixture is committed; this test fails when the encoder no longer
//! writes it. After an intended change of the wire format, rewrite it with
//!
//! ```text
//! PYLON_WRITE_VECTORS=1 cargo test --test native protocol_ts_vectors
//! ```
//!
//! A vector with `"exact": false` holds a number JavaScript cannot carry
//! exactly (an integral float, an integer beyond 2^53): it is only decoded
//! on that side, not encoded back from its JSON.

use std::collections::BTreeMap;

use pylon_workers::protocol::*;
use pylon_workers::sim::counter::{Add, Total};
use pylon_workers::sim::wire::{self as sim, SimClientMsg, SimServerMsg};
use pylon_workers::sim::SimErrorCode;
use pylon_workers::value::{Row, Value};
use serde_json::{json, Value as Json};

const FIXTURE: &str = "clients/ts/test/fixtures/postcard-vectors.json";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn frame_parts(f: Frame) -> (Json, String) {
    match f {
        Frame::Text(t) => (serde_json::from_str(&t).unwrap(), String::new()),
        Frame::Binary(b) => (Json::Null, hex(&b)),
    }
}

fn vector(name: &str, json: Frame, postcard: Frame, exact: bool) -> Json {
    let (json, _) = frame_parts(json);
    let (_, postcard) = frame_parts(postcard);
    let mut v = json!({ "name": name, "json": json, "postcard": postcard });
    if !exact {
        v["exact"] = json!(false);
    }
    v
}

fn client(name: &str, m: ClientMsg, exact: bool) -> Json {
    let bytes = encode_client(Encoding::Postcard, &m);
    assert_eq!(
        decode_client(Encoding::Postcard, bytes.as_bytes()).unwrap(),
        m,
        "{name}"
    );
    vector(name, encode_client(Encoding::Json, &m), bytes, exact)
}

fn server(name: &str, m: ServerMsg, exact: bool) -> Json {
    let bytes = encode_server(Encoding::Postcard, &m);
    assert_eq!(
        decode_server(Encoding::Postcard, bytes.as_bytes()).unwrap(),
        m,
        "{name}"
    );
    vector(name, encode_server(Encoding::Json, &m), bytes, exact)
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn map(entries: &[(&str, Value)]) -> BTreeMap<String, Value> {
    entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn card(id: &str, title: &str, done: bool, position: i64) -> Row {
    map(&[
        ("id", text(id)),
        ("title", text(title)),
        ("done", Value::Bool(done)),
        ("position", Value::Int(position)),
        ("createdAt", text("2026-12-01T10:00:00Z")),
        ("author", text("ada")),
    ])
}

/// Every kind of value, with the edges a JavaScript codec can get wrong.
fn every_value() -> Value {
    let ints = [
        0,
        1,
        -1,
        63,
        -64,
        64,
        -65,
        127,
        128,
        1 << 31,
        -(1 << 53) + 1,
        (1 << 53) - 1,
        i64::MIN,
    ];
    let floats = [
        2.5,
        -0.1,
        1e300,
        -1e-300,
        5e-324,
        9.223372036854776e18,
        f64::MAX,
    ];
    Value::Map(map(&[
        ("null", Value::Null),
        (
            "bools",
            Value::List(vec![Value::Bool(true), Value::Bool(false)]),
        ),
        (
            "ints",
            Value::List(ints.iter().map(|&i| Value::Int(i)).collect()),
        ),
        (
            "floats",
            Value::List(floats.iter().map(|&f| Value::Float(f)).collect()),
        ),
        (
            "texts",
            Value::List(
                [
                    "",
                    "a\"\\/\n\t\u{0}\u{1f}",
                    "é日本😀\u{2028}",
                    "\u{feff}bom",
                    &"long ".repeat(40),
                ]
                .iter()
                .map(|s| text(s))
                .collect(),
            ),
        ),
        (
            "nested",
            Value::List(vec![
                Value::Map(map(&[("a", Value::List(vec![]))])),
                Value::Map(BTreeMap::new()),
            ]),
        ),
        // Keys in Rust's order (UTF-8 bytes): U+FFFF before U+10000, which
        // UTF-16 code units would swap; an integer-like key; `__proto__`.
        ("\u{ffff}", Value::Int(1)),
        ("\u{10000}", Value::Int(2)),
        ("10", Value::Int(3)),
        (
            "__proto__",
            Value::Map(map(&[("polluted", Value::Bool(true))])),
        ),
    ]))
}

/// Lists nested `depth` deep around `null`.
fn nested(depth: usize) -> Value {
    (0..depth).fold(Value::Null, |v, _| Value::List(vec![v]))
}

fn client_vectors() -> Vec<Json> {
    let sub = Sub {
        id: "a".into(),
        entity: "T".into(),
        r#where: Value::Map(map(&[("done", Value::Bool(false))])),
        limit: Some(20),
        ..Sub::default()
    };
    let full_sub = Sub {
        id: "s1".into(),
        entity: "Card".into(),
        r#where: Value::Map(map(&[("author", text("ada"))])),
        order: Value::List(vec![text("position"), text("createdAt")]),
        limit: Some(u32::MAX),
        since: Some((1 << 53) - 1),
        count: true,
    };
    let ops = vec![
        Op::Insert {
            entity: "Card".into(),
            row: card("c1", "first card", false, 1),
        },
        Op::Update {
            entity: "Card".into(),
            id: "c1".into(),
            set: map(&[("done", Value::Bool(true))]),
        },
        Op::Upsert {
            entity: "Tag".into(),
            row: map(&[("id", text("g1")), ("name", text("home"))]),
        },
        Op::Delete {
            entity: "Card".into(),
            id: "c0".into(),
        },
    ];
    vec![
        client(
            "hello",
            ClientMsg::Hello(Hello {
                client: Some("web/1.4.2".into()),
                token: Some("eyJ.e30.sig".into()),
            }),
            true,
        ),
        client("hello, empty", ClientMsg::Hello(Hello::default()), true),
        client("sub, the docs' example", ClientMsg::Sub(sub), true),
        client("sub, every field", ClientMsg::Sub(full_sub), true),
        client(
            "sub, nothing optional",
            ClientMsg::Sub(Sub {
                id: "s2".into(),
                entity: "Card".into(),
                ..Sub::default()
            }),
            true,
        ),
        client("unsub", ClientMsg::Unsub(Unsub { id: "s1".into() }), true),
        client(
            "mut, every op",
            ClientMsg::Mut(Mut {
                op: "9b2e6c1e-4a57-4d0c-b5e3-1f0c7f0a9d21".into(),
                ops,
            }),
            true,
        ),
        client(
            "presence",
            ClientMsg::Presence(Presence {
                state: Value::Map(map(&[
                    ("name", text("Ada")),
                    (
                        "cursor",
                        Value::List(vec![Value::Int(120), Value::Float(48.5)]),
                    ),
                ])),
            }),
            true,
        ),
        client(
            "presence, cleared",
            ClientMsg::Presence(Presence { state: Value::Null }),
            true,
        ),
        client(
            "presence, -2",
            ClientMsg::Presence(Presence {
                state: Value::Int(-2),
            }),
            true,
        ),
        client(
            "bcast, every value",
            ClientMsg::Bcast(SendBcast {
                topic: "typing".into(),
                data: every_value(),
            }),
            true,
        ),
        client(
            "bcast, 64 levels deep",
            ClientMsg::Bcast(SendBcast {
                topic: "deep".into(),
                data: nested(64),
            }),
            true,
        ),
        client("ping", ClientMsg::Ping(Ping { t: Some(300) }), true),
        client("ping, no t", ClientMsg::Ping(Ping { t: None }), true),
        client(
            "call",
            ClientMsg::Call(Call {
                op: "c-1".into(),
                name: "moveCard".into(),
                args: Value::Map(BTreeMap::from([
                    ("cardId".to_owned(), Value::from("k1")),
                    ("position".to_owned(), Value::Int(2)),
                ])),
            }),
            true,
        ),
        client(
            "call, no args",
            ClientMsg::Call(Call {
                op: "c-2".into(),
                name: "boardSummary".into(),
                args: Value::Null,
            }),
            true,
        ),
        client(
            "watch",
            ClientMsg::Watch(Watch {
                id: "w1".into(),
                name: "boardSummary".into(),
                args: Value::Map(BTreeMap::from([("board".to_owned(), Value::from("b1"))])),
            }),
            true,
        ),
        client(
            "presence, an integral float",
            ClientMsg::Presence(Presence {
                state: Value::Float(2.0),
            }),
            false,
        ),
    ]
}

fn server_vectors() -> Vec<Json> {
    let member = |conn: &str, state: Value| Member {
        conn: conn.into(),
        state,
    };
    let cards: Vec<Row> = (1..=3)
        .map(|i| card(&format!("c{i}"), &format!("card {i}"), i == 2, i))
        .collect();
    vec![
        server(
            "welcome",
            ServerMsg::Welcome(Welcome {
                protocol: "pylon.v1".into(),
                shard: "team-42".into(),
                seq: 41,
                conn: "c-8f2a".into(),
                encoding: Encoding::Postcard,
                window: None,
            }),
            true,
        ),
        server(
            "welcome, json",
            ServerMsg::Welcome(Welcome {
                protocol: "pylon.v1".into(),
                shard: "s".into(),
                seq: 0,
                conn: "c".into(),
                encoding: Encoding::Json,
                window: None,
            }),
            true,
        ),
        server(
            "snap",
            ServerMsg::Snap(Snap {
                id: "s1".into(),
                seq: 41,
                rows: cards.clone(),
                count: Some(3),
            }),
            true,
        ),
        server(
            "snap, empty",
            ServerMsg::Snap(Snap {
                id: "s1".into(),
                seq: 0,
                rows: vec![],
                count: None,
            }),
            true,
        ),
        server(
            "diff",
            ServerMsg::Diff(Diff {
                id: "s1".into(),
                from: 41,
                seq: 42,
                added: vec![Positioned {
                    pos: 0,
                    row: card("c9", "new", false, 0),
                }],
                changed: vec![Positioned {
                    pos: 2,
                    row: cards[0].clone(),
                }],
                removed: vec!["c3".into(), "c4".into()],
                count: Some(3),
            }),
            true,
        ),
        server(
            "diff, one row changed",
            ServerMsg::Diff(Diff {
                id: "s1".into(),
                from: 42,
                seq: 43,
                changed: vec![Positioned {
                    pos: 1,
                    row: cards[1].clone(),
                }],
                ..Diff::default()
            }),
            true,
        ),
        server(
            "diff, empty",
            ServerMsg::Diff(Diff {
                id: "s1".into(),
                from: 1,
                seq: 2,
                ..Diff::default()
            }),
            true,
        ),
        server(
            "reset",
            ServerMsg::Reset(Reset {
                id: "s1".into(),
                reason: "too_old".into(),
            }),
            true,
        ),
        server(
            "ack",
            ServerMsg::Ack(Ack {
                op: "9b2e6c1e-4a57-4d0c-b5e3-1f0c7f0a9d21".into(),
                seq: 42,
                dup: false,
            }),
            true,
        ),
        server(
            "ack, dup",
            ServerMsg::Ack(Ack {
                op: "o".into(),
                seq: (1 << 53) - 1,
                dup: true,
            }),
            true,
        ),
        server(
            "err, op",
            ServerMsg::Err(ErrorMsg {
                code: ErrorCode::NotFound,
                message: "no row c7".into(),
                op: Some("o1".into()),
                sub: None,
            }),
            true,
        ),
        server(
            "err, sub",
            ServerMsg::Err(ErrorMsg {
                code: ErrorCode::BadQuery,
                message: "bad where".into(),
                op: None,
                sub: Some("s1".into()),
            }),
            true,
        ),
        server(
            "err, neither",
            ServerMsg::Err(ErrorMsg {
                code: ErrorCode::RateLimited,
                message: "".into(),
                op: None,
                sub: None,
            }),
            true,
        ),
        server(
            "presence_state",
            ServerMsg::PresenceState(PresenceState {
                members: vec![
                    member("c1", Value::Map(map(&[("name", text("Ada"))]))),
                    member("c2", Value::Null),
                ],
            }),
            true,
        ),
        server(
            "presence_state, empty",
            ServerMsg::PresenceState(PresenceState::default()),
            true,
        ),
        server(
            "presence_diff",
            ServerMsg::PresenceDiff(PresenceDiff {
                joins: vec![member("c3", text("here"))],
                updates: vec![member("c1", Value::Int(7))],
                leaves: vec!["c2".into()],
            }),
            true,
        ),
        server(
            "bcast, every value",
            ServerMsg::Bcast(Bcast {
                topic: "typing".into(),
                data: every_value(),
                from: "c2".into(),
            }),
            true,
        ),
        server(
            "bcast, 64 levels deep",
            ServerMsg::Bcast(Bcast {
                topic: "deep".into(),
                data: nested(64),
                from: "c2".into(),
            }),
            true,
        ),
        server(
            "pong",
            ServerMsg::Pong(Pong {
                t: Some(1_717_171_717_000),
            }),
            true,
        ),
        server("pong, no t", ServerMsg::Pong(Pong { t: None }), true),
        server(
            "result",
            ServerMsg::Returned(Returned {
                op: "c-1".into(),
                seq: 57,
                value: Value::Map(BTreeMap::from([("moved".to_owned(), Value::Bool(true))])),
                dup: false,
            }),
            true,
        ),
        server(
            "result, a retry",
            ServerMsg::Returned(Returned {
                op: "c-1".into(),
                seq: 57,
                value: Value::Null,
                dup: true,
            }),
            true,
        ),
        server(
            "value",
            ServerMsg::FnValue(FnValue {
                id: "w1".into(),
                seq: 58,
                value: Value::List(vec![Value::Int(3), Value::from("five")]),
            }),
            true,
        ),
        server(
            "bcast, an integral float",
            ServerMsg::Bcast(Bcast {
                topic: "f".into(),
                data: Value::Float(2.0),
                from: "c".into(),
            }),
            false,
        ),
        server(
            "bcast, i64::MAX",
            ServerMsg::Bcast(Bcast {
                topic: "i".into(),
                data: Value::Int(i64::MAX),
                from: "c".into(),
            }),
            false,
        ),
        server(
            "welcome, seq u64::MAX",
            ServerMsg::Welcome(Welcome {
                protocol: "pylon.v1".into(),
                shard: "s".into(),
                seq: u64::MAX,
                conn: "c".into(),
                encoding: Encoding::Postcard,
                window: None,
            }),
            false,
        ),
    ]
}

/// Server frames the Rust decoder refuses: `unknown_type` (a client
/// ignores it) or `bad` (it drops the connection).
fn invalid_server_frames() -> Vec<Json> {
    let pong =
        hex(encode_server(Encoding::Postcard, &ServerMsg::Pong(Pong { t: Some(5) })).as_bytes());
    let bcast = |data: &str| format!("08017401{data}0163");
    let nan = hex(&f64::NAN.to_le_bytes());
    let cases = [
        ("an unknown message type", "0c".to_string(), "unknown_type"),
        ("a message type beyond u32", "ffffffff1f".to_string(), "bad"),
        ("an empty frame", String::new(), "bad"),
        ("trailing bytes", format!("{pong}00"), "bad"),
        ("cut short", pong[..4].to_string(), "bad"),
        ("an unknown value tag", bcast("07"), "bad"),
        ("a NaN in a value", bcast(&format!("03{nan}")), "bad"),
        (
            "values 65 deep",
            bcast(&format!("{}00", "0501".repeat(65))),
            "bad",
        ),
        ("a bool that is 2", "0401610102".to_string(), "bad"),
        ("an option tag that is 2", "0902".to_string(), "bad"),
        (
            "a string longer than the frame",
            "0305733105".to_string(),
            "bad",
        ),
        (
            "a string that is not UTF-8",
            "0302ff00017300".to_string(),
            "bad",
        ),
        (
            "an unknown encoding",
            "000170017300016302".to_string(),
            "bad",
        ),
    ];
    cases
        .into_iter()
        .map(|(name, bytes, expect)| {
            let got = decode_server(Encoding::Postcard, &unhex(&bytes));
            match (&got, expect) {
                (Err(DecodeError::UnknownType { .. }), "unknown_type") => {}
                (Err(e), "bad") if !matches!(e, DecodeError::UnknownType { .. }) => {}
                _ => panic!("{name}: expected {expect}, got {got:?}"),
            }
            json!({ "name": name, "postcard": bytes, "expect": expect })
        })
        .collect()
}

/// The counter kind's inputs (`Add { add }`).
fn sim_client_vectors() -> Vec<Json> {
    let input = |seq, add| {
        SimClientMsg::Input(sim::InputMsg {
            seq,
            input: Add::new(add).unwrap(),
        })
    };
    [(3, 5), (300, 1000)]
        .into_iter()
        .map(|(seq, add)| {
            let bytes = sim::encode_client(Encoding::Postcard, &input(seq, add));
            assert_eq!(
                sim::decode_client::<Add>(Encoding::Postcard, bytes.as_ref(), 1024).unwrap(),
                input(seq, add)
            );
            vector(
                &format!("sim_input, add {add}"),
                sim::encode_client(Encoding::Json, &input(seq, add)),
                bytes,
                true,
            )
        })
        .collect()
}

/// The counter kind's server messages (snapshots are `Total { total }`).
fn sim_server_vectors() -> Vec<Json> {
    let snap = |tick, acked, is_final, total| {
        SimServerMsg::Snapshot(sim::SnapshotMsg {
            tick,
            acked,
            is_final,
            snapshot: Total { total },
        })
    };
    let welcome = SimServerMsg::Welcome(sim::Welcome {
        protocol: sim::SIM_PROTOCOL.into(),
        sim: "c-1".into(),
        kind: "counter".into(),
        conn: "c7".into(),
        subscriber: "ada".into(),
        tick: 41,
        acked: 3,
        tick_hz: 20,
        encoding: Encoding::Postcard,
    });
    let err = |seq, reason: Option<&str>| {
        SimServerMsg::<Total>::Err(sim::SimErr {
            code: SimErrorCode::InputRejected,
            message: "rejected".into(),
            seq,
            reason: reason.map(Into::into),
        })
    };
    let mut out = Vec::new();
    let servers = [
        ("sim_welcome", welcome),
        ("sim_snapshot", snap(4, 3, false, 12)),
        ("sim_snapshot, final, negative", snap(9, 5, true, -40)),
        (
            "sim_ack",
            SimServerMsg::Ack(sim::Ack {
                seq: 3,
                tick: 4,
                dup: false,
            }),
        ),
        (
            "sim_ack, dup",
            SimServerMsg::Ack(sim::Ack {
                seq: 3,
                tick: 5,
                dup: true,
            }),
        ),
        (
            "sim_err",
            err(Some(4), Some("the total would pass 2^53 - 1")),
        ),
        ("sim_err, bare", err(None, None)),
    ];
    for (name, m) in servers {
        let bytes = sim::encode_server(Encoding::Postcard, &m);
        assert_eq!(
            sim::decode_server::<Total>(Encoding::Postcard, bytes.as_ref()).unwrap(),
            m,
            "{name}"
        );
        out.push(vector(
            name,
            sim::encode_server(Encoding::Json, &m),
            bytes,
            true,
        ));
    }
    out
}

/// Receipts (`recv`), the host's message in every socket protocol: the
/// same JSON, and in postcard the tag 0x7f and a varint.
fn receipt_vectors() -> Vec<Json> {
    use pylon_workers::host::window::receipt_frame;
    [0u64, 300, 262_144, 1 << 40, (1 << 53) - 1]
        .into_iter()
        .map(|n| {
            vector(
                &format!("recv {n}"),
                receipt_frame(Encoding::Json, n),
                receipt_frame(Encoding::Postcard, n),
                true,
            )
        })
        .collect()
}

fn fixture() -> String {
    let doc = json!({
        "about": "Written by tests/protocol_ts_vectors.rs from the Rust encoders; do not edit (PYLON_WRITE_VECTORS=1 cargo test --test native protocol_ts_vectors rewrites it).",
        "client": client_vectors(),
        "server": server_vectors(),
        "invalid_server": invalid_server_frames(),
        "sim_client": sim_client_vectors(),
        "sim_server": sim_server_vectors(),
        "receipts": receipt_vectors(),
    });
    serde_json::to_string_pretty(&doc).unwrap() + "\n"
}

#[test]
fn the_typescript_fixture_is_what_the_encoders_write() {
    let path = format!("{}/{FIXTURE}", env!("CARGO_MANIFEST_DIR"));
    let want = fixture();
    if std::env::var("PYLON_WRITE_VECTORS").as_deref() == Ok("1") {
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{FIXTURE} is not what the encoders write now; if the wire format changed on purpose, \
         rewrite it with PYLON_WRITE_VECTORS=1 cargo test --test native protocol_ts_vectors"
    );
}
