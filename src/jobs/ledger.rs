//! The jobs ledger: one Durable Object that records every job and hands
//! it to its queue, the queue consumer's partner (docs/jobs.md).
//!
//! A job is recorded before it is sent (so nothing asked for is lost), and
//! sent again until the queue takes it. The consumer asks the ledger
//! before each run (`start`: a finished job, a cancelled one or a stale
//! copy of a message is not run) and tells it after (`finish`): the ledger
//! keeps the result, or schedules the next attempt with backoff by sending
//! the job again with a delay, or marks it dead when its retries are spent.
//! It also lists workflow instances and the last runs of cron entries.
//!
//! Its routes are internal: the router reaches them for `/v1/jobs`,
//! `/v1/workflows` and `/v1/crons` after deciding who may, and the runtime
//! (the queue consumer, shards, workflow instances) for the rest.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::json;

use super::store::{Job, JobFilter, LedgerStore};
use super::{JobMessage, JobRequest, JobStatus, MAX_DELAY_MS};
use crate::api_error::ApiError;
use crate::host::{Action, IoCall, IoOutcome, Method, NoConn, NoMsg, Object, Open, OpenError};
use crate::host::{Request, Response};
use crate::manifest::Background;
use crate::sql::SqlValue;
use crate::storage::{SqlConn, StorageError};
use crate::workflows::WorkflowSummary;

/// The one ledger's object name.
pub const LEDGER_NAME: &str = "ledger";
/// The first retry waits this long; each next one twice as long.
const BACKOFF_BASE_MS: i64 = 1_000;
const BACKOFF_MAX_MS: i64 = 60 * 60 * 1000;
/// Jobs handed to the queue per event, at most.
const SEND_AT_ONCE: usize = 100;
/// Finished jobs are kept this long, then pruned (when the ledger wakes).
const KEEP_FINISHED_MS: i64 = 7 * 24 * 60 * 60 * 1000;
/// A listing's default and largest page.
const LIST_DEFAULT: usize = 50;
const LIST_MAX: usize = 500;
/// Jobs one `enqueue` request may carry.
const ENQUEUE_AT_ONCE: usize = 100;
/// Job ids reserved per write of `ledger_seq`.
const ID_BLOCK: i64 = 100;

/// A job due this long ago and not started has lost its message (the
/// deployment setting `PYLON_JOBS_OVERDUE_MS` changes it); the ledger
/// looks for such jobs every half of it while any job waits.
const OVERDUE_GRACE_MS: i64 = 60_000;

const RESEND_TIMER: &str = "resend";
const SWEEP_TIMER: &str = "sweep";

type Actions = Vec<Action<NoMsg, NoConn>>;

pub struct JobLedger<C> {
    store: LedgerStore<C>,
    sql: C,
    background: Background,
    /// Sends in flight: tag → (job id, send).
    in_flight: HashMap<u64, (String, i64)>,
    next_tag: u64,
    /// Failed sends in a row (the resend backoff); in memory only: a wake
    /// starts again from the shortest wait.
    send_failures: u32,
    overdue_ms: i64,
    /// Job ids reserved and not yet used (see `next_id`).
    ids: std::ops::Range<i64>,
}

fn storage(e: StorageError) -> Response {
    ApiError::internal(format!("the jobs ledger's storage: {e}")).into()
}

fn not_found(id: &str) -> Response {
    ApiError::new(404, "JOB_NOT_FOUND", format!("no job {id:?}")).into()
}

fn conflict(code: &'static str, message: String) -> Response {
    ApiError::new(409, code, message).into()
}

/// The wait before attempt `attempts + 1` (attempts made so far ≥ 1).
pub fn backoff_ms(attempts: i64) -> i64 {
    let doublings = (attempts - 1).clamp(0, 30) as u32;
    BACKOFF_BASE_MS
        .saturating_mul(1_i64 << doublings)
        .min(BACKOFF_MAX_MS)
}

