//! An HTTP request as an object sees it, and its answer: plain values, no
//! platform types. The router has already authenticated the caller and
//! parsed the path; the host has read the body (within the object's cap).

use crate::api_error::ApiError;
use crate::auth::Lease;
use crate::policy::AuthContext;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
    Other,
}

/// A request routed to an object.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub method: Method,
    /// The object's name (`room-1`, `counter/abc`).
    pub object: String,
    /// The path after the object's name, without the leading slash (`ws`,
    /// `query`, `` for the object itself).
    pub rest: String,
    /// Decoded query-string pairs, in order.
    pub query: Vec<(String, String)>,
    /// The caller the router verified.
    pub caller: AuthContext,
    /// How long that identity lasts (the token's `exp`, its session).
    pub lease: Lease,
    /// The body, at most the object's `max_body_bytes`.
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of a query-string parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A JSON answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    pub status: u16,
    pub body: serde_json::Value,
}

impl Response {
    pub fn json(status: u16, body: serde_json::Value) -> Response {
        Response { status, body }
    }

    pub fn ok(body: serde_json::Value) -> Response {
        Response::json(200, body)
    }
}

impl From<ApiError> for Response {
    fn from(e: ApiError) -> Response {
        Response::json(e.status, e.body())
    }
}

/// An error an object answers a request with, which may be a failure of
/// its storage.
pub trait Refusal: Into<ApiError> {
    /// The storage failure behind this error, if that is what it is.
    fn storage(&self) -> Option<&crate::storage::StorageError>;
}

/// An object's answer to a request it refused: the error's response, and
/// when its storage failed (which the caller sees only as `INTERNAL`) a
/// log line `{what}: {failure}` for the operator.
pub fn refusal<M, S>(what: &str, error: impl Refusal) -> (Response, Vec<super::Action<M, S>>) {
    let log = error
        .storage()
        .map(|s| super::Action::Log(format!("{what}: {s}")))
        .into_iter()
        .collect();
    (error.into().into(), log)
}

impl From<&ApiError> for Response {
    fn from(e: &ApiError) -> Response {
        Response::json(e.status, e.body())
    }
}
