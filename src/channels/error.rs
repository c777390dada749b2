//! The channels' errors: each with its HTTP status and a stable code, the
//! same on an HTTP answer and on a socket's `error` frame.

use super::{MAX_MESSAGE_BYTES, MAX_NAME_BYTES};
use crate::api_error::ApiError;
use crate::storage::StorageError;

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// 400 `BAD_CHANNEL_NAME`: empty, over 128 bytes, or a character
    /// outside `A-Z a-z 0-9 . _ - :`.
    #[error("{0:?} is not a channel name: 1 to {MAX_NAME_BYTES} of A-Z a-z 0-9 . _ - :")]
    BadName(String),
    /// 404 `UNKNOWN_CHANNEL`: no rule of the manifest's `channels` fits
    /// the name.
    #[error("no channel {0:?}: no rule of the manifest's channels fits it")]
    Unknown(String),
    /// 401 `UNAUTHORIZED`: refused to a caller without an identity.
    #[error("{0}: sign in first")]
    Unauthorized(String),
    /// 403 `FORBIDDEN`: refused to this caller.
    #[error("{0}: not allowed for this caller")]
    Forbidden(String),
    /// 413 `MESSAGE_TOO_LARGE`: a message's JSON over 64 KiB.
    #[error(
        "the message is {bytes} bytes of JSON, over the {MAX_MESSAGE_BYTES} bytes a message may be"
    )]
    TooLarge { bytes: usize },
    /// 400 `BAD_REQUEST`: a body, query or frame that does not fit.
    #[error("{0}")]
    BadRequest(String),
    /// 500 `INTERNAL`: the object's storage failed (details for the log).
    #[error("the channel's storage: {0}")]
    Storage(#[from] StorageError),
}

impl crate::host::Refusal for ChannelError {
    fn storage(&self) -> Option<&StorageError> {
        match self {
            ChannelError::Storage(s) => Some(s),
            _ => None,
        }
    }
}

impl ChannelError {
    pub fn code(&self) -> &'static str {
        match self {
            ChannelError::BadName(_) => "BAD_CHANNEL_NAME",
            ChannelError::Unknown(_) => "UNKNOWN_CHANNEL",
            ChannelError::Unauthorized(_) => "UNAUTHORIZED",
            ChannelError::Forbidden(_) => "FORBIDDEN",
            ChannelError::TooLarge { .. } => "MESSAGE_TOO_LARGE",
            ChannelError::BadRequest(_) => "BAD_REQUEST",
            ChannelError::Storage(_) => "INTERNAL",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            ChannelError::Unknown(_) => 404,
            ChannelError::Unauthorized(_) => 401,
            ChannelError::Forbidden(_) => 403,
            ChannelError::TooLarge { .. } => 413,
            ChannelError::Storage(_) => 500,
            _ => 400,
        }
    }

    /// What a client is told (storage details are for the log only).
    pub fn public_message(&self) -> String {
        match self {
            ChannelError::Storage(_) => "the channel's storage failed".to_owned(),
            other => other.to_string(),
        }
    }
}

impl From<ChannelError> for ApiError {
    fn from(e: ChannelError) -> ApiError {
        ApiError::new(e.status(), e.code(), e.public_message())
    }
}

/// A channel's refusal (its HTTP status, code and message) as a function
/// call's error: the nearest protocol code, the channel's own code at the
/// start of the message (`"MESSAGE_TOO_LARGE: …"`), as `ctx.error` does.
pub fn refusal_as_fn_error(status: u16, code: &str, message: &str) -> crate::functions::FnError {
    crate::functions::FnError::refusal(status, code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_keep_their_code_in_a_function_error() {
        let e = refusal_as_fn_error(413, "MESSAGE_TOO_LARGE", "too big");
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("BAD_ARGS", "MESSAGE_TOO_LARGE: too big")
        );
        assert_eq!(
            refusal_as_fn_error(403, "FORBIDDEN", "no").code.as_str(),
            "FORBIDDEN"
        );
        assert_eq!(
            refusal_as_fn_error(404, "UNKNOWN_CHANNEL", "no")
                .code
                .as_str(),
            "NOT_FOUND"
        );
        assert_eq!(
            refusal_as_fn_error(500, "INTERNAL", "x").code.as_str(),
            "UNAVAILABLE"
        );
    }
}
