//! Why a sign-in, refresh or logout request was refused.
//!
//! ```
//! use pylon_workers::signin::SignInError;
//! let e = SignInError::BadState("the state does not match");
//! assert_eq!((e.status(), e.code()), (400, "BAD_STATE"));
//! assert_eq!(e.to_api_error().body()["error"]["code"], "BAD_STATE");
//! ```

use crate::api_error::ApiError;
use crate::auth::AuthError;

/// A sign-in failure with a stable code (docs/sign-in.md, "Errors").
/// Messages never contain tokens, codes or secrets.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignInError {
    #[error("no route for {0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The provider is unknown or has no client id configured.
    #[error("sign-in provider {0:?} is not configured")]
    UnknownProvider(String),
    /// A redirect target outside the configured origins.
    #[error("{0}")]
    BadRedirect(String),
    /// Missing, expired, mismatched or already used OAuth state.
    #[error("{0}")]
    BadState(&'static str),
    /// The provider redirected back with `error=...` (the user said no).
    #[error("the provider refused the sign-in: {0}")]
    ProviderDenied(String),
    /// The token endpoint refused the code (replayed code, wrong verifier,
    /// wrong client secret): its `error` value is in the message.
    #[error("the provider refused the authorization code: {0}")]
    GrantRefused(String),
    /// The OIDC id_token fails a check (iss, aud, exp, nonce, sub).
    #[error("the id_token is not acceptable: {0}")]
    BadIdToken(String),
    /// The provider could not be reached or answered something unusable.
    #[error("the provider failed: {0}")]
    Provider(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("not an email address this server accepts")]
    BadEmail,
    #[error("the email could not be sent: {0}")]
    EmailFailed(String),
    /// Wrong, expired, used or too often tried code or link (one answer
    /// for all, so a guesser learns nothing).
    #[error("the code or link is not valid (wrong, used, expired or tried too often)")]
    CodeInvalid,
    #[error("the refresh token is not valid")]
    RefreshInvalid,
    /// A refresh token was used twice: its whole session is revoked.
    #[error("the refresh token was already used; the session is revoked")]
    RefreshReused,
    /// A cookie-authenticated request failed the CSRF checks.
    #[error("cross-site request refused: {0}")]
    Csrf(&'static str),
    /// The session token is missing, invalid or expired.
    #[error("{0}")]
    Unauthenticated(AuthError),
    /// The session was revoked (logout, refresh reuse).
    #[error("the session has been revoked")]
    Revoked,
    /// Sign-in is not set up (a secret or var is missing or bad).
    #[error("sign-in is not configured: {0}")]
    NotConfigured(String),
    /// The session store failed.
    #[error("the session store failed: {0}")]
    Store(String),
}

impl SignInError {
    pub fn status(&self) -> u16 {
        use SignInError::*;
        match self {
            NotFound(_) | UnknownProvider(_) => 404,
            MethodNotAllowed(_) => 405,
            BadRedirect(_) | BadState(_) | ProviderDenied(_) | GrantRefused(_) | BadIdToken(_)
            | BadRequest(_) | BadEmail | CodeInvalid => 400,
            RefreshInvalid | RefreshReused | Revoked => 401,
            Unauthenticated(e) => e.status(),
            Csrf(_) => 403,
            Provider(_) | EmailFailed(_) => 502,
            NotConfigured(_) | Store(_) => 500,
        }
    }

    /// The stable code on the wire.
    pub fn code(&self) -> &'static str {
        use SignInError::*;
        match self {
            NotFound(_) => "NOT_FOUND",
            MethodNotAllowed(_) => "METHOD_NOT_ALLOWED",
            UnknownProvider(_) => "UNKNOWN_PROVIDER",
            BadRedirect(_) => "BAD_REDIRECT",
            BadState(_) => "BAD_STATE",
            ProviderDenied(_) => "OAUTH_DENIED",
            GrantRefused(_) => "OAUTH_GRANT_REFUSED",
            BadIdToken(_) => "BAD_ID_TOKEN",
            Provider(_) => "PROVIDER_ERROR",
            BadRequest(_) => "BAD_REQUEST",
            BadEmail => "BAD_EMAIL",
            EmailFailed(_) => "EMAIL_SEND_FAILED",
            CodeInvalid => "CODE_INVALID",
            RefreshInvalid => "REFRESH_INVALID",
            RefreshReused => "REFRESH_REUSED",
            Csrf(_) => "CSRF_FAILED",
            Unauthenticated(e) => e.code(),
            Revoked => "UNAUTHORIZED",
            NotConfigured(_) | Store(_) => "INTERNAL",
        }
    }

    /// The finer reason under `UNAUTHORIZED` (`SESSION_REVOKED`, `EXPIRED`, ...).
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            SignInError::Unauthenticated(e) => Some(e.reason()),
            SignInError::Revoked => Some("SESSION_REVOKED"),
            _ => None,
        }
    }

    /// Whether the details are for the log only (500s).
    pub fn is_internal(&self) -> bool {
        matches!(self, SignInError::NotConfigured(_) | SignInError::Store(_))
    }

    pub fn to_api_error(&self) -> ApiError {
        match self {
            SignInError::NotConfigured(_) => ApiError::internal("sign-in is not configured"),
            SignInError::Store(_) => ApiError::internal("the session store failed"),
            SignInError::Unauthenticated(e) => e.to_api_error(),
            _ => {
                let e = ApiError::new(self.status(), self.code(), self.to_string());
                match self.reason() {
                    Some(r) => e.with_reason(r),
                    None => e,
                }
            }
        }
    }
}
