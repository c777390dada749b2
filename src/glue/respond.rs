//! Turning engine results into `worker::Response`s.

use std::sync::Arc;

use crate::api_error::ApiError;
use crate::app::App;
use crate::manifest::Manifest;
use worker::{Response, Result};

/// A JSON response with `status`.
pub(crate) fn json(status: u16, body: &serde_json::Value) -> Result<Response> {
    Ok(Response::from_json(body)?.with_status(status))
}

/// The API's error shape (see `ApiError`).
pub(crate) fn error(e: &ApiError) -> Result<Response> {
    json(e.status, &e.body())
}

/// Logs an unexpected runtime failure and answers 500 without its details
/// (they may carry internals; the log has them).
pub(crate) fn internal(context: &str, e: &worker::Error) -> Result<Response> {
    worker::console_error!("{context}: {e}");
    error(&ApiError::internal(format!("{context} failed")))
}

/// A caller the rule refused: 401 `UNAUTHORIZED` without an identity (a
/// token would help), else 403 `FORBIDDEN`. `what` names what was refused.
#[cfg(any(feature = "jobs", feature = "cache", feature = "files"))]
pub(crate) fn refused(caller: &crate::policy::AuthContext, what: &str) -> Result<Response> {
    if caller.user_id.is_none() && !caller.is_admin {
        error(&ApiError::new(
            401,
            "UNAUTHORIZED",
            format!("{what}: sign in first"),
        ))
    } else {
        error(&ApiError::new(
            403,
            "FORBIDDEN",
            format!("{what}: not allowed for this caller"),
        ))
    }
}

/// The app's manifest, or the answer when it does not load: a 500 without
/// the details (logged).
pub(crate) fn manifest(app: &App) -> Result<std::result::Result<Arc<Manifest>, Response>> {
    match app.manifest() {
        Ok(m) => Ok(Ok(m)),
        Err(e) => {
            worker::console_error!("{}", e.message);
            let answer = ApiError::internal("the manifest does not load");
            Ok(Err(error(&answer)?))
        }
    }
}

/// Adds a 401's challenge (RFC 6750 §3): `Bearer`, with `invalid_token`
/// and why when a token was sent and refused (`refused`: the reason).
/// Any other answer is left as it is.
pub(crate) fn challenge(resp: &mut Response, refused: Option<&str>) -> Result<()> {
    if resp.status_code() != 401 {
        return Ok(());
    }
    let value = match refused {
        None => "Bearer".to_owned(),
        Some(reason) => {
            format!("Bearer error=\"invalid_token\", error_description=\"{reason}\"")
        }
    };
    resp.headers_mut().set("WWW-Authenticate", &value)
}
