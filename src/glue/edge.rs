//! The router's edge layer around every request: CORS preflights, CORS and
//! security headers on every answer, and the per-client / per-user rate
//! limits through the Rate Limiting bindings. Decisions are in
//! `crate::edge`; this file only reads and writes Workers types.

use std::cell::Cell;

use worker::{Env, Headers, Request, Response, Result};

use crate::api_error::ApiError;
use crate::edge::cors::{Cors, Preflight};
use crate::edge::headers::security_headers;
use crate::edge::limits::{self, Scope, PERIOD_SECS};
use crate::glue::respond;
use crate::policy::AuthContext;

/// The var listing the origins allowed cross-origin (docs/edge.md).
pub(crate) const CORS_VAR: &str = "PYLON_CORS_ORIGINS";

thread_local! {
    /// A missing binding or bad var is logged once per isolate, not per request.
    static WARNED: Cell<bool> = const { Cell::new(false) };
}

fn warn_once(msg: &str) {
    if !WARNED.with(|w| w.replace(true)) {
        worker::console_error!("edge: {msg}");
    }
}

/// The configured origins; a bad value allows none (and is logged).
pub(crate) fn cors(env: &Env) -> Cors {
    let list = env.var(CORS_VAR).map(|v| v.to_string()).unwrap_or_default();
    Cors::parse(&list).unwrap_or_else(|e| {
        warn_once(&format!("{CORS_VAR}: {e}; no origin is allowed"));
        Cors::default()
    })
}

/// The answer to an `OPTIONS` request, or `None` if it is no preflight.
/// A refused preflight's answer must get no CORS headers (see `finish`):
/// it is `Some((answer, false))`.
pub(crate) fn preflight(req: &Request, cors: &Cors) -> Result<Option<(Response, bool)>> {
    let h = req.headers();
    let origin = h.get("Origin")?;
    let method = h.get("Access-Control-Request-Method")?;
    let asked = h.get("Access-Control-Request-Headers")?;
    match cors.preflight(origin.as_deref(), method.as_deref(), asked.as_deref()) {
        Preflight::Allowed(headers) => {
            let mut resp = Response::empty()?.with_status(204);
            for (n, v) in headers {
                resp.headers_mut().set(n, &v)?;
            }
            Ok(Some((resp, true)))
        }
        Preflight::Refused(why) => Ok(Some((
            respond::error(&ApiError::new(403, "CORS_REFUSED", why))?,
            false,
        ))),
        Preflight::NotPreflight => Ok(None),
    }
}

/// Adds the security and CORS headers to `resp`. A WebSocket handshake
/// (101) passes unchanged: it is no document, and its headers are the
/// shard's.
pub(crate) fn finish(
    resp: Response,
    origin: Option<&str>,
    https: bool,
    cors: &Cors,
) -> Result<Response> {
    if resp.status_code() == 101 {
        return Ok(resp);
    }
    // Answers from a Durable Object have immutable headers: copy them.
    let headers = Headers::new();
    for (n, v) in resp.headers().entries() {
        headers.append(&n, &v)?;
    }
    for (n, v) in security_headers(https) {
        headers.set(n, v)?;
    }
    for (n, v) in cors.headers(origin) {
        headers.set(n, &v)?;
    }
    Ok(resp.with_headers(headers))
}

/// Counts one request against `key` in the `scope`'s binding; the 429
/// answer when over the limit.
pub(crate) async fn limit(env: &Env, scope: Scope, key: String) -> Result<Option<Response>> {
    let binding = match scope {
        Scope::Client => limits::CLIENT_BINDING,
        Scope::User => limits::USER_BINDING,
    };
    if allowed(env, binding, key).await {
        return Ok(None);
    }
    let mut resp = respond::error(&limits::refusal(scope))?;
    resp.headers_mut()
        .set("Retry-After", &PERIOD_SECS.to_string())?;
    Ok(Some(resp))
}

/// The per-user limit for a verified caller (`None`: within it).
pub(crate) async fn user_limit(env: &Env, caller: &AuthContext) -> Result<Option<Response>> {
    match limits::user_key(caller) {
        Some(key) => limit(env, Scope::User, key).await,
        None => Ok(None),
    }
}

/// Whether one more event fits under `key` in `binding`. A missing binding
/// or a failing call lets it through (logged): limits protect, they must
/// not take the API down.
pub(crate) async fn allowed(env: &Env, binding: &str, key: String) -> bool {
    let limiter = match env.rate_limiter(binding) {
        Ok(l) => l,
        Err(e) => {
            warn_once(&format!("binding {binding}: {e}; not rate limited"));
            return true;
        }
    };
    match limiter.limit(key).await {
        Ok(o) => o.success,
        Err(e) => {
            worker::console_error!("edge: {binding}: {e}");
            true
        }
    }
}

/// The per-client counter's key for `req`.
pub(crate) fn client_key(req: &Request) -> Result<String> {
    Ok(limits::client_key(
        req.headers().get("CF-Connecting-IP")?.as_deref(),
    ))
}
