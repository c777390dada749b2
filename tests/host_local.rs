//! The host's decisions for the live-query shard, on a local host with a
//! virtual clock (the same `HostCore` the Worker runs): when coalesced
//! diffs are flushed, the outbox drain on its timer and its backoff, the
//! alarm left when nothing is owed, the per-user rate cache, and what an
//! eviction keeps.

use std::rc::Rc;

use pylon_workers::app::App;
use pylon_workers::host::local::LocalHost;
use pylon_workers::host::{IoCall, IoOutcome, Method};
use pylon_workers::policy::AuthContext;
use pylon_workers::protocol::{self, Encoding, ErrorCode, Frame, FrameRef, ServerMsg};
use pylon_workers::shard::{LiveShard, DRAIN_DELAY_MS};
use pylon_workers::storage::{SqlConn, SqliteConn};
use serde_json::json;

const MANIFEST: &str = r#"{"entities":[{"name":"Card","fields":[
    {"name":"title","type":"string"},{"name":"n","type":"int"}]}]}"#;

type Host = LocalHost<Rc<SqliteConn>, LiveShard<Rc<SqliteConn>>>;

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

/// Sends a message written as JSON in the postcard encoding.
fn send_postcard(h: &mut Host, conn: &str, msg: serde_json::Value) {
    let m = protocol::decode_client(Encoding::Json, msg.to_string().as_bytes()).unwrap();
    let frame = protocol::encode_client(Encoding::Postcard, &m);
    h.message(conn, frame.as_ref()).unwrap();
}

fn received(h: &mut Host, conn: &str) -> Vec<ServerMsg> {
    h.take_sent(conn)
        .into_iter()
        .map(|f| match f {
            Frame::Text(t) => protocol::decode_server(Encoding::Json, t.as_bytes()).unwrap(),
            Frame::Binary(b) => protocol::decode_server(Encoding::Postcard, &b).unwrap(),
        })
        .collect()
}

fn insert(op: &str, id: &str, n: i64) -> serde_json::Value {
    json!({"type":"mut","op":op,"ops":[{"type":"insert","entity":"Card",
        "row":{"id":id,"title":"t","n":n}}]})
}

#[test]
fn a_write_is_flushed_at_once_and_drained_on_the_outbox_timer() {
    let mut h = host();
    let (a, b) = (
        h.connect(Encoding::Json).unwrap(),
        h.connect(Encoding::Postcard).unwrap(),
    );
    send_postcard(&mut h, &b, json!({"type":"sub","id":"s","entity":"Card"}));
    received(&mut h, &a);
    assert!(received(&mut h, &b)
        .iter()
        .any(|m| matches!(m, ServerMsg::Snap(_))));
    assert_eq!(h.alarm(), None, "nothing owed, no alarm");

    send(&mut h, &a, insert("o1", "c1", 1));
    // An idle shard flushes right after the event: the ack and the diff.
    assert!(received(&mut h, &a)
        .iter()
        .any(|m| matches!(m, ServerMsg::Ack(k) if k.op == "o1")));
    let got = received(&mut h, &b);
    assert!(
        got.iter().any(|m| matches!(m, ServerMsg::Diff(_))),
        "{got:?}"
    );
    // The outbox holds the write: a drain is due shortly, on the alarm.
    assert_eq!(h.alarm(), Some(h.now_ms() + DRAIN_DELAY_MS));
    assert!(h.io_log.is_empty());
    h.advance(DRAIN_DELAY_MS).unwrap();
    assert!(matches!(h.io_log.as_slice(), [IoCall::ApplyOutbox(b)] if b.changes.len() == 1));
    assert_eq!(h.alarm(), None, "drained: the shard can rest");
    assert_eq!(h.stats()["outbox"]["depth"], 0);
    assert_eq!(h.stats()["alarm_pending"], false);
}

fn acked(h: &mut Host, conn: &str, op: &str) -> bool {
    received(h, conn)
        .iter()
        .any(|m| matches!(m, ServerMsg::Ack(k) if k.op == op))
}

