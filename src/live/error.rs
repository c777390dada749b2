//! Errors of maintaining a live query.
//!
//! ```
//! use pylon_workers::live::LiveError;
//! let e: LiveError<String> = LiveError::IdMismatch { before: "a".into(), after: "b".into() };
//! assert_eq!(e.code(), "ID_MISMATCH");
//! ```

use std::fmt;

/// Why a change could not be applied to a subscription.
#[derive(Clone, Debug, PartialEq)]
pub enum LiveError<E> {
    /// `before` and `after` of an update name different rows.
    IdMismatch { before: String, after: String },
    /// The window source (the store) failed.
    Source(E),
}

impl<E> LiveError<E> {
    pub fn code(&self) -> &'static str {
        match self {
            LiveError::IdMismatch { .. } => "ID_MISMATCH",
            LiveError::Source(_) => "SOURCE_FAILED",
        }
    }
}

impl<E: fmt::Display> fmt::Display for LiveError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LiveError::IdMismatch { before, after } => {
                write!(f, "a change turns row `{before}` into row `{after}`")
            }
            LiveError::Source(e) => write!(f, "window source failed: {e}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for LiveError<E> {}
