//! Errors of the data stores, each with a stable `code()`.
//!
//! ```
//! use pylon_workers::store::StoreError;
//! let e = StoreError::NotFound { entity: "Todo".into(), id: "t1".into() };
//! assert_eq!((e.code(), e.status()), ("NOT_FOUND", 404));
//! ```

use crate::api_error::ApiError;
use crate::manifest::RowError;
use crate::query::QueryError;
use crate::storage::StorageError;

/// Why a store operation failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum StoreError {
    #[error("{entity} {id:?} not found")]
    NotFound { entity: String, id: String },
    #[error("{entity} {id:?} already exists")]
    AlreadyExists { entity: String, id: String },
    /// Another live row (in the same shard) holds the same value(s).
    #[error("{entity}: another row has the same {}", fields.join(", "))]
    UniqueViolation { entity: String, fields: Vec<String> },
    #[error("unknown entity {entity:?}")]
    UnknownEntity { entity: String },
    #[error("{entity} has no field {field:?}")]
    UnknownField { entity: String, field: String },
    /// A row or `set` map that does not fit its entity (`TYPE_MISMATCH`,
    /// `UNKNOWN_FIELD`, `REQUIRED_FIELD`, `MISSING_ID`, `INVALID_ID`,
    /// `ID_IMMUTABLE`).
    #[error(transparent)]
    Row(#[from] RowError),
    /// A query that does not parse (`BAD_QUERY`, `UNKNOWN_FIELD`,
    /// `TYPE_MISMATCH`, `BAD_CURSOR`).
    #[error(transparent)]
    Query(#[from] QueryError),
    /// A request the store cannot serve as asked.
    #[error("bad query: {reason}")]
    BadQuery { reason: String },
    /// A write on a D1 store not scoped to a shard: D1 rows are keyed by
    /// `(shard, id)`.
    #[error("writes to D1 need a shard (use `for_shard`)")]
    ShardRequired,
    /// More than fits one D1 batch or statement (see `store::limits`).
    #[error("too large: {what} exceeds the limit of {limit}")]
    TooLarge { what: &'static str, limit: usize },
    /// The database failed; the message may carry internals.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl StoreError {
    /// A stable, UPPER_SNAKE code.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::NotFound { .. } => "NOT_FOUND",
            StoreError::AlreadyExists { .. } => "ALREADY_EXISTS",
            StoreError::UniqueViolation { .. } => "UNIQUE_VIOLATION",
            StoreError::UnknownEntity { .. } => "UNKNOWN_ENTITY",
            StoreError::UnknownField { .. } => "UNKNOWN_FIELD",
            StoreError::Row(e) => e.code(),
            StoreError::Query(e) => e.code(),
            StoreError::BadQuery { .. } => "BAD_QUERY",
            StoreError::ShardRequired => "SHARD_REQUIRED",
            StoreError::TooLarge { .. } => "TOO_LARGE",
            StoreError::Storage(_) => "STORAGE",
        }
    }

    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            StoreError::NotFound { .. } => 404,
            StoreError::AlreadyExists { .. } | StoreError::UniqueViolation { .. } => 409,
            StoreError::Storage(_) => 500,
            _ => 400,
        }
    }

    /// The API error shape. Storage failures are answered without their
    /// message (it may show SQL); log the error itself.
    pub fn to_api_error(&self) -> ApiError {
        match self {
            StoreError::Storage(_) => ApiError::new(500, "STORAGE", "storage failed"),
            e => ApiError::new(e.status(), e.code(), e.to_string()),
        }
    }

    pub(crate) fn bad(reason: impl Into<String>) -> Self {
        StoreError::BadQuery {
            reason: reason.into(),
        }
    }
}
