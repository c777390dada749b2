//! `ctx.rooms` of a Rust action (docs/rooms.md), over rooms on local hosts
//! with real SQLite and a room list on a real SQLite standing in for D1:
//! an action's join, presence, broadcast and leave are what the room's
//! sockets see, `get` and `list` answer as over HTTP, and refusals are the
//! HTTP API's (the shard rules for the action's caller, BAD_MEMBER,
//! FORBIDDEN, MEMBER_NOT_FOUND) as typed function errors. The test's host
//! does what the Worker's does (`glue::rooms`) with the same checks: the
//! room's name and the shard rules, then the room's shard as the caller,
//! or the list for the caller.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use pylon_workers::app::App;
use pylon_workers::functions::{
    ActionCtx, ActionHost, FnError, FnKind, Found, Functions, RustBody,
};
use pylon_workers::host::local::LocalHost;
use pylon_workers::host::{IoCall, IoOutcome, Method, Pending};
use pylon_workers::policy::AuthContext;
use pylon_workers::protocol::{self, Encoding, ErrorCode, Frame, ServerMsg};
use pylon_workers::shard::rooms::{self, RoomOp};
use pylon_workers::shard::LiveShard;
use pylon_workers::storage::SqliteConn;
use pylon_workers::store::{apply_outbox_batch, list_rooms, RusqliteExecutor};
use pylon_workers::value::Value;
use serde_json::json;

const MANIFEST: &str = r#"{"entities":[{"name":"Card","fields":[
    {"name":"title","type":"string"}]}],
  "auth": {"shards": [{"pattern": "user:{userId}"}, {"pattern": "*", "allowAnonymous": true}]}}"#;

type Host = LocalHost<Rc<SqliteConn>, LiveShard<Rc<SqliteConn>>>;

fn app() -> &'static App {
    static APP: std::sync::OnceLock<App> = std::sync::OnceLock::new();
    APP.get_or_init(|| App::new(MANIFEST))
}

/// Drives a future that never waits (the local hosts and rusqlite answer
/// at once).
fn now<T>(f: impl std::future::Future<Output = T>) -> T {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("a local call waited"),
    }
}

/// Rooms by name, each a local host whose outbox drains into `d1`.
struct World {
    rooms: RefCell<BTreeMap<String, Host>>,
    d1: Rc<RusqliteExecutor>,
}

impl World {
    fn new() -> Rc<World> {
        let d1 = Rc::new(RusqliteExecutor::open_in_memory().unwrap());
        now(pylon_workers::store::D1Executor::execute(
            &*d1,
            "CREATE TABLE _pylon_shards (shard TEXT PRIMARY KEY NOT NULL, rows INTEGER NOT NULL \
             DEFAULT 0, last_seq INTEGER NOT NULL DEFAULT 0, last_change TEXT)",
            &[],
        ))
        .unwrap();
        Rc::new(World {
            rooms: RefCell::new(BTreeMap::new()),
            d1,
        })
    }

    /// Room `name`'s host, opened on first use.
    fn with<T>(&self, name: &str, f: impl FnOnce(&mut Host) -> T) -> T {
        let mut rooms = self.rooms.borrow_mut();
        let h = rooms.entry(name.to_owned()).or_insert_with(|| {
            let db = Rc::new(SqliteConn::open_in_memory().unwrap());
            let mut h = LocalHost::open(db, name, app()).unwrap();
            let (d1, manifest) = (self.d1.clone(), app().manifest().unwrap());
            h.on_io(move |call| match call {
                IoCall::ApplyOutbox(b) => {
                    let r = now(apply_outbox_batch(&*d1, &manifest, b));
                    IoOutcome::Applied(r.map(drop).map_err(|e| e.to_string()))
                }
                _ => IoOutcome::RateLimited { allowed: true },
            });
            h
        });
        f(h)
    }

    /// What socket `conn` of `room` received, decoded.
    fn received(&self, room: &str, conn: &str) -> Vec<ServerMsg> {
        self.with(room, |h| h.take_sent(conn))
            .into_iter()
            .map(|f| match f {
                Frame::Text(t) => protocol::decode_server(Encoding::Json, t.as_bytes()).unwrap(),
                Frame::Binary(b) => protocol::decode_server(Encoding::Postcard, &b).unwrap(),
            })
            .collect()
    }
}

/// The action host over the world, as one caller.
struct LocalRooms {
    world: Rc<World>,
    caller: AuthContext,
}

