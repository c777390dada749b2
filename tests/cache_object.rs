//! A cache object on real SQLite, through the local host and its virtual
//! clock: every command, the key routes, expiry on read and the sweep
//! timer (rows deleted, no alarm left when nothing expires), the limits
//! and their typed errors, and data kept across an eviction.

use std::rc::Rc;

use pylon_workers::app::App;
use pylon_workers::cache::{CacheObject, COMMANDS, MAX_KEY_BYTES, MAX_VALUE_BYTES};
use pylon_workers::host::local::LocalHost;
use pylon_workers::host::{Method, Request};
use pylon_workers::policy::AuthContext;
use pylon_workers::sql::SqlValue;
use pylon_workers::storage::{SqlConn, SqliteConn};
use serde_json::{json, Value};

type Cache = LocalHost<Rc<SqliteConn>, CacheObject<Rc<SqliteConn>>>;

fn app() -> &'static App {
    static APP: std::sync::OnceLock<App> = std::sync::OnceLock::new();
    APP.get_or_init(|| App::new(r#"{"entities":[]}"#))
}

fn cache() -> (Cache, Rc<SqliteConn>) {
    let db = Rc::new(SqliteConn::open_in_memory().unwrap());
    (Cache::open(db.clone(), "cache-0", app()).unwrap(), db)
}

/// Rows in the table, expired ones included (what the sweep deletes).
fn rows(db: &SqliteConn) -> i64 {
    match db.exec("SELECT COUNT(*) FROM kv", &[]).unwrap()[0][0] {
        SqlValue::Integer(n) => n,
        ref v => panic!("{v:?}"),
    }
}

fn call(host: &mut Cache, method: Method, rest: &str, body: Value) -> (u16, Value) {
    let r = host
        .request_as(method, rest, body, AuthContext::admin())
        .unwrap();
    (r.status, r.body)
}

fn raw(host: &mut Cache, method: Method, rest: &str, body: &[u8]) -> (u16, Value) {
    let r = host
        .request_raw(Request {
            method,
            object: "cache-0".into(),
            rest: rest.into(),
            query: Vec::new(),
            caller: AuthContext::admin(),
            lease: Default::default(),
            body: body.to_vec(),
        })
        .unwrap();
    (r.status, r.body)
}

/// A command's reply; fails the test on a refusal.
fn cmd(host: &mut Cache, args: Value) -> Value {
    let (status, body) = call(host, Method::Post, "command", json!({ "cmd": args }));
    assert_eq!(status, 200, "{args}: {body}");
    body["reply"].clone()
}

/// A command's refusal: (status, code, message).
fn refused(host: &mut Cache, args: Value) -> (u16, String, String) {
    let (status, body) = call(host, Method::Post, "command", json!({ "cmd": args }));
    assert_ne!(status, 200, "{args} was taken: {body}");
    (
        status,
        body["error"]["code"].as_str().unwrap().to_owned(),
        body["error"]["message"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn every_command() {
    let (mut c, _) = cache();
    assert_eq!(cmd(&mut c, json!(["PING"])), "PONG");
    assert_eq!(cmd(&mut c, json!(["ping", "hello"])), "hello");

    // GET, SET (NX, XX), GETDEL.
    assert_eq!(cmd(&mut c, json!(["GET", "a"])), Value::Null);
    assert_eq!(cmd(&mut c, json!(["SET", "a", "1"])), "OK");
    assert_eq!(cmd(&mut c, json!(["get", "a"])), "1");
    assert_eq!(cmd(&mut c, json!(["SET", "a", "2", "NX"])), Value::Null);
    assert_eq!(cmd(&mut c, json!(["GET", "a"])), "1");
    assert_eq!(cmd(&mut c, json!(["SET", "b", "x", "XX"])), Value::Null);
    assert_eq!(cmd(&mut c, json!(["EXISTS", "b"])), 0);
    assert_eq!(cmd(&mut c, json!(["SET", "a", "3", "XX"])), "OK");
    assert_eq!(cmd(&mut c, json!(["SET", "b", "x", "NX"])), "OK");
    assert_eq!(cmd(&mut c, json!(["GETDEL", "b"])), "x");
    assert_eq!(cmd(&mut c, json!(["GETDEL", "b"])), Value::Null);

    // EXISTS counts a key named twice twice; DEL deletes it once.
    cmd(&mut c, json!(["SET", "b", "y"]));
    assert_eq!(cmd(&mut c, json!(["EXISTS", "a", "b", "a", "zz"])), 3);
    assert_eq!(cmd(&mut c, json!(["DEL", "a", "a", "zz", "b"])), 2);
    assert_eq!(cmd(&mut c, json!(["EXISTS", "a", "b"])), 0);

    // INCR, INCRBY, DECR, DECRBY: a missing key starts at 0; a string of
    // digits counts as an integer.
    assert_eq!(cmd(&mut c, json!(["INCR", "n"])), 1);
    assert_eq!(cmd(&mut c, json!(["INCRBY", "n", "41"])), 42);
    assert_eq!(cmd(&mut c, json!(["DECR", "n"])), 41);
    assert_eq!(cmd(&mut c, json!(["DECRBY", "n", 50])), -9);
    assert_eq!(cmd(&mut c, json!(["GET", "n"])), "-9");
    cmd(&mut c, json!(["SET", "s", "100"]));
    assert_eq!(cmd(&mut c, json!(["INCRBY", "s", -1])), 99);

    // EXPIRE, PEXPIRE, TTL, PTTL, PERSIST.
    assert_eq!(cmd(&mut c, json!(["TTL", "none"])), -2);
    assert_eq!(cmd(&mut c, json!(["PTTL", "n"])), -1);
    assert_eq!(cmd(&mut c, json!(["EXPIRE", "none", 5])), 0);
    assert_eq!(cmd(&mut c, json!(["EXPIRE", "n", 5])), 1);
    assert_eq!(cmd(&mut c, json!(["PTTL", "n"])), 5000);
    c.advance(1_400).unwrap();
    assert_eq!(cmd(&mut c, json!(["TTL", "n"])), 4);
    assert_eq!(cmd(&mut c, json!(["PTTL", "n"])), 3600);
    // An increment keeps the TTL.
    assert_eq!(cmd(&mut c, json!(["INCR", "n"])), -8);
    assert_eq!(cmd(&mut c, json!(["PTTL", "n"])), 3600);
    assert_eq!(cmd(&mut c, json!(["PEXPIRE", "n", 250])), 1);
    assert_eq!(cmd(&mut c, json!(["PTTL", "n"])), 250);
    assert_eq!(cmd(&mut c, json!(["PERSIST", "n"])), 1);
    assert_eq!(cmd(&mut c, json!(["PERSIST", "n"])), 0);
    assert_eq!(cmd(&mut c, json!(["PERSIST", "none"])), 0);
    assert_eq!(cmd(&mut c, json!(["TTL", "n"])), -1);
    // SET without EX/PX drops a TTL; with EX sets one.
    cmd(&mut c, json!(["SET", "t", "v", "EX", "10"]));
    assert_eq!(cmd(&mut c, json!(["TTL", "t"])), 10);
    cmd(&mut c, json!(["SET", "t", "v"]));
    assert_eq!(cmd(&mut c, json!(["TTL", "t"])), -1);

    assert_eq!(COMMANDS.len(), 15);
    assert_eq!(c.stats()["keys"], 3, "{}", c.stats());
}

#[test]
fn key_routes_hold_json_values() {
    let (mut c, _) = cache();
    let value = json!({"name": "ann", "tags": ["a", "b"], "n": 1.5});
    let (s, b) = call(
        &mut c,
        Method::Put,
        "key/user%2F1",
        json!({ "value": value }),
    );
    assert_eq!((s, &b), (200, &json!({"ok": true})));
    let (s, b) = call(&mut c, Method::Get, "key/user%2F1", json!(null));
    assert_eq!(s, 200);
    assert_eq!(b, json!({"value": value, "ttlMs": null}));
    // The same key through a command: a JSON value that is not a string
    // comes back as its JSON text.
    let text = cmd(&mut c, json!(["GET", "user/1"]));
    assert_eq!(
        serde_json::from_str::<Value>(text.as_str().unwrap()).unwrap(),
        value
    );
    // A string set by a command is a JSON string to the key route.
    cmd(&mut c, json!(["SET", "greeting", "hi"]));
    let (_, b) = call(&mut c, Method::Get, "key/greeting", json!(null));
    assert_eq!(b["value"], "hi");
    // null is a value.
    call(
        &mut c,
        Method::Put,
        "key/nothing",
        json!({"value": null, "ttlMs": 1000}),
    );
    let (s, b) = call(&mut c, Method::Get, "key/nothing", json!(null));
    assert_eq!((s, b), (200, json!({"value": null, "ttlMs": 1000})));

    let (s, b) = call(&mut c, Method::Delete, "key/user%2F1", json!(null));
    assert_eq!((s, b), (200, json!({"deleted": true})));
    let (s, b) = call(&mut c, Method::Delete, "key/user%2F1", json!(null));
    assert_eq!((s, b), (200, json!({"deleted": false})));
    let (s, b) = call(&mut c, Method::Get, "key/user%2F1", json!(null));
    assert_eq!((s, b["error"]["code"].as_str()), (404, Some("NOT_FOUND")));

    // incr: by defaults to 1, an empty body too.
    let (s, b) = raw(&mut c, Method::Post, "key/hits/incr", b"");
    assert_eq!((s, b), (200, json!({"value": 1})));
    let (_, b) = call(&mut c, Method::Post, "key/hits/incr", json!({"by": 10}));
    assert_eq!(b, json!({"value": 11}));
    let (_, b) = call(&mut c, Method::Get, "key/hits", json!(null));
    assert_eq!(b["value"], 11);
}

#[test]
fn keys_expire_on_read_and_the_sweep_clears_them() {
    let (mut c, db) = cache();
    // An idle cache with nothing that expires has no alarm.
    cmd(&mut c, json!(["SET", "forever", "1"]));
    assert_eq!(c.alarm(), None);

    cmd(&mut c, json!(["SET", "soon", "1", "PX", "1500"]));
    call(
        &mut c,
        Method::Put,
        "key/later",
        json!({"value": 2, "ttlMs": 4000}),
    );
    // The timer is at the earliest expiry.
    assert_eq!(c.alarm(), Some(1500));
    let stats = c.stats();
    assert_eq!(
        (stats["keys"].as_i64(), stats["expiringKeys"].as_i64()),
        (Some(3), Some(2))
    );

    c.advance(1_499).unwrap();
    assert_eq!(cmd(&mut c, json!(["GET", "soon"])), "1");
    assert_eq!(cmd(&mut c, json!(["PTTL", "soon"])), 1);
    c.advance(1).unwrap();
    // Due: gone to every read, and the sweep deleted its row.
    assert_eq!(cmd(&mut c, json!(["GET", "soon"])), Value::Null);
    assert_eq!(cmd(&mut c, json!(["EXISTS", "soon"])), 0);
    assert_eq!(cmd(&mut c, json!(["TTL", "soon"])), -2);
    assert_eq!(rows(&db), 2);
    assert_eq!(c.alarm(), Some(4000));

    // An expired key is absent to a read before the sweep gets to it.
    c.advance(2_499).unwrap();
    let (s, _) = call(&mut c, Method::Get, "key/later", json!(null));
    assert_eq!(s, 200);
    c.advance(1).unwrap();
    assert_eq!(rows(&db), 1, "the sweep ran at 4000");
    assert_eq!(c.alarm(), None, "nothing left to expire: no alarm");
    let stats = c.stats();
    assert_eq!(
        (stats["keys"].as_i64(), stats["expiringKeys"].as_i64()),
        (Some(1), Some(0))
    );
    assert_eq!(stats["alarm_pending"], false);

    // Between sweeps (a second apart at least) an expired row lingers; to
    // reads and writes it is absent all the same.
    cmd(&mut c, json!(["SET", "first", "1", "PX", 100]));
    for k in ["k", "d", "n", "x", "p"] {
        cmd(&mut c, json!(["SET", k, "5", "PX", 200]));
    }
    call(
        &mut c,
        Method::Put,
        "key/j",
        json!({"value": [1], "ttlMs": 200}),
    );
    let t0 = c.now_ms();
    c.advance(100).unwrap();
    assert_eq!(
        c.alarm(),
        Some(t0 + 100 + 1_000),
        "the next sweep waits a second"
    );
    c.advance(150).unwrap();
    assert_eq!(rows(&db), 7, "expired rows not swept yet");
    assert_eq!(cmd(&mut c, json!(["GET", "k"])), Value::Null);
    assert_eq!(cmd(&mut c, json!(["EXISTS", "k", "d"])), 0);
    assert_eq!(cmd(&mut c, json!(["PTTL", "k"])), -2);
    assert_eq!(cmd(&mut c, json!(["GETDEL", "p"])), Value::Null);
    let (s, _) = call(&mut c, Method::Get, "key/j", json!(null));
    assert_eq!(s, 404);
    assert_eq!(c.stats()["keys"], 1, "{}", c.stats());
    assert_eq!(cmd(&mut c, json!(["DEL", "d"])), 0);
    assert_eq!(cmd(&mut c, json!(["EXPIRE", "x", 1])), 0);
    assert_eq!(cmd(&mut c, json!(["PERSIST", "x"])), 0);
    assert_eq!(cmd(&mut c, json!(["SET", "x", "6", "XX"])), Value::Null);
    // INCR starts over, without the old TTL; NX sets.
    assert_eq!(cmd(&mut c, json!(["INCR", "k"])), 1);
    assert_eq!(cmd(&mut c, json!(["TTL", "k"])), -1);
    assert_eq!(cmd(&mut c, json!(["SET", "n", "6", "NX"])), "OK");
    assert_eq!(cmd(&mut c, json!(["GET", "n"])), "6");
    c.advance(5_000).unwrap();
    assert_eq!(c.alarm(), None);
    assert_eq!(rows(&db), 3, "forever, k and n");
}

#[test]
fn keys_expiring_close_together_share_a_sweep() {
    let (mut c, db) = cache();
    for i in 0..200 {
        cmd(&mut c, json!(["SET", format!("k{i}"), "v", "PX", 100 + i]));
    }
    assert_eq!(c.alarm(), Some(100));
    let wakes = c.wakes();
    let mut fired = 0;
    while c.alarm().is_some() {
        c.advance(c.alarm().unwrap() - c.now_ms()).unwrap();
        fired += 1;
    }
    assert_eq!(rows(&db), 0);
    // One sweep at the first expiry, the rest a second later at most.
    assert!(fired <= 2, "{fired} sweeps for 200 keys");
    assert_eq!(c.wakes(), wakes);
}

#[test]
fn data_and_the_timer_survive_an_eviction() {
    let (mut c, db) = cache();
    cmd(&mut c, json!(["SET", "kept", "1"]));
    cmd(&mut c, json!(["INCRBY", "count", 7]));
    cmd(&mut c, json!(["SET", "brief", "x", "PX", 3000]));
    c.evict();
    c.advance(1_000).unwrap();
    assert_eq!(cmd(&mut c, json!(["GET", "kept"])), "1");
    assert_eq!(cmd(&mut c, json!(["INCR", "count"])), 8);
    assert_eq!(cmd(&mut c, json!(["PTTL", "brief"])), 2000);
    c.evict();
    // The alarm stayed with the platform; it wakes the object, which sweeps.
    c.advance(2_000).unwrap();
    assert_eq!(rows(&db), 2);
    assert_eq!(c.alarm(), None);
    assert!(c.wakes() >= 2);
}

#[test]
fn limits_and_typed_errors() {
    let (mut c, _) = cache();
    let long_key = "k".repeat(MAX_KEY_BYTES + 1);
    let cases = [
        (json!(["GET", ""]), 400, "BAD_KEY", "argument 1"),
        (json!(["GET", long_key]), 400, "BAD_KEY", "513"),
        (json!(["SET", "a\u{1}b", "v"]), 400, "BAD_KEY", "control"),
        (
            json!(["SET", "k", "v", "PX", 0]),
            400,
            "BAD_TTL",
            "argument 4",
        ),
        (
            json!(["SET", "k", "v", "EX", 365 * 24 * 3600 + 1]),
            400,
            "BAD_TTL",
            "365 days",
        ),
        (json!(["EXPIRE", "k", -1]), 400, "BAD_TTL", "argument 2"),
        (
            json!(["SET", "k", "x".repeat(MAX_VALUE_BYTES)]),
            413,
            "VALUE_TOO_LARGE",
            "bytes",
        ),
        (
            json!(["HSET", "k", "f", "v"]),
            400,
            "UNKNOWN_COMMAND",
            "HSET",
        ),
        (json!(["MGET", "a", "b"]), 400, "UNKNOWN_COMMAND", "MGET"),
        (json!(["INCR"]), 400, "BAD_COMMAND", "INCR takes 1"),
        (
            json!(["INCRBY", "k", "ten"]),
            400,
            "BAD_COMMAND",
            "argument 2 (increment)",
        ),
        (
            json!(["SET", "k", ["v"]]),
            400,
            "BAD_COMMAND",
            "argument 2 (value)",
        ),
        (
            json!(["SET", "k", "v", "PX", 10, "EX", 1]),
            400,
            "BAD_COMMAND",
            "argument 5",
        ),
        (json!(["PING", "a", "b"]), 400, "BAD_COMMAND", "PING takes"),
    ];
    for (args, status, code, words) in cases {
        let (s, co, message) = refused(&mut c, args.clone());
        assert_eq!((s, co.as_str()), (status, code), "{args}: {message}");
        assert!(message.contains(words), "{args}: {message}");
    }
    let keys: Vec<String> = (0..101).map(|i| format!("k{i}")).collect();
    let mut del = vec![json!("DEL")];
    del.extend(keys.iter().map(|k| json!(k)));
    let (s, code, _) = refused(&mut c, json!(del));
    assert_eq!((s, code.as_str()), (400, "BAD_COMMAND"));
    del.pop();
    assert_eq!(cmd(&mut c, json!(del)), 0, "100 keys are fine");

    // Increments of what is not an integer, or past 2^53 − 1.
    cmd(&mut c, json!(["SET", "word", "abc"]));
    let (s, code, _) = refused(&mut c, json!(["INCR", "word"]));
    assert_eq!((s, code.as_str()), (409, "NOT_AN_INTEGER"));
    call(&mut c, Method::Put, "key/half", json!({"value": 1.5}));
    let (s, b) = call(&mut c, Method::Post, "key/half/incr", json!({}));
    assert_eq!(
        (s, b["error"]["code"].as_str()),
        (409, Some("NOT_AN_INTEGER"))
    );
    cmd(&mut c, json!(["SET", "big", "9007199254740991"]));
    let (s, code, _) = refused(&mut c, json!(["INCR", "big"]));
    assert_eq!((s, code.as_str()), (409, "NOT_AN_INTEGER"));
    assert_eq!(cmd(&mut c, json!(["GET", "big"])), "9007199254740991");

    // The key routes.
    let too_big = json!({ "value": "x".repeat(MAX_VALUE_BYTES) });
    let route_cases = [
        (Method::Put, "key/k", too_big, 413, "VALUE_TOO_LARGE"),
        (
            Method::Put,
            "key/k",
            json!({"value": 1, "ttlMs": 0}),
            400,
            "BAD_TTL",
        ),
        (
            Method::Put,
            "key/k",
            json!({"value": 1, "ttl": 5}),
            400,
            "BAD_REQUEST",
        ),
        (
            Method::Put,
            "key/k",
            json!({"ttlMs": 5}),
            400,
            "BAD_REQUEST",
        ),
        (Method::Put, "key/", json!({"value": 1}), 400, "BAD_KEY"),
        (Method::Get, "key/%zz", json!(null), 400, "BAD_KEY"),
        (Method::Get, "key/a%0Ab", json!(null), 400, "BAD_KEY"),
        (Method::Get, "key/%FF", json!(null), 400, "BAD_KEY"),
        (
            Method::Post,
            "key/k/incr",
            json!({"by": "2"}),
            400,
            "BAD_REQUEST",
        ),
        (
            Method::Post,
            "key/k/incr",
            json!({"by": 1u64 << 60}),
            400,
            "BAD_REQUEST",
        ),
        (Method::Post, "key/k", json!({}), 405, "METHOD_NOT_ALLOWED"),
        (Method::Get, "nope", json!(null), 404, "NOT_FOUND"),
        (
            Method::Post,
            "command",
            json!({"cmd": "GET k"}),
            400,
            "BAD_COMMAND",
        ),
    ];
    for (method, rest, body, status, code) in route_cases {
        let (s, b) = call(&mut c, method, rest, body);
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (status, Some(code)),
            "{rest}: {b}"
        );
    }
    let (s, b) = raw(&mut c, Method::Post, "command", b"not json");
    assert_eq!((s, b["error"]["code"].as_str()), (400, Some("BAD_REQUEST")));
    // Nothing refused was written.
    assert_eq!(cmd(&mut c, json!(["EXISTS", "k"])), 0);
    assert_eq!(c.alarm(), None);
}
