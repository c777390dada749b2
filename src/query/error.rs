//! Errors of parsing a query: each has a stable `code()`.
//!
//! ```
//! use pylon_workers::query::QueryError;
//! let e = QueryError::UnknownField { field: "nope".into() };
//! assert_eq!(e.code(), "UNKNOWN_FIELD");
//! ```

/// Why a query was refused. Variants carry the offending name or reason.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// A field (in `where` or `order`) that the entity does not have.
    #[error("unknown field `{field}`")]
    UnknownField { field: String },
    /// A literal that does not fit the declared type of its field.
    #[error("field `{field}`: expected {expected}, got {got}")]
    TypeMismatch {
        field: String,
        expected: String,
        got: String,
    },
    /// A malformed query: wrong shape, unknown key or operator, ...
    #[error("bad query at `{at}`: {reason}")]
    BadQuery { at: String, reason: String },
    /// A documented limit (see `query::limits`) was exceeded.
    #[error("query too large: {what} exceeds the limit of {limit}")]
    TooLarge { what: &'static str, limit: usize },
    /// An `after` cursor that is not one this query produced.
    #[error("bad cursor: {reason}")]
    BadCursor { reason: String },
}

impl QueryError {
    /// A stable, UPPER_SNAKE code for clients.
    pub fn code(&self) -> &'static str {
        match self {
            QueryError::UnknownField { .. } => "UNKNOWN_FIELD",
            QueryError::TypeMismatch { .. } => "TYPE_MISMATCH",
            QueryError::BadQuery { .. } | QueryError::TooLarge { .. } => "BAD_QUERY",
            QueryError::BadCursor { .. } => "BAD_CURSOR",
        }
    }

    pub(crate) fn bad(at: impl Into<String>, reason: impl Into<String>) -> Self {
        QueryError::BadQuery {
            at: at.into(),
            reason: reason.into(),
        }
    }
}
