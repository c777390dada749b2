//! Server functions on real SQLite through the shard engine: a mutation's
//! writes kept all or nothing as one seq (one diff per subscription, the
//! `result` after them, log and outbox), reads of the call's own writes,
//! idempotent retries (also after a wake), policies inside functions, the
//! budgets and error codes, HTTP through the local host, and the text
//! bridge the TypeScript runtime uses for `ctx.db`.

use std::rc::Rc;
use std::sync::{Arc, OnceLock};

use pylon_workers::app::App;
use pylon_workers::functions::{
    dispatch_db, envelope, parse_envelope, ActionCtx, Ctx, FnError, FnKind, Functions,
};
use pylon_workers::host::local::LocalHost;
use pylon_workers::host::{Method, Request, Response};
use pylon_workers::manifest::Manifest;
use pylon_workers::policy::AuthContext;
use pylon_workers::protocol::{
    self, Encoding, ErrorCode, ErrorMsg, Frame, FrameRef, Returned, ServerMsg,
};
use pylon_workers::shard::{ConnInfo, LiveShard, Outbound, ShardConfig, ShardEngine};
use pylon_workers::storage::SqliteConn;
use pylon_workers::value::{Row, Value};
use serde_json::json;

const MANIFEST: &str = r#"{
  "entities": [
    {"name": "Card", "fields": [
      {"name": "title", "type": "string"},
      {"name": "n", "type": "int"}
    ]},
    {"name": "Note", "fields": [
      {"name": "owner", "type": "string"},
      {"name": "body", "type": "string"}
    ]}
  ],
  "policies": [
    {"name": "ownNotes", "entity": "Note",
     "allowRead": "data.owner == auth.userId",
     "allowWrite": "data.owner == auth.userId"}
  ]
}"#;

type Engine = ShardEngine<SqliteConn>;

// ---- the app's functions ----

fn v(j: serde_json::Value) -> Value {
    Value::from(j)
}

fn row(j: serde_json::Value) -> Row {
    match Value::from(j) {
        Value::Map(m) => m,
        other => panic!("not a row: {other:?}"),
    }
}

fn card(id: &str, title: &str, n: i64) -> Row {
    row(json!({"id": id, "title": title, "n": n}))
}

fn arg<'a>(args: &'a Value, name: &str) -> Result<&'a str, FnError> {
    args.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| FnError::bad_args(&format!("args.{name}"), "expected a string"))
}

fn count(args: &Value) -> usize {
    args.get("count").and_then(Value::as_i64).unwrap_or(0) as usize
}

fn note_body(ctx: &mut Ctx<'_>, args: Value) -> Result<Value, FnError> {
    let id = arg(&args, "id")?;
    let note = row(json!({"id": id, "owner": arg(&args, "owner")?, "body": "hi"}));
    Ok(Value::from(ctx.db.insert("Note", note)?))
}

fn functions() -> Functions {
    Functions::new()
        .mutation("addCard", |ctx: &mut Ctx<'_>, args: Value| {
            let id = arg(&args, "id")?;
            ctx.db.insert("Card", card(id, "t", 1))?;
            Ok(v(json!({ "id": id })))
        })
        .mutation("twoThenFail", |ctx: &mut Ctx<'_>, _| {
            ctx.db.insert("Card", card("f1", "one", 1))?;
            ctx.db.insert("Card", card("f2", "two", 2))?;
            Err(ctx.error("OUT_OF_STOCK", "no more cards"))
        })
        .mutation("threeWrites", |ctx: &mut Ctx<'_>, _| {
            ctx.db.insert("Card", card("c1", "one", 1))?;
            ctx.db.insert("Card", card("c2", "two", 2))?;
            ctx.db.delete("Card", "c0")?;
            Ok(Value::from("done"))
        })
        .mutation("writeThenRead", |ctx: &mut Ctx<'_>, _| {
            // No id: the shard makes one.
            let id = ctx
                .db
                .insert("Card", row(json!({"title": "mine", "n": 5})))?;
            ctx.db
                .update("Card", &id, row(json!({"title": "renamed"})))?;
            let got = ctx.db.get("Card", &id)?.map_or(Value::Null, Value::Map);
            let listed = ctx
                .db
                .query(&v(json!({"entity": "Card", "where": {"title": "renamed"}})))?;
            let listed: Vec<Value> = listed.into_iter().map(Value::Map).collect();
            Ok(v(json!({ "id": id, "got": serde_json::Value::from(got),
                         "listed": serde_json::Value::from(Value::List(listed)) })))
        })
        .mutation("noWrites", |ctx: &mut Ctx<'_>, _| {
            let n = ctx.db.query(&v(json!({"entity": "Card"})))?.len();
            Ok(Value::Int(n as i64))
        })
        .mutation("addNote", note_body)
        .trusted_mutation("addNoteTrusted", note_body)
        .query("readNote", |ctx: &mut Ctx<'_>, args: Value| {
            Ok(ctx
                .db
                .get("Note", arg(&args, "id")?)?
                .map_or(Value::Null, Value::Map))
        })
        .query("sneakyWrite", |ctx: &mut Ctx<'_>, _| {
            ctx.db.insert("Card", card("q1", "from a query", 1))?;
            Ok(Value::Null)
        })
        .query("countCards", |ctx: &mut Ctx<'_>, _| {
            Ok(Value::Int(
                ctx.db.query(&v(json!({"entity": "Card"})))?.len() as i64,
            ))
        })
        .mutation("manyWrites", |ctx: &mut Ctx<'_>, args: Value| {
            let prefix = args.get("prefix").and_then(Value::as_str).unwrap_or("m");
            for i in 0..count(&args) {
                ctx.db
                    .insert("Card", card(&format!("{prefix}{i}"), "many", i as i64))?;
            }
            Ok(Value::Null)
        })
        .mutation("writeThenManyReads", |ctx: &mut Ctx<'_>, args: Value| {
            ctx.db.insert("Card", card("r0", "before the reads", 0))?;
            for _ in 0..count(&args) {
                ctx.db.get("Card", "r0")?;
            }
            Ok(Value::Null)
        })
        .mutation("bigResult", |ctx: &mut Ctx<'_>, args: Value| {
            ctx.db.insert("Card", card("big", "big", 1))?;
            Ok(Value::Text("x".repeat(count(&args))))
        })
        .mutation("bridge", |ctx: &mut Ctx<'_>, args: Value| {
            // What the TypeScript runtime does: each ctx.db call as text.
            let Some(Value::List(calls)) = args.get("calls") else {
                return Err(FnError::bad_args("args.calls", "expected a list"));
            };
            let answers = calls
                .iter()
                .map(|c| {
                    let op = c.get("op").and_then(Value::as_str).unwrap_or_default();
                    let payload = c.get("payload").and_then(Value::as_str).unwrap_or_default();
                    Value::Text(dispatch_db(&mut *ctx.db, op, payload))
                })
                .collect();
            Ok(Value::List(answers))
        })
        .action("ping", |_: ActionCtx<'_>, _| {
            Box::pin(async { Ok(Value::from("pong")) })
        })
}