#[derive(Deserialize)]
struct EnqueueBody {
    jobs: Vec<JobRequest>,
}

#[derive(Deserialize)]
struct StartBody {
    send: i64,
}

#[derive(Deserialize)]
struct FinishBody {
    send: i64,
    ok: bool,
    #[serde(default)]
    result: serde_json::Value,
    #[serde(default)]
    error: serde_json::Value,
}

#[derive(Deserialize)]
struct DeadBody {
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CronRunBody {
    at_ms: i64,
    #[serde(default)]
    error: Option<String>,
}

fn body<'a, T: Deserialize<'a>>(req: &'a Request, code: &'static str) -> Result<T, Response> {
    serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request(code, format!("the body does not fit: {e}")).into())
}

fn limit(req: &Request) -> Result<usize, Response> {
    match req.param("limit") {
        None => Ok(LIST_DEFAULT),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=LIST_MAX).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_request("BAD_QUERY", format!("limit: 1 to {LIST_MAX}")).into()),
        },
    }
}

impl<C: SqlConn + Clone> JobLedger<C> {
    /// A new job id, `job-{n}`. The numbers are reserved [`ID_BLOCK`] at a
    /// time (`ledger_seq` holds the last one reserved), so a job costs no
    /// write of its own for its id; the unused rest of a block is skipped
    /// when the object goes away, never handed out twice.
    fn next_id(&mut self) -> Result<String, StorageError> {
        if self.ids.is_empty() {
            let rows = self.sql.exec(
                "INSERT INTO ledger_seq (k, n) VALUES (1, ?1) \
                 ON CONFLICT(k) DO UPDATE SET n = n + ?1 RETURNING n",
                &[SqlValue::Integer(ID_BLOCK)],
            )?;
            let last = match rows.first().and_then(|r| r.first()) {
                Some(SqlValue::Integer(n)) => *n,
                _ => return Err(StorageError::new("no job id reserved", "ledger_seq")),
            };
            self.ids = last - ID_BLOCK + 1..last + 1;
        }
        let n = self.ids.next().unwrap_or_default();
        Ok(format!("job-{n}"))
    }

    /// Hands job `job` to its queue (a new send), after `delay_ms`.
    fn send(&mut self, job: &Job, delay_ms: i64) -> Result<Action<NoMsg, NoConn>, StorageError> {
        let send = self.store.begin_send(&job.id)?;
        Ok(self.dispatch(job, send, delay_ms))
    }

    /// The queue send of `job`'s send number `send`, already recorded (by
    /// [`LedgerStore::begin_send`], or in the same write as the job itself
    /// or its outcome, which saves the ledger a row write per job).
    fn dispatch(&mut self, job: &Job, send: i64, delay_ms: i64) -> Action<NoMsg, NoConn> {
        self.next_tag += 1;
        let tag = self.next_tag;
        self.in_flight.insert(tag, (job.id.clone(), send));
        let delay_secs = (delay_ms.clamp(0, MAX_DELAY_MS as i64) + 999) / 1000;
        Action::Io {
            tag,
            call: IoCall::SendJob {
                queue: job.queue.clone(),
                message: JobMessage {
                    id: job.id.clone(),
                    send,
                    priority: u8::try_from(job.priority).unwrap_or(0),
                },
                delay_secs: delay_secs as u32,
            },
        }
    }

    /// Sends every job the queue has not taken yet.
    fn resend_all(&mut self, now_ms: i64) -> Actions {
        let jobs = match self.store.unsent(SEND_AT_ONCE) {
            Ok(j) => j,
            Err(e) => {
                return vec![Action::Log(format!(
                    "jobs ledger: reading unsent jobs: {e}"
                ))]
            }
        };
        let mut out = Vec::new();
        // Not the in-flight ones' old sends: they are superseded.
        self.in_flight.clear();
        for job in &jobs {
            match self.send(job, job.run_at_ms - now_ms) {
                Ok(a) => out.push(a),
                Err(e) => out.push(Action::Log(format!("jobs ledger: {}: {e}", job.id))),
            }
        }
        out
    }

