//! An instance as its readers see it: the state `GET /v1/workflows/{id}`
//! answers, and the summary the jobs ledger lists.

use serde_json::json;

use super::store::{Instance, StepRecord};
use super::WorkflowSummary;

/// `{id, workflow, status, step, stepName, input, output, error,
/// startedBy, createdMs, updatedMs, steps, history, waitingFor?,
/// wakeAtMs?}`: `steps` holds the result of each completed step by name,
/// `history` one record per step that began.
pub fn state_json(id: &str, i: &Instance, history: &[StepRecord]) -> serde_json::Value {
    let steps: serde_json::Map<String, serde_json::Value> = history
        .iter()
        .filter_map(|r| r.result.clone().map(|v| (r.name.clone(), v)))
        .collect();
    let step_name = i.def.steps.get(i.step as usize).map(|s| s.name.clone());
    let mut v = json!({
        "id": id,
        "workflow": i.def.name,
        "status": i.status,
        "step": i.step,
        "stepName": step_name,
        "input": i.input,
        "output": i.output,
        "error": i.error,
        "startedBy": i.caller.user_id,
        "createdMs": i.created_ms,
        "updatedMs": i.updated_ms,
        "steps": steps,
        "history": history,
    });
    if let Some(e) = &i.waiting_for {
        v["waitingFor"] = json!(e);
    }
    if let Some(at) = i.wake_at_ms {
        v["wakeAtMs"] = json!(at);
    }
    v
}

/// Where the instance is, for the jobs ledger.
pub fn summary(id: &str, i: &Instance) -> WorkflowSummary {
    WorkflowSummary {
        id: id.to_owned(),
        workflow: i.def.name.clone(),
        status: i.status.as_str().into(),
        step: i.step,
        started_by: i.caller.user_id.clone(),
        created_ms: i.created_ms,
        updated_ms: i.updated_ms,
    }
}
