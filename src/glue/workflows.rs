//! `/v1/workflows` (docs/workflows.md): start an instance (its own Durable
//! Object), list instances (from the jobs ledger), and read, send events
//! to, cancel or advance one.

use worker::{Env, Method, Request, Response, Result};

use crate::api_error::ApiError;
use crate::app::App;
use crate::glue::internal::{self, WORKFLOW_BINDING};
use crate::glue::random::CryptoRandom;
use crate::glue::{body, respond, session_gate};
use crate::signin::random::Random;

/// A request body, at most (an input or an event payload is at most 64 KiB).
const MAX_BODY_BYTES: usize = 128 * 1024;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    workflow: String,
    #[serde(default)]
    input: serde_json::Value,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    shard: Option<String>,
}

/// An instance id: what a shard name may be, at most 128 bytes.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

fn new_id() -> String {
    let mut bytes = [0u8; 12];
    CryptoRandom.fill(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("wf-{hex}")
}

fn pass_on(answer: Result<internal::Answer>) -> Result<Response> {
    match answer {
        Ok(a) => respond::json(a.status, &a.body),
        Err(e) => respond::internal("the workflow", &e),
    }
}

/// `/v1/workflows[/…]`.
pub(crate) async fn handle(mut req: Request, env: &Env, app: &App, rest: &str) -> Result<Response> {
    let (caller, manifest) = match session_gate::caller_and_manifest(env, app, &req).await? {
        Ok(found) => found,
        Err(answer) => return Ok(answer),
    };
    let method = req.method();
    let bytes = if method == Method::Post {
        match body::read_capped(&mut req, MAX_BODY_BYTES).await {
            Ok(b) => b,
            Err(e) => return respond::error(&e.to_api_error("PAYLOAD_TOO_LARGE")),
        }
    } else {
        Vec::new()
    };
    let json_body = || -> std::result::Result<serde_json::Value, ApiError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(serde_json::json!({}));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request("BAD_REQUEST", format!("the body is not JSON: {e}")))
    };
    match (method, rest.split_once('/')) {
        (Method::Post, None) if rest.is_empty() => {
            let start: StartBody = match serde_json::from_slice(&bytes) {
                Ok(s) => s,
                Err(e) => {
                    return respond::error(&ApiError::bad_request(
                        "BAD_WORKFLOW",
                        format!("the body is not a start: {e}"),
                    ))
                }
            };
            let Some(def) = manifest.background().workflow(&start.workflow) else {
                return respond::error(&ApiError::new(
                    404,
                    "UNKNOWN_WORKFLOW",
                    format!("no workflow {:?} in the manifest", start.workflow),
                ));
            };
            if !def.start.allows(&caller) {
                return respond::refused(&caller, "starting this workflow");
            }
            if let Some(shard) = &start.shard {
                if let Err(e) = manifest.auth().admit_caller(shard, &caller) {
                    return respond::error(&ApiError::new(
                        403,
                        "FORBIDDEN",
                        format!("shard {shard:?}: {e}"),
                    ));
                }
            }
            let id = match start.id {
                Some(id) if valid_id(&id) && id != "definitions" => id,
                Some(id) => {
                    return respond::error(&ApiError::bad_request(
                        "BAD_WORKFLOW",
                        format!("id {id:?}: 1 to 128 letters, digits, -, _, . or :"),
                    ))
                }
                None => new_id(),
            };
            let body = serde_json::json!({
                "workflow": start.workflow,
                "input": start.input,
                "shard": start.shard,
            });
            pass_on(
                internal::call(
                    env,
                    WORKFLOW_BINDING,
                    &id,
                    Method::Post,
                    "start",
                    "",
                    Some(&body),
                    &caller,
                )
                .await,
            )
        }
        // Pylon's `definitions`: the workflows this caller may start.
        (Method::Get, None) if rest == "definitions" => {
            let defs: Vec<&crate::workflows::WorkflowDef> = manifest
                .background()
                .workflows
                .iter()
                .filter(|w| w.start.allows(&caller))
                .collect();
            respond::json(200, &serde_json::json!({ "definitions": defs }))
        }
        (Method::Get, None) if rest.is_empty() => {
            let query = req.url()?.query().unwrap_or_default().to_owned();
            pass_on(internal::ledger(env, Method::Get, "workflows", &query, None, &caller).await)
        }
        (Method::Get, None) if valid_id(rest) => pass_on(
            internal::call(
                env,
                WORKFLOW_BINDING,
                rest,
                Method::Get,
                "",
                "",
                None,
                &caller,
            )
            .await,
        ),
        (Method::Post, Some((id, verb @ ("events" | "cancel" | "advance")))) if valid_id(id) => {
            let body = match json_body() {
                Ok(b) => b,
                Err(e) => return respond::error(&e),
            };
            pass_on(
                internal::call(
                    env,
                    WORKFLOW_BINDING,
                    id,
                    Method::Post,
                    verb,
                    "",
                    Some(&body),
                    &caller,
                )
                .await,
            )
        }
        (m, _) => respond::error(&ApiError::not_found(format!(
            "no route {m:?} /v1/workflows/{rest}"
        ))),
    }
}