impl ActionHost for LocalRooms {
    fn run<'a>(
        &'a self,
        _: FnKind,
        name: &'a str,
        _: Value,
    ) -> Pending<'a, Result<Value, FnError>> {
        Box::pin(async move { Err(FnError::unknown(name)) })
    }

    fn room<'a>(
        &'a self,
        op: RoomOp,
        room: &'a str,
        body: serde_json::Value,
    ) -> Pending<'a, Result<Value, FnError>> {
        Box::pin(async move {
            let refused = |e: pylon_workers::api_error::ApiError| {
                rooms::refusal_as_fn_error(e.status, e.code, &e.message)
            };
            let manifest = app().manifest().unwrap();
            let Some((post, rest)) = op.shard_route() else {
                let (after, limit) = rooms::list_page(&body).map_err(refused)?;
                let page = list_rooms(
                    &*self.world.d1,
                    &manifest,
                    &self.caller,
                    after.as_deref(),
                    limit,
                )
                .await
                .map_err(|e| refused(e.to_api_error()))?;
                return Ok(serde_json::from_value(serde_json::to_value(&page).unwrap()).unwrap());
            };
            rooms::admit(manifest.auth(), room, &self.caller).map_err(refused)?;
            let method = if post { Method::Post } else { Method::Get };
            let r = self.world.with(room, |h| {
                h.request_as(method, rest, body, self.caller.clone())
                    .unwrap()
            });
            if (200..300).contains(&r.status) {
                return Ok(serde_json::from_value(r.body).unwrap());
            }
            let e = &r.body["error"];
            Err(rooms::refusal_as_fn_error(
                r.status,
                e["code"].as_str().unwrap_or(""),
                e["message"].as_str().unwrap_or(""),
            ))
        })
    }
}

fn boxed<'a, T: std::future::Future<Output = Result<Value, FnError>> + 'a>(
    f: T,
) -> Pending<'a, Result<Value, FnError>> {
    Box::pin(f)
}

/// The app's actions: each uses `ctx.rooms` as a server function would.
fn functions() -> Functions {
    Functions::new()
        // Joins the caller with a status, tells the room, answers its size.
        .action("checkIn", |ctx: ActionCtx<'_>, args| {
            boxed(async move {
                let args = serde_json::to_value(&args).unwrap();
                let room = args["room"].as_str().unwrap_or("").to_owned();
                let me = ctx.auth.user_id.clone().unwrap_or_default();
                let rooms = ctx.rooms();
                let status = Value::from(json!({ "status": args["status"] }));
                rooms.join(&room, &me, status, None).await?;
                rooms
                    .broadcast(&room, "checkIn", Value::from(json!({ "member": me })))
                    .await?;
                let info = serde_json::to_value(rooms.get(&room).await?).unwrap();
                Ok(Value::from(json!({ "size": info["size"] })))
            })
        })
        // Any one operation, with the arguments it is given.
        .action("roomOp", |ctx: ActionCtx<'_>, args| {
            boxed(async move {
                let a = serde_json::to_value(&args).unwrap();
                let s = |k: &str| a[k].as_str().unwrap_or("").to_owned();
                let rooms = ctx.rooms();
                let v = |k: &str| Value::from(a[k].clone());
                let ttl = a["ttlMs"].as_i64();
                match s("op").as_str() {
                    "join" => {
                        rooms
                            .join(&s("room"), &s("member"), v("presence"), ttl)
                            .await?
                    }
                    "presence" => {
                        rooms
                            .set_presence(&s("room"), &s("member"), v("presence"), ttl)
                            .await?
                    }
                    "leave" => {
                        let left = rooms.leave(&s("room"), &s("member")).await?;
                        return Ok(Value::from(json!({ "left": left })));
                    }
                    "broadcast" => rooms.broadcast(&s("room"), &s("topic"), v("data")).await?,
                    "get" => return rooms.get(&s("room")).await,
                    _ => {
                        let after = a["after"].as_str();
                        let limit = a["limit"].as_u64().map(|l| l as u32);
                        return rooms.list(after, limit).await;
                    }
                }
                Ok(Value::Null)
            })
        })
}

/// Runs action `name` as `caller` with `args`.
fn act(
    world: &Rc<World>,
    caller: &AuthContext,
    name: &str,
    args: serde_json::Value,
) -> Result<serde_json::Value, FnError> {
    let functions = functions();
    let Some((_, Found::Rust(RustBody::Action(f)))) = functions.find(name) else {
        panic!("no action {name}");
    };
    let host = LocalRooms {
        world: world.clone(),
        caller: caller.clone(),
    };
    let ctx = ActionCtx {
        auth: caller,
        host: &host,
    };
    now(f(ctx, Value::from(args))).map(|v| serde_json::to_value(&v).unwrap())
}

