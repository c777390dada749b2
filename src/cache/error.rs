//! The cache's errors: each with its HTTP status and a stable code.

use super::{MAX_KEYS_PER_COMMAND, MAX_VALUE_BYTES};
use crate::api_error::ApiError;
use crate::storage::StorageError;

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// 400 `BAD_KEY`: empty, over 512 bytes, a control character, or a
    /// bad percent-encoding in a path.
    #[error("{0}")]
    BadKey(String),
    /// 400 `BAD_TTL`: outside 1 ms – 365 days.
    #[error("{0}")]
    BadTtl(String),
    /// 413 `VALUE_TOO_LARGE`: a value's JSON text over 64 KiB (or a body
    /// that cannot hold a value within it).
    #[error("the value is {bytes} bytes of JSON, over the {MAX_VALUE_BYTES} bytes a value may be")]
    ValueTooLarge { bytes: usize },
    /// 404 `NOT_FOUND`: no such key (or it expired).
    #[error("no key {0}")]
    NotFound(String),
    /// 409 `NOT_AN_INTEGER`: an increment of a value that is not an
    /// integer, or one that would leave ±(2^53 − 1).
    #[error("{0}")]
    NotAnInteger(String),
    /// 400 `UNKNOWN_COMMAND`.
    #[error("unknown command {0:?}; the cache takes {list}", list = super::COMMANDS.join(", "))]
    UnknownCommand(String),
    /// 400 `BAD_COMMAND`: wrong arity or an argument of the wrong type;
    /// the message names the argument.
    #[error("{0}")]
    BadCommand(String),
    /// 400 `BAD_REQUEST`: a body that is not JSON or does not fit.
    #[error("{0}")]
    BadRequest(String),
    /// 500 `INTERNAL`: the object's storage failed (details for the log).
    #[error("the cache's storage: {0}")]
    Storage(#[from] StorageError),
}

impl crate::host::Refusal for CacheError {
    fn storage(&self) -> Option<&StorageError> {
        match self {
            CacheError::Storage(s) => Some(s),
            _ => None,
        }
    }
}

impl CacheError {
    pub fn code(&self) -> &'static str {
        match self {
            CacheError::BadKey(_) => "BAD_KEY",
            CacheError::BadTtl(_) => "BAD_TTL",
            CacheError::ValueTooLarge { .. } => "VALUE_TOO_LARGE",
            CacheError::NotFound(_) => "NOT_FOUND",
            CacheError::NotAnInteger(_) => "NOT_AN_INTEGER",
            CacheError::UnknownCommand(_) => "UNKNOWN_COMMAND",
            CacheError::BadCommand(_) => "BAD_COMMAND",
            CacheError::BadRequest(_) => "BAD_REQUEST",
            CacheError::Storage(_) => "INTERNAL",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            CacheError::ValueTooLarge { .. } => 413,
            CacheError::NotFound(_) => 404,
            CacheError::NotAnInteger(_) => 409,
            CacheError::Storage(_) => 500,
            _ => 400,
        }
    }

    pub(crate) fn too_many_keys(name: &str, n: usize) -> CacheError {
        CacheError::BadCommand(format!(
            "{name} takes 1 to {MAX_KEYS_PER_COMMAND} keys, not {n}"
        ))
    }
}

impl From<CacheError> for ApiError {
    fn from(e: CacheError) -> ApiError {
        let message = match &e {
            // The statement and SQLite's words are for the log only.
            CacheError::Storage(_) => "the cache's storage failed".to_owned(),
            other => other.to_string(),
        };
        ApiError::new(e.status(), e.code(), message)
    }
}
