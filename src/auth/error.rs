//! Why a request was not let in.
//!
//! ```
//! use pylon_workers::auth::AuthError;
//! let e = AuthError::Expired;
//! assert_eq!((e.status(), e.code(), e.reason()), (401, "UNAUTHORIZED", "EXPIRED"));
//! assert_eq!(e.to_api_error().body()["error"]["reason"], "EXPIRED");
//! ```

use crate::api_error::ApiError;

/// An authentication or shard-access failure. Token problems are
/// `UNAUTHORIZED` (401) with a `reason`; access denied is `FORBIDDEN` (403).
/// Messages never contain the token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token, where the shard does not admit anonymous callers.
    #[error("this shard needs a bearer token")]
    MissingToken,
    /// Not a well-formed HS256 JWT, or a claim of the wrong shape.
    #[error("bad token: {0}")]
    BadToken(String),
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's issuer is not accepted")]
    WrongIssuer,
    #[error("the token's audience is not accepted")]
    WrongAudience,
    /// The token names a `kid` (or, without one, an algorithm) that no key
    /// of the JWKS has, even after a refresh.
    #[error("no key of the JWKS fits the token's kid")]
    UnknownKey,
    /// RS256/ES256 keys are needed but the JWKS could not be fetched and no
    /// usable copy is cached.
    #[error("the token signing keys cannot be fetched now; retry shortly")]
    JwksUnavailable,
    /// One of our session tokens whose session was revoked (logout, or a
    /// refresh token used twice).
    #[error("the session has been revoked")]
    Revoked,
    /// A valid caller that may not use this shard.
    #[error("{0}")]
    Forbidden(String),
    /// The server cannot verify tokens (no or too short a secret).
    #[error("authentication is not configured: {0}")]
    NotConfigured(&'static str),
}

impl AuthError {
    /// 401, 403, 500 for [`AuthError::NotConfigured`], 503 for
    /// [`AuthError::JwksUnavailable`].
    pub fn status(&self) -> u16 {
        match self {
            AuthError::Forbidden(_) => 403,
            AuthError::NotConfigured(_) => 500,
            AuthError::JwksUnavailable => 503,
            _ => 401,
        }
    }

    /// `UNAUTHORIZED`, `FORBIDDEN`, `UNAVAILABLE` or `INTERNAL`.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Forbidden(_) => "FORBIDDEN",
            AuthError::NotConfigured(_) => "INTERNAL",
            AuthError::JwksUnavailable => "UNAVAILABLE",
            _ => "UNAUTHORIZED",
        }
    }

    /// The specific reason: `MISSING_TOKEN`, `BAD_TOKEN`, `BAD_SIGNATURE`,
    /// `EXPIRED`, `NOT_YET_VALID`, `WRONG_ISSUER`, `WRONG_AUDIENCE`,
    /// `UNKNOWN_KEY`, `JWKS_UNAVAILABLE`, `SESSION_REVOKED`, `SHARD_DENIED`,
    /// `NOT_CONFIGURED`.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::MissingToken => "MISSING_TOKEN",
            AuthError::BadToken(_) => "BAD_TOKEN",
            AuthError::BadSignature => "BAD_SIGNATURE",
            AuthError::Expired => "EXPIRED",
            AuthError::NotYetValid => "NOT_YET_VALID",
            AuthError::WrongIssuer => "WRONG_ISSUER",
            AuthError::WrongAudience => "WRONG_AUDIENCE",
            AuthError::UnknownKey => "UNKNOWN_KEY",
            AuthError::JwksUnavailable => "JWKS_UNAVAILABLE",
            AuthError::Revoked => "SESSION_REVOKED",
            AuthError::Forbidden(_) => "SHARD_DENIED",
            AuthError::NotConfigured(_) => "NOT_CONFIGURED",
        }
    }

    /// The HTTP error (a 401 should also carry `WWW-Authenticate: Bearer`).
    pub fn to_api_error(&self) -> ApiError {
        if let AuthError::NotConfigured(_) = self {
            // Details are for the log, not the caller.
            return ApiError::internal("authentication is not configured");
        }
        ApiError::new(self.status(), self.code(), self.to_string()).with_reason(self.reason())
    }
}
