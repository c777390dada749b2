//! The jobs ledger on real SQLite, through the local host: recording,
//! sending until the queue takes it, runs, retries with backoff, dead
//! letters, retry by hand, idempotency, listing, and a wake in between.

use std::cell::RefCell;
use std::rc::Rc;

use pylon_workers::app::App;
use pylon_workers::host::local::LocalHost;
use pylon_workers::host::{IoCall, IoOutcome, Method};
use pylon_workers::jobs::{JobLedger, JobMessage};
use pylon_workers::policy::AuthContext;
use pylon_workers::storage::SqliteConn;
use serde_json::{json, Value};

type Ledger = LocalHost<Rc<SqliteConn>, JobLedger<Rc<SqliteConn>>>;

fn app() -> &'static App {
    static APP: std::sync::OnceLock<App> = std::sync::OnceLock::new();
    APP.get_or_init(|| {
        App::new(r#"{"entities":[],"jobs":{"queues":["default","mail"],"enqueue":"signedIn"}}"#)
    })
}

/// What the queue was handed: (queue, message, delay in seconds).
type Sent = Rc<RefCell<Vec<(String, JobMessage, u32)>>>;

fn ledger() -> (Ledger, Sent, Rc<RefCell<bool>>) {
    let db = Rc::new(SqliteConn::open_in_memory().unwrap());
    let mut host = Ledger::open(db, "ledger", app()).unwrap();
    let sent: Sent = Rc::default();
    let down = Rc::new(RefCell::new(false));
    let (s, d) = (sent.clone(), down.clone());
    host.on_io(move |call| match call {
        IoCall::SendJob {
            queue,
            message,
            delay_secs,
        } => {
            if *d.borrow() {
                return IoOutcome::Applied(Err("queue unavailable".into()));
            }
            s.borrow_mut()
                .push((queue.clone(), message.clone(), *delay_secs));
            IoOutcome::Applied(Ok(()))
        }
        _ => IoOutcome::Applied(Ok(())),
    });
    (host, sent, down)
}

fn admin() -> AuthContext {
    AuthContext {
        is_admin: true,
        ..Default::default()
    }
}

fn enqueue(host: &mut Ledger, spec: Value) -> (u16, Value) {
    let r = host
        .request_as(
            Method::Post,
            "enqueue",
            json!({"jobs": [{"spec": spec, "caller": {"user_id": "u1"}}]}),
            AuthContext::user("u1"),
        )
        .unwrap();
    (r.status, r.body)
}

fn post(host: &mut Ledger, rest: &str, body: Value) -> (u16, Value) {
    let r = host.request_as(Method::Post, rest, body, admin()).unwrap();
    (r.status, r.body)
}

fn get(host: &mut Ledger, path: &str) -> Value {
    let (rest, query) = path.split_once('?').unwrap_or((path, ""));
    let query = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let r = host
        .request_raw(pylon_workers::host::Request {
            method: Method::Get,
            object: "ledger".into(),
            rest: rest.into(),
            query,
            caller: admin(),
            lease: Default::default(),
            body: vec![],
        })
        .unwrap();
    assert_eq!(r.status, 200, "{rest}: {}", r.body);
    r.body
}

fn last_send(sent: &Sent) -> JobMessage {
    sent.borrow().last().unwrap().1.clone()
}