    /// Sends again the jobs whose message was lost (due, sent, never
    /// started), and keeps sweeping while any job waits.
    fn sweep(&mut self, now_ms: i64) -> Actions {
        let mut out = Vec::new();
        match self.store.overdue(now_ms, self.overdue_ms, SEND_AT_ONCE) {
            Ok(jobs) => {
                for job in &jobs {
                    out.push(Action::Log(format!(
                        "jobs ledger: {} was due {} ms ago and never started: sending it again",
                        job.id,
                        now_ms - job.run_at_ms
                    )));
                    match self.send(job, 0) {
                        Ok(a) => out.push(a),
                        Err(e) => out.push(Action::Log(format!("jobs ledger: {}: {e}", job.id))),
                    }
                }
            }
            Err(e) => out.push(Action::Log(format!("jobs ledger: sweeping: {e}"))),
        }
        if self.store.any_waiting().unwrap_or(true) {
            out.push(self.sweep_timer(now_ms));
        }
        out
    }

    fn sweep_timer(&self, now_ms: i64) -> Action<NoMsg, NoConn> {
        Action::SetTimer {
            name: SWEEP_TIMER.into(),
            at_ms: now_ms + (self.overdue_ms / 2).max(1_000),
        }
    }

    fn enqueue(&mut self, req: &Request, now_ms: i64) -> (Response, Actions) {
        let body: EnqueueBody = match body(req, "BAD_JOB") {
            Ok(b) => b,
            Err(r) => return (r, Vec::new()),
        };
        if body.jobs.len() > ENQUEUE_AT_ONCE {
            let e = ApiError::bad_request(
                "BAD_JOB",
                format!("at most {ENQUEUE_AT_ONCE} jobs per request"),
            );
            return (e.into(), Vec::new());
        }
        // Every job is checked before any is recorded: all or nothing.
        for j in &body.jobs {
            if let Err(e) = self.check(j) {
                return (e.into(), Vec::new());
            }
        }
        let mut out = Vec::new();
        let mut answers = Vec::new();
        for j in &body.jobs {
            match self.record(j, now_ms) {
                Ok((job, created)) => {
                    if created {
                        // Recorded with its first send.
                        out.push(self.dispatch(&job, job.sends, job.run_at_ms - now_ms));
                    }
                    answers.push(
                        json!({"id": job.id, "created": created, "status": job.status.as_str()}),
                    );
                }
                Err(e) => return (storage(e), Vec::new()),
            }
        }
        if !out.is_empty() {
            out.push(self.sweep_timer(now_ms));
        }
        let status = if answers.iter().any(|a| a["created"] == true) {
            201
        } else {
            200
        };
        (Response::json(status, json!({ "jobs": answers })), out)
    }

    /// The app's rules for a job: a known queue (the function is checked
    /// by whoever enqueues, where the app's functions are known).
    fn check(&self, j: &JobRequest) -> Result<(), ApiError> {
        j.spec.check()?;
        if !self.background.jobs.queues.contains(&j.spec.queue) {
            return Err(ApiError::bad_request(
                "UNKNOWN_QUEUE",
                format!(
                    "no queue {:?} in this app (the manifest's jobs.queues: {})",
                    j.spec.queue,
                    self.background.jobs.queues.join(", ")
                ),
            ));
        }
        if !j.id.is_empty() && (j.id.len() > 128 || j.id.chars().any(char::is_control)) {
            return Err(ApiError::bad_request("BAD_JOB", "id: 1 to 128 bytes"));
        }
        Ok(())
    }

