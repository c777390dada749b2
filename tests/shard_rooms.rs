//! The rooms API on a live-query shard (docs/rooms.md), on a local host
//! with a virtual clock over real SQLite: HTTP members are presence the
//! sockets see, broadcasts reach every socket, members survive an
//! eviction and expire on the alarm, typed errors for bad input and
//! forbidden callers, and the member count reaches the room list on a
//! real SQLite standing in for D1.

use std::cell::RefCell;
use std::rc::Rc;

use pylon_workers::app::App;
use pylon_workers::host::local::LocalHost;
use pylon_workers::host::{IoCall, IoOutcome, Method, Response};
use pylon_workers::policy::AuthContext;
use pylon_workers::protocol::{self, Encoding, Frame, FrameRef, ServerMsg};
use pylon_workers::shard::LiveShard;
use pylon_workers::storage::SqliteConn;
use pylon_workers::store::{apply_outbox_batch, list_rooms, RusqliteExecutor};
use serde_json::{json, Value};

const MANIFEST: &str = r#"{"entities":[{"name":"Card","fields":[
    {"name":"title","type":"string"}]}]}"#;

type Host = LocalHost<Rc<SqliteConn>, LiveShard<Rc<SqliteConn>>>;

fn app() -> &'static App {
    static APP: std::sync::OnceLock<App> = std::sync::OnceLock::new();
    APP.get_or_init(|| App::new(MANIFEST))
}

fn host() -> Host {
    let db = Rc::new(SqliteConn::open_in_memory().unwrap());
    LocalHost::open(db, "lobby", app()).unwrap()
}

fn admin() -> AuthContext {
    AuthContext {
        is_admin: true,
        ..AuthContext::default()
    }
}

fn post(h: &mut Host, op: &str, body: Value, caller: AuthContext) -> Response {
    h.request_as(Method::Post, &format!("rooms/{op}"), body, caller)
        .unwrap()
}

