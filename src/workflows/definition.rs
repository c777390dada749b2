//! A workflow as the manifest declares it: a name and its steps.
//!
//! ```json
//! "workflows": [{ "name": "onboard", "steps": [
//!   { "name": "account", "run": "createAccount", "retries": 2, "backoffMs": 1000 },
//!   { "name": "cooloff", "sleepMs": 2000 },
//!   { "name": "approval", "waitForEvent": "approved", "timeoutMs": 60000 },
//!   { "name": "welcome", "run": "sendWelcome" }
//! ]}]
//! ```
//!
//! A `run` step calls a server function with `{input, steps, event}`:
//! the instance's input, the results of the finished steps by name, and the
//! last event received. Its result is kept under its name.

use serde::{Deserialize, Serialize};

use crate::functions::valid_name;
use crate::manifest::Who;

/// The longest sleep or event timeout: 365 days.
pub const MAX_WAIT_MS: u64 = 365 * 24 * 60 * 60 * 1000;
/// Retries of one `run` step, at most.
pub const MAX_STEP_RETRIES: u32 = 20;
/// Steps of one workflow, at most.
pub const MAX_STEPS: usize = 100;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowDef {
    pub name: String,
    /// Who may start an instance over HTTP (admins always may); the one
    /// who started it may read it and send it events.
    #[serde(default)]
    pub start: Who,
    pub steps: Vec<StepDef>,
}

/// One step: exactly one of `run`, `sleepMs`, `waitForEvent`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StepDef {
    pub name: String,
    /// The server function this step runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// Runs after the first that may fail before the workflow fails.
    #[serde(default)]
    pub retries: u32,
    /// The wait before the first retry, doubled for each next one.
    #[serde(default = "default_backoff")]
    pub backoff_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sleep_ms: Option<u64>,
    /// The event name this step waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_for_event: Option<String>,
    /// How long to wait for it; the workflow fails when it passes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

fn default_backoff() -> u64 {
    1000
}

/// What a step does.
#[derive(Clone, Debug, PartialEq)]
pub enum StepKind<'a> {
    Run(&'a str),
    Sleep(u64),
    WaitForEvent { event: &'a str, timeout_ms: u64 },
}

impl StepDef {
    pub fn kind(&self) -> StepKind<'_> {
        match (&self.run, self.sleep_ms, &self.wait_for_event) {
            (Some(f), _, _) => StepKind::Run(f),
            (_, Some(ms), _) => StepKind::Sleep(ms),
            (_, _, Some(e)) => StepKind::WaitForEvent {
                event: e,
                timeout_ms: self.timeout_ms.unwrap_or(MAX_WAIT_MS),
            },
            _ => StepKind::Sleep(0),
        }
    }
}

impl WorkflowDef {
    /// What is wrong with it, if anything (each a sentence naming the step).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !valid_name(&self.name) {
            out.push(format!(
                "name {:?}: a letter, then letters, digits or _",
                self.name
            ));
        }
        if self.steps.is_empty() || self.steps.len() > MAX_STEPS {
            out.push(format!("steps: 1 to {MAX_STEPS}"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, s) in self.steps.iter().enumerate() {
            let at = format!("steps[{i}]");
            if !valid_name(&s.name) {
                out.push(format!(
                    "{at}.name {:?}: a letter, then letters, digits or _",
                    s.name
                ));
            }
            if !seen.insert(s.name.as_str()) {
                out.push(format!(
                    "{at}.name {:?}: already a step of this workflow",
                    s.name
                ));
            }
            let kinds = [
                s.run.is_some(),
                s.sleep_ms.is_some(),
                s.wait_for_event.is_some(),
            ];
            if kinds.iter().filter(|k| **k).count() != 1 {
                out.push(format!("{at}: exactly one of run, sleepMs, waitForEvent"));
            }
            if let Some(f) = &s.run {
                if !valid_name(f) {
                    out.push(format!("{at}.run {f:?}: a function name"));
                }
            }
            if s.retries > MAX_STEP_RETRIES {
                out.push(format!("{at}.retries: at most {MAX_STEP_RETRIES}"));
            }
            for (key, ms) in [("sleepMs", s.sleep_ms), ("timeoutMs", s.timeout_ms)] {
                if ms.is_some_and(|ms| ms > MAX_WAIT_MS) {
                    out.push(format!("{at}.{key}: at most {MAX_WAIT_MS} (365 days)"));
                }
            }
            if s.timeout_ms.is_some() && s.wait_for_event.is_none() {
                out.push(format!("{at}.timeoutMs: only for waitForEvent"));
            }
            if let Some(e) = &s.wait_for_event {
                if !valid_name(e) {
                    out.push(format!("{at}.waitForEvent {e:?}: an event name"));
                }
            }
        }
        out
    }
}
