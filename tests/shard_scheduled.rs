//! Scheduled functions on real SQLite through the local host and its
//! virtual clock (docs/functions.md, "Scheduled functions"): a mutation's
//! `run_after` is stored only if it commits, runs when due on the shard's
//! alarm as the caller that scheduled it, survives an eviction, runs once,
//! and can be cancelled; queries cannot schedule; an unknown or
//! non-mutation target fails the scheduling call.

use std::rc::Rc;
use std::sync::OnceLock;

use pylon_workers::app::App;
use pylon_workers::functions::{Ctx, FnError, Functions};
use pylon_workers::host::local::LocalHost;
use pylon_workers::host::{Method, Response};
use pylon_workers::policy::AuthContext;
use pylon_workers::shard::LiveShard;
use pylon_workers::storage::SqliteConn;
use pylon_workers::value::{Row, Value};
use serde_json::json;

const MANIFEST: &str = r#"{
  "entities": [
    {"name": "Card", "fields": [{"name": "title", "type": "string"}]},
    {"name": "Note", "fields": [{"name": "owner", "type": "string"}]}
  ],
  "policies": [
    {"name": "ownNotes", "entity": "Note",
     "allowRead": "data.owner == auth.userId", "allowWrite": "data.owner == auth.userId"}
  ]
}"#;

fn text<'a>(args: &'a Value, k: &str) -> Result<&'a str, FnError> {
    args.get(k)
        .and_then(Value::as_str)
        .ok_or_else(|| FnError::bad_args(&format!("args.{k}"), "expected a string"))
}

fn row(j: serde_json::Value) -> Row {
    match Value::from(j) {
        Value::Map(m) => m,
        _ => unreachable!(),
    }
}

fn functions() -> Functions {
    Functions::new()
        .mutation("addCard", |ctx: &mut Ctx<'_>, args: Value| {
            let title = text(&args, "title")?.to_owned();
            Ok(Value::from(
                ctx.db.insert("Card", row(json!({"title": title})))?,
            ))
        })
        .mutation("addCardLater", |ctx: &mut Ctx<'_>, args: Value| {
            let delay = args.get("delayMs").and_then(Value::as_i64).unwrap_or(0);
            let title = text(&args, "title")?;
            let id = ctx.run_after(delay, "addCard", Value::from(json!({"title": title})))?;
            if args.get("fail").is_some() {
                return Err(ctx.error("ON_PURPOSE", "rolled back"));
            }
            Ok(Value::from(id))
        })
        .mutation("cancelLater", |ctx: &mut Ctx<'_>, args: Value| {
            ctx.cancel(text(&args, "id")?)?;
            Ok(Value::Null)
        })
        .mutation("addNoteLater", |ctx: &mut Ctx<'_>, args: Value| {
            let owner = text(&args, "owner")?;
            let note = Value::from(json!({"owner": owner}));
            Ok(Value::from(ctx.run_after(10, "addNote", note)?))
        })
        .mutation("addNote", |ctx: &mut Ctx<'_>, args: Value| {
            let owner = text(&args, "owner")?.to_owned();
            Ok(Value::from(
                ctx.db.insert("Note", row(json!({"owner": owner})))?,
            ))
        })
        .mutation("scheduleTypo", |ctx: &mut Ctx<'_>, _| {
            Ok(Value::from(ctx.run_after(
                10,
                "noSuchThing",
                Value::Null,
            )?))
        })
        .query("scheduleFromQuery", |ctx: &mut Ctx<'_>, _| {
            Ok(Value::from(ctx.run_after(10, "addCard", Value::Null)?))
        })
}

type Host = LocalHost<Rc<SqliteConn>, LiveShard<Rc<SqliteConn>>>;

fn app() -> &'static App {
    static APP: OnceLock<App> = OnceLock::new();
    APP.get_or_init(|| App::new(MANIFEST).with_functions(functions()))
}

fn host() -> Host {
    LocalHost::open(
        Rc::new(SqliteConn::open_in_memory().unwrap()),
        "room",
        app(),
    )
    .unwrap()
}

fn call(h: &mut Host, name: &str, args: serde_json::Value, caller: AuthContext) -> Response {
    h.request_as(Method::Post, &format!("fn/{name}"), args, caller)
        .unwrap()
}

fn count(h: &mut Host, entity: &str) -> u64 {
    let r = h
        .request_as(
            Method::Post,
            "query",
            json!({"entity": entity, "count": true}),
            AuthContext::admin(),
        )
        .unwrap();
    r.body["count"].as_u64().unwrap()
}