/// A busy shard waits after a flush in proportion to the frames it sent
/// (`PYLON_FLUSH_FRAMES_PER_SEC`): at 1,000 frames a second, a flush to 20
/// subscribers and its writer holds the next for 21 ms; with nobody
/// subscribed, for the least gap (4 ms). An idle shard still flushes at
/// once.
#[test]
fn a_busy_shards_flushes_are_paced_by_their_frames() {
    let mut h = host();
    h.var("PYLON_FLUSH_FRAMES_PER_SEC", "1000");
    h.evict();
    let w = h.connect(Encoding::Json).unwrap();
    let subs: Vec<String> = (0..20)
        .map(|_| h.connect(Encoding::Json).unwrap())
        .collect();
    for s in &subs {
        send(&mut h, s, json!({"type":"sub","id":"s","entity":"Card"}));
    }
    h.advance(1_000).unwrap();
    for s in &subs {
        received(&mut h, s);
    }
    received(&mut h, &w);

    send(&mut h, &w, insert("o1", "c1", 1));
    assert!(acked(&mut h, &w, "o1"), "an idle shard flushes at once");
    send(&mut h, &w, insert("o2", "c2", 2));
    assert!(!acked(&mut h, &w, "o2"), "held: the shard is busy");
    h.advance(20).unwrap();
    assert!(!acked(&mut h, &w, "o2"), "21 frames at 1,000/s: 21 ms");
    h.advance(1).unwrap();
    assert!(acked(&mut h, &w, "o2"));
    for s in &subs {
        let got = received(&mut h, s);
        assert_eq!(
            got.iter()
                .filter(|m| matches!(m, ServerMsg::Diff(_)))
                .count(),
            2,
            "{got:?}"
        );
    }

    for s in &subs {
        h.close(s).unwrap();
    }
    h.advance(1_000).unwrap();
    send(&mut h, &w, insert("o3", "c3", 3));
    assert!(acked(&mut h, &w, "o3"));
    send(&mut h, &w, insert("o4", "c4", 4));
    h.advance(3).unwrap();
    assert!(!acked(&mut h, &w, "o4"), "one frame: the least gap, 4 ms");
    h.advance(1).unwrap();
    assert!(acked(&mut h, &w, "o4"));
}

#[test]
fn a_failing_drain_backs_off_and_recovers() {
    let mut h = host();
    let fail = Rc::new(std::cell::Cell::new(true));
    let f = fail.clone();
    h.on_io(move |call| match call {
        IoCall::ApplyOutbox(_) if f.get() => IoOutcome::Applied(Err("applying to D1".into())),
        IoCall::ApplyOutbox(_) => IoOutcome::Applied(Ok(())),
        _ => IoOutcome::RateLimited { allowed: true },
    });
    let a = h.connect(Encoding::Json).unwrap();
    send(&mut h, &a, insert("o1", "c1", 1));
    h.advance(DRAIN_DELAY_MS).unwrap();
    let t0 = h.now_ms();
    assert_eq!(h.alarm(), Some(t0 + 1000), "first retry after 1 s");
    h.advance(1000).unwrap();
    assert_eq!(h.alarm(), Some(t0 + 1000 + 2000), "then 2 s");
    let stats = h.stats();
    assert_eq!(stats["outbox"]["attempts"], 2);
    assert_eq!(
        stats["outbox"]["last_error"],
        "applying to D1 failed (the detail is in the Worker's log)"
    );
    fail.set(false);
    h.advance(2000).unwrap();
    assert_eq!(h.alarm(), None);
    assert_eq!(h.stats()["outbox"]["depth"], 0);
    assert_eq!(h.stats()["outbox"]["attempts"], 0);
    assert_eq!(h.io_log.len(), 3);
}