    /// The job for this request: the one already recorded under its id or
    /// key, or a new one.
    fn record(&mut self, j: &JobRequest, now_ms: i64) -> Result<(Job, bool), StorageError> {
        if !j.id.is_empty() {
            if let Some(job) = self.store.job(&j.id)? {
                return Ok((job, false));
            }
        }
        if let Some(key) = &j.spec.key {
            if let Some(job) = self.store.job_by_key(key)? {
                return Ok((job, false));
            }
        }
        let id = if j.id.is_empty() {
            self.next_id()?
        } else {
            j.id.clone()
        };
        self.store.insert(&id, j, now_ms)?;
        let job = self.store.job(&id)?.ok_or_else(|| {
            StorageError::new("a job just recorded is not there", "SELECT … FROM jobs")
        })?;
        Ok((job, true))
    }

    fn start(&mut self, id: &str, req: &Request, now_ms: i64) -> (Response, Actions) {
        let b: StartBody = match body(req, "BAD_FRAME") {
            Ok(b) => b,
            Err(r) => return (r, Vec::new()),
        };
        let job = match self.store.job(id) {
            Ok(Some(j)) => j,
            Ok(None) => {
                return (
                    Response::ok(json!({"run": false, "reason": "unknown"})),
                    Vec::new(),
                )
            }
            Err(e) => return (storage(e), Vec::new()),
        };
        let skip = |reason: &str| {
            Response::ok(json!({"run": false, "reason": reason, "job": job.to_json()}))
        };
        if b.send != job.sends {
            return (skip("stale"), Vec::new());
        }
        match job.status {
            JobStatus::Queued | JobStatus::Failed => {}
            // The same send again: the consumer that ran it stopped before
            // it could say how it went. It counts as an attempt.
            JobStatus::Running if job.attempts > job.max_retries => {
                let error = json!({
                    "code": "CONSUMER_LOST",
                    "message": format!("the run stopped without an outcome in each of {} attempts", job.attempts),
                });
                let r =
                    self.store
                        .set_outcome(id, JobStatus::Dead, None, Some(&error), None, now_ms);
                return match r {
                    Ok(_) => (skip("dead"), Vec::new()),
                    Err(e) => (storage(e), Vec::new()),
                };
            }
            JobStatus::Running => {}
            s => return (skip(s.as_str()), Vec::new()),
        }
        if let Err(e) = self.store.start(id, now_ms) {
            return (storage(e), Vec::new());
        }
        let job = match self.store.job(id) {
            Ok(Some(j)) => j,
            Ok(None) => {
                return (
                    Response::ok(json!({"run": false, "reason": "unknown"})),
                    Vec::new(),
                )
            }
            Err(e) => return (storage(e), Vec::new()),
        };
        let run = json!({
            "run": true,
            "job": job.to_json(),
            "caller": job.caller,
        });
        (Response::ok(run), Vec::new())
    }

    /// Job `id`, or the answer that it is not there (404 `JOB_NOT_FOUND`).
    fn existing(&self, id: &str) -> Result<Job, Response> {
        match self.store.job(id) {
            Ok(Some(j)) => Ok(j),
            Ok(None) => Err(not_found(id)),
            Err(e) => Err(storage(e)),
        }
    }

    fn finish(&mut self, id: &str, req: &Request, now_ms: i64) -> (Response, Actions) {
        let b: FinishBody = match body(req, "BAD_FRAME") {
            Ok(b) => b,
            Err(r) => return (r, Vec::new()),
        };
        let job = match self.existing(id) {
            Ok(j) => j,
            Err(r) => return (r, Vec::new()),
        };
        if b.send != job.sends || job.status != JobStatus::Running {
            // A late outcome of a superseded run: what the ledger holds stands.
            return (
                Response::ok(json!({"status": job.status.as_str(), "stale": true})),
                Vec::new(),
            );
        }
        let mut out = Vec::new();
        let (status, retry_in) = if b.ok {
            (JobStatus::Done, None)
        } else if job.attempts <= job.max_retries {
            (JobStatus::Failed, Some(backoff_ms(job.attempts)))
        } else {
            (JobStatus::Dead, None)
        };
        let error = (!b.ok).then(|| {
            let mut e = b.error.clone();
            if let serde_json::Value::Object(m) = &mut e {
                m.insert("attempt".into(), json!(job.attempts));
            }
            e
        });
        let saved = self.store.set_outcome(
            id,
            status,
            b.ok.then_some(&b.result),
            error.as_ref(),
            retry_in.map(|ms| now_ms + ms),
            now_ms,
        );
        let send = match saved {
            Ok(send) => send,
            Err(e) => return (storage(e), Vec::new()),
        };
        if let Some(ms) = retry_in {
            // The next send was recorded with the outcome.
            out.push(self.dispatch(&job, send, ms));
        }
        let mut answer = json!({"status": status.as_str()});
        if let Some(ms) = retry_in {
            answer["retryInMs"] = json!(ms);
        }
        (Response::ok(answer), out)
    }

