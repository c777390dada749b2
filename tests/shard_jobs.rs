//! Jobs from a mutation on real SQLite through the local host and its
//! virtual clock (docs/functions.md, "Jobs from a mutation"): a job goes
//! into the shard's job outbox in the mutation's commit, is sent to the
//! jobs ledger (`IoCall::EnqueueJobs`) only if the mutation commits, at
//! most 50 a call, and is deleted once the ledger took it; a failed send
//! is retried with backoff on a durable timer and survives an eviction or
//! a restart; its idempotency key stays the same across resends, so a
//! ledger that keeps one job per key enqueues it once. Bad specs, unknown
//! queues and handlers, and enqueues from a query are typed errors of the
//! call, with nothing written.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::OnceLock;

use pylon_workers::app::App;
use pylon_workers::functions::{dispatch_db, ActionCtx, Ctx, Functions};
use pylon_workers::host::local::LocalHost;
use pylon_workers::host::{IoCall, IoOutcome, Method, Request, Response};
use pylon_workers::jobs::{JobRequest, JobSpec};
use pylon_workers::policy::AuthContext;
use pylon_workers::protocol::{self, Encoding, Frame, FrameRef, ServerMsg};
use pylon_workers::shard::{LiveShard, JOBS_ANSWER_WAIT_MS};
use pylon_workers::storage::SqliteConn;
use pylon_workers::value::{Row, Value};
use serde_json::json;

const MANIFEST: &str = r#"{
  "entities": [{"name": "Card", "fields": [{"name": "title", "type": "string"}]}],
  "jobs": {"queues": ["default", "slow"], "enqueue": "signedIn"}
}"#;

fn row(j: serde_json::Value) -> Row {
    match Value::from(j) {
        Value::Map(m) => m,
        _ => unreachable!(),
    }
}

fn text<'a>(args: &'a Value, k: &str) -> Option<&'a str> {
    args.get(k).and_then(Value::as_str)
}

fn functions() -> Functions {
    Functions::new()
        // A card, and a job for it; `spec` overrides the job's fields,
        // `fail` fails the call after enqueuing.
        .mutation("addAndNotify", |ctx: &mut Ctx<'_>, args: Value| {
            let title = text(&args, "title").unwrap_or("t").to_owned();
            let id = ctx.db.insert("Card", row(json!({ "title": title })))?;
            let mut spec = json!({"name": "notify", "payload": {"id": id}});
            if let Some(Value::Map(over)) = args.get("spec") {
                for (k, v) in over {
                    spec[k] = serde_json::to_value(v).unwrap();
                }
            }
            let spec: JobSpec = Ctx::args(&Value::from(spec))?;
            let job = ctx.enqueue(spec)?;
            if args.get("fail").is_some() {
                return Err(ctx.error("ON_PURPOSE", "rolled back"));
            }
            Ok(Value::from(json!({"id": id, "job": job})))
        })
        // Jobs only, no rows: `count` of them, keyed `key` when given.
        .mutation("enqueueOnly", |ctx: &mut Ctx<'_>, args: Value| {
            let count = args.get("count").and_then(Value::as_i64).unwrap_or(1);
            let mut ids = Vec::new();
            for i in 0..count {
                let mut spec = JobSpec::new("notify", Value::from(json!({ "n": i })));
                spec.key = text(&args, "key").map(str::to_owned);
                ids.push(Value::from(ctx.enqueue(spec)?));
            }
            Ok(Value::List(ids))
        })
        // What the TypeScript runtime sends: the `enqueue` op as text.
        .mutation("enqueueText", |ctx: &mut Ctx<'_>, args: Value| {
            let payload = text(&args, "payload").unwrap_or_default();
            Ok(Value::from(dispatch_db(&mut *ctx.db, "enqueue", payload)))
        })
        .query("enqueueFromQuery", |ctx: &mut Ctx<'_>, _| {
            Ok(Value::from(
                ctx.enqueue(JobSpec::new("notify", Value::Null))?,
            ))
        })
        .query("aQuery", |_: &mut Ctx<'_>, _| Ok(Value::Null))
        // `runAfter` of an action: it becomes a delayed job.
        .mutation("notifyLater", |ctx: &mut Ctx<'_>, args: Value| {
            let ms = args.get("ms").and_then(Value::as_i64).unwrap_or(0);
            Ok(Value::from(ctx.run_after(ms, "notify", Value::Null)?))
        })
        .action("notify", |_: ActionCtx<'_>, _| {
            Box::pin(async { Ok(Value::Null) })
        })
}