#[test]
fn an_eviction_keeps_sockets_subscriptions_and_the_owed_drain() {
    let mut h = host();
    let (a, b) = (
        h.connect(Encoding::Json).unwrap(),
        h.connect(Encoding::Json).unwrap(),
    );
    send(&mut h, &b, json!({"type":"sub","id":"s","entity":"Card"}));
    send(&mut h, &a, insert("o1", "c1", 1));
    received(&mut h, &b);
    let owed = h.alarm();
    assert!(owed.is_some());
    h.evict();
    assert_eq!(h.alarm(), owed, "the platform keeps the alarm");
    send(&mut h, &a, insert("o2", "c2", 2));
    assert_eq!(h.wakes(), 2);
    let got = received(&mut h, &b);
    assert!(
        got.iter()
            .any(|m| matches!(m, ServerMsg::Diff(d) if d.from == 1 && d.seq == 2)),
        "{got:?}"
    );
    h.advance(DRAIN_DELAY_MS).unwrap();
    // Both writes reach D1, in one batch or two.
    let applied: usize = h
        .io_log
        .iter()
        .map(|c| match c {
            IoCall::ApplyOutbox(b) => b.changes.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(applied, 2);
    assert_eq!(h.alarm(), None);
}

#[test]
fn a_user_over_the_shared_limit_is_refused_until_the_period_ends() {
    let mut h = host();
    let over = Rc::new(std::cell::Cell::new(false));
    let o = over.clone();
    h.on_io(move |call| match call {
        IoCall::RateLimit { .. } => IoOutcome::RateLimited { allowed: !o.get() },
        _ => IoOutcome::Applied(Ok(())),
    });
    let a = h
        .connect_as(Encoding::Json, AuthContext::user("u1"))
        .unwrap();
    received(&mut h, &a);
    over.set(true);
    send(&mut h, &a, json!({"type":"ping","t":1}));
    // That one was let through; the binding's "no" applies from the next.
    assert!(matches!(
        received(&mut h, &a).as_slice(),
        [ServerMsg::Pong(_)]
    ));
    send(&mut h, &a, json!({"type":"ping","t":2}));
    assert!(matches!(received(&mut h, &a).as_slice(),
        [ServerMsg::Err(e)] if e.code == ErrorCode::RateLimited));
    over.set(false);
    h.advance(10_000).unwrap();
    send(&mut h, &a, json!({"type":"ping","t":3}));
    assert!(matches!(
        received(&mut h, &a).as_slice(),
        [ServerMsg::Pong(_)]
    ));
    // Anonymous connections are not counted against any user.
    let anon = h.connect(Encoding::Json).unwrap();
    let calls = h.io_log.len();
    send(&mut h, &anon, json!({"type":"ping"}));
    assert_eq!(h.io_log.len(), calls);
}

#[test]
fn http_routes_answer_with_typed_errors() {
    let mut h = host();
    let r = h.request(Method::Get, "ws", json!(null)).unwrap();
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (426, Some("UPGRADE_REQUIRED"))
    );
    let r = h.request(Method::Get, "mutate", json!(null)).unwrap();
    assert_eq!(r.status, 405);
    let r = h.request(Method::Post, "nope", json!({})).unwrap();
    assert_eq!(r.status, 404);
    let r = h
        .request(
            Method::Post,
            "mutate",
            json!({"op":"h1","ops":[{"type":"insert",
            "entity":"Card","row":{"id":"c1","title":"x","n":1}}]}),
        )
        .unwrap();
    assert_eq!((r.status, r.body["seq"].as_u64()), (200, Some(1)));
    let r = h
        .request(Method::Post, "query", json!({"entity":"Card"}))
        .unwrap();
    assert_eq!(r.body["rows"][0]["id"], "c1");
    assert_eq!(h.alarm(), Some(h.now_ms() + DRAIN_DELAY_MS));
}

/// An idle shard holding row `c0`, its outbox drained, with connection
/// `a` subscribed to `Card`: the start of the cost tests below.
fn idle_subscribed_shard() -> (Rc<SqliteConn>, Host, String) {
    let db = Rc::new(SqliteConn::open_in_memory().unwrap());
    let mut h: Host = LocalHost::open(db.clone(), "room-1", app()).unwrap();
    let a = h.connect(Encoding::Json).unwrap();
    send(&mut h, &a, json!({"type":"sub","id":"s","entity":"Card"}));
    send(&mut h, &a, insert("o0", "c0", 0));
    h.advance(DRAIN_DELAY_MS).unwrap();
    received(&mut h, &a);
    (db, h, a)
}

/// What one insert costs in SQL on an idle shard with one subscribed
/// window, counted by the connection: the platform bills rows written,
/// and each statement is a call into the runtime.
#[test]
fn one_insert_costs_a_fixed_number_of_statements_and_rows() {
    let (db, mut h, a) = idle_subscribed_shard();

    let before = db.meter().unwrap();
    send(&mut h, &a, insert("o1", "c1", 1));
    let write = db.meter().unwrap().since(before);
    assert!(received(&mut h, &a)
        .iter()
        .any(|m| matches!(m, ServerMsg::Ack(k) if k.op == "o1")));
    let before = db.meter().unwrap();
    h.advance(DRAIN_DELAY_MS).unwrap();
    let drain = db.meter().unwrap().since(before);
    // Written: the row, its log entry, its outbox entry, its op id, the
    // seq, the window's seq and the drain timer; then the drain deletes
    // the outbox entry and disarms its timer. (The platform adds one per
    // declared index entry; this entity has none.)
    assert_eq!(
        (write.rows_written, drain.rows_written),
        (7, 2),
        "{write:?} {drain:?}"
    );
    // Statements: the op-id lookup, the insert, the log, outbox and op-id
    // records, the seq, the window, the timer and the alarm's next time
    // (12 before the insert stopped reading first and the depth was read
    // once; 10 before a write's own commit stood for the outbox depth).
    assert!(write.statements <= 9, "{write:?}");
}

/// What one update of a row a subscribed window holds costs in SQL on an
/// idle shard (the fan-out benches' write): the before-image, needed for
/// the update policy and the diff, comes from the window's copy.
#[test]
fn one_update_costs_a_fixed_number_of_statements_and_rows() {
    let (db, mut h, a) = idle_subscribed_shard();

    let update = |op: &str, n: i64| {
        json!({"type":"mut","op":op,"ops":[{"type":"update","entity":"Card",
            "id":"c0","set":{"n":n}}]})
    };
    let before = db.meter().unwrap();
    send(&mut h, &a, update("o1", 1));
    let write = db.meter().unwrap().since(before);
    let got = received(&mut h, &a);
    assert!(
        got.iter()
            .any(|m| matches!(m, ServerMsg::Ack(k) if k.op == "o1")),
        "{got:?}"
    );
    assert!(
        got.iter().any(|m| matches!(m, ServerMsg::Diff(_))),
        "{got:?}"
    );
    h.advance(DRAIN_DELAY_MS).unwrap();
    // Written: the row, its log entry, its outbox entry, its op id, the
    // seq, the window's seq and the drain timer.
    assert_eq!(write.rows_written, 7, "{write:?}");
    // Statements: the op-id lookup, the update, the log, outbox and op-id
    // records, the seq, the window, the timer and the alarm's next time
    // (11 when the row was read before the update, 10 when the outbox
    // depth was counted after it).
    assert!(write.statements <= 9, "{write:?}");
}

/// The first request after an eviction opens the shard: what it runs
/// before answering is what the cold answer waits for.
#[test]
fn the_first_query_after_an_eviction_runs_few_statements() {
    let db = Rc::new(SqliteConn::open_in_memory().unwrap());
    let mut h: Host = LocalHost::open(db.clone(), "room-1", app()).unwrap();
    let a = h.connect(Encoding::Json).unwrap();
    send(&mut h, &a, insert("o0", "c0", 0));
    h.advance(DRAIN_DELAY_MS).unwrap();
    h.close(&a).unwrap();
    h.evict();
    let before = db.meter().unwrap();
    let r = h
        .request(Method::Post, "query", json!({"entity":"Card"}))
        .unwrap();
    assert_eq!(r.status, 200);
    let wake = db.meter().unwrap().since(before);
    // The shard's name (unchanged: no row written; the wake was counted
    // when the object was rebuilt), one read for the schema, the timers' table, the
    // connections' leftovers, what is owed (jobs, members, outbox,
    // scheduled calls, the room's member count in one read), then the
    // query: 18. Before the schema check and the timers skipped their DDL
    // on a wake it was 42 (counted from the code: 14 CREATE TABLE/INDEX of
    // the runtime's tables and one DDL statement per access to the timers
    // and the meta table); 20 before the room count's three keys were
    // read together.
    assert!(wake.statements <= 18, "{wake:?}");
    assert_eq!(wake.rows_written, 0, "a read writes nothing: {wake:?}");
}

/// A connection that keeps what failed through `exec`, which the Worker's
/// SQL adapter logs as a warning, apart from `probe`, whose missing
/// tables it does not log.
#[derive(Clone)]
struct Loud {
    db: Rc<SqliteConn>,
    failed: Rc<std::cell::RefCell<Vec<String>>>,
}

impl SqlConn for Loud {
    fn exec(
        &self,
        sql: &str,
        params: &[pylon_workers::sql::SqlValue],
    ) -> Result<Vec<Vec<pylon_workers::sql::SqlValue>>, pylon_workers::storage::StorageError> {
        let r = self.db.exec(sql, params);
        if let Err(e) = &r {
            self.failed.borrow_mut().push(e.to_string());
        }
        r
    }

    fn probe(
        &self,
        sql: &str,
        params: &[pylon_workers::sql::SqlValue],
    ) -> Result<Vec<Vec<pylon_workers::sql::SqlValue>>, pylon_workers::storage::StorageError> {
        self.db.probe(sql, params)
    }

    fn meter(&self) -> Option<pylon_workers::storage::SqlMeter> {
        self.db.meter()
    }
}

/// A new object's first wake probes tables that do not exist yet; those
/// probes must not show as failed statements in the Worker's log (they
/// did, "no such table", on every new room), and nothing else fails on
/// its way through a connection, a write, an eviction and a wake.
#[test]
fn a_new_objects_first_wake_logs_no_failed_statement() {
    let loud = Loud {
        db: Rc::new(SqliteConn::open_in_memory().unwrap()),
        failed: Rc::default(),
    };
    let mut h: LocalHost<Loud, LiveShard<Loud>> =
        LocalHost::open(loud.clone(), "room-new", app()).unwrap();
    let a = h.connect(Encoding::Json).unwrap();
    send_loud(&mut h, &a, insert("o0", "c0", 0));
    h.advance(DRAIN_DELAY_MS).unwrap();
    h.evict();
    let r = h
        .request(Method::Post, "query", json!({"entity":"Card"}))
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(h.wakes(), 2);
    assert_eq!(*loud.failed.borrow(), Vec::<String>::new());
}

fn send_loud(h: &mut LocalHost<Loud, LiveShard<Loud>>, conn: &str, msg: serde_json::Value) {
    h.message(conn, FrameRef::Text(&msg.to_string())).unwrap();
}