    /// A message the queue gave up on (its dead-letter queue's consumer).
    fn dead_letter(&mut self, id: &str, req: &Request, now_ms: i64) -> Response {
        let b: DeadBody = match body(req, "BAD_FRAME") {
            Ok(b) => b,
            Err(r) => return r,
        };
        match self.store.job(id) {
            Ok(Some(job)) if !job.status.is_final() => {
                let error = json!({"code": "DEAD_LETTER", "message": b.reason});
                match self
                    .store
                    .set_outcome(id, JobStatus::Dead, None, Some(&error), None, now_ms)
                {
                    Ok(_) => Response::ok(json!({"status": "dead"})),
                    Err(e) => storage(e),
                }
            }
            Ok(Some(job)) => Response::ok(json!({"status": job.status.as_str()})),
            Ok(None) => Response::ok(json!({"status": "unknown"})),
            Err(e) => storage(e),
        }
    }

    fn retry(&mut self, id: &str, now_ms: i64) -> (Response, Actions) {
        let job = match self.existing(id) {
            Ok(j) => j,
            Err(r) => return (r, Vec::new()),
        };
        if !matches!(
            job.status,
            JobStatus::Dead | JobStatus::Failed | JobStatus::Cancelled
        ) {
            let m = format!(
                "job {id:?} is {}: only a dead, failed or cancelled job is retried",
                job.status.as_str()
            );
            return (conflict("JOB_NOT_RETRYABLE", m), Vec::new());
        }
        let reset = self
            .store
            .reset(id, now_ms)
            .and_then(|_| self.store.job(id));
        let job = match reset {
            Ok(Some(j)) => j,
            Ok(None) => return (ApiError::internal("the job went away").into(), Vec::new()),
            Err(e) => return (storage(e), Vec::new()),
        };
        match self.send(&job, 0) {
            Ok(a) => (
                Response::ok(job.to_json()),
                vec![a, self.sweep_timer(now_ms)],
            ),
            Err(e) => (storage(e), Vec::new()),
        }
    }

    fn cancel(&mut self, id: &str, now_ms: i64) -> Response {
        match self.store.job(id) {
            Ok(Some(job)) if matches!(job.status, JobStatus::Queued | JobStatus::Failed) => {
                let cancelled = self
                    .store
                    .set_outcome(id, JobStatus::Cancelled, None, None, None, now_ms)
                    .and_then(|_| self.store.job(id));
                match cancelled {
                    Ok(Some(j)) => Response::ok(j.to_json()),
                    Ok(None) => ApiError::internal("the job went away").into(),
                    Err(e) => storage(e),
                }
            }
            Ok(Some(job)) => conflict(
                "JOB_NOT_CANCELLABLE",
                format!(
                    "job {id:?} is {}: only a queued or failed job is cancelled",
                    job.status.as_str()
                ),
            ),
            Ok(None) => not_found(id),
            Err(e) => storage(e),
        }
    }

