//! Slow readers are contained (issue #18): the host counts what it sends
//! on each socket, clients receipt what they read, and a socket left more
//! than the send window behind is closed with 4408 while its neighbours
//! get every diff; on the local host (the Worker's `HostCore`) with real
//! SQLite, across an eviction, with bad receipts, and on a simulation.

use std::rc::Rc;

use pylon_workers::app::App;
use pylon_workers::host::local::LocalHost;
use pylon_workers::host::window::{receipt_frame, RECEIPT_STEP, WINDOW_VAR};
use pylon_workers::protocol::{self, close, Encoding, ErrorCode, Frame, FrameRef, ServerMsg};
use pylon_workers::shard::LiveShard;
use pylon_workers::storage::SqliteConn;
use serde_json::json;

const MANIFEST: &str = r#"{"entities":[{"name":"Card","fields":[
    {"name":"title","type":"string"},{"name":"n","type":"int"}]}]}"#;

type Host = LocalHost<Rc<SqliteConn>, LiveShard<Rc<SqliteConn>>>;

const WINDOW: u64 = 1 << 20;

fn app() -> &'static App {
    static APP: std::sync::OnceLock<App> = std::sync::OnceLock::new();
    APP.get_or_init(|| App::new(MANIFEST))
}

fn host() -> Host {
    let db = Rc::new(SqliteConn::open_in_memory().unwrap());
    LocalHost::open(db, "room-1", app()).unwrap()
}

fn send(h: &mut Host, conn: &str, msg: serde_json::Value) {
    h.message(conn, FrameRef::Text(&msg.to_string())).unwrap();
}

fn decode(f: &Frame) -> ServerMsg {
    match f {
        Frame::Text(t) => protocol::decode_server(Encoding::Json, t.as_bytes()).unwrap(),
        Frame::Binary(b) => protocol::decode_server(Encoding::Postcard, b).unwrap(),
    }
}

/// A client that reads: takes what it was sent and receipts it the way
/// the clients do (each step, not more often). Returns what it got.
struct Reader {
    conn: String,
    encoding: Encoding,
    unreceipted: u64,
    receipts: usize,
}

impl Reader {
    fn new(h: &mut Host, encoding: Encoding) -> Reader {
        let conn = h.connect(encoding).unwrap();
        Reader {
            conn,
            encoding,
            unreceipted: 0,
            receipts: 0,
        }
    }

    fn read(&mut self, h: &mut Host) -> Vec<ServerMsg> {
        let frames = h.take_sent(&self.conn);
        self.unreceipted += frames.iter().map(|f| f.len() as u64).sum::<u64>();
        if self.unreceipted >= RECEIPT_STEP {
            let f = receipt_frame(self.encoding, self.unreceipted);
            h.message(&self.conn, f.as_ref()).unwrap();
            self.unreceipted = 0;
            self.receipts += 1;
        }
        frames.iter().map(decode).collect()
    }
}

/// A write of one card whose diff is about 16 KiB.
fn big_insert(i: usize) -> serde_json::Value {
    json!({"type":"mut","op":format!("o{i}"),"ops":[{"type":"insert","entity":"Card",
        "row":{"id":format!("c{i}"),"title":"x".repeat(16 * 1024),"n":i}}]})
}

fn diffs(msgs: &[ServerMsg]) -> usize {
    msgs.iter()
        .filter_map(|m| match m {
            ServerMsg::Diff(d) => Some(d.added.len()),
            _ => None,
        })
        .sum()
}

fn subscribe(h: &mut Host, conn: &str) {
    send(h, conn, json!({"type":"sub","id":"s","entity":"Card"}));
}

