//! [`Scheduler`]: Pylon's `SchedulerOps` over `/v1/crons` (docs/jobs.md,
//! "Cron"), for admins.

use serde::Deserialize;
use serde_json::Value;

use super::{segment, Api, ErrorInfo, RequestError};
use crate::http::HttpClient;

/// Lists the manifest's cron entries with their last runs, and runs one
/// now.
///
/// ```no_run
/// use pylon_workers::client::background::Scheduler;
/// # async fn demo() -> Result<(), pylon_workers::client::background::RequestError> {
/// let scheduler = Scheduler::new("http://127.0.0.1:8787").token("an admin's token");
/// let ran = scheduler.trigger("tidyTick").await?;
/// assert!(ran.ok, "{:?}", ran.error);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Scheduler<H = crate::client::PlainHttp> {
    api: Api<H>,
}

super::api_handle!(Scheduler);

impl<H: HttpClient> Scheduler<H> {
    /// `GET /v1/crons`.
    pub async fn list(&self) -> Result<Vec<CronEntry>, RequestError> {
        #[derive(Deserialize)]
        struct Listed {
            crons: Vec<CronEntry>,
        }
        let listed: Listed = self.api.get("/v1/crons").await?;
        Ok(listed.crons)
    }

    /// `POST /v1/crons/{name}/run`: runs the entry now, as the platform's
    /// trigger would (`UNKNOWN_CRON` for none of that name). The run is
    /// recorded with the entry's others.
    pub async fn trigger(&self, name: &str) -> Result<CronRun, RequestError> {
        let path = format!("/v1/crons/{}/run", segment(name));
        self.api.post(&path, &serde_json::json!({})).await
    }
}

/// A manifest `crons` entry with its record of runs.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CronEntry {
    pub name: String,
    /// Its schedule, e.g. `*/30 * * * *`.
    pub cron: String,
    /// The server function it runs.
    pub run: String,
    #[serde(default)]
    pub args: Value,
    #[serde(default)]
    pub shard: Option<String>,
    /// `None` before its first run.
    pub last_runs: Option<CronRuns>,
}

/// An entry's runs so far.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CronRuns {
    pub runs: u64,
    pub failures: u64,
    pub last_ms: i64,
    pub last_ok: bool,
    /// `CODE: message` of the last run, when it failed.
    pub last_error: Option<String>,
}

/// What [`Scheduler::trigger`] gave: the function's value, or its error.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct CronRun {
    pub ok: bool,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub error: Option<ErrorInfo>,
}
