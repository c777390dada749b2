//! Why a frame could not be decoded.

use super::{ErrorCode, ErrorMsg};

/// A frame that is not a valid message. Decoding never panics; every
/// failure is one of these.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON / not postcard, or the wrong frame kind for the encoding.
    #[error("bad frame: {reason}")]
    BadFrame { reason: String },
    /// Larger than the frame limit (checked by the `*_frame` decoders).
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge { len: usize, max: usize },
    /// A message `type` this version does not know. For postcard, `ty` is
    /// the variant index in decimal.
    #[error("unknown message type `{ty}`")]
    UnknownType {
        ty: String,
        sub: Option<String>,
        op: Option<String>,
    },
    /// A field is missing or has the wrong type. `field` names it when
    /// known (`"limit"`, `"ops[2].entity"`); postcard errors cannot.
    #[error("{}", bad_message(field.as_deref(), reason))]
    BadMessage {
        field: Option<String>,
        reason: String,
        sub: Option<String>,
        op: Option<String>,
    },
}

fn bad_message(field: Option<&str>, reason: &str) -> String {
    match field {
        Some(f) => format!("bad message: field `{f}`: {reason}"),
        None => format!("bad message: {reason}"),
    }
}

impl DecodeError {
    /// The wire error code: `BAD_FRAME`, `FRAME_TOO_LARGE`, `UNKNOWN_TYPE`
    /// or `BAD_MESSAGE`.
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeError::BadFrame { .. } => ErrorCode::BadFrame,
            DecodeError::FrameTooLarge { .. } => ErrorCode::FrameTooLarge,
            DecodeError::UnknownType { .. } => ErrorCode::UnknownType,
            DecodeError::BadMessage { .. } => ErrorCode::BadMessage,
        }
    }

    /// The `id` of the failed message, when the frame was JSON and had a
    /// string `id` (for the `err.sub` of the reply).
    pub fn sub(&self) -> Option<&str> {
        match self {
            DecodeError::UnknownType { sub, .. } | DecodeError::BadMessage { sub, .. } => {
                sub.as_deref()
            }
            _ => None,
        }
    }

    /// The `op` of the failed message, when the frame was JSON and had a
    /// string `op` (for the `err.op` of the reply).
    pub fn op(&self) -> Option<&str> {
        match self {
            DecodeError::UnknownType { op, .. } | DecodeError::BadMessage { op, .. } => {
                op.as_deref()
            }
            _ => None,
        }
    }

    /// The `err` message a server sends back for this error.
    pub fn to_err(&self) -> ErrorMsg {
        ErrorMsg {
            code: self.code(),
            message: self.to_string(),
            op: self.op().map(str::to_owned),
            sub: self.sub().map(str::to_owned),
        }
    }

    /// The close code the server uses after replying, if the error ends the
    /// connection (only `FRAME_TOO_LARGE`: 1009).
    pub fn close_code(&self) -> Option<u16> {
        match self {
            DecodeError::FrameTooLarge { .. } => Some(super::close::TOO_LARGE),
            _ => None,
        }
    }

    pub(crate) fn bad_frame(reason: impl Into<String>) -> Self {
        DecodeError::BadFrame {
            reason: reason.into(),
        }
    }
}
