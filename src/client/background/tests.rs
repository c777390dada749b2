//! The three APIs against a scripted [`HttpClient`]: each method's route,
//! method, body and headers, the typed answers, and how a refusal, a
//! malformed answer and no answer are reported. (`PlainHttp` itself is
//! tested on real sockets in `client/http.rs`, and the whole against
//! `wrangler dev` in the e2e scenario `background_clients`.)

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::*;
use crate::http::{HttpError, HttpRequest, HttpResponse, Method};

/// Answers each request with the next scripted answer and keeps the
/// requests.
#[derive(Clone, Default)]
struct Scripted {
    answers: Arc<Mutex<Vec<Result<HttpResponse, HttpError>>>>,
    seen: Arc<Mutex<Vec<HttpRequest>>>,
}

impl Scripted {
    fn new(answers: Vec<(u16, &str)>) -> Scripted {
        let answers = answers
            .into_iter()
            .rev()
            .map(|(status, body)| {
                Ok(HttpResponse {
                    status,
                    headers: Vec::new(),
                    body: body.as_bytes().to_vec(),
                })
            })
            .collect();
        Scripted {
            answers: Arc::new(Mutex::new(answers)),
            seen: Arc::default(),
        }
    }

    fn seen(&self) -> Vec<HttpRequest> {
        self.seen.lock().unwrap().clone()
    }

    /// `(method, url, JSON body or Null)` of each request so far.
    fn calls(&self) -> Vec<(Method, String, Value)> {
        self.seen()
            .into_iter()
            .map(|r| {
                let body = serde_json::from_slice(&r.body).unwrap_or(Value::Null);
                (r.method, r.url, body)
            })
            .collect()
    }
}

impl HttpClient for Scripted {
    async fn send(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        self.seen.lock().unwrap().push(req);
        self.answers
            .lock()
            .unwrap()
            .pop()
            .unwrap_or(Err(HttpError::Network("nothing scripted".into())))
    }
}

const JOB: &str = r#"{"id":"j1","name":"moveCard","queue":"default","payload":{"cardId":"k1"},
  "priority":5,"maxRetries":3,"attempts":1,"status":"done","error":null,"result":{"moved":true},
  "key":null,"shard":"s1","enqueuedBy":"ops","runAtMs":1,"createdMs":1,"updatedMs":3,
  "startedMs":2,"finishedMs":3}"#;

const STATE: &str = r#"{"id":"wf-1","workflow":"onboard","status":"waiting","step":2,
  "stepName":"approval","input":{"title":"x"},"output":null,"error":null,"startedBy":"ann",
  "createdMs":1,"updatedMs":2,"steps":{"open":{"cardId":"c1"},"cool":null},
  "history":[{"step":0,"name":"open","kind":"run","status":"completed","attempts":1,
   "result":{"cardId":"c1"},"startedMs":1,"finishedMs":1},
   {"step":2,"name":"approval","kind":"waitForEvent","status":"waiting","attempts":0,
   "startedMs":2,"finishedMs":null}],
  "waitingFor":"approved","wakeAtMs":600002}"#;

