//! The one place where the Worker turns a token into a caller:
//! [`verify_token`]. The router's gate, the cold path and the Shard's
//! `hello` all come here, so a new kind of credential (our own session
//! tokens, a revocation check) is added in this function and nowhere else.
//!
//! Keys: the HS256 secret `PYLON_JWT_SECRET`, and the manifest's
//! `auth.jwks` key set (URL overridable with the `PYLON_JWKS_URL` var),
//! fetched with `fetch()` and cached per isolate (`auth::jwks`). Tokens and
//! secrets are never logged.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use worker::{Delay, Env};

use crate::app::App;
use crate::auth::jwks::{check_url, JwksCache, JwksPolicy};
use crate::auth::{self, AuthError, Jwks, Keys, Lease};
use crate::glue::fetch::WorkerFetch;
use crate::glue::webcrypto::WebCrypto;
use crate::policy::AuthContext;

thread_local! {
    /// This isolate's copy of the key set. A cache of public data shared by
    /// every request and object of the isolate (never per-object state).
    static JWKS_CACHE: Rc<RefCell<JwksCache>> = Rc::new(RefCell::new(JwksCache::default()));
}

/// The HS256 key: a wrangler secret, or a var (`.dev.vars` locally).
fn secret(env: &Env) -> Option<String> {
    env.secret(auth::SECRET_VAR)
        .map(|s| s.to_string())
        .or_else(|_| env.var(auth::SECRET_VAR).map(|v| v.to_string()))
        .ok()
}

/// The manifest's JWKS policy with the URL from `PYLON_JWKS_URL` when set.
pub(crate) fn jwks_policy(
    env: &Env,
    manifest_policy: &JwksPolicy,
) -> Result<JwksPolicy, AuthError> {
    let mut p = manifest_policy.clone();
    if let Ok(url) = env.var(auth::JWKS_URL_VAR) {
        let url = url.to_string();
        if !url.is_empty() {
            check_url(&url)
                .map_err(|_| AuthError::NotConfigured("PYLON_JWKS_URL is not a usable URL"))?;
            p.url = url;
        }
    }
    Ok(p)
}

/// Verifies `token` at `now` (Unix seconds) with every key this Worker
/// accepts and returns the caller it names. Shard rules are not checked
/// here (see `AuthConfig::decide`).
pub(crate) async fn verify_token(
    env: &Env,
    app: &App,
    token: &str,
    now: i64,
) -> Result<AuthContext, AuthError> {
    verify_credential(env, app, token, now)
        .await
        .map(|(c, _)| c)
}

/// [`verify_token`], with how long the token holds (its `exp`, and the
/// session of a session token): what an open socket keeps.
pub(crate) async fn verify_credential(
    env: &Env,
    app: &App,
    token: &str,
    now: i64,
) -> Result<(AuthContext, Lease), AuthError> {
    if crate::signin::session::is_session_token(token) {
        if !crate::features::Feature::SignIn.built() {
            // A 401 like any token this Worker cannot verify.
            return Err(AuthError::BadToken(
                "a session token, and this Worker is built without sign-in".into(),
            ));
        }
        return verify_session(env, token).await;
    }
    let manifest = app
        .manifest()
        .map_err(|_| AuthError::NotConfigured("the manifest does not load"))?;
    let config = manifest.auth();
    let secret = secret(env);
    let policy = match &config.jwks {
        Some(p) => Some(jwks_policy(env, p)?),
        None => None,
    };
    let cache = JWKS_CACHE.with(Rc::clone);
    let http = WorkerFetch;
    let keys = Keys {
        secret: secret.as_deref().map(str::as_bytes),
        jwks: policy.as_ref().map(|policy| Jwks {
            policy,
            cache: &cache,
            http: &http,
            check: &WebCrypto,
        }),
    };
    let mut result = auth::verify_credential(config, token, &keys, now).await;
    // Nothing cached yet and another request's fetch under way: wait for
    // it (polling the shared cache, never awaiting the other request's I/O)
    // instead of answering 503 to every request of a cold start.
    let mut waited = Duration::ZERO;
    while result == Err(AuthError::JwksUnavailable)
        && cache.borrow().fetch_in_flight()
        && waited < JWKS_WAIT
    {
        Delay::from(JWKS_POLL).await;
        waited += JWKS_POLL;
        result = auth::verify_credential(config, token, &keys, now).await;
    }
    if let Some(why) = cache.borrow_mut().take_error() {
        worker::console_warn!("auth: {why}");
    }
    result
}

/// One of our own session tokens: signature and expiry, and the session
/// still live in the Auth object (the router's check, see
/// `glue::session_gate`). Cookies and CSRF are the router's business; a
/// token here came as a bearer token (or in a `hello`).
async fn verify_session(env: &Env, token: &str) -> Result<(AuthContext, Lease), AuthError> {
    use crate::signin::SignInError;
    match crate::glue::signin::session_context(env, token).await {
        Ok(verified) => Ok(verified),
        Err(SignInError::Unauthenticated(e)) => Err(e),
        Err(SignInError::Revoked) => Err(AuthError::Revoked),
        Err(SignInError::NotConfigured(_)) => {
            Err(AuthError::NotConfigured("sign-in is not configured"))
        }
        Err(e) => {
            worker::console_error!("session: {e}");
            Err(AuthError::NotConfigured("the session store failed"))
        }
    }
}

/// How long a request waits for another's JWKS fetch, and how often it looks.
const JWKS_WAIT: Duration = Duration::from_secs(6);
const JWKS_POLL: Duration = Duration::from_millis(25);
