//! The `err` answers the engine makes of its layers' errors, in one place so
//! that storage detail never reaches a client.

use crate::manifest;
use crate::protocol::{ErrorCode, ErrorMsg};
use crate::query::QueryError;
use crate::storage::StorageError;

pub(super) fn err(code: ErrorCode, message: impl Into<String>) -> ErrorMsg {
    ErrorMsg {
        code,
        message: message.into(),
        op: None,
        sub: None,
    }
}

/// Storage failed: a generic `INTERNAL`. SQLite's text names tables and
/// columns, so it goes to the log (the runtime's `SqlConn` writes it
/// there), never into an answer.
pub(super) fn storage_err(_: &StorageError) -> ErrorMsg {
    err(
        ErrorCode::Internal,
        "the shard's storage failed; the change was not applied",
    )
}

pub(super) fn query_err(e: &QueryError) -> ErrorMsg {
    err(
        ErrorCode::parse(e.code()).unwrap_or(ErrorCode::BadQuery),
        e.to_string(),
    )
}

pub(super) fn row_err(e: &manifest::RowError) -> ErrorMsg {
    err(
        ErrorCode::parse(e.code()).unwrap_or(ErrorCode::BadMessage),
        e.to_string(),
    )
}