#[tokio::test]
async fn jobs_routes_bodies_and_answers() {
    let http = Scripted::new(vec![
        (201, r#"{"id":"j1","created":true,"status":"queued"}"#),
        (200, JOB),
        (200, &format!(r#"{{"jobs":[{JOB}]}}"#)),
        (200, r#"{"jobs":[]}"#),
        (
            200,
            r#"{"queues":{"default":{"queued":0,"done":2},"slow":{}},"unsent":1}"#,
        ),
        (200, JOB),
        (200, JOB),
    ]);
    let jobs = Jobs::with_http("ws://127.0.0.1:8787/", http.clone()).token("tok");

    let queued = jobs
        .enqueue(
            "moveCard",
            json!({"cardId": "k1"}),
            EnqueueOptions::default()
                .shard("team:42")
                .delay_ms(3000)
                .priority(9)
                .key("k"),
        )
        .await
        .unwrap();
    assert_eq!(
        queued,
        Enqueued {
            id: "j1".into(),
            created: true,
            status: JobStatus::Queued
        }
    );
    let job = jobs.get("job/1:a").await.unwrap();
    assert_eq!(
        (job.status, job.attempts, job.enqueued_by.as_deref()),
        (JobStatus::Done, 1, Some("ops"))
    );
    assert_eq!(job.result, Some(json!({"moved": true})));
    let filter = JobFilter::default()
        .status(JobStatus::Dead)
        .queue("slow")
        .name("a b")
        .limit(500);
    assert_eq!(jobs.list(&filter).await.unwrap(), vec![job.clone()]);
    assert!(jobs.list(&JobFilter::default()).await.unwrap().is_empty());
    let stats = jobs.stats().await.unwrap();
    assert_eq!(
        (
            stats.count("default", JobStatus::Done),
            stats.count("nope", JobStatus::Done)
        ),
        (2, 0)
    );
    assert_eq!(stats.unsent, 1);
    jobs.retry("j1").await.unwrap();
    jobs.cancel("j1").await.unwrap();

    let base = "http://127.0.0.1:8787";
    assert_eq!(
        http.calls(),
        vec![
            // Only the options given: the server's defaults apply to the rest.
            (
                Method::Post,
                format!("{base}/v1/jobs"),
                json!({"name": "moveCard", "payload": {"cardId": "k1"}, "shard": "team:42",
                       "delayMs": 3000, "priority": 9, "key": "k"})
            ),
            (
                Method::Get,
                format!("{base}/v1/jobs/job%2F1:a"),
                Value::Null
            ),
            (
                Method::Get,
                format!("{base}/v1/jobs?status=dead&queue=slow&name=a%20b&limit=500"),
                Value::Null
            ),
            (Method::Get, format!("{base}/v1/jobs"), Value::Null),
            (Method::Get, format!("{base}/v1/jobs/stats"), Value::Null),
            (Method::Post, format!("{base}/v1/jobs/j1/retry"), json!({})),
            (Method::Post, format!("{base}/v1/jobs/j1/cancel"), json!({})),
        ]
    );
    for r in http.seen() {
        assert_eq!(r.header_value("authorization"), Some("Bearer tok"));
        let json_body = (r.method == Method::Post).then_some("application/json");
        assert_eq!(r.header_value("content-type"), json_body);
    }
}

#[tokio::test]
async fn workflows_routes_bodies_and_answers() {
    let http = Scripted::new(vec![
        (201, STATE),
        (200, STATE),
        (200, STATE),
        (
            200,
            r#"{"workflows":[{"id":"wf-1","workflow":"onboard","status":"waiting","step":2,
                "startedBy":"ann","createdMs":1,"updatedMs":2}]}"#,
        ),
        (202, STATE),
        (200, STATE),
        (200, STATE),
    ]);
    let mut workflows = Workflows::with_http("http://h", http.clone()).token("t");
    let state = workflows
        .start(
            "onboard",
            json!({"title": "x"}),
            StartOptions::default().shard("s1"),
        )
        .await
        .unwrap();
    assert_eq!(state.status, WorkflowStatus::Waiting);
    assert_eq!(state.waiting_for.as_deref(), Some("approved"));
    assert_eq!(state.steps["open"], json!({"cardId": "c1"}));
    assert_eq!(state.history[1].result, None);
    assert_eq!(state.history[0].result, Some(json!({"cardId": "c1"})));
    workflows
        .start(
            "onboard",
            Value::Null,
            StartOptions::default().id("wf:mine"),
        )
        .await
        .unwrap();
    workflows.get("wf:1").await.unwrap();
    let filter = WorkflowFilter::default()
        .workflow("onboard")
        .status(WorkflowStatus::Waiting)
        .limit(5);
    let listed = workflows.list(&filter).await.unwrap();
    assert_eq!(listed[0].started_by.as_deref(), Some("ann"));
    workflows
        .send_event("wf-1", "approved", json!({"by": "rust"}))
        .await
        .unwrap();
    workflows.cancel("wf-1").await.unwrap();
    workflows.set_token(None);
    workflows.advance("wf-1").await.unwrap();

    assert_eq!(
        http.calls(),
        vec![
            (
                Method::Post,
                "http://h/v1/workflows".into(),
                json!({"workflow": "onboard", "input": {"title": "x"}, "shard": "s1"})
            ),
            (
                Method::Post,
                "http://h/v1/workflows".into(),
                json!({"workflow": "onboard", "input": null, "id": "wf:mine"})
            ),
            (
                Method::Get,
                "http://h/v1/workflows/wf:1".into(),
                Value::Null
            ),
            (
                Method::Get,
                "http://h/v1/workflows?workflow=onboard&status=waiting&limit=5".into(),
                Value::Null
            ),
            (
                Method::Post,
                "http://h/v1/workflows/wf-1/events".into(),
                json!({"name": "approved", "payload": {"by": "rust"}})
            ),
            (
                Method::Post,
                "http://h/v1/workflows/wf-1/cancel".into(),
                json!({})
            ),
            (
                Method::Post,
                "http://h/v1/workflows/wf-1/advance".into(),
                json!({})
            ),
        ]
    );
    let seen = http.seen();
    assert_eq!(seen[5].header_value("authorization"), Some("Bearer t"));
    assert_eq!(
        seen[6].header_value("authorization"),
        None,
        "the token was taken away"
    );
}

#[tokio::test]
async fn scheduler_lists_and_triggers() {
    let http = Scripted::new(vec![
        (
            200,
            r#"{"crons":[{"name":"tidyTick","cron":"*/30 * * * *","run":"addCardChecked",
               "args":{"title":"t"},"shard":"cron-board","lastRuns":{"runs":2,"failures":1,
               "lastMs":5,"lastOk":false,"lastError":"FUNCTION_ERROR: no"}},
               {"name":"quiet","cron":"0 * * * *","run":"sweep","lastRuns":null}]}"#,
        ),
        (200, r#"{"ok":true,"value":"c1"}"#),
        (
            200,
            r#"{"ok":false,"error":{"code":"FUNCTION_FAILED","message":"boom"}}"#,
        ),
    ]);
    let scheduler = Scheduler::with_http("http://h", http.clone());
    let crons = scheduler.list().await.unwrap();
    let runs = crons[0].last_runs.as_ref().unwrap();
    assert_eq!((runs.runs, runs.last_ok), (2, false));
    assert_eq!(
        (crons[1].args.clone(), crons[1].last_runs.clone()),
        (Value::Null, None)
    );
    let ran = scheduler.trigger("tidy Tick").await.unwrap();
    assert_eq!((ran.ok, ran.value), (true, Some(json!("c1"))));
    let failed = scheduler.trigger("x").await.unwrap();
    assert_eq!(failed.error.unwrap().code, "FUNCTION_FAILED");
    assert_eq!(
        http.calls(),
        vec![
            (Method::Get, "http://h/v1/crons".into(), Value::Null),
            (
                Method::Post,
                "http://h/v1/crons/tidy%20Tick/run".into(),
                json!({})
            ),
            (Method::Post, "http://h/v1/crons/x/run".into(), json!({})),
        ]
    );
    assert_eq!(http.seen()[0].header_value("authorization"), None);
}

