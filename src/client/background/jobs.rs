//! [`Jobs`]: Pylon's `JobOps` over `/v1/jobs` (docs/jobs.md).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{query, segment, Api, ErrorInfo, RequestError};
use crate::http::HttpClient;
use crate::jobs::JobStatus;

/// Enqueue, read, list, count, retry and cancel jobs.
///
/// ```no_run
/// use pylon_workers::client::background::{JobFilter, JobStatus, Jobs};
/// # async fn demo() -> Result<(), pylon_workers::client::background::RequestError> {
/// let jobs = Jobs::new("http://127.0.0.1:8787").token("an admin's token");
/// for dead in jobs.list(&JobFilter::default().status(JobStatus::Dead)).await? {
///     jobs.retry(&dead.id).await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Jobs<H = crate::client::PlainHttp> {
    api: Api<H>,
}

super::api_handle!(Jobs);

impl<H: HttpClient> Jobs<H> {
    /// `POST /v1/jobs`: runs server function `name` with `payload` as its
    /// arguments (who may: the manifest's `jobs.enqueue`).
    pub async fn enqueue(
        &self,
        name: &str,
        payload: Value,
        options: EnqueueOptions,
    ) -> Result<Enqueued, RequestError> {
        let mut body = serde_json::to_value(&options).expect("options serialize");
        body["name"] = Value::from(name);
        body["payload"] = payload;
        self.api.post("/v1/jobs", &body).await
    }

    /// `GET /v1/jobs/{id}` (admins, and its enqueuer; `JOB_NOT_FOUND`
    /// otherwise).
    pub async fn get(&self, id: &str) -> Result<Job, RequestError> {
        self.api.get(&format!("/v1/jobs/{}", segment(id))).await
    }

    /// `GET /v1/jobs?…`: newest first (admins).
    pub async fn list(&self, filter: &JobFilter) -> Result<Vec<Job>, RequestError> {
        #[derive(Deserialize)]
        struct Listed {
            jobs: Vec<Job>,
        }
        let q = query(&[
            ("status", filter.status.map(|s| s.as_str().to_owned())),
            ("queue", filter.queue.clone()),
            ("name", filter.name.clone()),
            ("limit", filter.limit.map(|n| n.to_string())),
        ]);
        let listed: Listed = self.api.get(&format!("/v1/jobs{q}")).await?;
        Ok(listed.jobs)
    }

    /// `GET /v1/jobs/stats` (admins).
    pub async fn stats(&self) -> Result<JobStats, RequestError> {
        self.api.get("/v1/jobs/stats").await
    }

    /// `POST /v1/jobs/{id}/retry`: a dead, failed or cancelled job again,
    /// with no attempts (`JOB_NOT_RETRYABLE` otherwise; admins).
    pub async fn retry(&self, id: &str) -> Result<Job, RequestError> {
        let path = format!("/v1/jobs/{}/retry", segment(id));
        self.api.post(&path, &serde_json::json!({})).await
    }

    /// `POST /v1/jobs/{id}/cancel`: a queued or failed job
    /// (`JOB_NOT_CANCELLABLE` otherwise; admins).
    pub async fn cancel(&self, id: &str) -> Result<Job, RequestError> {
        let path = format!("/v1/jobs/{}/cancel", segment(id));
        self.api.post(&path, &serde_json::json!({})).await
    }
}

/// How to run a job; the server's defaults for what is left out.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnqueueOptions {
    /// Not before this many ms from now (at most 12 hours).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Runs after the first that may fail before the job is dead (3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<u32>,
    /// One of the manifest's `jobs.queues` (`default`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// 0–9, higher first within a delivered batch (5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    /// At most one job per key: the same key again answers the first job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Where the handler runs (required for a mutation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
}

impl EnqueueOptions {
    pub fn delay_ms(mut self, ms: u64) -> Self {
        self.delay_ms = Some(ms);
        self
    }

    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = Some(n);
        self
    }

    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    pub fn priority(mut self, priority: u8) -> Self {
        self.priority = Some(priority);
        self
    }

    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    pub fn shard(mut self, shard: impl Into<String>) -> Self {
        self.shard = Some(shard.into());
        self
    }
}

/// `POST /v1/jobs`'s answer.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Enqueued {
    pub id: String,
    /// `false` when the key named a job enqueued before (its id is given).
    pub created: bool,
    pub status: JobStatus,
}

/// A job as the ledger holds it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub id: String,
    /// The handler: a server function of the app.
    pub name: String,
    pub queue: String,
    pub payload: Value,
    pub priority: u8,
    pub max_retries: u32,
    /// Runs started so far.
    pub attempts: u32,
    pub status: JobStatus,
    /// The last failed run's error.
    pub error: Option<ErrorInfo>,
    /// The handler's result once `done` (`None` for a `null` one too).
    pub result: Option<Value>,
    pub key: Option<String>,
    pub shard: Option<String>,
    /// Whom its handler runs as.
    pub enqueued_by: Option<String>,
    pub run_at_ms: i64,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
}

/// What [`Jobs::list`] asks for; everything when left at the default.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobFilter {
    pub status: Option<JobStatus>,
    pub queue: Option<String>,
    /// The handler's name.
    pub name: Option<String>,
    /// 1–500; the server's 50 when `None`.
    pub limit: Option<u32>,
}

impl JobFilter {
    pub fn status(mut self, status: JobStatus) -> Self {
        self.status = Some(status);
        self
    }

    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// `GET /v1/jobs/stats`: jobs per queue and status, and the sends the
/// ledger still owes a queue.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct JobStats {
    pub queues: BTreeMap<String, HashMap<JobStatus, u64>>,
    pub unsent: u64,
}

impl JobStats {
    /// Jobs in `queue` with `status` (0 for an unknown queue).
    pub fn count(&self, queue: &str, status: JobStatus) -> u64 {
        self.queues
            .get(queue)
            .and_then(|q| q.get(&status))
            .copied()
            .unwrap_or(0)
    }
}
