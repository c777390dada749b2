//! Actions (docs/functions.md): run by the router Worker, outside any
//! shard's turn, so they may `fetch`; their `runQuery`/`runMutation` are
//! requests to the shard the action was called on, as the same caller
//! (policies apply to them as to the caller's own calls).

use std::rc::Rc;

use worker::{Env, Request, Response, Result};

use crate::api_error::ApiError;
use crate::app::App;
use crate::glue::auth::Gate;
use crate::glue::run::{self, ShardCalls};
use crate::glue::{body, edge, respond, session_gate};
use crate::value::Value;

/// An action's arguments, at most (the shard's own calls are bounded by
/// its frame limit).
const MAX_ARGS_BYTES: usize = 1 << 20;

/// `POST /v1/shards/{shard}/fn/{name}` when `name` is an action.
pub async fn run(env: &Env, app: &App, shard: &str, name: &str, req: Request) -> Result<Response> {
    let (mut fwd, caller) = match session_gate::gate(env, app, shard, &req).await? {
        Gate::Pass(fwd, caller) => (fwd, caller),
        Gate::Refuse(resp) => return Ok(resp),
    };
    if let Some(r) = edge::user_limit(env, &caller).await? {
        return Ok(r);
    }
    let bytes = match body::read_capped(&mut fwd, MAX_ARGS_BYTES).await {
        Ok(b) => b,
        Err(e) => return respond::error(&e.to_api_error("FRAME_TOO_LARGE")),
    };
    let args: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                return respond::error(&ApiError::bad_request(
                    "BAD_FRAME",
                    format!("body is not JSON: {e}"),
                ))
            }
        }
    };
    let host = Rc::new(ShardCalls {
        env: env.clone(),
        shard: Some(shard.to_owned()),
        caller: caller.clone(),
        manifest: app.manifest().ok(),
    });
    let result = run::action(app, name, &caller, host, args).await;
    match result {
        Ok(value) => respond::json(200, &serde_json::json!({ "value": value })),
        Err(e) => respond::error(&ApiError::from(&e.to_msg())),
    }
}