#[tokio::test]
async fn errors_carry_the_servers_code_and_status() {
    let http = Scripted::new(vec![
        (
            403,
            r#"{"error":{"code":"FORBIDDEN","message":"listing jobs: not allowed for this caller"}}"#,
        ),
        (
            409,
            r#"{"error":{"code":"WORKFLOW_FINISHED","message":"done"}}"#,
        ),
        (502, "<html>bad gateway</html>"),
        (200, "not json"),
        (200, r#"{"jobs":"not a list"}"#),
    ]);
    let jobs = Jobs::with_http("http://h", http.clone());
    let e = jobs.list(&JobFilter::default()).await.unwrap_err();
    assert_eq!(
        e,
        RequestError::Refused {
            status: 403,
            code: "FORBIDDEN".into(),
            message: "listing jobs: not allowed for this caller".into()
        }
    );
    assert_eq!((e.code(), e.status()), ("FORBIDDEN", Some(403)));
    let workflows = Workflows::with_http("http://h", http.clone());
    let e = workflows
        .send_event("wf-1", "approved", Value::Null)
        .await
        .unwrap_err();
    assert_eq!((e.code(), e.status()), ("WORKFLOW_FINISHED", Some(409)));
    let e = jobs.stats().await.unwrap_err();
    assert_eq!((e.code(), e.status()), ("HTTP_502", Some(502)));
    let e = jobs.get("j1").await.unwrap_err();
    assert_eq!((e.code(), e.status()), ("BAD_RESPONSE", Some(200)));
    let e = jobs.list(&JobFilter::default()).await.unwrap_err();
    assert_eq!(e.code(), "BAD_RESPONSE");
    // Nothing left to answer: the client's own failure.
    let e = jobs
        .enqueue("x", Value::Null, EnqueueOptions::default())
        .await
        .unwrap_err();
    assert_eq!((e.code(), e.status()), ("UNAVAILABLE", None));
    assert!(matches!(
        e,
        RequestError::Unavailable(HttpError::Network(_))
    ));
}

#[test]
fn base_urls_and_segments() {
    let origin = |b: &str| Api::with_http(b, Scripted::default()).origin;
    assert_eq!(origin("ws://127.0.0.1:8787/"), "http://127.0.0.1:8787");
    assert_eq!(origin("WSS://api.example.com"), "https://api.example.com");
    assert_eq!(origin("http://h//"), "http://h");
    assert_eq!(segment("team:42/x y"), "team:42%2Fx%20y");
    assert_eq!(query(&[("a", None), ("b", Some("1&2".into()))]), "?b=1%262");
    assert_eq!(query(&[("a", None)]), "");
}

/// The futures can go to `tokio::spawn` (the trait's futures are not
/// `Send` in general, `PlainHttp`'s are).
#[test]
fn plain_futures_are_send() {
    fn send<T: Send>(_: T) {}
    let jobs = Jobs::new("http://h");
    send(jobs.get("j1"));
    send(jobs.enqueue("x", Value::Null, EnqueueOptions::default()));
    let workflows = Workflows::new("http://h");
    send(workflows.start("w", Value::Null, StartOptions::default()));
    send(Scheduler::new("http://h").trigger("c"));
}

#[tokio::test]
async fn rooms_routes_bodies_and_answers() {
    let http = Scripted::new(vec![
        (200, r#"{"member":"bot"}"#),
        (200, r#"{"member":"bot"}"#),
        (200, r#"{}"#),
        (
            200,
            r#"{"room":"team:1","size":1,"sockets":0,"members":[{"conn":"member:bot","member":"bot","state":{},"expiresAt":9}]}"#,
        ),
        (
            200,
            r#"{"rooms":[{"room":"team:1","members":1,"updated":null}],"next":null}"#,
        ),
        (200, r#"{"member":"bot","left":true}"#),
        (
            413,
            r#"{"error":{"code":"PRESENCE_TOO_LARGE","message":"big"}}"#,
        ),
    ]);
    let rooms = Rooms::with_http("http://h", http.clone()).token("tok");
    rooms
        .join("team:1", "bot", json!({"s": 1}), Some(5000))
        .await
        .unwrap();
    rooms
        .set_presence("team:1", "bot", json!(2), None)
        .await
        .unwrap();
    rooms
        .broadcast("team:1", "news", json!({"n": 1}))
        .await
        .unwrap();
    let room = rooms.get("team:1").await.unwrap();
    assert_eq!((room.size, room.members[0].expires_at), (1, Some(9)));
    let page = rooms.list(Some("a b"), Some(10)).await.unwrap();
    assert_eq!((page.rooms[0].members, page.next), (1, None));
    assert!(rooms.leave("team:1", "bot").await.unwrap());
    let refused = rooms
        .join("team:1", "bot", json!("x"), None)
        .await
        .unwrap_err();
    assert_eq!(
        (refused.code(), refused.status()),
        ("PRESENCE_TOO_LARGE", Some(413))
    );
    let base = "http://h/v1/rooms";
    assert_eq!(
        http.calls()[..6],
        [
            (
                Method::Post,
                format!("{base}/team:1/join"),
                json!({"member": "bot", "presence": {"s": 1}, "ttlMs": 5000})
            ),
            (
                Method::Post,
                format!("{base}/team:1/presence"),
                json!({"member": "bot", "presence": 2})
            ),
            (
                Method::Post,
                format!("{base}/team:1/broadcast"),
                json!({"topic": "news", "data": {"n": 1}})
            ),
            (Method::Get, format!("{base}/team:1"), Value::Null),
            (
                Method::Get,
                format!("{base}?after=a%20b&limit=10"),
                Value::Null
            ),
            (
                Method::Post,
                format!("{base}/team:1/leave"),
                json!({"member": "bot"})
            ),
        ]
    );
    assert_eq!(
        http.seen()[0].header_value("authorization"),
        Some("Bearer tok")
    );
}