#[test]
fn a_job_is_recorded_sent_run_and_done() {
    let (mut host, sent, _) = ledger();
    let (status, body) = enqueue(
        &mut host,
        json!({"name": "notify", "payload": {"x": 1}, "delayMs": 2500}),
    );
    assert_eq!(status, 201, "{body}");
    let id = body["jobs"][0]["id"].as_str().unwrap().to_owned();
    // Handed to the queue with its delay rounded up to whole seconds.
    assert_eq!(sent.borrow().len(), 1);
    assert_eq!(sent.borrow()[0].0, "default");
    assert_eq!(sent.borrow()[0].2, 3);
    let msg = last_send(&sent);
    assert_eq!(msg.id, id);

    let (_, started) = post(
        &mut host,
        &format!("runs/{id}/start"),
        json!({"send": msg.send}),
    );
    assert_eq!(started["run"], true, "{started}");
    assert_eq!(started["job"]["payload"], json!({"x": 1}));
    assert_eq!(started["caller"]["user_id"], "u1");
    assert_eq!(get(&mut host, &format!("jobs/{id}"))["status"], "running");

    let (_, fin) = post(
        &mut host,
        &format!("runs/{id}/finish"),
        json!({"send": msg.send, "ok": true, "result": {"sent": 1}}),
    );
    assert_eq!(fin["status"], "done");
    let job = get(&mut host, &format!("jobs/{id}"));
    assert_eq!(job["result"], json!({"sent": 1}));
    assert_eq!(job["attempts"], 1);

    // A redelivered copy of a done job does not run again.
    let (_, again) = post(
        &mut host,
        &format!("runs/{id}/start"),
        json!({"send": msg.send}),
    );
    assert_eq!(again["run"], false);
    assert_eq!(again["reason"], "done");
}

#[test]
fn failures_retry_with_backoff_then_the_job_is_dead_and_a_retry_by_hand_runs_it() {
    let (mut host, sent, _) = ledger();
    let (_, body) = enqueue(&mut host, json!({"name": "flaky", "maxRetries": 2}));
    let id = body["jobs"][0]["id"].as_str().unwrap().to_owned();
    let mut delays = Vec::new();
    for attempt in 1..=3 {
        let msg = last_send(&sent);
        let (_, s) = post(
            &mut host,
            &format!("runs/{id}/start"),
            json!({"send": msg.send}),
        );
        assert_eq!(s["run"], true, "attempt {attempt}: {s}");
        let (_, f) = post(
            &mut host,
            &format!("runs/{id}/finish"),
            json!({"send": msg.send, "ok": false, "error": {"code": "FUNCTION_FAILED", "message": "boom"}}),
        );
        if attempt < 3 {
            assert_eq!(f["status"], "failed", "{f}");
            delays.push(sent.borrow().last().unwrap().2);
        } else {
            assert_eq!(f["status"], "dead", "{f}");
        }
    }
    assert_eq!(delays, vec![1, 2], "backoff doubles");
    let job = get(&mut host, &format!("jobs/{id}"));
    assert_eq!(job["status"], "dead");
    assert_eq!(job["attempts"], 3);
    assert_eq!(job["error"]["message"], "boom");
    assert_eq!(job["error"]["attempt"], 3);
    let dead = get(&mut host, "jobs?status=dead");
    assert_eq!(dead["jobs"].as_array().unwrap().len(), 1);
    let stats = get(&mut host, "jobs/stats");
    assert_eq!(stats["queues"]["default"]["dead"], 1);

    // Retry by hand: queued again with no attempts, sent afresh.
    let (status, retried) = post(&mut host, &format!("jobs/{id}/retry"), json!({}));
    assert_eq!(status, 200, "{retried}");
    assert_eq!(retried["status"], "queued");
    assert_eq!(retried["attempts"], 0);
    let msg = last_send(&sent);
    post(
        &mut host,
        &format!("runs/{id}/start"),
        json!({"send": msg.send}),
    );
    let (_, f) = post(
        &mut host,
        &format!("runs/{id}/finish"),
        json!({"send": msg.send, "ok": true}),
    );
    assert_eq!(f["status"], "done");
    // Only a dead, failed or cancelled job is retried.
    let (status, body) = post(&mut host, &format!("jobs/{id}/retry"), json!({}));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("JOB_NOT_RETRYABLE"))
    );
}

