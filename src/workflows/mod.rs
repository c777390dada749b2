//! Durable workflows (docs/workflows.md): Pylon's `WorkflowOps`. A
//! workflow is a list of steps declared in the manifest (run a function,
//! sleep, wait for an event); each started instance is its own Durable
//! Object, which keeps its step, the result of every finished step and its
//! history in its SQLite storage and wakes on its alarm, so a restart
//! resumes at the step it was at without running a finished step again.

mod definition;
mod instance;
mod limits;
mod machine;
mod status;
mod store;
mod view;

pub use definition::{StepDef, StepKind, WorkflowDef, MAX_STEPS, MAX_STEP_RETRIES, MAX_WAIT_MS};
pub use instance::{WorkflowInstance, REPORT_RETRY_MS, REPORT_TIMER};
pub use limits::{
    EventBody, StartBody, MAX_BODY_BYTES, MAX_BUFFERED_EVENTS, MAX_EVENT_BYTES, MAX_INPUT_BYTES,
    MAX_RESULT_BYTES,
};
pub use machine::{backoff_ms, RUN_WATCHDOG_MS, STEP_TIMER};
pub use status::Status;
pub use store::StepError;

use serde::{Deserialize, Serialize};

/// Where one instance is, as the jobs ledger lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowSummary {
    /// The instance's id (its object's name).
    pub id: String,
    /// The workflow (definition) it runs.
    pub workflow: String,
    /// `running`, `sleeping`, `waiting`, `completed`, `failed` or `cancelled`.
    pub status: String,
    /// The index of the step it is at (the number of steps when completed).
    pub step: u32,
    /// The user who started it (`None` for an anonymous or system start).
    pub started_by: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
}
