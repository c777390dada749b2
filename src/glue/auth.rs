//! The router's gate: authenticates a shard request against the manifest's
//! `auth` section and rewrites it for the shard, or refuses it.
//!
//! Tokens become callers in `glue::verify::verify_token` only. The verified
//! caller travels in `x-pylon-auth`; every incoming `x-pylon-*` header is
//! removed first, so a client cannot supply its own. Tokens and the secret
//! are never logged.

use worker::{Env, Request, Response, Result};

use crate::app::App;
use crate::auth::{self, AuthError};
use crate::glue::respond;
use crate::glue::verify::{verify_credential, verify_token};
use crate::policy::AuthContext;
use crate::time::now_secs;

/// What the gate decided.
pub(crate) enum Gate {
    /// The request to hand to the shard, and its caller.
    Pass(Request, AuthContext),
    /// The answer to the client.
    Refuse(Response),
}

fn refuse(e: &AuthError) -> Result<Gate> {
    Ok(Gate::Refuse(refusal(e)?))
}

/// The 401/403/500/503 answer for `e`.
pub(crate) fn refusal(e: &AuthError) -> Result<Response> {
    if let AuthError::NotConfigured(why) = e {
        worker::console_error!("auth: {why}");
    }
    let mut resp = respond::error(&e.to_api_error())?;
    if let AuthError::JwksUnavailable = e {
        resp.headers_mut().set("Retry-After", "5")?;
    }
    let sent = !matches!(e, AuthError::MissingToken);
    respond::challenge(&mut resp, sent.then(|| e.reason()))?;
    Ok(resp)
}

/// The caller of a request that spans shards (the cold path): a verified
/// token, or anonymous where the manifest allows it; `Err` is the answer.
pub(crate) async fn identify(
    env: &Env,
    app: &App,
    req: &Request,
) -> Result<std::result::Result<AuthContext, Response>> {
    let manifest = match respond::manifest(app)? {
        Ok(m) => m,
        Err(answer) => return Ok(Err(answer)),
    };
    let headers = req.headers();
    let authorization = headers.get("Authorization")?;
    let caller = match auth::request_token(authorization.as_deref(), None) {
        Ok(Some(t)) => verify_token(env, app, t, now_secs()).await.map(Some),
        Ok(None) => Ok(None),
        Err(e) => Err(e),
    };
    match caller.and_then(|c| manifest.auth().identify_caller(c)) {
        Ok(c) => Ok(Ok(c)),
        Err(e) => Ok(Err(refusal(&e)?)),
    }
}

/// Authenticates `req` for `shard`.
pub(crate) async fn gate(env: &Env, app: &App, shard: &str, req: &Request) -> Result<Gate> {
    let manifest = match respond::manifest(app)? {
        Ok(m) => m,
        Err(answer) => return Ok(Gate::Refuse(answer)),
    };
    let headers = req.headers();
    let authorization = headers.get("Authorization")?;
    let protocols = headers.get("Sec-WebSocket-Protocol")?;
    let verified = match auth::request_token(authorization.as_deref(), protocols.as_deref()) {
        Ok(Some(t)) => verify_credential(env, app, t, now_secs()).await.map(Some),
        Ok(None) => Ok(None),
        Err(e) => Err(e),
    };
    let (caller, lease) = match verified {
        Ok(Some((c, l))) => (Some(c), l),
        Ok(None) => (None, auth::Lease::default()),
        Err(e) => return refuse(&e),
    };
    let caller = match manifest.auth().decide(shard, caller) {
        Ok(c) => c,
        Err(e) => return refuse(&e),
    };
    let fwd = forward(req, protocols.as_deref(), &caller, &lease)?;
    Ok(Gate::Pass(fwd, caller))
}

/// `req` rewritten for the shard: incoming `x-pylon-*` headers,
/// `Authorization` and `bearer.` subprotocol entries removed, `caller` and
/// its lease (when its token ends, its session) in `x-pylon-auth`.
pub(crate) fn forward(
    req: &Request,
    protocols: Option<&str>,
    caller: &AuthContext,
    lease: &auth::Lease,
) -> Result<Request> {
    let mut fwd = req.clone_mut()?;
    let out = fwd.headers_mut()?;
    let internal: Vec<String> = out
        .keys()
        .filter(|k| {
            k.to_ascii_lowercase()
                .starts_with(auth::INTERNAL_HEADER_PREFIX)
        })
        .collect();
    for k in internal {
        out.delete(&k)?;
    }
    // The shard needs the identity, not the credentials.
    out.delete("Authorization")?;
    if let Some(p) = protocols {
        let kept: Vec<&str> = p
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty() && !e.starts_with("bearer."))
            .collect();
        if kept.is_empty() {
            out.delete("Sec-WebSocket-Protocol")?;
        } else {
            out.set("Sec-WebSocket-Protocol", &kept.join(", "))?;
        }
    }
    out.set(auth::AUTH_HEADER, &auth::encode_caller(caller, lease))?;
    Ok(fwd)
}