fn info(h: &mut Host) -> Value {
    let r = h.request(Method::Get, "rooms", Value::Null).unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
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

/// The one presence diff `conn` got, as JSON.
fn diff(h: &mut Host, conn: &str) -> Value {
    let got: Vec<Value> = received(h, conn)
        .into_iter()
        .filter_map(|m| match m {
            ServerMsg::PresenceDiff(d) => Some(json!({
                "joins": d.joins.iter().map(|m| json!([m.conn, m.state])).collect::<Vec<_>>(),
                "updates": d.updates.iter().map(|m| json!([m.conn, m.state])).collect::<Vec<_>>(),
                "leaves": d.leaves,
            })),
            _ => None,
        })
        .collect();
    assert_eq!(got.len(), 1, "{got:?}");
    got[0].clone()
}

#[test]
fn sockets_see_http_members_join_update_and_leave() {
    let mut h = host();
    let s = h.connect(Encoding::Json).unwrap();
    let p = h.connect(Encoding::Postcard).unwrap();
    received(&mut h, &s);
    received(&mut h, &p);

    let r = post(
        &mut h,
        "join",
        json!({"member":"alice","presence":{"at":"door"}}),
        AuthContext::user("alice"),
    );
    assert_eq!((r.status, &r.body), (200, &json!({"member":"alice"})));
    for c in [&s, &p] {
        let d = diff(&mut h, c);
        assert_eq!(d["joins"], json!([["member:alice", {"at":"door"}]]));
    }

    let r = post(
        &mut h,
        "presence",
        json!({"member":"alice","presence":{"at":"desk"}}),
        AuthContext::user("alice"),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        diff(&mut h, &s)["updates"],
        json!([["member:alice", {"at":"desk"}]])
    );

    // A new socket's presence_state has the member.
    let late = h.connect(Encoding::Json).unwrap();
    let state = received(&mut h, &late)
        .into_iter()
        .find_map(|m| match m {
            ServerMsg::PresenceState(ps) => Some(ps),
            _ => None,
        })
        .unwrap();
    assert_eq!(state.members.len(), 1);
    assert_eq!(state.members[0].conn, "member:alice");

    // A socket's own presence and the member: size and members agree.
    h.message(
        &s,
        FrameRef::Text(r#"{"type":"presence","state":{"me":1}}"#),
    )
    .unwrap();
    let room = info(&mut h);
    assert_eq!(room["size"], 2);
    assert_eq!(room["sockets"], 3);
    let conns: Vec<&str> = room["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["conn"].as_str().unwrap())
        .collect();
    assert_eq!(conns, [s.as_str(), "member:alice"]);
    assert_eq!(room["members"][1]["member"], "alice");
    assert_eq!(room["members"][1]["state"], json!({"at":"desk"}));
    received(&mut h, &p);

    let r = post(
        &mut h,
        "leave",
        json!({"member":"alice"}),
        AuthContext::user("alice"),
    );
    assert_eq!(r.body, json!({"member":"alice","left":true}));
    assert_eq!(diff(&mut h, &p)["leaves"], json!(["member:alice"]));
    // Leaving again is answered, and nobody is told anything.
    let r = post(
        &mut h,
        "leave",
        json!({"member":"alice"}),
        AuthContext::user("alice"),
    );
    assert_eq!(r.body, json!({"member":"alice","left":false}));
    assert!(received(&mut h, &p).is_empty());
    assert_eq!(info(&mut h)["size"], 1);
}

#[test]
fn a_broadcast_reaches_every_socket_from_the_server() {
    let mut h = host();
    let a = h.connect(Encoding::Json).unwrap();
    let b = h.connect(Encoding::Postcard).unwrap();
    received(&mut h, &a);
    received(&mut h, &b);
    let r = post(
        &mut h,
        "broadcast",
        json!({"topic":"news","data":{"n":1}}),
        admin(),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = post(
        &mut h,
        "broadcast",
        json!({"topic":"chat"}),
        AuthContext::user("bob"),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    for c in [&a, &b] {
        let got: Vec<(String, String)> = received(&mut h, c)
            .into_iter()
            .filter_map(|m| match m {
                ServerMsg::Bcast(x) => Some((x.topic, x.from)),
                _ => None,
            })
            .collect();
        assert_eq!(
            got,
            [
                ("news".into(), "server".into()),
                ("chat".into(), "member:bob".into())
            ]
        );
    }
}

#[test]
fn bad_input_and_forbidden_callers_are_typed() {
    let mut h = host();
    let s = h.connect(Encoding::Json).unwrap();
    received(&mut h, &s);
    let alice = || AuthContext::user("alice");
    let cases: Vec<(&str, Value, AuthContext, u16, &str)> = vec![
        ("join", json!({"member":"bob"}), alice(), 403, "FORBIDDEN"),
        (
            "join",
            json!({"member":"alice"}),
            AuthContext::anonymous(),
            401,
            "UNAUTHORIZED",
        ),
        ("leave", json!({"member":"bob"}), alice(), 403, "FORBIDDEN"),
        ("join", json!({"member":""}), alice(), 400, "BAD_MEMBER"),
        ("join", json!({"member":"a/b"}), alice(), 400, "BAD_MEMBER"),
        ("join", json!({"member":7}), alice(), 400, "BAD_MEMBER"),
        ("join", json!([1]), alice(), 400, "BAD_MESSAGE"),
        (
            "join",
            json!({"member":"alice","ttlMs":-5}),
            alice(),
            400,
            "BAD_TTL",
        ),
        (
            "join",
            json!({"member":"alice","ttlMs":"5"}),
            alice(),
            400,
            "BAD_TTL",
        ),
        (
            "join",
            json!({"member":"alice","presence":null}),
            alice(),
            400,
            "BAD_PRESENCE",
        ),
        (
            "presence",
            json!({"member":"alice","presence":{}}),
            alice(),
            404,
            "MEMBER_NOT_FOUND",
        ),
        (
            "join",
            json!({"member":"alice","presence":"x".repeat(20_000)}),
            alice(),
            413,
            "PRESENCE_TOO_LARGE",
        ),
        ("broadcast", json!({"data":1}), alice(), 400, "BAD_TOPIC"),
        (
            "broadcast",
            json!({"topic":"t".repeat(300)}),
            alice(),
            400,
            "BAD_TOPIC",
        ),
        ("nope", json!({}), alice(), 404, "NOT_FOUND"),
    ];
    for (op, body, caller, status, code) in cases {
        let r = post(&mut h, op, body.clone(), caller);
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (status, Some(code)),
            "{op} {body}: {:?}",
            r.body
        );
    }
    let r = h.request(Method::Get, "rooms/join", Value::Null).unwrap();
    assert_eq!(r.status, 405);
    // Not JSON at all.
    let req = pylon_workers::host::Request {
        method: Method::Post,
        object: "lobby".into(),
        rest: "rooms/join".into(),
        query: Vec::new(),
        caller: alice(),
        lease: Default::default(),
        body: b"{nope".to_vec(),
    };
    assert_eq!(
        h.request_raw(req).unwrap().body["error"]["code"],
        "BAD_FRAME"
    );
    // Nothing refused changed the room or told a socket.
    assert_eq!(info(&mut h)["size"], 0);
    assert!(received(&mut h, &s)
        .iter()
        .all(|m| !matches!(m, ServerMsg::PresenceDiff(_))));
}

#[test]
fn an_admin_joins_anyone_and_members_survive_an_eviction() {
    let mut h = host();
    let r = post(
        &mut h,
        "join",
        json!({"member":"bot-1","presence":{"v":1}}),
        admin(),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let s = h.connect(Encoding::Json).unwrap();
    received(&mut h, &s);
    h.evict();
    let room = info(&mut h);
    assert_eq!(room["size"], 1, "{room}");
    assert_eq!(room["members"][0]["conn"], "member:bot-1");
    // The wake told no socket the member left.
    assert!(received(&mut h, &s)
        .iter()
        .all(|m| !matches!(m, ServerMsg::PresenceDiff(_))));
}

#[test]
fn members_expire_after_their_ttl_on_the_alarm_and_presence_renews() {
    let mut h = host();
    let s = h.connect(Encoding::Json).unwrap();
    received(&mut h, &s);
    let t0 = h.now_ms();
    post(&mut h, "join", json!({"member":"a","ttlMs":1000}), admin());
    post(&mut h, "join", json!({"member":"b","ttlMs":5000}), admin());
    received(&mut h, &s);
    assert_eq!(info(&mut h)["members"][0]["expiresAt"], t0 + 1000);
    h.advance(500).unwrap();
    // A presence with ttlMs renews; one without keeps the expiry.
    post(
        &mut h,
        "presence",
        json!({"member":"a","presence":{"x":1},"ttlMs":1000}),
        admin(),
    );
    post(
        &mut h,
        "presence",
        json!({"member":"b","presence":{"x":2}}),
        admin(),
    );
    received(&mut h, &s);
    assert_eq!(info(&mut h)["members"][0]["expiresAt"], t0 + 1500);
    assert_eq!(info(&mut h)["members"][1]["expiresAt"], t0 + 5000);
    h.evict();
    h.advance(1000).unwrap();
    assert_eq!(diff(&mut h, &s)["leaves"], json!(["member:a"]));
    assert_eq!(info(&mut h)["size"], 1);
    h.advance(3500).unwrap();
    assert_eq!(diff(&mut h, &s)["leaves"], json!(["member:b"]));
    assert_eq!(info(&mut h)["size"], 0);
}

/// Drives a future of the rusqlite executor, which never waits.
fn now<T>(f: impl std::future::Future<Output = T>) -> T {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("the rusqlite executor waited"),
    }
}

#[test]
fn the_member_count_reaches_the_room_list_through_the_outbox() {
    let d1 = Rc::new(RusqliteExecutor::open_in_memory().unwrap());
    let manifest = app().manifest().unwrap();
    let applied = Rc::new(RefCell::new(0));
    let mut h = host();
    {
        let (d1, manifest, applied) = (d1.clone(), manifest.clone(), applied.clone());
        // The directory table the D1 migrations create.
        now(pylon_workers::store::D1Executor::execute(
            &*d1,
            "CREATE TABLE _pylon_shards (shard TEXT PRIMARY KEY NOT NULL, rows INTEGER NOT NULL \
             DEFAULT 0, last_seq INTEGER NOT NULL DEFAULT 0, last_change TEXT)",
            &[],
        ))
        .unwrap();
        h.on_io(move |call| match call {
            IoCall::ApplyOutbox(b) => {
                *applied.borrow_mut() += 1;
                let r = now(apply_outbox_batch(&*d1, &manifest, b));
                IoOutcome::Applied(r.map(drop).map_err(|e| e.to_string()))
            }
            _ => IoOutcome::RateLimited { allowed: true },
        });
    }
    let list = |d1: &RusqliteExecutor| {
        let page = now(list_rooms(d1, &manifest, &AuthContext::user("u"), None, 0)).unwrap();
        page.rooms
            .iter()
            .map(|r| (r.room.clone(), r.members))
            .collect::<Vec<_>>()
    };
    assert!(list(&d1).is_empty());
    let s = h.connect(Encoding::Json).unwrap();
    assert_eq!(
        h.alarm(),
        None,
        "a socket without presence changes no count"
    );
    post(&mut h, "join", json!({"member":"a"}), admin());
    h.message(&s, FrameRef::Text(r#"{"type":"presence","state":1}"#))
        .unwrap();
    assert!(h.alarm().is_some(), "the count is due on the list");
    h.advance(200).unwrap();
    assert_eq!(list(&d1), [("lobby".to_owned(), 2)]);
    assert_eq!(h.alarm(), None, "listed: the shard can rest");
    let before = *applied.borrow();
    // A presence update changes no count: nothing is sent.
    h.message(&s, FrameRef::Text(r#"{"type":"presence","state":2}"#))
        .unwrap();
    h.advance(200).unwrap();
    assert_eq!(*applied.borrow(), before);
    // Everyone leaves: the room leaves the list.
    post(&mut h, "leave", json!({"member":"a"}), admin());
    h.close(&s).unwrap();
    h.advance(200).unwrap();
    assert!(list(&d1).is_empty());
}