    fn list(&self, req: &Request) -> Response {
        let status = match req.param("status") {
            None => None,
            Some(s) => match JobStatus::parse(s) {
                Some(s) => Some(s),
                None => {
                    return ApiError::bad_request(
                        "BAD_QUERY",
                        format!("status {s:?}: queued, running, done, failed, dead or cancelled"),
                    )
                    .into()
                }
            },
        };
        let limit = match limit(req) {
            Ok(l) => l,
            Err(r) => return r,
        };
        let filter = JobFilter {
            status,
            queue: req.param("queue").map(str::to_owned),
            name: req.param("name").map(str::to_owned),
            limit,
        };
        match self.store.list(&filter) {
            Ok(jobs) => Response::ok(json!({
                "jobs": jobs.iter().map(Job::to_json).collect::<Vec<_>>(),
            })),
            Err(e) => storage(e),
        }
    }

    fn counts(&self) -> serde_json::Value {
        let mut queues = serde_json::Map::new();
        for q in &self.background.jobs.queues {
            let zero: serde_json::Map<String, serde_json::Value> = JobStatus::ALL
                .iter()
                .map(|s| (s.as_str().to_owned(), json!(0)))
                .collect();
            queues.insert(q.clone(), serde_json::Value::Object(zero));
        }
        if let Ok(counts) = self.store.counts() {
            for (queue, status, n) in counts {
                let entry = queues.entry(queue).or_insert_with(|| json!({}));
                entry[status] = json!(n);
            }
        }
        let unsent = self
            .sql
            .exec(
                "SELECT COUNT(*) FROM jobs WHERE unsent = 1 AND status IN ('queued', 'failed')",
                &[],
            )
            .ok()
            .and_then(|r| match r.first().and_then(|r| r.first()) {
                Some(SqlValue::Integer(n)) => Some(*n),
                _ => None,
            })
            .unwrap_or(0);
        json!({ "queues": queues, "unsent": unsent })
    }

    fn workflows(&self, req: &Request) -> Response {
        let limit = match limit(req) {
            Ok(l) => l,
            Err(r) => return r,
        };
        // Admins see every instance; others only those they started.
        let mine = (!req.caller.is_admin).then(|| req.caller.user_id.clone().unwrap_or_default());
        match self.store.workflows(
            req.param("workflow"),
            req.param("status"),
            mine.as_deref(),
            limit,
        ) {
            Ok(list) => Response::ok(json!({ "workflows": list })),
            Err(e) => storage(e),
        }
    }
}

impl<C: SqlConn + Clone> Object<C> for JobLedger<C> {
    type Msg = NoMsg;
    type Conn = NoConn;

    async fn open(
        init: Open<'_, C>,
        _: Vec<(String, NoConn)>,
    ) -> Result<(Self, Actions), OpenError> {
        let manifest = init.app.manifest()?;
        let sql = init.sql;
        let store = LedgerStore::open(sql.clone())?;
        sql.exec(
            "CREATE TABLE IF NOT EXISTS ledger_seq (k INTEGER PRIMARY KEY, n INTEGER NOT NULL) STRICT",
            &[],
        )?;
        let ledger = JobLedger {
            store,
            sql,
            background: manifest.background().clone(),
            in_flight: HashMap::new(),
            next_tag: 0,
            send_failures: 0,
            ids: 0..0,
            overdue_ms: (init.vars)("PYLON_JOBS_OVERDUE_MS")
                .and_then(|v| v.parse::<i64>().ok())
                .filter(|ms| *ms >= 1_000)
                .unwrap_or(OVERDUE_GRACE_MS),
        };
        // Sends in flight when the object went away are redone (a copy
        // that did reach the queue is then stale, and refused at start).
        let mut out = Vec::new();
        if !ledger.store.unsent(1)?.is_empty() {
            out.push(Action::SetTimer {
                name: RESEND_TIMER.into(),
                at_ms: init.now_ms,
            });
        }
        // Finished jobs past their keep: at each wake (an indexed delete).
        ledger.store.prune(init.now_ms - KEEP_FINISHED_MS, 1_000)?;
        if ledger.store.any_waiting()? {
            out.push(ledger.sweep_timer(init.now_ms));
        }
        Ok((ledger, out))
    }

