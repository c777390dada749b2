//! What an instance takes: the bodies of `POST …/start` and
//! `POST …/events`, and the limits on what it keeps.
//!
//! ```
//! use pylon_workers::workflows::{EventBody, StartBody};
//! let start = StartBody::parse(br#"{"workflow":"onboard","input":{"email":"a@b.c"}}"#).unwrap();
//! assert_eq!(start.workflow, "onboard");
//! let e = EventBody::parse(br#"{"name":"approved","payload":true}"#).unwrap();
//! assert_eq!(e.payload, serde_json::json!(true));
//! assert_eq!(EventBody::parse(b"{}").unwrap_err().code, "BAD_EVENT");
//! ```

use serde::Deserialize;

use crate::api_error::ApiError;
use crate::functions::valid_name;

/// An instance's input, at most, as JSON.
pub const MAX_INPUT_BYTES: usize = 64 * 1024;
/// An event's payload, at most, as JSON.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;
/// Events kept for a later `waitForEvent`, at most, per instance.
pub const MAX_BUFFERED_EVENTS: u64 = 100;
/// A step's result, at most, as JSON; a larger one fails the step.
pub const MAX_RESULT_BYTES: usize = 64 * 1024;
/// The largest body an instance reads: the input or payload and the rest
/// of its body. Above it the host answers 413 itself.
pub const MAX_BODY_BYTES: usize = MAX_INPUT_BYTES + 4 * 1024;

/// `POST …/start`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartBody {
    /// The workflow (its name in the manifest).
    pub workflow: String,
    #[serde(default)]
    pub input: serde_json::Value,
    /// Where its steps' queries and mutations run.
    #[serde(default)]
    pub shard: Option<String>,
    /// The instance's id, when the router hands on the client's body as
    /// it came: it must be this instance's.
    #[serde(default)]
    pub id: Option<String>,
}

/// `POST …/events`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventBody {
    pub name: String,
    #[serde(default)]
    pub payload: serde_json::Value,
}

impl StartBody {
    /// The body, checked: 400 `BAD_WORKFLOW` (not this shape), 400
    /// `BAD_SHARD_NAME`, 413 `PAYLOAD_TOO_LARGE` (the input).
    pub fn parse(body: &[u8]) -> Result<StartBody, ApiError> {
        let b: StartBody = serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(
                "BAD_WORKFLOW",
                format!("expected {{\"workflow\": name, \"input\": any, \"shard\"?: name}}: {e}"),
            )
        })?;
        if !valid_name(&b.workflow) {
            return Err(ApiError::bad_request(
                "BAD_WORKFLOW",
                format!("workflow {:?}: a workflow name", b.workflow),
            ));
        }
        if let Some(s) = &b.shard {
            crate::route::validate_shard_name(s)?;
        }
        too_large("input", &b.input, MAX_INPUT_BYTES)?;
        Ok(b)
    }
}

impl EventBody {
    /// The body, checked: 400 `BAD_EVENT`, 413 `PAYLOAD_TOO_LARGE`.
    pub fn parse(body: &[u8]) -> Result<EventBody, ApiError> {
        let b: EventBody = serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(
                "BAD_EVENT",
                format!("expected {{\"name\": event name, \"payload\": any}}: {e}"),
            )
        })?;
        if !valid_name(&b.name) {
            return Err(ApiError::bad_request(
                "BAD_EVENT",
                format!("name {:?}: a letter, then letters, digits or _", b.name),
            ));
        }
        too_large("payload", &b.payload, MAX_EVENT_BYTES)?;
        Ok(b)
    }
}

/// The size of `v` as JSON text.
pub(super) fn json_len(v: &serde_json::Value) -> usize {
    serde_json::to_string(v).map_or(0, |s| s.len())
}

fn too_large(what: &str, v: &serde_json::Value, max: usize) -> Result<(), ApiError> {
    let size = json_len(v);
    if size > max {
        return Err(ApiError::new(
            413,
            "PAYLOAD_TOO_LARGE",
            format!("{what}: {size} bytes of JSON, at most {max}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_checked() {
        for (body, code) in [
            (&b"nope"[..], "BAD_WORKFLOW"),
            (br#"{"input":1}"#, "BAD_WORKFLOW"),
            (br#"{"workflow":"a b"}"#, "BAD_WORKFLOW"),
            (br#"{"workflow":"a","extra":1}"#, "BAD_WORKFLOW"),
            (br#"{"workflow":"a","shard":"no/pe"}"#, "BAD_SHARD_NAME"),
        ] {
            let e = StartBody::parse(body).unwrap_err();
            assert_eq!((e.status, e.code), (400, code), "{body:?}");
        }
        let big = serde_json::json!({"workflow": "a", "input": "x".repeat(MAX_INPUT_BYTES)});
        let e = StartBody::parse(big.to_string().as_bytes()).unwrap_err();
        assert_eq!((e.status, e.code), (413, "PAYLOAD_TOO_LARGE"));

        for body in [&b""[..], br#"{"name":""}"#, br#"{"payload":1}"#, b"[1]"] {
            assert_eq!(EventBody::parse(body).unwrap_err().code, "BAD_EVENT");
        }
        let big = serde_json::json!({"name": "e", "payload": "x".repeat(MAX_EVENT_BYTES)});
        let e = EventBody::parse(big.to_string().as_bytes()).unwrap_err();
        assert_eq!((e.status, e.code), (413, "PAYLOAD_TOO_LARGE"));
    }
}