#[test]
fn a_stale_copy_of_a_message_is_not_run() {
    let (mut host, sent, _) = ledger();
    let (_, body) = enqueue(&mut host, json!({"name": "once", "maxRetries": 5}));
    let id = body["jobs"][0]["id"].as_str().unwrap().to_owned();
    let first = last_send(&sent);
    post(
        &mut host,
        &format!("runs/{id}/start"),
        json!({"send": first.send}),
    );
    post(
        &mut host,
        &format!("runs/{id}/finish"),
        json!({"send": first.send, "ok": false, "error": {}}),
    );
    // The retry is a new send; the first message delivered again is stale.
    let (_, s) = post(
        &mut host,
        &format!("runs/{id}/start"),
        json!({"send": first.send}),
    );
    assert_eq!(
        (s["run"].clone(), s["reason"].clone()),
        (json!(false), json!("stale"))
    );
    // A late outcome of an old run changes nothing.
    let (_, f) = post(
        &mut host,
        &format!("runs/{id}/finish"),
        json!({"send": first.send, "ok": true}),
    );
    assert_eq!(f["stale"], true);
    assert_eq!(get(&mut host, &format!("jobs/{id}"))["status"], "failed");
}

#[test]
fn the_same_key_or_id_is_one_job() {
    let (mut host, sent, _) = ledger();
    let (s1, a) = enqueue(
        &mut host,
        json!({"name": "digest", "key": "digest:2026-12-01"}),
    );
    let (s2, b) = enqueue(
        &mut host,
        json!({"name": "digest", "key": "digest:2026-12-01"}),
    );
    assert_eq!((s1, s2), (201, 200));
    assert_eq!(a["jobs"][0]["id"], b["jobs"][0]["id"]);
    assert_eq!(b["jobs"][0]["created"], false);
    assert_eq!(sent.borrow().len(), 1, "sent once");
    let r = host
        .request_as(
            Method::Post,
            "enqueue",
            json!({"jobs": [{"id": "outbox-7", "spec": {"name": "a"}, "caller": {}}]}),
            admin(),
        )
        .unwrap();
    assert_eq!(r.status, 201);
    let again = host
        .request_as(
            Method::Post,
            "enqueue",
            json!({"jobs": [{"id": "outbox-7", "spec": {"name": "a"}, "caller": {}}]}),
            admin(),
        )
        .unwrap();
    assert_eq!(
        (again.status, again.body["jobs"][0]["id"].as_str()),
        (200, Some("outbox-7"))
    );
    assert_eq!(sent.borrow().len(), 2);
}

#[test]
fn bad_jobs_are_typed_errors_and_nothing_is_recorded() {
    let (mut host, sent, _) = ledger();
    for (spec, code) in [
        (json!({"name": "a", "queue": "nope"}), "UNKNOWN_QUEUE"),
        (
            json!({"name": "a", "delayMs": 50_000_000_000u64}),
            "BAD_JOB",
        ),
        (json!({"name": "a", "priority": 12}), "BAD_JOB"),
        (
            json!({"name": "a", "payload": "x".repeat(70_000)}),
            "PAYLOAD_TOO_LARGE",
        ),
    ] {
        let (status, body) = enqueue(&mut host, spec.clone());
        assert_eq!(body["error"]["code"], code, "{spec}: {body}");
        assert!(status >= 400);
    }
    let r = host
        .request_raw(pylon_workers::host::Request {
            method: Method::Post,
            object: "ledger".into(),
            rest: "enqueue".into(),
            query: vec![],
            caller: admin(),
            lease: Default::default(),
            body: b"{not json".to_vec(),
        })
        .unwrap();
    assert_eq!(r.body["error"]["code"], "BAD_JOB");
    assert!(sent.borrow().is_empty());
    assert_eq!(get(&mut host, "jobs")["jobs"], json!([]));
    let unknown = host
        .request_as(Method::Get, "jobs/job-999", Value::Null, admin())
        .unwrap();
    assert_eq!(
        (unknown.status, unknown.body["error"]["code"].as_str()),
        (404, Some("JOB_NOT_FOUND"))
    );
}

