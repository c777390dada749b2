//! The one error shape of the HTTP API:
//! `{"error":{"code":"NOT_FOUND","message":"..."}}` with an HTTP status.
//!
//! ```
//! use pylon_workers::api_error::ApiError;
//! let e = ApiError::not_found("no route for GET /nope");
//! assert_eq!(e.status, 404);
//! assert_eq!(e.body()["error"]["code"], "NOT_FOUND");
//! ```

use serde_json::json;

/// An error answered over HTTP. `code` is stable and upper-case; `message`
/// is for people and may change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code} ({status}): {message}")]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// A finer code under `code`, e.g. `EXPIRED` under `UNAUTHORIZED`.
    pub reason: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            reason: None,
        }
    }
    pub fn with_reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "NOT_FOUND", message)
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "METHOD_NOT_ALLOWED", message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "INTERNAL", message)
    }

    /// The JSON body sent to the client.
    pub fn body(&self) -> serde_json::Value {
        let mut body = json!({ "error": { "code": self.code, "message": self.message } });
        if let Some(r) = self.reason {
            body["error"]["reason"] = json!(r);
        }
        body
    }
}

impl From<&crate::protocol::ErrorMsg> for ApiError {
    /// The HTTP status of each wire error code, so HTTP and WebSocket
    /// clients see the same codes.
    fn from(e: &crate::protocol::ErrorMsg) -> Self {
        use crate::protocol::ErrorCode as C;
        let status = match e.code {
            C::NotFound | C::UnknownSubscription | C::UnknownFunction => 404,
            // The function ran and refused or failed: the request was
            // understood, its content was not acceptable.
            C::FunctionError | C::FunctionFailed | C::MutationIo | C::ReadOnly => 422,
            C::FunctionBudget => 413,
            C::AlreadyExists | C::UniqueViolation | C::DuplicateSubscription => 409,
            C::Forbidden => 403,
            C::Unauthorized => 401,
            C::RateLimited => 429,
            C::FrameTooLarge | C::ResultTooLarge | C::PresenceTooLarge | C::TooManyOps => 413,
            C::TooManyConnections | C::Unavailable => 503,
            C::Internal | C::Unknown => 500,
            _ => 400,
        };
        ApiError::new(status, e.code.as_str(), e.message.clone())
    }
}
