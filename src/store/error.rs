//! Errors of the data stores, each with a stable `code()`.
//!
//! ```
//! use pylon_workers::store::StoreError;
//! let e = StoreError::NotFound { entity: "Todo".into(), id: "t1".into() };
//! assert_eq!((e.code(), e.status()), ("NOT_FOUND", 404));
//! ```

use crate::api_error::ApiError;
use crate::auth::AuthError;
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
    /// One row (or an aggregate) alone is over the answer's byte budget
    /// (`query::limits::MAX_RESULT_BYTES`).
    #[error("the result needs {bytes} bytes, over the {limit} byte limit of an answer: select fewer rows or narrow the aggregate")]
    ResultTooLarge { bytes: usize, limit: usize },
    /// The caller may not enter the shard the request names: answered
    /// exactly as the shard's own gate answers (`MISSING_TOKEN`,
    /// `SHARD_DENIED`).
    #[error(transparent)]
    Access(AuthError),
    /// D1 has no tables: its migrations were not applied.
    #[error("the D1 database has no schema yet: apply its migrations with `wrangler d1 migrations apply DB --local` (wrangler dev) or `wrangler d1 migrations apply DB --remote` (the deployed database)")]
    NotMigrated,
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
            StoreError::ResultTooLarge { .. } => "RESULT_TOO_LARGE",
            StoreError::Access(e) => e.code(),
            StoreError::NotMigrated => "D1_NOT_MIGRATED",
            StoreError::Storage(_) => "STORAGE",
        }
    }

    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            StoreError::NotFound { .. } => 404,
            StoreError::AlreadyExists { .. } | StoreError::UniqueViolation { .. } => 409,
            StoreError::ResultTooLarge { .. } => 413,
            StoreError::Access(e) => e.status(),
            StoreError::NotMigrated => 503,
            StoreError::Storage(_) => 500,
            _ => 400,
        }
    }

    /// The API error shape. Storage failures are answered without their
    /// message (it may show SQL); log the error itself.
    pub fn to_api_error(&self) -> ApiError {
        match self {
            StoreError::Storage(_) => ApiError::new(500, "STORAGE", "storage failed"),
            StoreError::Access(e) => e.to_api_error(),
            e => ApiError::new(e.status(), e.code(), e.to_string()),
        }
    }

    /// The error as the cold path reports it: a storage failure that says
    /// D1 has no tables becomes [`StoreError::NotMigrated`].
    pub fn in_d1(self) -> Self {
        match self {
            StoreError::Storage(e) if e.is_missing_table() => StoreError::NotMigrated,
            e => e,
        }
    }

    pub(crate) fn bad(reason: impl Into<String>) -> Self {
        StoreError::BadQuery {
            reason: reason.into(),
        }
    }
}
