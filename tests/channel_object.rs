//! Channels on real SQLite, through the local host and its virtual clock:
//! publish and fan-out to every subscriber, ids in order, resume with
//! `?after=` (and the gap flag when retention dropped what lay between),
//! retention by count at once and by age on the sweep timer (no alarm left
//! when nothing is kept), history and ids kept across an eviction, the
//! manifest's rules (forbidden publish stores nothing), typed errors, and
//! the directory's filtered, paged list.

use std::rc::Rc;

use pylon_workers::app::App;
use pylon_workers::channels::{
    ChannelDirectory, ChannelObject, MAX_MESSAGE_BYTES, MAX_REFUSED_FRAMES,
};
use pylon_workers::host::local::LocalHost;
use pylon_workers::host::{Method, Request};
use pylon_workers::policy::AuthContext;
use pylon_workers::protocol::{Encoding, Frame, FrameRef};
use pylon_workers::storage::SqliteConn;
use serde_json::{json, Value};

type Channel = LocalHost<Rc<SqliteConn>, ChannelObject<Rc<SqliteConn>>>;
type Directory = LocalHost<Rc<SqliteConn>, ChannelDirectory<Rc<SqliteConn>>>;

fn app() -> &'static App {
    static APP: std::sync::OnceLock<App> = std::sync::OnceLock::new();
    APP.get_or_init(|| {
        App::new(
            r#"{"entities": [], "channels": [
                {"pattern": "news", "publish": "admin", "subscribe": "anyone"},
                {"pattern": "chat:*", "publish": "signedIn", "subscribe": "signedIn",
                 "history": {"count": 3, "ageMs": 10000}},
                {"pattern": "inbox:{userId}", "publish": "admin", "subscribe": "signedIn"}
            ]}"#,
        )
    })
}

fn channel(name: &str) -> Channel {
    let db = Rc::new(SqliteConn::open_in_memory().unwrap());
    Channel::open(db, name, app()).unwrap()
}

fn publish(host: &mut Channel, caller: AuthContext, data: Value) -> (u16, Value) {
    let r = host
        .request_as(Method::Post, "publish", json!({ "data": data }), caller)
        .unwrap();
    (r.status, r.body)
}

fn subscribe(host: &mut Channel, caller: AuthContext, after: Option<&str>) -> String {
    let query: Vec<(&str, &str)> = after.map(|a| ("after", a)).into_iter().collect();
    host.connect_query(Encoding::Json, caller, Default::default(), &query)
        .unwrap_or_else(|r| panic!("refused: {r:?}"))
}

/// The frames `conn` received since the last call, as JSON.
fn frames(host: &mut Channel, conn: &str) -> Vec<Value> {
    host.take_sent(conn)
        .into_iter()
        .map(|f| match f {
            Frame::Text(t) => serde_json::from_str(&t).unwrap(),
            other => panic!("{other:?}"),
        })
        .collect()
}

fn ids(frames: &[Value]) -> Vec<i64> {
    frames
        .iter()
        .filter(|f| f["type"] == "message")
        .map(|f| f["id"].as_i64().unwrap())
        .collect()
}

fn u1() -> AuthContext {
    AuthContext::user("u1")
}