// ---- the engine ----

fn manifest() -> Arc<Manifest> {
    Arc::new(Manifest::from_json_str(MANIFEST).unwrap())
}

fn temp_db(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("pylon-fn-{name}-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

fn open_with(path: &std::path::Path, config: ShardConfig) -> Engine {
    ShardEngine::open(SqliteConn::open(path).unwrap(), manifest(), "room", config)
        .unwrap()
        .with_functions(functions())
}

fn open(name: &str) -> Engine {
    open_with(&temp_db(name), ShardConfig::default())
}

fn info(user: Option<&str>) -> ConnInfo {
    ConnInfo {
        auth: user.map(AuthContext::user).unwrap_or_default(),
        encoding: Encoding::Json,
        client: None,
        lease: Default::default(),
        ended: None,
    }
}

/// One message, then a flush, as the Durable Object does when nothing else
/// is queued.
async fn send(e: &mut Engine, conn: &str, msg: serde_json::Value) -> Vec<Outbound> {
    let mut out = e.message(conn, FrameRef::Text(&msg.to_string()), 0).await;
    out.extend(e.flush().await);
    out
}

/// Messages addressed to `conn`, in order.
fn to(out: &[Outbound], conn: &str) -> Vec<ServerMsg> {
    out.iter()
        .filter_map(|o| match o {
            Outbound::To(c, m) if c == conn => Some(m.clone()),
            Outbound::Many { conns, msg } if conns.iter().any(|c| c == conn) => Some(msg.clone()),
            Outbound::All { except, msg } if except.as_deref() != Some(conn) => Some(msg.clone()),
            _ => None,
        })
        .collect()
}

fn call_msg(op: &str, name: &str, args: serde_json::Value) -> serde_json::Value {
    json!({"type": "call", "op": op, "name": name, "args": args})
}

/// A call as `auth`, straight into the engine.
async fn call(
    e: &mut Engine,
    auth: &AuthContext,
    name: &str,
    args: serde_json::Value,
    op: Option<&str>,
) -> Result<(Returned, Vec<Outbound>), ErrorMsg> {
    e.call(auth, name, v(args), op.map(str::to_owned), None, 1_000)
        .await
}

async fn call_err(e: &mut Engine, name: &str, args: serde_json::Value) -> ErrorMsg {
    call(e, &AuthContext::anonymous(), name, args, Some("op-err"))
        .await
        .map(|(r, _)| r)
        .expect_err("the call should fail")
}

/// Ids of every row of `entity` (read as an admin), in id order.
fn ids(e: &Engine, entity: &str) -> Vec<String> {
    let answer = e
        .query(&AuthContext::admin(), &v(json!({ "entity": entity })))
        .unwrap();
    answer["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

fn seq(e: &Engine) -> u64 {
    e.store().seq().unwrap()
}

/// (seq, entity, id) of every change-log entry.
fn log(e: &Engine) -> Vec<(u64, String, String)> {
    e.store()
        .log_since(0)
        .unwrap()
        .into_iter()
        .map(|l| (l.seq, l.entity, l.id))
        .collect()
}

fn outbox(e: &Engine) -> Vec<(u64, String, Option<String>)> {
    e.store()
        .outbox_oldest(10_000)
        .unwrap()
        .into_iter()
        .map(|o| {
            (
                o.seq,
                o.id,
                o.row.map(|r| r["title"].as_str().unwrap().to_owned()),
            )
        })
        .collect()
}

fn at(seq: u64, id: &str) -> (u64, String, String) {
    (seq, "Card".into(), id.into())
}

fn rows_of(msg: &ServerMsg) -> Vec<Row> {
    match msg {
        ServerMsg::Snap(s) => s.rows.clone(),
        other => panic!("expected a snap, got {other:?}"),
    }
}

/// Applies a wire diff the way docs/protocol.md says a client does.
fn apply(held: &mut Vec<Row>, msg: &ServerMsg) {
    let ServerMsg::Diff(d) = msg else {
        panic!("expected a diff, got {msg:?}")
    };
    let gone: Vec<&str> = d
        .removed
        .iter()
        .map(String::as_str)
        .chain(d.changed.iter().map(|p| p.row["id"].as_str().unwrap()))
        .collect();
    held.retain(|r| !gone.contains(&r["id"].as_str().unwrap()));
    let mut ins: Vec<_> = d.added.iter().chain(d.changed.iter()).collect();
    ins.sort_by_key(|p| p.pos);
    for p in ins {
        held.insert(p.pos as usize, p.row.clone());
    }
}

fn row_ids(rows: &[Row]) -> Vec<&str> {
    rows.iter().map(|r| r["id"].as_str().unwrap()).collect()
}

// ---- all or nothing, one seq ----

#[tokio::test]
async fn a_failing_mutation_stores_nothing_and_tells_the_caller() {
    let mut e = open("fail");
    e.connect("a", info(None), 0).unwrap();
    e.connect("watcher", info(None), 0).unwrap();
    send(
        &mut e,
        "watcher",
        json!({"type":"sub","id":"s","entity":"Card"}),
    )
    .await;

    let out = send(&mut e, "a", call_msg("c-1", "twoThenFail", json!(null))).await;
    let answer = to(&out, "a");
    let [ServerMsg::Err(err)] = &answer[..] else {
        panic!("expected one err, got {answer:?}")
    };
    assert_eq!(err.code, ErrorCode::FunctionError);
    assert_eq!(err.message, "OUT_OF_STOCK: no more cards");
    assert_eq!(err.op.as_deref(), Some("c-1"));
    assert!(to(&out, "watcher").is_empty(), "no diff: {out:?}");
    assert!(ids(&e, "Card").is_empty());
    assert_eq!(seq(&e), 0);
    assert!(log(&e).is_empty());
    assert!(outbox(&e).is_empty());
    // The op id was not used up: a retry runs again (and fails again).
    let out = send(&mut e, "a", call_msg("c-1", "twoThenFail", json!(null))).await;
    assert!(
        matches!(&to(&out, "a")[..], [ServerMsg::Err(e)] if e.code == ErrorCode::FunctionError)
    );
}

#[tokio::test]
async fn three_writes_are_one_seq_one_diff_per_subscription_and_the_result_last() {
    let mut e = open("three");
    for c in ["a", "b", "c"] {
        e.connect(c, info(None), 0).unwrap();
    }
    let pre = send(
        &mut e,
        "a",
        json!({"type":"mut","op":"pre","ops":[
        {"type":"insert","entity":"Card","row":{"id":"c0","title":"zero","n":0}}]}),
    )
    .await;
    assert!(matches!(&to(&pre, "a")[..], [ServerMsg::Ack(a)] if a.seq == 1));
    let sub = json!({"type":"sub","id":"s","entity":"Card","order":["n"]});
    let mut held_a = rows_of(&to(&send(&mut e, "a", sub.clone()).await, "a")[0]);
    let mut held_b = rows_of(&to(&send(&mut e, "b", sub).await, "b")[0]);
    // A subscription the call does not touch.
    send(&mut e, "c", json!({"type":"sub","id":"n","entity":"Note"})).await;

    let out = send(&mut e, "a", call_msg("c-3", "threeWrites", json!({}))).await;
    let for_a = to(&out, "a");
    let for_b = to(&out, "b");
    assert_eq!(for_a.len(), 2, "{for_a:?}");
    assert!(matches!(&for_a[0], ServerMsg::Diff(d) if d.id == "s" && d.from == 1 && d.seq == 2));
    assert!(
        matches!(&for_a[1], ServerMsg::Returned(r)
            if r.op == "c-3" && r.seq == 2 && !r.dup && r.value == Value::from("done")),
        "the result comes after the diff: {for_a:?}"
    );
    assert_eq!(for_b.len(), 1, "{for_b:?}");
    assert!(matches!(&for_b[0], ServerMsg::Diff(d) if d.from == 1 && d.seq == 2));
    assert!(to(&out, "c").is_empty(), "{out:?}");
    apply(&mut held_a, &for_a[0]);
    apply(&mut held_b, &for_b[0]);
    assert_eq!(row_ids(&held_a), ["c1", "c2"]);
    assert_eq!(held_a, held_b);

    assert_eq!(seq(&e), 2);
    assert_eq!(ids(&e, "Card"), ["c1", "c2"]);
    assert_eq!(
        log(&e),
        [at(1, "c0"), at(2, "c1"), at(2, "c2"), at(2, "c0")]
    );
    assert_eq!(
        outbox(&e),
        [
            (1, "c0".into(), Some("zero".into())),
            (2, "c1".into(), Some("one".into())),
            (2, "c2".into(), Some("two".into())),
            (2, "c0".into(), None),
        ]
    );
    assert_eq!(
        e.store().op_seqs(&["c-3"]).unwrap().get("c-3"),
        Some(&2),
        "the op id is kept for retries"
    );
}

#[tokio::test]
async fn the_result_follows_the_diffs_without_coalescing_too() {
    let config = ShardConfig {
        max_batch: 1,
        ..ShardConfig::default()
    };
    let mut e = open_with(&temp_db("uncoalesced"), config);
    e.connect("a", info(None), 0).unwrap();
    send(&mut e, "a", json!({"type":"sub","id":"s","entity":"Card"})).await;
    // Without the trailing flush: everything comes from the message itself.
    let frame = call_msg("c-1", "addCard", json!({"id": "k1"})).to_string();
    let out = e.message("a", FrameRef::Text(&frame), 0).await;
    let got = to(&out, "a");
    assert!(
        matches!(&got[..], [ServerMsg::Diff(d), ServerMsg::Returned(r)] if d.seq == 1 && r.seq == 1),
        "{got:?}"
    );
}

#[tokio::test]
async fn a_call_reads_its_own_writes() {
    let mut e = open("own-writes");
    let (r, _) = call(
        &mut e,
        &AuthContext::anonymous(),
        "writeThenRead",
        json!(null),
        Some("w"),
    )
    .await
    .unwrap();
    let id = r
        .value
        .get("id")
        .and_then(Value::as_str)
        .unwrap()
        .to_owned();
    assert_eq!(id, "s1.0", "an id the shard made");
    let got = r.value.get("got").unwrap();
    assert_eq!(got.get("title"), Some(&Value::from("renamed")));
    assert_eq!(got.get("n"), Some(&Value::Int(5)));
    let Some(Value::List(listed)) = r.value.get("listed") else {
        panic!("{:?}", r.value)
    };
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].get("id"), Some(&Value::from(id.as_str())));
    // Two writes of one row: two log entries, one outbox entry (its last state).
    assert_eq!(log(&e), [at(1, &id), at(1, &id)]);
    assert_eq!(outbox(&e), [(1, id, Some("renamed".into()))]);
}

// ---- idempotent retries ----

#[tokio::test]
async fn a_retried_op_is_applied_once_and_answered_with_the_first_result() {
    let path = temp_db("retry");
    let mut e = open_with(&path, ShardConfig::default());
    e.connect("a", info(None), 0).unwrap();
    let first = to(
        &send(
            &mut e,
            "a",
            call_msg("same", "addCard", json!({"id": "k1"})),
        )
        .await,
        "a",
    );
    let again = to(
        &send(
            &mut e,
            "a",
            call_msg("same", "addCard", json!({"id": "k1"})),
        )
        .await,
        "a",
    );
    let want_value = v(json!({"id": "k1"}));
    assert!(
        matches!(&first[..], [ServerMsg::Returned(r)] if r.seq == 1 && !r.dup && r.value == want_value),
        "{first:?}"
    );
    assert!(
        matches!(&again[..], [ServerMsg::Returned(r)] if r.seq == 1 && r.dup && r.value == want_value && r.op == "same"),
        "{again:?}"
    );
    // A different op id is a new call: the id is taken now.
    let other = to(
        &send(
            &mut e,
            "a",
            call_msg("other", "addCard", json!({"id": "k1"})),
        )
        .await,
        "a",
    );
    assert!(
        matches!(&other[..], [ServerMsg::Err(er)] if er.code == ErrorCode::AlreadyExists),
        "{other:?}"
    );
    assert_eq!(seq(&e), 1);
    assert_eq!(log(&e).len(), 1);
    drop(e);

    // A wake: a new engine over the same storage still knows the op.
    let mut e = open_with(&path, ShardConfig::default());
    let (r, out) = call(
        &mut e,
        &AuthContext::anonymous(),
        "addCard",
        json!({"id": "k1"}),
        Some("same"),
    )
    .await
    .unwrap();
    assert_eq!((r.seq, r.dup, r.value), (1, true, want_value));
    assert!(out.is_empty());
    assert_eq!(seq(&e), 1);
    assert_eq!(ids(&e, "Card"), ["k1"]);
}

#[tokio::test]
async fn a_mutation_without_writes_answers_the_current_seq_and_records_nothing() {
    let mut e = open("no-writes");
    call(
        &mut e,
        &AuthContext::anonymous(),
        "addCard",
        json!({"id": "k1"}),
        Some("o1"),
    )
    .await
    .unwrap();
    let (r, out) = call(
        &mut e,
        &AuthContext::anonymous(),
        "noWrites",
        json!(null),
        Some("o2"),
    )
    .await
    .unwrap();
    assert_eq!((r.seq, r.dup, r.value), (1, false, Value::Int(1)));
    assert!(out.is_empty());
    assert_eq!(seq(&e), 1);
    assert_eq!(log(&e).len(), 1);
    assert!(e.store().op_seqs(&["o2"]).unwrap().is_empty());
    // Nothing kept, so a retry runs again: still not a dup.
    let (r, _) = call(
        &mut e,
        &AuthContext::anonymous(),
        "noWrites",
        json!(null),
        Some("o2"),
    )
    .await
    .unwrap();
    assert!(!r.dup);
}

// ---- policies ----

#[tokio::test]
async fn policies_apply_inside_a_function_and_a_trusted_one_skips_them() {
    let mut e = open("policies");
    let bob = AuthContext::user("bob");
    let args = json!({"id": "n1", "owner": "alice"});
    let err = call(&mut e, &bob, "addNote", args.clone(), Some("p1"))
        .await
        .map(|(r, _)| r)
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Forbidden, "{err:?}");
    assert!(ids(&e, "Note").is_empty());
    assert_eq!(seq(&e), 0);

    // Alice may write her own note.
    let alice = AuthContext::user("alice");
    let (r, _) = call(
        &mut e,
        &alice,
        "addNote",
        json!({"id": "n0", "owner": "alice"}),
        Some("p2"),
    )
    .await
    .unwrap();
    assert_eq!(r.value, Value::from("n0"));

    // The trusted mutation writes bob's note for alice regardless.
    let (r, _) = call(&mut e, &bob, "addNoteTrusted", args, Some("p3"))
        .await
        .unwrap();
    assert_eq!((r.seq, r.value), (2, Value::from("n1")));
    assert_eq!(ids(&e, "Note"), ["n0", "n1"]);

    // Reads go through the policies too: bob cannot see alice's note.
    let (r, _) = call(&mut e, &bob, "readNote", json!({"id": "n1"}), None)
        .await
        .unwrap();
    assert_eq!(r.value, Value::Null);
    let (r, _) = call(&mut e, &alice, "readNote", json!({"id": "n1"}), None)
        .await
        .unwrap();
    assert_eq!(r.value.get("owner"), Some(&Value::from("alice")));
}

// ---- kinds, names, budgets ----

#[tokio::test]
async fn a_query_that_writes_is_read_only() {
    let mut e = open("read-only");
    let err = call_err(&mut e, "sneakyWrite", json!(null)).await;
    assert_eq!(err.code, ErrorCode::ReadOnly);
    assert!(ids(&e, "Card").is_empty());
    // A query answers the seq it read at.
    call(
        &mut e,
        &AuthContext::anonymous(),
        "addCard",
        json!({"id": "k1"}),
        None,
    )
    .await
    .unwrap();
    let (r, out) = call(
        &mut e,
        &AuthContext::anonymous(),
        "countCards",
        json!(null),
        None,
    )
    .await
    .unwrap();
    assert_eq!((r.seq, r.value, out.len()), (1, Value::Int(1), 0));
}

#[tokio::test]
async fn wrong_kinds_and_unknown_names_are_refused_over_the_socket() {
    let mut e = open("kinds");
    e.connect("a", info(None), 0).unwrap();
    for (name, code) in [
        ("ping", ErrorCode::WrongKind),
        ("nope", ErrorCode::UnknownFunction),
    ] {
        let got = to(
            &send(&mut e, "a", call_msg("k", name, json!(null))).await,
            "a",
        );
        assert!(
            matches!(&got[..], [ServerMsg::Err(er)] if er.code == code && er.op.as_deref() == Some("k")),
            "{name}: {got:?}"
        );
    }
    // The engine's own check of an expected kind (an action's runQuery).
    let err = e
        .call(
            &AuthContext::anonymous(),
            "addCard",
            v(json!({"id": "x"})),
            None,
            Some(FnKind::Query),
            0,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::WrongKind);
    assert!(ids(&e, "Card").is_empty());
}

#[tokio::test]
async fn more_writes_than_a_mutation_may_make_store_nothing() {
    let mut config = ShardConfig::default();
    config.limits.max_ops_per_mut = 5;
    let mut e = open_with(&temp_db("too-many"), config);
    let (r, _) = call(
        &mut e,
        &AuthContext::anonymous(),
        "manyWrites",
        json!({"count": 5}),
        Some("five"),
    )
    .await
    .unwrap();
    assert_eq!(r.seq, 1);
    assert_eq!(ids(&e, "Card").len(), 5);
    let err = call(
        &mut e,
        &AuthContext::anonymous(),
        "manyWrites",
        json!({"count": 6, "prefix": "x"}),
        Some("six"),
    )
    .await
    .map(|(r, _)| r)
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::TooManyOps, "{err:?}");
    assert_eq!(
        ids(&e, "Card").len(),
        5,
        "the sixth call's writes are undone"
    );
    assert_eq!(seq(&e), 1);
}

