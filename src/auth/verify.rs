//! A token turned into a caller: the one place that chooses the key for a
//! token (the HS256 secret, or a JWKS key for RS256/ES256), checks the
//! signature, then the claims, and maps them to an [`AuthContext`].
//!
//! ```
//! use futures_util::FutureExt;
//! use pylon_workers::auth::{jwt, verify_token, AuthConfig, Keys};
//! let secret = b"dev-only-secret-dev-only-secret-0123";
//! let t = jwt::sign_hs256(&serde_json::json!({"sub": "ann", "exp": 2_000_000_000}), secret);
//! let keys = Keys::secret_only(Some(secret)); // HS256 alone: nothing to fetch
//! let ann = verify_token(&AuthConfig::default(), &t, &keys, 1_900_000_000)
//!     .now_or_never().unwrap().unwrap();
//! assert_eq!(ann.user_id.as_deref(), Some("ann"));
//! ```

use std::cell::RefCell;

use super::config::{checked_secret, AuthConfig};
use super::error::AuthError;
use super::jwks::{self, JwksCache, JwksPolicy};
use super::jwt::{self, Alg};
use super::lease::Lease;
use super::signature::SignatureCheck;
use crate::http::{HttpClient, HttpError, HttpRequest, HttpResponse};
use crate::policy::AuthContext;

/// The JWKS side of [`Keys`]: the policy (URL resolved), this isolate's
/// cache, the client that fetches and what checks signatures.
pub struct Jwks<'a, C> {
    pub policy: &'a JwksPolicy,
    pub cache: &'a RefCell<JwksCache>,
    pub http: &'a C,
    pub check: &'a dyn SignatureCheck,
}

/// What tokens can be checked with.
pub struct Keys<'a, C> {
    /// The HS256 secret (`PYLON_JWT_SECRET`), if set.
    pub secret: Option<&'a [u8]>,
    /// RS256/ES256 keys, if the manifest configures `auth.jwks`.
    pub jwks: Option<Jwks<'a, C>>,
}

impl<'a> Keys<'a, NoHttp> {
    /// HS256 only.
    pub fn secret_only(secret: Option<&'a [u8]>) -> Self {
        Keys { secret, jwks: None }
    }
}

/// The client of [`Keys::secret_only`]: there is nothing to fetch.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHttp;

impl HttpClient for NoHttp {
    async fn send(&self, _req: HttpRequest) -> Result<HttpResponse, HttpError> {
        Err(HttpError::Network("no HTTP client here".into()))
    }
}

/// Verifies `token` at `now` (Unix seconds) and returns its caller.
pub async fn verify_token<C: HttpClient>(
    config: &AuthConfig,
    token: &str,
    keys: &Keys<'_, C>,
    now: i64,
) -> Result<AuthContext, AuthError> {
    verify_credential(config, token, keys, now)
        .await
        .map(|(caller, _)| caller)
}

/// [`verify_token`], with how long the token holds: its [`Lease`].
///
/// The header's `alg` picks the key *type* and nothing else: HS256 is
/// checked with the secret only, RS256/ES256 with a JWKS key of that type
/// only (never the other way round); `none` and other algorithms were
/// refused by [`jwt::decode`]. Then `exp`/`nbf`/`iss`/`aud`, then the
/// claim mapping.
pub async fn verify_credential<C: HttpClient>(
    config: &AuthConfig,
    token: &str,
    keys: &Keys<'_, C>,
    now: i64,
) -> Result<(AuthContext, Lease), AuthError> {
    let d = jwt::decode(token)?;
    match d.alg {
        Alg::Hs256 => {
            let secret = match (keys.secret, &keys.jwks) {
                // A JWKS-only deployment: HS256 is simply not accepted.
                (None, Some(_)) => {
                    return Err(AuthError::BadToken("alg HS256 is not accepted here".into()))
                }
                (s, _) => checked_secret(s)?,
            };
            jwt::verify_hmac(secret, d.signing_input, &d.signature)?;
        }
        alg => {
            let j = match &keys.jwks {
                Some(j) if j.policy.algorithms.contains(&alg) => j,
                _ => {
                    return Err(AuthError::BadToken(format!(
                        "alg {} is not accepted here",
                        alg.as_str()
                    )))
                }
            };
            let kid = d.kid.as_deref();
            let set = jwks::key_set(j.cache, j.http, j.policy, alg, kid, now).await?;
            if !set
                .verify(j.check, alg, kid, d.signing_input, &d.signature)
                .await?
            {
                return Err(AuthError::UnknownKey);
            }
        }
    }
    let claims = d.claims(&config.validation, now)?;
    Ok((config.context(&claims)?, Lease::of_claims(&claims)))
}
