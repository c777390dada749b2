//! Why a simulation refused something: one enum, each variant with its
//! stable wire code and HTTP status (docs/protocol.md, "Simulation
//! shards").

use serde::{Deserialize, Serialize};

use serde_json::json;

use crate::api_error::ApiError;
use crate::host::Response;

macro_rules! codes {
    ($($name:ident = $s:literal, $status:literal;)*) => {
        /// The stable code of a simulation error: a string on the wire in
        /// both encodings, so codes can be added; a code this version does
        /// not know decodes as `Unknown`.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum SimErrorCode {
            $($name,)*
            Unknown,
        }

        impl SimErrorCode {
            pub const ALL: &'static [SimErrorCode] = &[$(SimErrorCode::$name,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(SimErrorCode::$name => $s,)*
                    SimErrorCode::Unknown => "UNKNOWN",
                }
            }

            /// The HTTP status that goes with it.
            pub fn status(self) -> u16 {
                match self {
                    $(SimErrorCode::$name => $status,)*
                    SimErrorCode::Unknown => 500,
                }
            }

            pub fn parse(s: &str) -> SimErrorCode {
                match s {
                    $($s => SimErrorCode::$name,)*
                    _ => SimErrorCode::Unknown,
                }
            }
        }
    };
}

codes! {
    BadFrame = "BAD_FRAME", 400;
    UnknownType = "UNKNOWN_TYPE", 400;
    BadInput = "BAD_INPUT", 400;
    InputTooLarge = "INPUT_TOO_LARGE", 413;
    Forbidden = "FORBIDDEN", 403;
    SimFull = "SIM_FULL", 503;
    QueueFull = "QUEUE_FULL", 429;
    RateLimited = "RATE_LIMITED", 429;
    InputRejected = "INPUT_REJECTED", 422;
    SimFinished = "SIM_FINISHED", 410;
    UnsupportedEncoding = "UNSUPPORTED_ENCODING", 400;
    Internal = "INTERNAL", 500;
}

impl std::fmt::Display for SimErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for SimErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SimErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        Ok(SimErrorCode::parse(&s))
    }
}

/// A refusal, with what the sender needs to act on it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// Not JSON / not postcard, or the wrong frame kind for the encoding.
    #[error("bad frame: {0}")]
    BadFrame(String),
    /// A message `type` (postcard: tag) this version does not know.
    #[error("unknown message type `{0}`")]
    UnknownType(String),
    /// The message or the input does not decode, or its seq is unusable.
    #[error("bad input: {0}")]
    BadInput(String),
    #[error("input of {len} bytes exceeds the limit of {max} bytes")]
    InputTooLarge { len: usize, max: usize },
    /// An authorize hook said no; `reason` is its answer.
    #[error("forbidden: {reason}")]
    Forbidden { reason: String },
    #[error("the simulation has its {max} subscribers")]
    SimFull { max: u32 },
    #[error("{max} inputs are waiting for the next tick; try again")]
    QueueFull { max: u32 },
    /// The state's `apply_input` returned `Err` (the input was logged and
    /// processed; the simulation goes on).
    #[error("the simulation refused input {seq}: {reason}")]
    InputRejected { seq: u64, reason: String },
    /// Over the socket's message rate: dropped before it was decoded.
    #[error("over the message rate; the message was dropped")]
    RateLimited,
    #[error("the simulation has finished")]
    SimFinished,
    /// The kind speaks only `only` (its `snapshot_encoding`).
    #[error("this simulation speaks only {only}")]
    UnsupportedEncoding { only: &'static str },
    /// A storage failure or a bug; the detail went to the log.
    #[error("{0}")]
    Internal(String),
}

impl SimError {
    pub fn code(&self) -> SimErrorCode {
        match self {
            SimError::BadFrame(_) => SimErrorCode::BadFrame,
            SimError::UnknownType(_) => SimErrorCode::UnknownType,
            SimError::BadInput(_) => SimErrorCode::BadInput,
            SimError::InputTooLarge { .. } => SimErrorCode::InputTooLarge,
            SimError::Forbidden { .. } => SimErrorCode::Forbidden,
            SimError::SimFull { .. } => SimErrorCode::SimFull,
            SimError::QueueFull { .. } => SimErrorCode::QueueFull,
            SimError::InputRejected { .. } => SimErrorCode::InputRejected,
            SimError::RateLimited => SimErrorCode::RateLimited,
            SimError::SimFinished => SimErrorCode::SimFinished,
            SimError::UnsupportedEncoding { .. } => SimErrorCode::UnsupportedEncoding,
            SimError::Internal(_) => SimErrorCode::Internal,
        }
    }

    /// The hook's reason, for `FORBIDDEN` and `INPUT_REJECTED`.
    pub fn reason(&self) -> Option<&str> {
        match self {
            SimError::Forbidden { reason } | SimError::InputRejected { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// The HTTP answer's status and body:
    /// `{"error":{"code","message","reason"?,"seq"?}}`.
    pub fn to_response(&self) -> Response {
        let code = self.code();
        let mut body = ApiError::new(code.status(), code.as_str(), self.to_string()).body();
        if let Some(r) = self.reason() {
            body["error"]["reason"] = json!(r);
        }
        if let SimError::InputRejected { seq, .. } = self {
            body["error"]["seq"] = json!(seq);
        }
        Response::json(code.status(), body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_ones_are_kept_apart() {
        for &c in SimErrorCode::ALL {
            assert_eq!(SimErrorCode::parse(c.as_str()), c);
        }
        assert_eq!(SimErrorCode::parse("NEWER"), SimErrorCode::Unknown);
        let e = SimError::Forbidden {
            reason: "not yours".into(),
        };
        assert_eq!((e.code().status(), e.reason()), (403, Some("not yours")));
    }
}
