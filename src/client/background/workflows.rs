//! [`Workflows`]: Pylon's `WorkflowOps` over `/v1/workflows`
//! (docs/workflows.md).

use serde::Deserialize;
use serde_json::{json, Value};

use super::{query, segment, Api, ErrorInfo, RequestError};
use crate::http::HttpClient;
use crate::workflows::{Status, WorkflowSummary};

/// Start, read, list, send events to, cancel and advance workflow
/// instances. Only the caller who started one (or an admin) may see it.
///
/// ```no_run
/// use pylon_workers::client::background::{StartOptions, Workflows};
/// use serde_json::json;
/// # async fn demo(token: String) -> Result<(), pylon_workers::client::background::RequestError> {
/// let workflows = Workflows::new("http://127.0.0.1:8787").token(token);
/// let run = workflows
///     .start("onboard", json!({"title": "welcome"}), StartOptions::default().shard("board-1"))
///     .await?;
/// workflows.send_event(&run.id, "approved", json!({"by": "ann"})).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Workflows<H = crate::client::PlainHttp> {
    api: Api<H>,
}

super::api_handle!(Workflows);

impl<H: HttpClient> Workflows<H> {
    /// `POST /v1/workflows`: starts an instance of `workflow`. Starting the
    /// same id with the same workflow and input again answers the
    /// instance; `WORKFLOW_EXISTS` when the id is taken otherwise.
    pub async fn start(
        &self,
        workflow: &str,
        input: Value,
        options: StartOptions,
    ) -> Result<WorkflowState, RequestError> {
        let mut body = json!({ "workflow": workflow, "input": input });
        if let Some(id) = options.id {
            body["id"] = Value::from(id);
        }
        if let Some(shard) = options.shard {
            body["shard"] = Value::from(shard);
        }
        self.api.post("/v1/workflows", &body).await
    }

    /// `GET /v1/workflows/{id}` (`WORKFLOW_NOT_FOUND` for an id that is
    /// not the caller's).
    pub async fn get(&self, id: &str) -> Result<WorkflowState, RequestError> {
        self.api.get(&path(id, "")).await
    }

    /// `GET /v1/workflows?…`: the caller's instances, everyone's for an
    /// admin, from the jobs ledger's summaries.
    pub async fn list(
        &self,
        filter: &WorkflowFilter,
    ) -> Result<Vec<WorkflowSummary>, RequestError> {
        #[derive(Deserialize)]
        struct Listed {
            workflows: Vec<WorkflowSummary>,
        }
        let q = query(&[
            ("workflow", filter.workflow.clone()),
            ("status", filter.status.map(|s| s.as_str().to_owned())),
            ("limit", filter.limit.map(|n| n.to_string())),
        ]);
        let listed: Listed = self.api.get(&format!("/v1/workflows{q}")).await?;
        Ok(listed.workflows)
    }

    /// `POST /v1/workflows/{id}/events`: taken by the step waiting for
    /// `name`, or kept for a later step.
    pub async fn send_event(
        &self,
        id: &str,
        name: &str,
        payload: Value,
    ) -> Result<WorkflowState, RequestError> {
        let body = json!({ "name": name, "payload": payload });
        self.api.post(&path(id, "/events"), &body).await
    }

    /// `POST /v1/workflows/{id}/cancel` (`WORKFLOW_FINISHED` once final).
    pub async fn cancel(&self, id: &str) -> Result<WorkflowState, RequestError> {
        self.api.post(&path(id, "/cancel"), &json!({})).await
    }

    /// `POST /v1/workflows/{id}/advance`: ends the current sleep or wait
    /// now (`NOT_WAITING` otherwise).
    pub async fn advance(&self, id: &str) -> Result<WorkflowState, RequestError> {
        self.api.post(&path(id, "/advance"), &json!({})).await
    }
}

fn path(id: &str, verb: &str) -> String {
    format!("/v1/workflows/{}{verb}", segment(id))
}

/// Where a started instance runs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StartOptions {
    /// The instance's id (1–128 of `A-Z a-z 0-9 - _ . :`); the router
    /// picks one when `None`.
    pub id: Option<String>,
    /// Where its steps' queries and mutations run.
    pub shard: Option<String>,
}

impl StartOptions {
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    pub fn shard(mut self, shard: impl Into<String>) -> Self {
        self.shard = Some(shard.into());
        self
    }
}

/// What [`Workflows::list`] asks for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkflowFilter {
    pub workflow: Option<String>,
    pub status: Option<Status>,
    /// 1–500; the server's 50 when `None`.
    pub limit: Option<u32>,
}

impl WorkflowFilter {
    pub fn workflow(mut self, workflow: impl Into<String>) -> Self {
        self.workflow = Some(workflow.into());
        self
    }

    pub fn status(mut self, status: Status) -> Self {
        self.status = Some(status);
        self
    }

    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// An instance as `GET /v1/workflows/{id}` answers it (docs/workflows.md,
/// "The state").
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowState {
    pub id: String,
    pub workflow: String,
    pub status: Status,
    /// The current step's index (the number of steps once `completed`).
    pub step: u32,
    pub step_name: Option<String>,
    pub input: Value,
    /// The last step's result, once `completed`.
    pub output: Value,
    pub error: Option<ErrorInfo>,
    pub started_by: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// Each completed step's result, by name.
    pub steps: serde_json::Map<String, Value>,
    pub history: Vec<StepRecord>,
    /// The event a `waiting` instance waits for.
    pub waiting_for: Option<String>,
    /// When a sleep ends, a wait times out, or the next attempt runs.
    pub wake_at_ms: Option<i64>,
}

/// One step that began, in [`WorkflowState::history`].
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    pub step: u32,
    pub name: String,
    /// `run`, `sleep` or `waitForEvent`.
    pub kind: String,
    pub status: Status,
    /// A `run` step's attempts.
    pub attempts: u32,
    /// Its result once completed (`None` for a `null` one too).
    #[serde(default)]
    pub result: Option<Value>,
    /// Its last failed attempt's error.
    #[serde(default)]
    pub error: Option<ErrorInfo>,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
}
