//! What a job is when it is asked for: Pylon's `enqueue(name, payload,
//! {delay, maxRetries, queue, priority})`, plus an idempotency key and the
//! shard its handler works on. The same shape comes from a function
//! (`ctx.jobs.enqueue`), the Rust API and `POST /v1/jobs`.
//!
//! ```
//! use pylon_workers::jobs::JobSpec;
//! let spec: JobSpec = serde_json::from_str(r#"{"name":"sendDigest","payload":{"to":"a"},"delayMs":2000}"#).unwrap();
//! assert_eq!(spec.queue, "default");
//! assert_eq!(spec.max_retries, 3);
//! assert!(spec.check().is_ok());
//! let bad: JobSpec = serde_json::from_str(r#"{"name":"x","delayMs":99999999999}"#).unwrap();
//! assert_eq!(bad.check().unwrap_err().code, "BAD_JOB");
//! ```

use serde::{Deserialize, Serialize};

use crate::api_error::ApiError;
use crate::functions::valid_name;
use crate::policy::AuthContext;
use crate::value::Value;

/// The longest delay a queue takes: Cloudflare Queues' `delaySeconds` is
/// at most 12 hours.
pub const MAX_DELAY_MS: u64 = 12 * 60 * 60 * 1000;
/// Retries at most: a queue consumer's `max_retries` is at most 100.
pub const MAX_RETRIES: u32 = 100;
/// A job's payload, at most, as JSON (a queue message is at most 128 KB;
/// the payload stays in the ledger and only the job's id is sent, but a
/// ledger row should stay small too).
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
/// The longest idempotency key.
pub const MAX_KEY_BYTES: usize = 200;
/// Priorities run from 0 (lowest) to this (highest); 5 when not given.
pub const MAX_PRIORITY: u8 = 9;

/// One job to run: the function `name` (an action, or a mutation run in
/// `shard`) with `payload` as its arguments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JobSpec {
    /// The handler: a server function of the app.
    pub name: String,
    #[serde(default)]
    pub payload: Value,
    /// Not run before this many milliseconds from now.
    #[serde(default)]
    pub delay_ms: u64,
    /// Runs after the first that may fail before the job is dead.
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    /// One of the app's queues (the manifest's `jobs.queues`).
    #[serde(default = "default_queue")]
    pub queue: String,
    /// 0–9, higher first within a delivered batch (docs/jobs.md: a queue
    /// itself has no priorities).
    #[serde(default = "default_priority")]
    pub priority: u8,
    /// At most one job per key: enqueuing the same key again returns the
    /// first job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Where the handler's queries and mutations run (a mutation handler
    /// runs there itself). A job enqueued by a mutation gets its shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
}

/// A job with whom its handler runs as: the enqueuer, as the runtime
/// verified it (never a field a client sends). How jobs travel inside the
/// runtime, from a shard's outbox or the router to the jobs ledger.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRequest {
    /// The job's id, chosen by the sender before the ledger sees it (a
    /// mutation returns it at once): the ledger files the job under it.
    /// Empty: the ledger picks one. A second request with the id of a job
    /// the ledger has gets that job.
    #[serde(default)]
    pub id: String,
    pub spec: JobSpec,
    pub caller: AuthContext,
}

fn default_retries() -> u32 {
    3
}
fn default_queue() -> String {
    "default".into()
}
fn default_priority() -> u8 {
    5
}

impl JobSpec {
    /// A job with every option at its default.
    pub fn new(name: impl Into<String>, payload: Value) -> JobSpec {
        JobSpec {
            name: name.into(),
            payload,
            delay_ms: 0,
            max_retries: default_retries(),
            queue: default_queue(),
            priority: default_priority(),
            key: None,
            shard: None,
        }
    }

    /// Checks the limits above (the app's queues and functions are checked
    /// where the app is known).
    pub fn check(&self) -> Result<(), ApiError> {
        let bad = |m: String| Err(ApiError::bad_request("BAD_JOB", m));
        if !valid_name(&self.name) {
            return bad(format!("name {:?}: a function name", self.name));
        }
        if !valid_name(&self.queue) {
            return bad(format!("queue {:?}: a queue name", self.queue));
        }
        if self.delay_ms > MAX_DELAY_MS {
            return bad(format!("delayMs: at most {MAX_DELAY_MS} (12 hours)"));
        }
        if self.max_retries > MAX_RETRIES {
            return bad(format!("maxRetries: at most {MAX_RETRIES}"));
        }
        if self.priority > MAX_PRIORITY {
            return bad(format!("priority: 0 to {MAX_PRIORITY}"));
        }
        if let Some(k) = &self.key {
            if k.is_empty() || k.len() > MAX_KEY_BYTES {
                return bad(format!("key: 1 to {MAX_KEY_BYTES} bytes"));
            }
        }
        if let Some(s) = &self.shard {
            if s.is_empty() || s.len() > 256 {
                return bad("shard: 1 to 256 bytes".into());
            }
        }
        let size = serde_json::to_string(&self.payload).map_or(0, |s| s.len());
        if size > MAX_PAYLOAD_BYTES {
            return Err(ApiError::new(
                413,
                "PAYLOAD_TOO_LARGE",
                format!("payload: {size} bytes of JSON, at most {MAX_PAYLOAD_BYTES}"),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> JobSpec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn limits_are_typed_errors() {
        assert!(spec(r#"{"name":"a"}"#).check().is_ok());
        for (json, code) in [
            (r#"{"name":"1a"}"#, "BAD_JOB"),
            (r#"{"name":"a","queue":"no/pe"}"#, "BAD_JOB"),
            (r#"{"name":"a","maxRetries":101}"#, "BAD_JOB"),
            (r#"{"name":"a","priority":10}"#, "BAD_JOB"),
            (r#"{"name":"a","key":""}"#, "BAD_JOB"),
        ] {
            assert_eq!(spec(json).check().unwrap_err().code, code, "{json}");
        }
        let mut big = JobSpec::new("a", Value::Text("x".repeat(MAX_PAYLOAD_BYTES)));
        assert_eq!(big.check().unwrap_err().status, 413);
        big.payload = Value::Null;
        assert!(big.check().is_ok());
    }

    #[test]
    fn a_client_cannot_choose_whom_a_job_runs_as() {
        let refused = serde_json::from_str::<JobSpec>(r#"{"name":"a","caller":{"isAdmin":true}}"#);
        assert!(refused.is_err(), "caller is not a field a client may send");
    }
}