fn admin() -> AuthContext {
    AuthContext {
        is_admin: true,
        ..AuthContext::default()
    }
}

#[test]
fn an_actions_join_broadcast_and_leave_are_what_the_rooms_sockets_see() {
    let world = World::new();
    let alice = AuthContext::user("alice");
    let s = world.with("lobby", |h| h.connect(Encoding::Json).unwrap());
    world.received("lobby", &s);

    let got = act(
        &world,
        &alice,
        "checkIn",
        json!({"room": "lobby", "status": "here"}),
    )
    .unwrap();
    assert_eq!(got, json!({"size": 1}));
    let msgs = world.received("lobby", &s);
    let joins: Vec<_> = msgs
        .iter()
        .filter_map(|m| match m {
            ServerMsg::PresenceDiff(d) => {
                Some(d.joins.iter().map(|j| j.conn.clone()).collect::<Vec<_>>())
            }
            _ => None,
        })
        .collect();
    assert_eq!(joins, [vec!["member:alice".to_owned()]], "{msgs:?}");
    let bcasts: Vec<_> = msgs
        .iter()
        .filter_map(|m| match m {
            ServerMsg::Bcast(b) => Some((
                b.topic.clone(),
                serde_json::to_value(&b.data).unwrap(),
                b.from.clone(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        bcasts,
        [(
            "checkIn".to_owned(),
            json!({"member": "alice"}),
            "member:alice".to_owned()
        )]
    );

    // Presence with a TTL, get, then leave: the socket sees each.
    let op = |caller: &AuthContext, args: serde_json::Value| act(&world, caller, "roomOp", args);
    op(&alice, json!({"op": "presence", "room": "lobby", "member": "alice", "presence": {"status": "away"}, "ttlMs": 60_000})).unwrap();
    let info = op(&alice, json!({"op": "get", "room": "lobby"})).unwrap();
    assert_eq!(info["size"], 1);
    assert_eq!(info["sockets"], 1);
    assert_eq!(info["members"][0]["member"], "alice");
    assert_eq!(info["members"][0]["state"], json!({"status": "away"}));
    assert!(info["members"][0]["expiresAt"].is_i64(), "{info}");
    let updated = world.received("lobby", &s);
    assert!(
        matches!(&updated[..], [ServerMsg::PresenceDiff(d)] if d.updates.len() == 1),
        "{updated:?}"
    );
    let left = op(
        &alice,
        json!({"op": "leave", "room": "lobby", "member": "alice"}),
    )
    .unwrap();
    assert_eq!(left, json!({"left": true}));
    let left = op(
        &alice,
        json!({"op": "leave", "room": "lobby", "member": "alice"}),
    )
    .unwrap();
    assert_eq!(left, json!({"left": false}));
    let gone = world.received("lobby", &s);
    assert!(
        matches!(&gone[..], [ServerMsg::PresenceDiff(d)] if d.leaves == ["member:alice"]),
        "{gone:?}"
    );
    // An admin's broadcast is from the server.
    op(
        &admin(),
        json!({"op": "broadcast", "room": "lobby", "topic": "news", "data": 1}),
    )
    .unwrap();
    let got = world.received("lobby", &s);
    assert!(
        matches!(&got[..], [ServerMsg::Bcast(b)] if b.from == "server" && b.topic == "news"),
        "{got:?}"
    );
}

#[test]
fn refusals_are_the_http_apis_as_typed_function_errors() {
    let world = World::new();
    let alice = AuthContext::user("alice");
    let s = world.with("lobby", |h| h.connect(Encoding::Json).unwrap());
    world.received("lobby", &s);
    let op = |caller: &AuthContext, args: serde_json::Value| {
        act(&world, caller, "roomOp", args).unwrap_err()
    };
    let code = |e: FnError| (e.code, e.message.split(':').next().unwrap_or("").to_owned());
    let cases = [
        // The shard rules for the action's caller, before any room is asked.
        (
            alice.clone(),
            json!({"op": "join", "room": "user:bob", "member": "alice"}),
            ErrorCode::Forbidden,
            "FORBIDDEN",
        ),
        (
            AuthContext::anonymous(),
            json!({"op": "get", "room": "user:bob"}),
            ErrorCode::Unauthorized,
            "UNAUTHORIZED",
        ),
        (
            alice.clone(),
            json!({"op": "get", "room": "a b"}),
            ErrorCode::BadArgs,
            "BAD_SHARD_NAME",
        ),
        // The room's own rules and checks.
        (
            alice.clone(),
            json!({"op": "join", "room": "lobby", "member": "bob"}),
            ErrorCode::Forbidden,
            "FORBIDDEN",
        ),
        (
            AuthContext::anonymous(),
            json!({"op": "join", "room": "lobby", "member": "x"}),
            ErrorCode::Unauthorized,
            "UNAUTHORIZED",
        ),
        (
            alice.clone(),
            json!({"op": "join", "room": "lobby", "member": "a b"}),
            ErrorCode::BadArgs,
            "BAD_MEMBER",
        ),
        (
            alice.clone(),
            json!({"op": "join", "room": "lobby", "member": "alice", "presence": "x".repeat(20_000)}),
            ErrorCode::BadArgs,
            "PRESENCE_TOO_LARGE",
        ),
        (
            alice.clone(),
            json!({"op": "join", "room": "lobby", "member": "alice", "ttlMs": 0}),
            ErrorCode::BadArgs,
            "BAD_TTL",
        ),
        (
            alice.clone(),
            json!({"op": "presence", "room": "lobby", "member": "alice", "presence": 1}),
            ErrorCode::NotFound,
            "MEMBER_NOT_FOUND",
        ),
        (
            alice.clone(),
            json!({"op": "broadcast", "room": "lobby", "topic": ""}),
            ErrorCode::BadArgs,
            "BAD_TOPIC",
        ),
        (
            alice.clone(),
            json!({"op": "list", "limit": 5000}),
            ErrorCode::BadArgs,
            "BAD_QUERY",
        ),
    ];
    for (caller, args, want, api_code) in cases {
        let got = code(op(&caller, args.clone()));
        assert_eq!(got, (want, api_code.to_owned()), "{args}");
    }
    // Nothing a refusal asked for happened.
    assert!(world.received("lobby", &s).is_empty());
    assert!(
        !world.rooms.borrow().contains_key("user:bob"),
        "a refused room was asked"
    );
    // Alice's own room is hers.
    op_ok(
        &world,
        &alice,
        json!({"op": "join", "room": "user:alice", "member": "alice"}),
    );
}

fn op_ok(world: &Rc<World>, caller: &AuthContext, args: serde_json::Value) -> serde_json::Value {
    act(world, caller, "roomOp", args).unwrap()
}

#[test]
fn list_is_the_room_list_the_caller_may_see() {
    let world = World::new();
    let alice = AuthContext::user("alice");
    let bob = AuthContext::user("bob");
    op_ok(
        &world,
        &alice,
        json!({"op": "join", "room": "lobby", "member": "alice"}),
    );
    op_ok(
        &world,
        &alice,
        json!({"op": "join", "room": "user:alice", "member": "alice"}),
    );
    op_ok(
        &world,
        &bob,
        json!({"op": "join", "room": "lobby", "member": "bob"}),
    );
    // The counts ride the outbox drains.
    for room in ["lobby", "user:alice"] {
        world.with(room, |h| h.advance(200).unwrap());
    }
    let page = op_ok(&world, &alice, json!({"op": "list"}));
    assert_eq!(
        page["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["room"].as_str().unwrap(), r["members"].as_u64().unwrap()))
            .collect::<Vec<_>>(),
        [("lobby", 2), ("user:alice", 1)]
    );
    let page = op_ok(&world, &bob, json!({"op": "list"}));
    assert_eq!(
        page["rooms"].as_array().unwrap().len(),
        1,
        "bob sees no room of alice's: {page}"
    );
    let page = op_ok(
        &world,
        &alice,
        json!({"op": "list", "after": "lobby", "limit": 1}),
    );
    assert_eq!(page["rooms"][0]["room"], "user:alice");
}

#[test]
fn a_host_without_rooms_refuses() {
    struct Bare;
    impl ActionHost for Bare {
        fn run<'a>(
            &'a self,
            _: FnKind,
            name: &'a str,
            _: Value,
        ) -> Pending<'a, Result<Value, FnError>> {
            Box::pin(async move { Err(FnError::unknown(name)) })
        }
    }
    let alice = AuthContext::user("alice");
    let ctx = ActionCtx {
        auth: &alice,
        host: &Bare,
    };
    let e = now(ctx.rooms().get("lobby")).unwrap_err();
    assert_eq!(e.code, ErrorCode::Unavailable);
}
