//! Turning engine results into `worker::Response`s.

use crate::api_error::ApiError;
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