    async fn on_request(&mut self, req: Request, now_ms: i64) -> (Response, Actions) {
        let rest = req.rest.clone();
        let parts: Vec<&str> = rest.split('/').collect();
        let none = Vec::new;
        match (req.method, parts.as_slice()) {
            (Method::Post, ["enqueue"]) => self.enqueue(&req, now_ms),
            (Method::Post, ["runs", id, "start"]) => self.start(id, &req, now_ms),
            (Method::Post, ["runs", id, "finish"]) => self.finish(id, &req, now_ms),
            (Method::Post, ["runs", id, "dead"]) => (self.dead_letter(id, &req, now_ms), none()),
            (Method::Get, ["jobs"]) => (self.list(&req), none()),
            (Method::Get, ["jobs", "stats"]) => (Response::ok(self.counts()), none()),
            (Method::Get, ["jobs", id]) => match self.existing(id) {
                Ok(j) => (Response::ok(j.to_json()), none()),
                Err(r) => (r, none()),
            },
            (Method::Post, ["jobs", id, "retry"]) => self.retry(id, now_ms),
            (Method::Post, ["jobs", id, "cancel"]) => (self.cancel(id, now_ms), none()),
            (Method::Post, ["workflows"]) => {
                let r = match body::<WorkflowSummary>(&req, "BAD_FRAME") {
                    Ok(w) => match self.store.report_workflow(&w) {
                        Ok(()) => Response::ok(json!({"ok": true})),
                        Err(e) => storage(e),
                    },
                    Err(r) => r,
                };
                (r, none())
            }
            (Method::Get, ["workflows"]) => (self.workflows(&req), none()),
            (Method::Post, ["crons", name]) => {
                let r = match body::<CronRunBody>(&req, "BAD_FRAME") {
                    Ok(b) => match self.store.record_cron(name, b.at_ms, b.error.as_deref()) {
                        Ok(()) => Response::ok(json!({"ok": true})),
                        Err(e) => storage(e),
                    },
                    Err(r) => r,
                };
                (r, none())
            }
            (Method::Get, ["crons"]) => match self.store.cron_runs() {
                Ok(runs) => (Response::ok(json!({ "runs": runs })), none()),
                Err(e) => (storage(e), none()),
            },
            _ => (
                ApiError::not_found(format!("no jobs ledger route {rest:?}")).into(),
                none(),
            ),
        }
    }

    async fn on_timer(&mut self, name: &str, now_ms: i64) -> Actions {
        match name {
            RESEND_TIMER => self.resend_all(now_ms),
            SWEEP_TIMER => self.sweep(now_ms),
            _ => Vec::new(),
        }
    }

    async fn on_io(&mut self, tag: u64, outcome: IoOutcome, now_ms: i64) -> Actions {
        let Some((id, send)) = self.in_flight.remove(&tag) else {
            return Vec::new();
        };
        match outcome {
            IoOutcome::Applied(Ok(())) => {
                self.send_failures = 0;
                match self.store.sent(&id, send) {
                    Ok(()) => Vec::new(),
                    Err(e) => vec![Action::Log(format!("jobs ledger: {id}: {e}"))],
                }
            }
            other => {
                self.send_failures = self.send_failures.saturating_add(1);
                let wait = backoff_ms(i64::from(self.send_failures)).min(60_000);
                vec![
                    Action::Log(format!(
                        "jobs ledger: sending {id} failed: {other:?}; again in {wait} ms"
                    )),
                    Action::SetTimer {
                        name: RESEND_TIMER.into(),
                        at_ms: now_ms + wait,
                    },
                ]
            }
        }
    }

    fn stats(&self, _now_ms: i64) -> serde_json::Value {
        json!({ "jobs": self.counts() })
    }
}