#[tokio::test]
async fn more_than_a_thousand_db_calls_is_over_the_budget() {
    let mut e = open("budget");
    let (r, _) = call(
        &mut e,
        &AuthContext::anonymous(),
        "writeThenManyReads",
        json!({"count": 999}),
        Some("ok"),
    )
    .await
    .unwrap();
    assert_eq!(r.seq, 1, "1 write and 999 reads: 1000 calls fit");
    let mut e = open("budget-over");
    let err = call_err(&mut e, "writeThenManyReads", json!({"count": 1000})).await;
    assert_eq!(err.code, ErrorCode::FunctionBudget, "{err:?}");
    assert!(ids(&e, "Card").is_empty(), "its write is undone");
    assert_eq!(seq(&e), 0);
}

#[tokio::test]
async fn a_result_too_large_for_a_frame_undoes_the_writes() {
    let mut e = open("too-large");
    let max = e.config().limits.max_frame_bytes as i64;
    let err = call_err(&mut e, "bigResult", json!({"count": max})).await;
    assert_eq!(err.code, ErrorCode::ResultTooLarge, "{err:?}");
    assert!(ids(&e, "Card").is_empty());
    assert_eq!(seq(&e), 0);
    assert!(log(&e).is_empty());
    // One well within the frame is answered.
    let (r, _) = call(
        &mut e,
        &AuthContext::anonymous(),
        "bigResult",
        json!({"count": max / 2}),
        Some("half"),
    )
    .await
    .unwrap();
    assert_eq!(r.seq, 1);
    assert_eq!(ids(&e, "Card"), ["big"]);
}