#[test]
fn a_scheduled_call_runs_when_due_once_and_survives_an_eviction() {
    let mut h = host();
    let r = call(
        &mut h,
        "addCardLater",
        json!({"title": "later", "delayMs": 5_000}),
        AuthContext::anonymous(),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let id = r.body["value"].as_str().unwrap().to_owned();
    assert_eq!(h.stats()["scheduled"], 1);
    let due = h.alarm().expect("the alarm is set for it");
    assert!(
        due >= h.now_ms() + 4_000,
        "alarm at {due}, now {}",
        h.now_ms()
    );

    h.advance(4_000).unwrap();
    assert_eq!(count(&mut h, "Card"), 0, "not before its time");
    h.evict();
    h.advance(1_500).unwrap();
    assert_eq!(count(&mut h, "Card"), 1, "ran after the eviction");
    assert_eq!(h.stats()["scheduled"], 0);
    // Once: more time, no second run; the op id of its run is taken.
    h.advance(60_000).unwrap();
    assert_eq!(count(&mut h, "Card"), 1);
    // Its run took the op id `sched:{id}`: the same op again is a retry.
    let again = h
        .request_raw(pylon_workers::host::Request {
            method: Method::Post,
            object: "room".into(),
            rest: "fn/addCard".into(),
            query: vec![("op".into(), format!("sched:{id}"))],
            caller: AuthContext::anonymous(),
            lease: Default::default(),
            body: br#"{"title": "again"}"#.to_vec(),
        })
        .unwrap();
    assert_eq!(again.body["dup"], true, "{:?}", again.body);
    assert_eq!(count(&mut h, "Card"), 1);
}

#[test]
fn a_rolled_back_mutation_schedules_nothing_and_a_cancel_holds() {
    let mut h = host();
    let r = call(
        &mut h,
        "addCardLater",
        json!({"title": "never", "delayMs": 10, "fail": true}),
        AuthContext::anonymous(),
    );
    assert_eq!(r.status, 422, "{:?}", r.body);
    assert_eq!(h.stats()["scheduled"], 0);

    let r = call(
        &mut h,
        "addCardLater",
        json!({"title": "cancelled", "delayMs": 1_000}),
        AuthContext::anonymous(),
    );
    let id = r.body["value"].as_str().unwrap().to_owned();
    let r = call(
        &mut h,
        "cancelLater",
        json!({"id": id}),
        AuthContext::anonymous(),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(h.stats()["scheduled"], 0);
    h.advance(5_000).unwrap();
    assert_eq!(count(&mut h, "Card"), 0);
    // Cancelling what already ran (or never was) is not an error.
    let r = call(
        &mut h,
        "cancelLater",
        json!({"id": "t99.0"}),
        AuthContext::anonymous(),
    );
    assert_eq!(r.status, 200);
}

#[test]
fn a_scheduled_call_runs_as_its_caller() {
    let mut h = host();
    // Alice schedules a note for Bob: the policy refuses it when it runs
    // (as Alice), so nothing is written; her own note runs fine.
    call(
        &mut h,
        "addNoteLater",
        json!({"owner": "bob"}),
        AuthContext::user("alice"),
    );
    call(
        &mut h,
        "addNoteLater",
        json!({"owner": "alice"}),
        AuthContext::user("alice"),
    );
    assert_eq!(h.stats()["scheduled"], 2);
    h.advance(1_000).unwrap();
    assert_eq!(h.stats()["scheduled"], 0, "both ran (one failed)");
    assert_eq!(count(&mut h, "Note"), 1);
}

#[test]
fn bad_schedules_fail_the_scheduling_call() {
    let mut h = host();
    let r = call(&mut h, "scheduleTypo", json!({}), AuthContext::anonymous());
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (404, Some("UNKNOWN_FUNCTION")),
        "{:?}",
        r.body
    );
    let r = call(
        &mut h,
        "scheduleFromQuery",
        json!({}),
        AuthContext::anonymous(),
    );
    assert_eq!(r.body["error"]["code"], "READ_ONLY", "{:?}", r.body);
    assert_eq!(h.stats()["scheduled"], 0);
    assert_eq!(h.alarm(), None, "no timer for nothing");
}

#[test]
fn a_retried_scheduling_call_schedules_once() {
    let mut h = host();
    let post = |h: &mut Host| {
        h.request_raw(pylon_workers::host::Request {
            method: Method::Post,
            object: "room".into(),
            rest: "fn/addCardLater".into(),
            query: vec![("op".into(), "once".into())],
            caller: AuthContext::anonymous(),
            lease: Default::default(),
            body: br#"{"title": "once", "delayMs": 100}"#.to_vec(),
        })
        .unwrap()
    };
    let first = post(&mut h);
    let second = post(&mut h);
    assert_eq!(second.body["dup"], true, "{:?}", second.body);
    assert_eq!(first.body["value"], second.body["value"]);
    assert_eq!(h.stats()["scheduled"], 1);
    h.advance(1_000).unwrap();
    assert_eq!(count(&mut h, "Card"), 1);
}

#[test]
fn scheduled_calls_are_listed_and_cancelled_over_http_by_their_owner() {
    let mut h = host();
    for who in ["alice", "bob"] {
        let r = call(
            &mut h,
            "addCardLater",
            json!({"title": who, "delayMs": 5_000}),
            AuthContext::user(who),
        );
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    let list = |h: &mut Host, who: AuthContext| {
        h.request_as(Method::Get, "scheduled", serde_json::Value::Null, who)
            .unwrap()
    };
    let mine = list(&mut h, AuthContext::user("alice"));
    let calls = mine.body["scheduled"].as_array().unwrap().clone();
    assert_eq!(calls.len(), 1, "alice sees her own: {:?}", mine.body);
    assert_eq!(
        (calls[0]["name"].as_str(), calls[0]["scheduledBy"].as_str()),
        (Some("addCard"), Some("alice"))
    );
    let admin = AuthContext {
        is_admin: true,
        ..Default::default()
    };
    assert_eq!(
        list(&mut h, admin).body["scheduled"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        list(&mut h, AuthContext::anonymous()).body["scheduled"],
        json!([])
    );

    let id = calls[0]["id"].as_str().unwrap().to_owned();
    let cancel = |h: &mut Host, who: AuthContext| {
        h.request_as(
            Method::Post,
            &format!("scheduled/{id}/cancel"),
            json!({}),
            who,
        )
        .unwrap()
    };
    assert_eq!(
        cancel(&mut h, AuthContext::user("bob")).status,
        404,
        "not bob's"
    );
    assert_eq!(cancel(&mut h, AuthContext::user("alice")).status, 200);
    assert_eq!(
        cancel(&mut h, AuthContext::user("alice")).status,
        404,
        "gone"
    );
    h.advance(10_000).unwrap();
    assert_eq!(count(&mut h, "Card"), 1, "only bob's ran");
}