#[test]
fn a_reader_that_stops_is_closed_with_4408_and_the_others_get_every_diff() {
    let mut h = host();
    let mut fast = Reader::new(&mut h, Encoding::Json);
    let mut fast_pc = Reader::new(&mut h, Encoding::Postcard);
    let slow = h.connect(Encoding::Json).unwrap();
    let writer = h.connect(Encoding::Json).unwrap();
    subscribe(&mut h, &fast.conn.clone());
    let m = protocol::decode_client(
        Encoding::Json,
        json!({"type":"sub","id":"s","entity":"Card"})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    h.message(
        &fast_pc.conn.clone(),
        protocol::encode_client(Encoding::Postcard, &m).as_ref(),
    )
    .unwrap();
    subscribe(&mut h, &slow);
    let (mut got, mut got_pc) = (0, 0);
    let writes = 100; // about 1.6 MiB of diffs to each subscriber
    for i in 0..writes {
        send(&mut h, &writer, big_insert(i));
        h.advance(20).unwrap();
        got += diffs(&fast.read(&mut h));
        got_pc += diffs(&fast_pc.read(&mut h));
        h.take_sent(&writer);
    }
    assert_eq!(got, writes, "the reader got every diff");
    assert_eq!(got_pc, writes, "so did the postcard reader");
    assert!(fast.receipts >= 4, "{} receipts", fast.receipts);
    assert_eq!(h.socket(&fast.conn).unwrap().closed, None);
    assert_eq!(h.socket(&fast_pc.conn).unwrap().closed, None);
    let (code, reason) = h.socket(&slow).unwrap().closed.clone().expect("closed");
    assert_eq!((code, reason.as_str()), (close::BEHIND, "too far behind"));
    // It was sent the window and at most one frame more, then nothing.
    let sent: u64 = h.take_sent(&slow).iter().map(|f| f.len() as u64).sum();
    assert!(sent > WINDOW && sent <= WINDOW + 20 * 1024, "{sent}");
    let stats = h.stats();
    assert_eq!(stats["send_window"]["behind_closes"], 1);
    assert_eq!(stats["send_window"]["bytes"], WINDOW);
    assert_eq!(stats["connections"], 3);
}

#[test]
fn receipts_are_not_rate_limited_and_a_quiet_socket_owes_nothing() {
    let mut h = host();
    let a = h.connect(Encoding::Json).unwrap();
    h.take_sent(&a);
    // Far more than the burst of 200 messages, at one instant: receipts
    // are the host's and never reach the shard's limiter.
    for _ in 0..1_000 {
        h.message(&a, receipt_frame(Encoding::Json, 0).as_ref())
            .unwrap();
    }
    assert_eq!(
        h.take_sent(&a),
        Vec::<Frame>::new(),
        "no answer to a receipt"
    );
    assert_eq!(h.socket(&a).unwrap().closed, None);
    send(&mut h, &a, json!({"type":"ping","t":1}));
    assert!(matches!(decode(&h.take_sent(&a)[0]), ServerMsg::Pong(_)));
}

#[test]
fn a_bad_receipt_gets_a_typed_error_and_the_socket_stays() {
    let mut h = host();
    let a = h.connect(Encoding::Json).unwrap();
    let p = h.connect(Encoding::Postcard).unwrap();
    h.take_sent(&a);
    h.take_sent(&p);
    let bad_json = [
        json!({"type":"recv","bytes":"lots"}),
        json!({"type":"recv"}),
        json!({"type":"recv","bytes":-3}),
        // More than was ever sent on it.
        json!({"type":"recv","bytes": 10 * WINDOW}),
    ];
    for m in bad_json {
        send(&mut h, &a, m.clone());
        let got = h.take_sent(&a);
        match got.as_slice() {
            [f] => match decode(f) {
                ServerMsg::Err(e) => {
                    assert_eq!(e.code, ErrorCode::BadMessage, "{m}");
                    assert!(e.message.starts_with("recv:"), "{}", e.message);
                }
                other => panic!("{m}: {other:?}"),
            },
            other => panic!("{m}: {other:?}"),
        }
    }
    for bytes in [
        &[0x7f][..],
        &[0x7f, 0x80],
        &[0x7f, 0xff, 0xff, 0xff, 0xff, 0x0f],
    ] {
        h.message(&p, FrameRef::Binary(bytes)).unwrap();
        let got = h.take_sent(&p);
        assert!(
            matches!(got.as_slice(), [f] if matches!(decode(f), ServerMsg::Err(ref e) if e.code == ErrorCode::BadMessage)),
            "{bytes:?}: {got:?}"
        );
    }
    assert_eq!(h.socket(&a).unwrap().closed, None);
    assert_eq!(h.socket(&p).unwrap().closed, None);
}

/// The codes of the `err`s in `frames`, in order.
fn err_codes(frames: &[Frame]) -> Vec<ErrorCode> {
    frames
        .iter()
        .map(|f| match decode(f) {
            ServerMsg::Err(e) => e.code,
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn bad_receipts_take_the_rate_like_any_frame_and_a_flood_is_closed_with_4429() {
    let burst = protocol::Limits::default().msg_burst as usize;
    for encoding in [Encoding::Json, Encoding::Postcard] {
        let mut h = host();
        let flood = h.connect(encoding).unwrap();
        let neighbour = h.connect(Encoding::Json).unwrap();
        h.take_sent(&flood);
        h.take_sent(&neighbour);
        let bad = match encoding {
            Encoding::Json => Frame::Text(r#"{"type":"recv","bytes":"x"}"#.into()),
            Encoding::Postcard => Frame::Binary(vec![0x7f, 0x80]),
        };
        // The burst's worth are answered BAD_MESSAGE: they took its tokens.
        for _ in 0..burst {
            h.message(&flood, bad.as_ref()).unwrap();
        }
        let codes = err_codes(&h.take_sent(&flood));
        assert_eq!(codes, vec![ErrorCode::BadMessage; burst], "{encoding:?}");
        // Valid receipts cost nothing, even with the bucket empty: no
        // answer, no refusal counted.
        for _ in 0..1_000 {
            h.message(&flood, receipt_frame(encoding, 0).as_ref())
                .unwrap();
        }
        assert_eq!(h.take_sent(&flood), Vec::<Frame>::new(), "{encoding:?}");
        // Then each bad one is a rate refusal, and the burst's worth of
        // refusals closes the socket.
        for i in 0..burst {
            assert_eq!(h.socket(&flood).unwrap().closed, None, "{encoding:?} {i}");
            h.message(&flood, bad.as_ref()).unwrap();
        }
        let codes = err_codes(&h.take_sent(&flood));
        assert_eq!(codes, vec![ErrorCode::RateLimited; burst], "{encoding:?}");
        let (code, _) = h.socket(&flood).unwrap().closed.clone().expect("closed");
        assert_eq!(code, close::RATE_LIMITED, "{encoding:?}");
        // The neighbour is served.
        send(&mut h, &neighbour, json!({"type":"ping","t":1}));
        let got = h.take_sent(&neighbour);
        assert!(matches!(decode(&got[0]), ServerMsg::Pong(_)), "{got:?}");
        assert_eq!(h.socket(&neighbour).unwrap().closed, None);
    }
}

#[test]
fn across_an_eviction_a_reader_stays_and_a_stalled_socket_is_still_bounded() {
    let mut h = host();
    let mut fast = Reader::new(&mut h, Encoding::Json);
    let slow = h.connect(Encoding::Json).unwrap();
    let writer = h.connect(Encoding::Json).unwrap();
    subscribe(&mut h, &fast.conn.clone());
    subscribe(&mut h, &slow);
    let mut got = 0;
    // Before the eviction: 40 writes (about 650 KiB each), the reader
    // holds back its last receipt: the new wake owes it nothing it knows
    // of, and that late receipt must still be taken.
    for i in 0..40 {
        send(&mut h, &writer, big_insert(i));
        h.advance(20).unwrap();
        let frames = h.take_sent(&fast.conn);
        fast.unreceipted += frames.iter().map(|f| f.len() as u64).sum::<u64>();
        got += frames
            .iter()
            .map(decode)
            .map(|m| diffs(&[m]))
            .sum::<usize>();
        if fast.unreceipted >= 2 * RECEIPT_STEP {
            let f = receipt_frame(Encoding::Json, RECEIPT_STEP);
            h.message(&fast.conn, f.as_ref()).unwrap();
            fast.unreceipted -= RECEIPT_STEP;
        }
        h.take_sent(&writer);
    }
    assert!(fast.unreceipted >= RECEIPT_STEP, "{}", fast.unreceipted);
    h.evict();
    for i in 40..120 {
        send(&mut h, &writer, big_insert(i));
        h.advance(20).unwrap();
        got += diffs(&fast.read(&mut h));
        h.take_sent(&writer);
    }
    assert_eq!(h.wakes(), 2, "the object was rebuilt");
    assert_eq!(got, 120, "the reader got every diff, before and after");
    assert_eq!(h.socket(&fast.conn).unwrap().closed, None);
    assert_eq!(
        h.socket(&slow).unwrap().closed.as_ref().map(|c| c.0),
        Some(close::BEHIND),
        "the stalled socket is bounded after the wake too"
    );
    // What it was sent in all: its window before and after the wake, at
    // most (the wake forgot what it had been sent).
    let sent: u64 = h.take_sent(&slow).iter().map(|f| f.len() as u64).sum();
    assert!(sent <= 2 * (WINDOW + 20 * 1024), "{sent}");
    assert_eq!(h.stats()["send_window"]["behind_closes"], 1);
}

#[test]
fn a_bad_window_variable_fails_the_start_with_its_name() {
    for bad in ["0", "lots", "1000"] {
        let mut h = host();
        h.var(WINDOW_VAR, bad);
        h.evict(); // a variable takes effect at the next start
        let e = h.connect(Encoding::Json).unwrap_err();
        let body = e.body.to_string();
        assert!(body.contains(WINDOW_VAR), "{bad}: {body}");
    }
    let mut h = host();
    h.var(WINDOW_VAR, "4194304");
    h.evict();
    h.connect(Encoding::Json).unwrap();
    assert_eq!(h.stats()["send_window"]["bytes"], 4u64 << 20);
}

/// The window is announced in the JSON `welcome` (clients receipt each
/// quarter of it); the postcard `welcome` cannot carry a new field.
#[test]
fn the_welcome_announces_the_window_in_json() {
    let welcome = |h: &mut Host, enc| {
        let c = h.connect(enc).unwrap();
        match decode(&h.take_sent(&c)[0]) {
            ServerMsg::Welcome(w) => w.window,
            other => panic!("{other:?}"),
        }
    };
    let mut h = host();
    assert_eq!(welcome(&mut h, Encoding::Json), Some(WINDOW));
    assert_eq!(welcome(&mut h, Encoding::Postcard), None);
    h.var(WINDOW_VAR, "4194304");
    h.evict();
    assert_eq!(welcome(&mut h, Encoding::Json), Some(4 << 20));
    assert_eq!(
        pylon_workers::host::window::receipt_step(Some(4 << 20)),
        RECEIPT_STEP * 4
    );
    assert_eq!(
        pylon_workers::host::window::receipt_step(None),
        RECEIPT_STEP
    );
}