type Host = LocalHost<Rc<SqliteConn>, LiveShard<Rc<SqliteConn>>>;

fn app() -> &'static App {
    static APP: OnceLock<App> = OnceLock::new();
    APP.get_or_init(|| App::new(MANIFEST).with_functions(functions()))
}

fn db() -> Rc<SqliteConn> {
    Rc::new(SqliteConn::open_in_memory().unwrap())
}

/// The jobs ledger as the shard sees it: keeps the first job of each key,
/// and answers as `answer` says. `taken_but_lost`: it takes the jobs but
/// the answer is an error (lost on the way back).
#[derive(Clone, Default)]
struct Ledger {
    jobs: Rc<RefCell<BTreeMap<String, JobRequest>>>,
    sends: Rc<RefCell<Vec<Vec<JobRequest>>>>,
    failing: Rc<Cell<bool>>,
    taken_but_lost: Rc<Cell<bool>>,
}

impl Ledger {
    fn attach(&self, h: &mut Host) {
        let l = self.clone();
        h.on_io(move |call| match call {
            IoCall::EnqueueJobs(batch) => {
                l.sends.borrow_mut().push(batch.clone());
                if l.failing.get() && !l.taken_but_lost.get() {
                    return IoOutcome::Applied(Err("calling the jobs ledger".into()));
                }
                for j in batch {
                    let key = j.spec.key.clone().expect("every job is sent with a key");
                    l.jobs.borrow_mut().entry(key).or_insert_with(|| j.clone());
                }
                if l.taken_but_lost.get() {
                    return IoOutcome::Applied(Err("the ledger's answer".into()));
                }
                IoOutcome::Applied(Ok(()))
            }
            _ => IoOutcome::Applied(Ok(())),
        });
    }

    fn sends(&self) -> Vec<Vec<JobRequest>> {
        self.sends.borrow().clone()
    }

    fn kept(&self) -> Vec<JobRequest> {
        self.jobs.borrow().values().cloned().collect()
    }
}

fn host_over(sql: Rc<SqliteConn>, ledger: &Ledger) -> Host {
    let mut h = LocalHost::open(sql, "room", app()).unwrap();
    ledger.attach(&mut h);
    h
}

fn call(h: &mut Host, name: &str, args: serde_json::Value, caller: AuthContext) -> Response {
    h.request_as(Method::Post, &format!("fn/{name}"), args, caller)
        .unwrap()
}

fn call_op(h: &mut Host, name: &str, op: &str, body: serde_json::Value) -> Response {
    h.request_raw(Request {
        method: Method::Post,
        object: "room".into(),
        rest: format!("fn/{name}"),
        query: vec![("op".into(), op.into())],
        caller: AuthContext::user("alice"),
        lease: Default::default(),
        body: body.to_string().into_bytes(),
    })
    .unwrap()
}

fn cards(h: &mut Host) -> u64 {
    let r = h
        .request_as(
            Method::Post,
            "query",
            json!({"entity": "Card", "count": true}),
            AuthContext::admin(),
        )
        .unwrap();
    r.body["count"].as_u64().unwrap()
}

fn depth(h: &Host) -> u64 {
    h.stats()["job_outbox"]["depth"].as_u64().unwrap()
}

fn ids(batch: &[JobRequest]) -> Vec<String> {
    batch.iter().map(|j| j.id.clone()).collect()
}