#[test]
fn publish_reaches_every_subscriber_in_order() {
    let mut ch = channel("chat:1");
    let (a, b) = (
        subscribe(&mut ch, u1(), None),
        subscribe(&mut ch, AuthContext::user("u2"), None),
    );
    let ready = frames(&mut ch, &a);
    assert_eq!(
        ready,
        vec![json!({"type": "ready", "v": 1, "channel": "chat:1", "lastId": 0, "gap": false})]
    );
    frames(&mut ch, &b);
    for i in 1..=3 {
        let (status, body) = publish(&mut ch, u1(), json!({ "n": i }));
        assert_eq!(
            (status, body["id"].clone(), body["listed"].clone()),
            (200, json!(i), json!(false))
        );
    }
    for conn in [&a, &b] {
        let got = frames(&mut ch, conn);
        assert_eq!(ids(&got), vec![1, 2, 3]);
        assert_eq!(got[1]["data"], json!({"n": 2}));
        assert_eq!(got[1]["at"], json!(0));
    }
    // The socket takes no frames but the keepalive: an error frame, and
    // nothing is published.
    ch.message(&a, FrameRef::Text(r#"{"type":"publish"}"#))
        .unwrap();
    assert_eq!(frames(&mut ch, &a)[0]["code"], "BAD_REQUEST");
    assert!(frames(&mut ch, &b).is_empty());
}

#[test]
fn resume_replays_what_is_kept_after_the_id() {
    let mut ch = channel("chat:1");
    for i in 1..=5 {
        publish(&mut ch, u1(), json!(i));
    }
    // count 3: ids 3, 4 and 5 are kept.
    let c = subscribe(&mut ch, u1(), Some("3"));
    let got = frames(&mut ch, &c);
    assert_eq!(ids(&got), vec![4, 5]);
    assert_eq!(got.last().unwrap()["type"], "ready");
    assert_eq!(
        (got[2]["lastId"].clone(), got[2]["gap"].clone()),
        (json!(5), json!(false))
    );
    // From before the kept ones: what is kept, and a gap.
    let c = subscribe(&mut ch, u1(), Some("0"));
    let got = frames(&mut ch, &c);
    assert_eq!(
        (ids(&got), got[3]["gap"].clone()),
        (vec![3, 4, 5], json!(true))
    );
    // Up to date: nothing to replay, no gap; then live.
    let c = subscribe(&mut ch, u1(), Some("5"));
    assert_eq!(
        frames(&mut ch, &c),
        vec![json!({"type": "ready", "v": 1, "channel": "chat:1", "lastId": 5, "gap": false})]
    );
    publish(&mut ch, u1(), json!(6));
    assert_eq!(ids(&frames(&mut ch, &c)), vec![6]);
    // HTTP history: the same messages, paged.
    let r = ch
        .request_raw(req(
            "chat:1",
            Method::Get,
            "history",
            &[("after", "3"), ("limit", "2")],
            u1(),
        ))
        .unwrap();
    let got: Vec<i64> = r.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        (r.status, got, r.body["lastId"].clone()),
        (200, vec![4, 5], json!(6))
    );
}

fn req(
    object: &str,
    method: Method,
    rest: &str,
    query: &[(&str, &str)],
    caller: AuthContext,
) -> Request {
    Request {
        method,
        object: object.into(),
        rest: rest.into(),
        query: query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        caller,
        lease: Default::default(),
        body: Vec::new(),
    }
}

#[test]
fn retention_by_age_sweeps_and_leaves_no_alarm() {
    let mut ch = channel("chat:1");
    publish(&mut ch, u1(), json!("a"));
    assert_eq!(ch.alarm(), Some(10_000));
    ch.advance(4_000).unwrap();
    publish(&mut ch, u1(), json!("b"));
    // The first expires at 10 s; the second at 14 s.
    ch.advance(6_500).unwrap();
    assert_eq!(ch.stats()["kept"], json!(1));
    assert_eq!(ch.alarm(), Some(14_000));
    let c = subscribe(&mut ch, u1(), Some("0"));
    assert_eq!(ids(&frames(&mut ch, &c)), vec![2]);
    ch.advance(4_000).unwrap();
    assert_eq!((ch.stats()["kept"].clone(), ch.alarm()), (json!(0), None));
    // Ids go on from where they were.
    assert_eq!(publish(&mut ch, u1(), json!("c")).1["id"], json!(3));
}

#[test]
fn history_and_ids_survive_an_eviction() {
    let mut ch = channel("chat:1");
    let c = subscribe(&mut ch, u1(), None);
    publish(&mut ch, u1(), json!("a"));
    publish(&mut ch, u1(), json!("b"));
    ch.evict();
    let got = publish(&mut ch, u1(), json!("c"));
    assert_eq!(got.1["id"], json!(3));
    // The socket survived hibernation and still gets messages.
    assert_eq!(ids(&frames(&mut ch, &c)), vec![1, 2, 3]);
    assert_eq!(ch.alarm(), Some(10_000));
    let c = subscribe(&mut ch, u1(), Some("1"));
    assert_eq!(ids(&frames(&mut ch, &c)), vec![2, 3]);
}

#[test]
fn who_may_publish_and_subscribe() {
    let mut news = channel("news");
    let anon = subscribe(&mut news, AuthContext::anonymous(), None);
    frames(&mut news, &anon);
    let (s, body) = publish(&mut news, AuthContext::anonymous(), json!(1));
    assert_eq!(
        (s, body["error"]["code"].clone()),
        (401, json!("UNAUTHORIZED"))
    );
    let (s, body) = publish(&mut news, u1(), json!(1));
    assert_eq!(
        (s, body["error"]["code"].clone()),
        (403, json!("FORBIDDEN"))
    );
    // Nothing of a refused publish is stored or sent.
    assert_eq!(news.stats()["lastId"], json!(0));
    assert!(frames(&mut news, &anon).is_empty());
    assert_eq!(news.alarm(), None);
    assert_eq!(publish(&mut news, AuthContext::admin(), json!(1)).0, 200);

    let mut inbox = channel("inbox:u1");
    assert!(inbox
        .connect_query(Encoding::Json, u1(), Default::default(), &[])
        .is_ok());
    let r = inbox
        .connect_query(
            Encoding::Json,
            AuthContext::user("u2"),
            Default::default(),
            &[],
        )
        .unwrap_err();
    assert_eq!(
        (r.status, r.body["error"]["code"].clone()),
        (403, json!("FORBIDDEN"))
    );
    let r = inbox
        .connect_as(Encoding::Json, AuthContext::anonymous())
        .unwrap_err();
    assert_eq!(r.status, 401);
    let r = inbox
        .request_raw(req(
            "inbox:u1",
            Method::Get,
            "history",
            &[],
            AuthContext::user("u2"),
        ))
        .unwrap();
    assert_eq!(r.status, 403);
}

#[test]
fn bad_inputs_have_typed_errors() {
    let mut ch = channel("chat:1");
    let big = json!("x".repeat(MAX_MESSAGE_BYTES));
    let (s, body) = publish(&mut ch, u1(), big);
    assert_eq!(
        (s, body["error"]["code"].clone()),
        (413, json!("MESSAGE_TOO_LARGE"))
    );
    for body in [json!({}), json!({"data": 1, "more": 2}), json!([1])] {
        let r = ch.request_as(Method::Post, "publish", body, u1()).unwrap();
        assert_eq!(
            (r.status, r.body["error"]["code"].clone()),
            (400, json!("BAD_REQUEST"))
        );
    }
    let r = ch
        .connect_query(Encoding::Json, u1(), Default::default(), &[("after", "-1")])
        .unwrap_err();
    assert_eq!(r.body["error"]["code"], "BAD_REQUEST");
    let r = ch
        .connect_query(Encoding::Postcard, u1(), Default::default(), &[])
        .unwrap_err();
    assert_eq!(r.body["error"]["code"], "BAD_PROTOCOL");
    let r = ch
        .request_raw(req(
            "chat:1",
            Method::Get,
            "history",
            &[("limit", "0")],
            u1(),
        ))
        .unwrap();
    assert_eq!(r.status, 400);
    assert_eq!(ch.stats()["lastId"], json!(0));
    // A name no rule fits, and a name that is not one.
    let mut other = channel("other");
    let (s, body) = publish(&mut other, AuthContext::admin(), json!(1));
    assert_eq!(
        (s, body["error"]["code"].clone()),
        (404, json!("UNKNOWN_CHANNEL"))
    );
    let mut bad = channel("a b");
    let (s, body) = publish(&mut bad, AuthContext::admin(), json!(1));
    assert_eq!(
        (s, body["error"]["code"].clone()),
        (400, json!("BAD_CHANNEL_NAME"))
    );
}

#[test]
fn the_directory_lists_what_the_caller_may_subscribe_to() {
    let db = Rc::new(SqliteConn::open_in_memory().unwrap());
    let mut dir = Directory::open(db, "directory", app()).unwrap();
    for name in ["news", "chat:a", "chat:b", "inbox:u1", "inbox:u2", "chat:a"] {
        let r = dir
            .request_as(
                Method::Put,
                &format!("channel/{name}"),
                json!(null),
                AuthContext::admin(),
            )
            .unwrap();
        assert_eq!(r.status, 200, "{r:?}");
    }
    let r = dir
        .request_as(
            Method::Put,
            "channel/a b",
            json!(null),
            AuthContext::admin(),
        )
        .unwrap();
    assert_eq!(r.body["error"]["code"], "BAD_CHANNEL_NAME");
    let list = |dir: &mut Directory, caller: AuthContext, q: &[(&str, &str)]| {
        let r = dir
            .request_raw(req("directory", Method::Get, "list", q, caller))
            .unwrap();
        let names: Vec<String> = r.body["channels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect();
        (names, r.body["next"].clone())
    };
    let (names, next) = list(&mut dir, AuthContext::admin(), &[]);
    assert_eq!(
        (names, next),
        (
            vec!["chat:a", "chat:b", "inbox:u1", "inbox:u2", "news"]
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>(),
            Value::Null
        )
    );
    let (names, _) = list(&mut dir, u1(), &[]);
    assert_eq!(names, ["chat:a", "chat:b", "inbox:u1", "news"]);
    assert_eq!(list(&mut dir, AuthContext::anonymous(), &[]).0, ["news"]);
    let (names, next) = list(&mut dir, u1(), &[("limit", "2")]);
    assert_eq!(
        (names, next.clone()),
        (
            vec!["chat:a".to_owned(), "chat:b".to_owned()],
            json!("chat:b")
        )
    );
    let (names, next) = list(&mut dir, u1(), &[("limit", "2"), ("after", "chat:b")]);
    assert_eq!(
        (names, next),
        (
            vec!["inbox:u1".to_owned(), "news".to_owned()],
            json!("news")
        )
    );
}

/// A subscriber's socket takes no frames: each gets a BAD_REQUEST, and one
/// that keeps sending is closed with 4400 while the others keep receiving.
#[test]
fn a_socket_that_keeps_sending_frames_is_closed() {
    let mut ch = channel("chat:flood");
    let (quiet, loud) = (
        subscribe(&mut ch, u1(), None),
        subscribe(&mut ch, u1(), None),
    );
    frames(&mut ch, &quiet); // each `ready`
    frames(&mut ch, &loud);
    for i in 0..MAX_REFUSED_FRAMES {
        ch.message(&loud, FrameRef::Text(r#"{"type":"publish"}"#))
            .unwrap();
        let got = frames(&mut ch, &loud);
        assert_eq!(got.len(), 1, "one reply per frame: {got:?}");
        assert_eq!(got[0]["code"], "BAD_REQUEST", "{got:?}");
        let closed = ch.socket(&loud).unwrap().closed.clone();
        if i + 1 < MAX_REFUSED_FRAMES {
            assert_eq!(closed, None, "frame {i}");
        } else {
            assert_eq!(closed.map(|c| c.0), Some(4400));
        }
    }
    assert_eq!(ch.socket(&quiet).unwrap().closed, None);
    let (status, _) = publish(&mut ch, u1(), json!("still here"));
    assert_eq!(status, 200);
    assert_eq!(ids(&frames(&mut ch, &quiet)).len(), 1);

    // The count is per window: a frame now and then never closes.
    let polite = subscribe(&mut ch, u1(), None);
    for _ in 0..MAX_REFUSED_FRAMES * 2 {
        ch.message(&polite, FrameRef::Text("hi")).unwrap();
        ch.advance(1_000).unwrap();
    }
    assert_eq!(ch.socket(&polite).unwrap().closed, None);
}

/// A bad receipt is refused like any other frame and counts towards the
/// same close; a valid receipt is the host's and never counts.
#[test]
fn bad_receipts_count_like_other_refused_frames() {
    let mut ch = channel("chat:receipts");
    let (quiet, loud) = (
        subscribe(&mut ch, u1(), None),
        subscribe(&mut ch, u1(), None),
    );
    frames(&mut ch, &quiet);
    frames(&mut ch, &loud);
    let bad = r#"{"type":"recv","bytes":"x"}"#;
    for i in 0..MAX_REFUSED_FRAMES {
        // Valid receipts between them change nothing.
        let valid = r#"{"type":"recv","bytes":0}"#;
        for _ in 0..10 {
            ch.message(&loud, FrameRef::Text(valid)).unwrap();
        }
        ch.message(&loud, FrameRef::Text(bad)).unwrap();
        let got = frames(&mut ch, &loud);
        assert_eq!(got.len(), 1, "one reply per bad receipt: {got:?}");
        assert_eq!(got[0]["code"], "BAD_REQUEST", "{got:?}");
        assert!(got[0]["message"].as_str().unwrap().starts_with("recv:"));
        let closed = ch.socket(&loud).unwrap().closed.clone();
        if i + 1 < MAX_REFUSED_FRAMES {
            assert_eq!(closed, None, "bad receipt {i}");
        } else {
            assert_eq!(closed.map(|c| c.0), Some(4400));
        }
    }
    assert_eq!(ch.socket(&quiet).unwrap().closed, None);
}
