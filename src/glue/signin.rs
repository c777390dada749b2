//! `/v1/auth/...`: converts the request for `signin::SignIn` (the engine
//! does the work) and its answer back; nothing is decided here.

use std::cell::OnceCell;
use std::rc::Rc;

use worker::{Env, Headers, Request, Response, ResponseBody, ResponseBuilder, Result};

use super::auth_store::DoBackend;
use super::body::read_capped;
use super::fetch::WorkerFetch;
use super::random::CryptoRandom;
use crate::http::form_urldecode;
use crate::signin::{AuthRequest, AuthResponse, SignIn, SignInConfig, SignInError};
use crate::time::now_ms;

/// Request bodies on these routes are small JSON objects.
const MAX_BODY: usize = 64 * 1024;

thread_local! {
    // Vars and secrets do not change while an isolate lives.
    static CONFIG: OnceCell<std::result::Result<Rc<SignInConfig>, String>> = const { OnceCell::new() };
}

/// A var or a secret, by name.
fn var(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
}

/// The sign-in settings, or the error to answer (logged once per call).
pub(crate) fn config(env: &Env) -> std::result::Result<Rc<SignInConfig>, SignInError> {
    CONFIG
        .with(|c| {
            c.get_or_init(|| SignInConfig::from_vars(|k| var(env, k)).map(Rc::new))
                .clone()
        })
        .map_err(|e| {
            worker::console_error!("sign-in configuration: {e}");
            SignInError::NotConfigured(e)
        })
}

pub(crate) fn backend<'a>(env: &'a Env, c: &SignInConfig) -> DoBackend<'a> {
    DoBackend {
        env,
        token_ttl_ms: c.access_ttl_secs * 1000,
        cache_ttl_ms: c.revocation_cache_secs * 1000,
    }
}

/// The key session tokens are signed with; an error when sessions are not
/// set up.
pub(crate) fn session_secret(c: &SignInConfig) -> std::result::Result<&[u8], SignInError> {
    c.secret.as_deref().ok_or_else(|| {
        SignInError::NotConfigured(
            "a session token arrived but PYLON_SESSION_SECRET is not set".into(),
        )
    })
}

/// The caller a session token names, and its lease: its signature and
/// expiry, and the session still live in the Auth object. The router's
/// session gate and `glue::verify::verify_token` (the shard's `hello`)
/// both check here.
pub(crate) async fn session_context(
    env: &Env,
    token: &str,
) -> std::result::Result<(crate::policy::AuthContext, crate::auth::Lease), SignInError> {
    let config = config(env)?;
    let secret = session_secret(&config)?;
    let backend = backend(env, &config);
    crate::signin::check_session(secret, &backend, token, now_ms())
        .await
        .map(|claims| (claims.context(), claims.lease()))
}

/// Whether session `sid` is still live, asked of the Auth object itself
/// (an open socket's periodic check, which already waited the cache's
/// interval; a revocation this isolate has seen answers at once).
pub(crate) async fn session_live(env: &Env, sid: &str) -> std::result::Result<bool, SignInError> {
    let config = config(env)?;
    backend(env, &config).live_now(sid, now_ms()).await
}

/// The engine's answer as a Worker response.
pub(crate) fn to_response(r: AuthResponse) -> Result<Response> {
    let headers = Headers::new();
    for (n, v) in &r.headers {
        headers.append(n, v)?;
    }
    let body = if r.body.is_empty() {
        ResponseBody::Empty
    } else {
        ResponseBody::Body(r.body)
    };
    Ok(ResponseBuilder::new()
        .with_status(r.status)
        .with_headers(headers)
        .body(body))
}

fn refuse(e: &SignInError) -> Result<Response> {
    if e.is_internal() {
        worker::console_error!("sign-in: {e}");
    }
    to_response(AuthResponse::error(e))
}

/// Answers `/v1/auth/{rest}`.
pub(crate) async fn handle(mut req: Request, env: &Env, rest: &str) -> Result<Response> {
    let config = match config(env) {
        Ok(c) => c,
        Err(e) => return refuse(&e),
    };
    let url = req.url()?;
    let body = match read_capped(&mut req, MAX_BODY).await {
        Ok(body) => body,
        // In sign-in's own error shape: a 400.
        Err(e) => return refuse(&SignInError::BadRequest(e.to_string())),
    };
    let method = req.method().to_string().to_ascii_uppercase();
    let areq = AuthRequest {
        method,
        path: rest.to_owned(),
        query: form_urldecode(url.query().unwrap_or("")),
        headers: req
            .headers()
            .entries()
            .map(|(n, v)| (n.to_ascii_lowercase(), v))
            .collect(),
        body,
        origin: url.origin().ascii_serialization(),
    };
    let backend = backend(env, &config);
    let signin = SignIn {
        config: &config,
        http: &WorkerFetch,
        backend: &backend,
        random: &CryptoRandom,
        now_ms: now_ms(),
    };
    let resp = signin.handle(&areq).await;
    if let Some(why) = &resp.internal {
        worker::console_error!("sign-in: {} /v1/auth/{}: {why}", areq.method, areq.path);
    }
    to_response(resp)
}