// ---- HTTP through the local host ----

type Host = LocalHost<Rc<SqliteConn>, LiveShard<Rc<SqliteConn>>>;

fn app() -> &'static App {
    static APP: OnceLock<App> = OnceLock::new();
    APP.get_or_init(|| App::new(MANIFEST).with_functions(functions()))
}

fn host() -> Host {
    let db = Rc::new(SqliteConn::open_in_memory().unwrap());
    LocalHost::open(db, "room-1", app()).unwrap()
}

/// `POST fn/{name}?{query}` with `body` as the bytes sent.
fn post_fn(h: &mut Host, name: &str, query: &[(&str, &str)], body: &str) -> Response {
    h.request_raw(Request {
        method: Method::Post,
        object: "room-1".into(),
        rest: format!("fn/{name}"),
        query: query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        caller: AuthContext::anonymous(),
        lease: Default::default(),
        body: body.as_bytes().to_vec(),
    })
    .unwrap()
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

#[test]
fn http_calls_answer_value_seq_and_dup() {
    let mut h = host();
    let watcher = h.connect(Encoding::Json).unwrap();
    let sub = json!({"type":"sub","id":"s","entity":"Card"}).to_string();
    h.message(&watcher, FrameRef::Text(&sub)).unwrap();
    received(&mut h, &watcher);

    let r = post_fn(&mut h, "addCard", &[], r#"{"id":"h1"}"#);
    assert_eq!(
        (r.status, &r.body),
        (200, &json!({"value": {"id": "h1"}, "seq": 1, "dup": false}))
    );
    let got = received(&mut h, &watcher);
    assert!(
        matches!(&got[..], [ServerMsg::Diff(d)] if d.seq == 1),
        "{got:?}"
    );

    // `?op=`: the retry is answered from the first call.
    let r = post_fn(&mut h, "addCard", &[("op", "o-1")], r#"{"id":"h2"}"#);
    assert_eq!(
        (r.status, &r.body),
        (200, &json!({"value": {"id": "h2"}, "seq": 2, "dup": false}))
    );
    let r = post_fn(&mut h, "addCard", &[("op", "o-1")], r#"{"id":"h2"}"#);
    assert_eq!(
        (r.status, &r.body),
        (200, &json!({"value": {"id": "h2"}, "seq": 2, "dup": true}))
    );
    assert_eq!(
        received(&mut h, &watcher).len(),
        1,
        "one diff for the two requests"
    );

    // A query reads; an empty body is null arguments.
    let r = post_fn(&mut h, "countCards", &[("kind", "query")], "");
    assert_eq!(
        (r.status, &r.body),
        (200, &json!({"value": 2, "seq": 2, "dup": false}))
    );
}

#[test]
fn http_call_errors_have_their_statuses() {
    let mut h = host();
    let code = |r: &Response| {
        r.body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };

    let r = post_fn(&mut h, "addCard", &[("kind", "query")], r#"{"id":"x"}"#);
    assert_eq!((r.status, code(&r).as_str()), (400, "WRONG_KIND"));
    let r = post_fn(&mut h, "addCard", &[], "{not json");
    assert_eq!((r.status, code(&r).as_str()), (400, "BAD_FRAME"));
    let r = post_fn(&mut h, "twoThenFail", &[], "{}");
    assert_eq!((r.status, code(&r).as_str()), (422, "FUNCTION_ERROR"));
    assert_eq!(r.body["error"]["message"], "OUT_OF_STOCK: no more cards");
    let r = post_fn(&mut h, "nope", &[], "{}");
    assert_eq!((r.status, code(&r).as_str()), (404, "UNKNOWN_FUNCTION"));
    let r = post_fn(&mut h, "sneakyWrite", &[], "{}");
    assert_eq!((r.status, code(&r).as_str()), (422, "READ_ONLY"));

    // None of them wrote.
    let r = h
        .request(Method::Post, "query", json!({"entity": "Card"}))
        .unwrap();
    assert_eq!(r.body["rows"], json!([]));
    assert_eq!(r.body["seq"], 0);
}

#[test]
fn a_socket_call_on_the_host_gets_its_diff_before_its_result() {
    let mut h = host();
    let a = h.connect(Encoding::Json).unwrap();
    for msg in [
        json!({"type":"sub","id":"s","entity":"Card"}),
        call_msg("c-1", "addCard", json!({"id": "k1"})),
    ] {
        h.message(&a, FrameRef::Text(&msg.to_string())).unwrap();
    }
    let got: Vec<ServerMsg> = received(&mut h, &a)
        .into_iter()
        .filter(|m| matches!(m, ServerMsg::Diff(_) | ServerMsg::Returned(_)))
        .collect();
    assert!(
        matches!(&got[..], [ServerMsg::Diff(d), ServerMsg::Returned(r)] if d.seq == 1 && r.seq == 1 && r.op == "c-1"),
        "{got:?}"
    );
}

// ---- the text bridge ----

#[tokio::test]
async fn every_db_call_goes_through_the_text_bridge() {
    let mut e = open("bridge");
    let calls = json!({"calls": [
        {"op": "insert", "payload": r#"{"entity":"Card","row":{"id":"b1","title":"t","n":1}}"#},
        {"op": "insert", "payload": r#"{"entity":"Card","row":{"title":"made","n":2}}"#},
        {"op": "get", "payload": r#"{"entity":"Card","id":"b1"}"#},
        {"op": "get", "payload": r#"{"entity":"Card","id":"absent"}"#},
        {"op": "update", "payload": r#"{"entity":"Card","id":"b1","set":{"title":"u"}}"#},
        {"op": "query", "payload": r#"{"entity":"Card","where":{"title":"u"}}"#},
        {"op": "delete", "payload": r#"{"entity":"Card","id":"b1"}"#},
        {"op": "insert", "payload": r#"{"entity":"Card","row":{"id":"s1.1","title":"again","n":3}}"#},
        {"op": "insert", "payload": "not json"},
        {"op": "insert", "payload": r#"{"row":{}}"#},
        {"op": "insert", "payload": r#"{"entity":"Card","row":[1]}"#},
        {"op": "get", "payload": r#"{"entity":"Card","id":7}"#},
        {"op": "upsert", "payload": r#"{"entity":"Card","row":{"id":"x"}}"#},
        {"op": "delete", "payload": r#"{"entity":"Nope","id":"x"}"#},
    ]});
    let (r, _) = call(
        &mut e,
        &AuthContext::anonymous(),
        "bridge",
        calls,
        Some("br"),
    )
    .await
    .unwrap();
    let Value::List(answers) = r.value else {
        panic!("{:?}", r.value)
    };
    let answers: Vec<Result<Value, FnError>> = answers
        .iter()
        .map(|a| parse_envelope(a.as_str().unwrap()))
        .collect();
    let ok = |i: usize| {
        answers[i]
            .clone()
            .unwrap_or_else(|e| panic!("call {i}: {e}"))
    };
    let code = |i: usize| {
        answers[i]
            .clone()
            .map(|v| panic!("call {i} answered {v:?}"))
            .unwrap_err()
            .code
    };

    assert_eq!(ok(0), Value::from("b1"));
    assert_eq!(ok(1), Value::from("s1.1"), "an id the shard made");
    assert_eq!(ok(2).get("title"), Some(&Value::from("t")));
    assert_eq!(ok(3), Value::Null);
    assert_eq!(ok(4), Value::Null);
    let Value::List(found) = ok(5) else {
        panic!("{:?}", ok(5))
    };
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].get("id"), Some(&Value::from("b1")));
    assert_eq!(ok(6), Value::Null);
    assert_eq!(code(7), ErrorCode::AlreadyExists);
    assert_eq!(code(8), ErrorCode::BadMessage);
    assert_eq!(code(9), ErrorCode::BadArgs);
    assert_eq!(answers[9].clone().unwrap_err().message, "entity: missing");
    assert_eq!(code(10), ErrorCode::BadArgs);
    assert_eq!(code(11), ErrorCode::BadArgs);
    assert_eq!(code(12), ErrorCode::BadMessage);
    assert_eq!(code(13), ErrorCode::UnknownEntity);
    assert_eq!(answers.len(), 14);

    // The writes that succeeded were kept, as one seq.
    assert_eq!(seq(&e), 1);
    assert_eq!(ids(&e, "Card"), ["s1.1"]);
    assert_eq!(
        log(&e),
        [at(1, "b1"), at(1, "s1.1"), at(1, "b1"), at(1, "b1")]
    );
}

#[test]
fn envelopes_round_trip_and_bad_ones_are_function_failures() {
    let values = [
        Value::Null,
        Value::Int(3),
        Value::from("text"),
        v(json!({"a": [1, 2.5, null, {"b": true}]})),
    ];
    for value in values {
        assert_eq!(parse_envelope(&envelope(Ok(value.clone()))), Ok(value));
    }
    let e = FnError::new(ErrorCode::Forbidden, "no");
    assert_eq!(parse_envelope(&envelope(Err(e.clone()))), Err(e));
    let app = FnError::app("OUT_OF_STOCK", "none left");
    assert_eq!(parse_envelope(&envelope(Err(app.clone()))), Err(app));

    assert_eq!(parse_envelope(r#"{"ok":null}"#), Ok(Value::Null));
    assert_eq!(parse_envelope(r#"{"ok":1,"extra":2}"#), Ok(Value::Int(1)));
    assert_eq!(
        parse_envelope(r#"{"ok":1,"err":{"code":"NOT_FOUND","message":"m"}}"#),
        Err(FnError::new(ErrorCode::NotFound, "m")),
        "an err wins"
    );
    assert_eq!(
        parse_envelope(r#"{"err":{"code":"NO_SUCH_CODE","message":"m"}}"#)
            .unwrap_err()
            .code,
        ErrorCode::Unknown
    );
    for bad in [
        "",
        "not json",
        "[1]",
        "null",
        "{}",
        r#"{"okay":1}"#,
        r#"{"err":"boom"}"#,
        r#"{"err":{"code":"FORBIDDEN"}}"#,
        r#"{"err":{"message":"m"}}"#,
        r#"{"err":null}"#,
    ] {
        let got = parse_envelope(bad);
        assert_eq!(
            got.as_ref().map_err(|e| e.code),
            Err(ErrorCode::FunctionFailed),
            "{bad:?}: {got:?}"
        );
    }
}

// ---- watch: live query functions ----

fn values(out: &[Outbound], conn: &str) -> Vec<(u64, Value)> {
    to(out, conn)
        .into_iter()
        .filter_map(|m| match m {
            ServerMsg::FnValue(v) => Some((v.seq, v.value)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_watched_query_function_sends_a_value_now_and_after_each_change() {
    let path = temp_db("watch");
    let mut e = open_with(&path, ShardConfig::default());
    e.connect("w", info(None), 0).unwrap();
    e.connect("a", info(None), 0).unwrap();
    let out = send(
        &mut e,
        "w",
        json!({"type": "watch", "id": "n", "name": "countCards"}),
    )
    .await;
    assert_eq!(values(&out, "w"), vec![(0, Value::Int(0))]);

    // A write to Card: the value changes and comes before the writer's answer.
    let out = send(&mut e, "a", call_msg("c1", "addCard", json!({"id": "k1"}))).await;
    assert_eq!(values(&out, "w"), vec![(1, Value::Int(1))]);
    let to_a = to(&out, "a");
    assert!(
        matches!(to_a.last(), Some(ServerMsg::Returned(r)) if r.seq == 1),
        "{to_a:?}"
    );
    let value_at = out
        .iter()
        .position(|o| matches!(o, Outbound::To(c, ServerMsg::FnValue(_)) if c == "w"));
    let result_at = out
        .iter()
        .position(|o| matches!(o, Outbound::To(c, ServerMsg::Returned(_)) if c == "a"));
    assert!(
        value_at < result_at,
        "the value goes before the result: {out:?}"
    );

    // A write to another entity does not run it; a write that leaves its
    // result unchanged sends nothing.
    let out = send(
        &mut e,
        "a",
        call_msg("c2", "addNoteTrusted", json!({"id": "n1", "owner": "u"})),
    )
    .await;
    assert!(values(&out, "w").is_empty(), "{out:?}");
    let out = send(
        &mut e,
        "a",
        json!({"type": "mut", "op": "m1", "ops": [
        {"type": "update", "entity": "Card", "id": "k1", "set": {"title": "same count"}}]}),
    )
    .await;
    assert!(values(&out, "w").is_empty(), "{out:?}");

    // Two writes in one flush: one run, one value.
    let mut out = e
        .message(
            "a",
            FrameRef::Text(
                &json!({"type": "mut", "op": "m2", "ops": [
        {"type": "insert", "entity": "Card", "row": {"id": "k2", "title": "t", "n": 1}}]})
                .to_string(),
            ),
            0,
        )
        .await;
    out.extend(
        e.message(
            "a",
            FrameRef::Text(
                &json!({"type": "mut", "op": "m3", "ops": [
        {"type": "insert", "entity": "Card", "row": {"id": "k3", "title": "t", "n": 1}}]})
                .to_string(),
            ),
            0,
        )
        .await,
    );
    out.extend(e.flush().await);
    assert_eq!(values(&out, "w"), vec![(seq(&e), Value::Int(3))]);

    // After a wake (the engine opened again over the same storage, the
    // socket still open) the watch is rebuilt and still follows writes.
    drop(e);
    let mut e = open_with(&path, ShardConfig::default());
    e.restore(vec![("w".into(), info(None)), ("a".into(), info(None))], 0)
        .await
        .unwrap();
    let out = send(&mut e, "a", call_msg("c3", "addCard", json!({"id": "k4"}))).await;
    assert_eq!(values(&out, "w"), vec![(seq(&e), Value::Int(4))]);

    // unsub stops it; its id is free again.
    let out = send(&mut e, "w", json!({"type": "unsub", "id": "n"})).await;
    assert!(to(&out, "w").is_empty(), "{out:?}");
    let out = send(&mut e, "a", call_msg("c4", "addCard", json!({"id": "k5"}))).await;
    assert!(values(&out, "w").is_empty(), "{out:?}");
}

#[tokio::test]
async fn a_watch_of_a_mutation_or_an_unknown_function_is_refused_with_its_id() {
    let mut e = open("watch-bad");
    e.connect("w", info(None), 0).unwrap();
    for (name, code) in [
        ("addCard", ErrorCode::WrongKind),
        ("nope", ErrorCode::UnknownFunction),
        ("ping", ErrorCode::WrongKind),
    ] {
        let out = send(
            &mut e,
            "w",
            json!({"type": "watch", "id": "x", "name": name}),
        )
        .await;
        match to(&out, "w").as_slice() {
            [ServerMsg::Err(err)] => {
                assert_eq!((err.code, err.sub.as_deref()), (code, Some("x")), "{name}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    // A watch id in use (also by a subscription) is a duplicate.
    send(
        &mut e,
        "w",
        json!({"type": "sub", "id": "s", "entity": "Card"}),
    )
    .await;
    let out = send(
        &mut e,
        "w",
        json!({"type": "watch", "id": "s", "name": "countCards"}),
    )
    .await;
    assert!(
        matches!(to(&out, "w").as_slice(), [ServerMsg::Err(err)] if err.code == ErrorCode::DuplicateSubscription),
        "{out:?}"
    );
}

#[tokio::test]
async fn a_watch_sees_what_its_caller_may_read() {
    let mut e = open("watch-policy");
    e.connect("alice", info(Some("alice")), 0).unwrap();
    e.connect("bob", info(Some("bob")), 0).unwrap();
    let watch = json!({"type": "watch", "id": "n", "name": "readNote", "args": {"id": "n1"}});
    send(&mut e, "bob", watch).await;
    let out = send(
        &mut e,
        "alice",
        call_msg("c1", "addNote", json!({"id": "n1", "owner": "alice"})),
    )
    .await;
    // Bob's watch re-ran (Note changed) but he still may not read it.
    assert!(values(&out, "bob").is_empty(), "{out:?}");
}

#[tokio::test]
async fn calls_queued_with_writes_share_one_flush_in_arrival_order() {
    let mut e = open("batch");
    e.connect("a", info(None), 0).unwrap();
    e.connect("w", info(None), 0).unwrap();
    let snap = send(
        &mut e,
        "w",
        json!({"type": "sub", "id": "s", "entity": "Card"}),
    )
    .await;
    let mut held = rows_of(&to(&snap, "w")[0]);
    let frames = [
        call_msg("c1", "addCard", json!({"id": "k1"})),
        json!({"type": "mut", "op": "m1", "ops": [{"type": "insert", "entity": "Card", "row": {"id": "k2", "title": "t", "n": 1}}]}),
        call_msg("c2", "twoThenFail", json!({})),
        call_msg("c1", "addCard", json!({"id": "k1"})),
        call_msg("c3", "addCard", json!({"id": "k3"})),
    ];
    let mut out = Vec::new();
    for f in &frames {
        out.extend(e.message("a", FrameRef::Text(&f.to_string()), 0).await);
    }
    assert!(
        to(&out, "a").is_empty(),
        "answered before the flush: {out:?}"
    );
    out.extend(e.flush().await);
    // One diff for the whole flush, before every answer.
    let to_w = to(&out, "w");
    assert_eq!(to_w.len(), 1, "{to_w:?}");
    apply(&mut held, &to_w[0]);
    assert_eq!(row_ids(&held), ["k1", "k2", "k3"]);
    let answers: Vec<String> = to(&out, "a")
        .iter()
        .map(|m| match m {
            ServerMsg::Returned(r) => format!("result {} {} dup={}", r.op, r.seq, r.dup),
            ServerMsg::Ack(a) => format!("ack {} {}", a.op, a.seq),
            ServerMsg::Err(err) => format!("err {} {}", err.op.as_deref().unwrap_or(""), err.code),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        answers,
        [
            "result c1 1 dup=false",
            "ack m1 2",
            "err c2 FUNCTION_ERROR",
            "result c1 1 dup=true",
            "result c3 3 dup=false",
        ]
    );
    // The retry within the batch has the first call's value.
    let retried = to(&out, "a")
        .into_iter()
        .filter_map(|m| match m {
            ServerMsg::Returned(r) if r.op == "c1" => Some(r.value),
            _ => None,
        })
        .collect::<Vec<_>>();
    assert_eq!(retried, [v(json!({"id": "k1"})), v(json!({"id": "k1"}))]);
    assert_eq!(seq(&e), 3);
    assert_eq!(ids(&e, "Card"), ["k1", "k2", "k3"]);
    // A retry after the flush gets the first result from storage.
    let (r, _) = call(
        &mut e,
        &AuthContext::anonymous(),
        "addCard",
        json!({"id": "k1"}),
        Some("c3"),
    )
    .await
    .unwrap();
    assert!(
        r.dup && r.seq == 3 && r.value == v(json!({"id": "k3"})),
        "{r:?}"
    );
}
