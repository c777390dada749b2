//! An action's `ctx.rooms` in the Worker (docs/rooms.md): the request the
//! router would make for `/v1/rooms…`, as the action's caller. The room's
//! name and the shard rules are checked here, as the router's gate does;
//! the room's shard checks the rest (who may act for which member, the
//! bodies, the presence bounds); the list is read from D1 as for
//! `GET /v1/rooms`. Every refusal keeps the HTTP API's code.

use std::sync::Arc;

use worker::{Env, Method};

use crate::functions::FnError;
use crate::glue::d1::{D1Exec, D1_BINDING};
use crate::glue::internal::{self, SHARD_BINDING};
use crate::manifest::Manifest;
use crate::policy::AuthContext;
use crate::protocol::ErrorCode;
use crate::shard::rooms::{self, RoomOp};
use crate::value::Value;

fn refused(e: &crate::api_error::ApiError) -> FnError {
    rooms::refusal_as_fn_error(e.status, e.code, &e.message)
}

/// `op` on `room` (none for the list) with `body`, as `caller`.
pub(crate) async fn call(
    env: &Env,
    manifest: Option<&Arc<Manifest>>,
    caller: &AuthContext,
    op: RoomOp,
    room: &str,
    body: serde_json::Value,
) -> Result<Value, FnError> {
    let Some(manifest) = manifest else {
        return Err(FnError::new(
            ErrorCode::Internal,
            "the manifest does not load",
        ));
    };
    let Some((post, rest)) = op.shard_route() else {
        return list(env, manifest, caller, &body).await;
    };
    rooms::admit(manifest.auth(), room, caller).map_err(|e| refused(&e))?;
    let (method, body) = if post {
        (Method::Post, Some(&body))
    } else {
        (Method::Get, None)
    };
    let answer = internal::call(env, SHARD_BINDING, room, method, rest, "", body, caller).await;
    match answer {
        Ok(a) if a.ok() => Ok(serde_json::from_value(a.body).unwrap_or(Value::Null)),
        Ok(a) => {
            let (code, message) = a.error();
            Err(rooms::refusal_as_fn_error(a.status, &code, &message))
        }
        Err(e) => Err(FnError::new(
            ErrorCode::Unavailable,
            format!("room {room:?}: {} failed: {e}", op.as_str()),
        )),
    }
}

/// `GET /v1/rooms` for `caller`: `{rooms, next}`.
async fn list(
    env: &Env,
    manifest: &Manifest,
    caller: &AuthContext,
    body: &serde_json::Value,
) -> Result<Value, FnError> {
    let (after, limit) = rooms::list_page(body).map_err(|e| refused(&e))?;
    let db = env
        .d1(D1_BINDING)
        .map_err(|e| FnError::new(ErrorCode::Internal, format!("binding {D1_BINDING}: {e}")))?;
    let db = D1Exec(db);
    match crate::glue::cold::room_page(&db, manifest, caller, after.as_deref(), limit).await {
        Ok(page) => Ok(serde_json::to_value(&page)
            .ok()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or(Value::Null)),
        Err(e) => {
            if let crate::store::StoreError::Storage(s) = &e {
                worker::console_error!("rooms list: {s}");
            }
            Err(refused(&e.to_api_error()))
        }
    }
}
