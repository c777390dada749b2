//! What a function call can fail with: a code every client can match on,
//! and a message for people.

use crate::protocol::{ErrorCode, ErrorMsg};

/// A failed call. Codes (docs/functions.md, "Errors"): `UNKNOWN_FUNCTION`,
/// `WRONG_KIND`, `BAD_ARGS`, `FUNCTION_ERROR` (the function's own
/// `ctx.error(code, message)`: the message starts with its code and `:`),
/// `FUNCTION_FAILED` (anything else it threw), `MUTATION_IO`, `READ_ONLY`,
/// `FUNCTION_BUDGET`, or any code of the `ctx.db` call that failed
/// (`FORBIDDEN`, `NOT_FOUND`, …) when the function let it escape.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct FnError {
    pub code: ErrorCode,
    pub message: String,
}

impl FnError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        FnError {
            code,
            message: message.into(),
        }
    }

    /// The function's own error (`ctx.error` in TypeScript): `FUNCTION_ERROR`
    /// whose message is `"{code}: {message}"`, so a client can match the
    /// app's code (UPPER_SNAKE) without the protocol knowing it.
    pub fn app(code: &str, message: impl Into<String>) -> Self {
        let code = if !code.is_empty()
            && code
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        {
            code
        } else {
            "APP_ERROR"
        };
        FnError::new(
            ErrorCode::FunctionError,
            format!("{code}: {}", message.into()),
        )
    }

    /// A refusal of one of the platform's HTTP APIs (its status, code and
    /// message) that an action called as its caller (channels, rooms): the
    /// nearest protocol code by status, the API's own code at the start
    /// of the message (`"BAD_MEMBER: …"`), as [`FnError::app`] does.
    pub fn refusal(status: u16, code: &str, message: &str) -> Self {
        let nearest = match status {
            400 | 413 => ErrorCode::BadArgs,
            401 => ErrorCode::Unauthorized,
            403 => ErrorCode::Forbidden,
            404 => ErrorCode::NotFound,
            429 => ErrorCode::RateLimited,
            _ => ErrorCode::Unavailable,
        };
        FnError::new(nearest, format!("{code}: {message}"))
    }

    /// Arguments that do not fit: `path` names the argument (`args.items[2].qty`).
    pub fn bad_args(path: &str, reason: impl std::fmt::Display) -> Self {
        FnError::new(ErrorCode::BadArgs, format!("{path}: {reason}"))
    }

    pub fn unknown(name: &str) -> Self {
        FnError::new(
            ErrorCode::UnknownFunction,
            format!("no function {name:?} in this app"),
        )
    }

    pub fn failed(message: impl Into<String>) -> Self {
        FnError::new(ErrorCode::FunctionFailed, message)
    }

    /// The `err` a client gets.
    pub fn to_msg(&self) -> ErrorMsg {
        ErrorMsg {
            code: self.code,
            message: self.message.clone(),
            op: None,
            sub: None,
        }
    }
}

impl From<ErrorMsg> for FnError {
    fn from(e: ErrorMsg) -> Self {
        FnError::new(e.code, e.message)
    }
}