#[test]
fn a_send_the_queue_refused_is_redone_even_after_a_wake() {
    let (mut host, sent, down) = ledger();
    *down.borrow_mut() = true;
    let (status, body) = enqueue(&mut host, json!({"name": "later"}));
    assert_eq!(status, 201, "recorded although the queue is down");
    let id = body["jobs"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(get(&mut host, "jobs/stats")["unsent"], 1);
    host.evict();
    *down.borrow_mut() = false;
    host.advance(1_000).unwrap();
    assert_eq!(sent.borrow().len(), 1, "sent after the wake");
    assert_eq!(sent.borrow()[0].1.id, id);
    assert_eq!(get(&mut host, "jobs/stats")["unsent"], 0);
}

#[test]
fn cancel_lists_and_filters() {
    let (mut host, _, _) = ledger();
    let (_, a) = enqueue(&mut host, json!({"name": "a"}));
    enqueue(&mut host, json!({"name": "b", "queue": "mail"}));
    let a = a["jobs"][0]["id"].as_str().unwrap().to_owned();
    let (status, c) = post(&mut host, &format!("jobs/{a}/cancel"), json!({}));
    assert_eq!((status, c["status"].as_str()), (200, Some("cancelled")));
    let (status, c) = post(&mut host, &format!("jobs/{a}/cancel"), json!({}));
    assert_eq!(
        (status, c["error"]["code"].as_str()),
        (409, Some("JOB_NOT_CANCELLABLE"))
    );
    let mail = get(&mut host, "jobs?queue=mail");
    assert_eq!(mail["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(mail["jobs"][0]["name"], "b");
    let mut req = pylon_workers::host::Request {
        method: Method::Get,
        object: "ledger".into(),
        rest: "jobs".into(),
        query: vec![("status".into(), "bogus".into())],
        caller: admin(),
        lease: Default::default(),
        body: vec![],
    };
    assert_eq!(
        host.request_raw(req.clone()).unwrap().body["error"]["code"],
        "BAD_QUERY"
    );
    req.query = vec![("limit".into(), "1".into())];
    assert_eq!(
        host.request_raw(req).unwrap().body["jobs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_run_lost_with_its_consumer_is_an_attempt_and_ends_dead() {
    let (mut host, sent, _) = ledger();
    let (_, body) = enqueue(&mut host, json!({"name": "crashy", "maxRetries": 1}));
    let id = body["jobs"][0]["id"].as_str().unwrap().to_owned();
    let msg = last_send(&sent);
    // The same message delivered again while "running": its consumer died.
    for _ in 0..2 {
        let (_, s) = post(
            &mut host,
            &format!("runs/{id}/start"),
            json!({"send": msg.send}),
        );
        assert_eq!(s["run"], true, "{s}");
    }
    let (_, s) = post(
        &mut host,
        &format!("runs/{id}/start"),
        json!({"send": msg.send}),
    );
    assert_eq!(s["run"], false);
    let job = get(&mut host, &format!("jobs/{id}"));
    assert_eq!(job["status"], "dead");
    assert_eq!(job["error"]["code"], "CONSUMER_LOST");
    // The dead-letter queue's word on a job already dead changes nothing.
    let (_, d) = post(
        &mut host,
        &format!("runs/{id}/dead"),
        json!({"reason": "x"}),
    );
    assert_eq!(d["status"], "dead");
}

#[test]
fn workflow_reports_and_cron_runs_are_listed() {
    let (mut host, _, _) = ledger();
    for (id, status, at) in [
        ("w1", "running", 1),
        ("w1", "completed", 5),
        ("w1", "running", 3),
    ] {
        post(
            &mut host,
            "workflows",
            json!({"id": id, "workflow": "onboard", "status": status, "step": 1, "startedBy": "u1", "createdMs": 0, "updatedMs": at}),
        );
    }
    post(
        &mut host,
        "workflows",
        json!({"id": "w2", "workflow": "onboard", "status": "waiting", "step": 2, "startedBy": "u2", "createdMs": 1, "updatedMs": 1}),
    );
    let all = get(&mut host, "workflows");
    assert_eq!(all["workflows"].as_array().unwrap().len(), 2);
    assert_eq!(
        all["workflows"][1]["status"], "completed",
        "a late report does not go back"
    );
    // A user sees only the instances they started.
    let mine = host
        .request_as(
            Method::Get,
            "workflows",
            Value::Null,
            AuthContext::user("u2"),
        )
        .unwrap();
    assert_eq!(mine.body["workflows"].as_array().unwrap().len(), 1);
    assert_eq!(mine.body["workflows"][0]["id"], "w2");

    post(&mut host, "crons/nightly", json!({"atMs": 10}));
    post(
        &mut host,
        "crons/nightly",
        json!({"atMs": 20, "error": "FUNCTION_FAILED: x"}),
    );
    let runs = get(&mut host, "crons");
    assert_eq!(runs["runs"]["nightly"]["runs"], 2);
    assert_eq!(runs["runs"]["nightly"]["failures"], 1);
    assert_eq!(runs["runs"]["nightly"]["lastOk"], false);
}

#[test]
fn a_job_whose_message_was_lost_is_sent_again_once_overdue() {
    let (mut host, sent, _) = ledger();
    let (_, body) = enqueue(&mut host, json!({"name": "lost"}));
    let id = body["jobs"][0]["id"].as_str().unwrap().to_owned();
    let first = last_send(&sent);
    // The queue forgot it (a local queue restarted): nothing starts it.
    host.advance(30_000).unwrap();
    assert_eq!(sent.borrow().len(), 1, "not before the grace");
    host.advance(60_000).unwrap();
    assert_eq!(sent.borrow().len(), 2, "sent again once overdue");
    let again = last_send(&sent);
    assert!(again.send > first.send);
    // The old copy, should it turn up, is stale; the new one runs.
    let (_, s) = post(
        &mut host,
        &format!("runs/{id}/start"),
        json!({"send": first.send}),
    );
    assert_eq!(s["run"], false);
    let (_, s) = post(
        &mut host,
        &format!("runs/{id}/start"),
        json!({"send": again.send}),
    );
    assert_eq!(s["run"], true);
    post(
        &mut host,
        &format!("runs/{id}/finish"),
        json!({"send": again.send, "ok": true}),
    );
    // Nothing waits any more: the sweeping stops, and the ledger can rest.
    host.advance(120_000).unwrap();
    assert_eq!(sent.borrow().len(), 2);
    assert_eq!(host.alarm(), None);
}

#[test]
fn the_overdue_grace_is_a_deployment_setting() {
    let db = Rc::new(SqliteConn::open_in_memory().unwrap());
    let mut host = Ledger::open(db, "ledger", app()).unwrap();
    host.var("PYLON_JOBS_OVERDUE_MS", "4000");
    host.evict();
    let sent: Sent = Rc::default();
    let s = sent.clone();
    host.on_io(move |call| {
        if let IoCall::SendJob {
            queue,
            message,
            delay_secs,
        } = call
        {
            s.borrow_mut()
                .push((queue.clone(), message.clone(), *delay_secs));
        }
        IoOutcome::Applied(Ok(()))
    });
    enqueue(&mut host, json!({"name": "lost"}));
    host.advance(3_000).unwrap();
    assert_eq!(sent.borrow().len(), 1);
    host.advance(4_000).unwrap();
    assert_eq!(sent.borrow().len(), 2, "sent again after 4 s, not a minute");
}

#[test]
fn job_ids_are_never_handed_out_twice_across_wakes_and_list_newest_first() {
    let (mut host, _, _) = ledger();
    let mut ids = Vec::new();
    for round in 0..3 {
        for i in 0..3 {
            let (status, body) = enqueue(&mut host, json!({"name": "n", "payload": {"i": i}}));
            assert_eq!(status, 201, "{body}");
            ids.push(body["jobs"][0]["id"].as_str().unwrap().to_owned());
        }
        // The rest of the reserved block is skipped, not reused.
        if round < 2 {
            host.evict();
        }
    }
    let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
    let listed = get(&mut host, "jobs?limit=50");
    let order: Vec<&str> = listed["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    let newest_first: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(order, newest_first);
}