#[test]
fn a_committed_mutation_sends_its_job_once() {
    let ledger = Ledger::default();
    let mut h = host_over(db(), &ledger);
    let r = call(
        &mut h,
        "addAndNotify",
        json!({"title": "a"}),
        AuthContext::user("alice"),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let card = r.body["value"]["id"].as_str().unwrap().to_owned();
    let job = r.body["value"]["job"].as_str().unwrap().to_owned();

    let sends = ledger.sends();
    assert_eq!(sends.len(), 1, "sent right after the commit");
    let sent = &sends[0][0];
    let mut want = JobSpec::new("notify", Value::from(json!({ "id": card })));
    want.shard = Some("room".into());
    want.key = Some(job.clone());
    assert_eq!(
        sent,
        &JobRequest {
            id: job.clone(),
            spec: want,
            caller: AuthContext::user("alice"),
        }
    );
    assert_eq!(depth(&h), 0, "taken, so deleted");
    // The D1 drain runs on its own timer; then no timer is left.
    h.advance(1_000).unwrap();
    assert_eq!(h.alarm(), None, "no timer left once the ledger took it");
    // Once: time passes, an eviction, a wake: nothing is sent again.
    h.advance(10 * JOBS_ANSWER_WAIT_MS).unwrap();
    h.evict();
    assert_eq!(cards(&mut h), 1);
    h.advance(10 * JOBS_ANSWER_WAIT_MS).unwrap();
    assert_eq!(ledger.sends().len(), 1);
    assert_eq!(ledger.kept().len(), 1);
}

#[test]
fn a_rolled_back_mutation_sends_nothing() {
    let ledger = Ledger::default();
    let mut h = host_over(db(), &ledger);
    let r = call(
        &mut h,
        "addAndNotify",
        json!({"fail": true}),
        AuthContext::user("alice"),
    );
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (422, Some("FUNCTION_ERROR")),
        "{:?}",
        r.body
    );
    // An enqueue the bridge refuses adds nothing either.
    let r = call(
        &mut h,
        "enqueueText",
        json!({"payload": r#"{"name":"notify","priority":12}"#}),
        AuthContext::user("alice"),
    );
    assert!(
        r.body["value"].as_str().unwrap().contains("BAD_JOB"),
        "{:?}",
        r.body
    );
    assert_eq!(depth(&h), 0);
    assert_eq!(cards(&mut h), 0);
    h.advance(10 * JOBS_ANSWER_WAIT_MS).unwrap();
    assert!(ledger.sends().is_empty(), "{:?}", ledger.sends());
    assert_eq!(h.alarm(), None);
}

#[test]
fn a_failed_send_is_retried_with_backoff_and_its_rows_survive_a_restart() {
    let sql = db();
    let ledger = Ledger::default();
    ledger.failing.set(true);
    let mut h = host_over(sql.clone(), &ledger);
    let r = call(
        &mut h,
        "addAndNotify",
        json!({}),
        AuthContext::user("alice"),
    );
    assert_eq!(r.status, 200, "the mutation committed: {:?}", r.body);
    let job = r.body["value"]["job"].as_str().unwrap().to_owned();
    assert_eq!(ledger.sends().len(), 1);
    assert_eq!(depth(&h), 1, "kept until the ledger takes it");
    let stats = &h.stats()["job_outbox"];
    assert_eq!(stats["attempts"], 1, "{stats}");
    assert!(
        stats["last_error"]
            .as_str()
            .unwrap()
            .contains("calling the jobs ledger"),
        "{stats}"
    );
    // Backoff: 1 s, then 2 s.
    h.advance(999).unwrap();
    assert_eq!(ledger.sends().len(), 1, "not before the backoff");
    assert_eq!(h.alarm(), Some(1_000));
    h.advance(1).unwrap();
    assert_eq!(ledger.sends().len(), 2);
    assert_eq!(h.alarm(), Some(h.now_ms() + 2_000));

    // The object is evicted, then its runtime killed: a new host over the
    // same storage. The rows are there, and sent at once on open.
    h.evict();
    drop(h);
    ledger.failing.set(false);
    let mut h = host_over(sql, &ledger);
    assert_eq!(depth(&h), 1);
    h.advance(0).unwrap();
    let sends = ledger.sends();
    assert_eq!(sends.len(), 3, "sent again after the restart");
    assert!(
        sends.iter().all(|b| ids(b) == vec![job.clone()]),
        "the same job each time"
    );
    assert_eq!(
        sends[0], sends[2],
        "the same request, key included, every time"
    );
    assert_eq!(depth(&h), 0);
    assert_eq!(h.stats()["job_outbox"]["attempts"], 0);
    assert!(h.stats()["job_outbox"].get("last_error").is_none());
    assert_eq!(h.alarm(), None);
    h.advance(10 * JOBS_ANSWER_WAIT_MS).unwrap();
    assert_eq!(ledger.sends().len(), 3);
}

#[test]
fn a_lost_answer_means_a_resend_the_ledger_keeps_once() {
    let ledger = Ledger::default();
    ledger.taken_but_lost.set(true);
    let mut h = host_over(db(), &ledger);
    call(
        &mut h,
        "addAndNotify",
        json!({}),
        AuthContext::user("alice"),
    );
    call(
        &mut h,
        "addAndNotify",
        json!({"spec": {"key": "digest:today"}}),
        AuthContext::user("bob"),
    );
    h.advance(1_000).unwrap();
    ledger.taken_but_lost.set(false);
    h.advance(60_000).unwrap();
    let sends = ledger.sends();
    assert!(sends.len() >= 3, "{} sends", sends.len());
    assert_eq!(depth(&h), 0);
    // Every send of a job carried the same id and key.
    let mut seen: BTreeMap<String, JobRequest> = BTreeMap::new();
    for j in sends.iter().flatten() {
        assert_eq!(seen.entry(j.id.clone()).or_insert_with(|| j.clone()), j);
    }
    assert_eq!(seen.len(), 2);
    let kept = ledger.kept();
    assert_eq!(kept.len(), 2, "one job per key: {kept:?}");
    let keyed = kept
        .iter()
        .find(|j| j.spec.key.as_deref() == Some("digest:today"))
        .expect("its own key");
    assert_eq!(keyed.caller, AuthContext::user("bob"));
}

#[test]
fn a_long_outbox_goes_fifty_at_a_time_in_commit_order() {
    let ledger = Ledger::default();
    ledger.failing.set(true);
    let mut h = host_over(db(), &ledger);
    let mut all = Vec::new();
    for _ in 0..2 {
        let r = call(
            &mut h,
            "enqueueOnly",
            json!({"count": 60}),
            AuthContext::user("alice"),
        );
        assert_eq!(r.status, 200, "{:?}", r.body);
        all.extend(
            r.body["value"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned()),
        );
    }
    assert_eq!(depth(&h), 120);
    let failed = ledger.sends().len();
    ledger.failing.set(false);
    h.advance(2_000).unwrap();
    let sends = ledger.sends()[failed..].to_vec();
    let sizes: Vec<usize> = sends.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![50, 50, 20]);
    let sent: Vec<String> = sends.iter().flat_map(|b| ids(b)).collect();
    assert_eq!(sent, all, "in commit order, each once");
    assert_eq!(depth(&h), 0);
    assert_eq!(h.alarm(), None);
}

#[test]
fn bad_jobs_are_typed_errors_of_the_call_and_write_nothing() {
    let ledger = Ledger::default();
    let mut h = host_over(db(), &ledger);
    let big = "x".repeat(70 * 1024);
    for (spec, code) in [
        (json!({"priority": 10}), "BAD_JOB"),
        (json!({"delayMs": 43_200_001u64}), "BAD_JOB"),
        (json!({"name": "no-such"}), "BAD_JOB"),
        (json!({"key": ""}), "BAD_JOB"),
        (json!({"payload": {"big": big}}), "BAD_JOB"),
        (json!({"queue": "mail"}), "UNKNOWN_QUEUE"),
        (json!({"name": "noSuchFunction"}), "UNKNOWN_FUNCTION"),
        (json!({"name": "aQuery"}), "WRONG_KIND"),
    ] {
        let r = call(
            &mut h,
            "addAndNotify",
            json!({ "spec": spec }),
            AuthContext::user("alice"),
        );
        assert_eq!(r.body["error"]["code"], code, "{spec}: {:?}", r.body);
        assert_eq!(r.status, if code == "UNKNOWN_FUNCTION" { 404 } else { 400 });
    }
    let r = call(
        &mut h,
        "enqueueFromQuery",
        json!({}),
        AuthContext::user("alice"),
    );
    assert_eq!(r.body["error"]["code"], "READ_ONLY", "{:?}", r.body);
    // The bridge's op refuses fields a client may not set.
    let r = call(
        &mut h,
        "enqueueText",
        json!({"payload": r#"{"name":"notify","caller":{"isAdmin":true}}"#}),
        AuthContext::user("alice"),
    );
    let answer = r.body["value"].as_str().unwrap();
    assert!(answer.contains(r#""code":"BAD_JOB""#), "{answer}");
    assert!(answer.contains("unknown field"), "{answer}");

    assert_eq!(cards(&mut h), 0, "every card was rolled back");
    assert_eq!(depth(&h), 0);
    assert!(ledger.sends().is_empty());
    // A good one on the other queue goes.
    let r = call(
        &mut h,
        "addAndNotify",
        json!({"spec": {"queue": "slow", "priority": 9, "delayMs": 5_000, "maxRetries": 0}}),
        AuthContext::user("alice"),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let spec = &ledger.sends()[0][0].spec;
    assert_eq!(
        (
            spec.queue.as_str(),
            spec.priority,
            spec.delay_ms,
            spec.max_retries
        ),
        ("slow", 9, 5_000, 0)
    );
}

#[test]
fn a_retried_call_enqueues_once_and_a_key_names_one_job() {
    let ledger = Ledger::default();
    let mut h = host_over(db(), &ledger);
    // A mutation that only enqueues is recorded: its retry is a duplicate.
    let first = call_op(&mut h, "enqueueOnly", "once", json!({}));
    let again = call_op(&mut h, "enqueueOnly", "once", json!({}));
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(again.body["dup"], true, "{:?}", again.body);
    assert_eq!(first.body["value"], again.body["value"]);
    assert!(first.body["seq"].as_u64().unwrap() > 0);
    assert_eq!(ledger.sends().len(), 1);

    // The same key twice in one call: one job. In another call: the same
    // id (the ledger keeps the first).
    let r = call_op(
        &mut h,
        "enqueueOnly",
        "k1",
        json!({"count": 2, "key": "digest"}),
    );
    let in_one = r.body["value"].as_array().unwrap().clone();
    assert_eq!(in_one[0], in_one[1]);
    assert_eq!(ledger.sends()[1].len(), 1, "one row for the key");
    let r = call_op(&mut h, "enqueueOnly", "k2", json!({"key": "digest"}));
    assert_eq!(r.body["value"][0], in_one[0]);
    let ids: Vec<String> = ledger.kept().iter().map(|j| j.id.clone()).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
}

#[test]
fn a_call_over_the_socket_sends_its_job_after_its_flush() {
    let ledger = Ledger::default();
    let mut h = host_over(db(), &ledger);
    let conn = h
        .connect_as(Encoding::Json, AuthContext::user("carol"))
        .unwrap();
    let msg = json!({"type": "call", "op": "s1", "name": "addAndNotify", "args": {}});
    h.message(&conn, FrameRef::Text(&msg.to_string())).unwrap();
    h.advance(100).unwrap();
    let results: Vec<ServerMsg> = h
        .take_sent(&conn)
        .into_iter()
        .filter_map(|f| match f {
            Frame::Text(t) => protocol::decode_server(Encoding::Json, t.as_bytes()).ok(),
            Frame::Binary(_) => None,
        })
        .filter(|m| matches!(m, ServerMsg::Returned(_)))
        .collect();
    let ServerMsg::Returned(r) = &results[0] else {
        unreachable!()
    };
    let job = r.value.get("job").and_then(Value::as_str).unwrap();
    let sends = ledger.sends();
    assert_eq!(sends.len(), 1);
    assert_eq!(sends[0][0].id, job);
    assert_eq!(sends[0][0].caller, AuthContext::user("carol"));
    assert_eq!(depth(&h), 0);
}

#[test]
fn scheduling_an_action_enqueues_a_delayed_job_run_once() {
    let ledger = Ledger::default();
    let mut h = host_over(db(), &ledger);
    let r = call(
        &mut h,
        "notifyLater",
        json!({"ms": 5_000}),
        AuthContext::user("alice"),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let id = r.body["value"].as_str().unwrap().to_owned();
    let sends = ledger.sends();
    assert_eq!(sends.len(), 1, "a job, not a timer of the shard");
    let job = &sends[0][0];
    assert_eq!(
        (job.id.as_str(), job.spec.name.as_str()),
        (id.as_str(), "notify")
    );
    assert_eq!((job.spec.delay_ms, job.spec.max_retries), (5_000, 0));
    assert_eq!(job.spec.shard.as_deref(), Some("room"));
    // Past a queue's longest delay: a typed error, nothing sent.
    let r = call(
        &mut h,
        "notifyLater",
        json!({"ms": 13 * 3_600_000}),
        AuthContext::user("alice"),
    );
    assert_eq!(r.body["error"]["code"], "BAD_ARGS", "{:?}", r.body);
    assert_eq!(ledger.sends().len(), 1);
}
