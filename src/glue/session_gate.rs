//! Session tokens at the router: a request whose bearer token is one of
//! our session tokens (or that has none but carries the `pylon_session`
//! cookie) is checked here — signature and expiry, the session still live
//! in the Auth object (briefly cached per isolate), and for the cookie
//! the CSRF checks — then admitted by the manifest's shard rules and
//! forwarded like any other caller. Every other request goes to the JWT
//! gate (`glue::auth`) unchanged.

use worker::{Env, Request, Response, Result};

use crate::app::App;
use crate::auth;
use crate::glue::auth::Gate;
use crate::glue::{respond, signin as glue_signin};
use crate::policy::AuthContext;
use crate::signin::csrf::{check, CsrfInput};
use crate::signin::session::request_session;
use crate::signin::{cookie, AuthResponse, SignInError};

/// The 401/403/500 for a refused session.
fn refusal(e: &SignInError) -> Result<Response> {
    if e.is_internal() {
        worker::console_error!("session: {e}");
    }
    let mut resp = glue_signin::to_response(AuthResponse::error(e))?;
    // A session credential was sent.
    respond::challenge(&mut resp, Some(e.reason().unwrap_or("BAD_TOKEN")))?;
    Ok(resp)
}

/// The session caller of `req`: `None` when it carries no session
/// credential (the JWT gate decides), else the caller or the refusal.
async fn session_caller(
    env: &Env,
    req: &Request,
) -> Result<Option<std::result::Result<(AuthContext, auth::Lease), Response>>> {
    // Without sign-in, a session token is no credential: the JWT gate
    // refuses it like any token it cannot verify.
    if !crate::features::Feature::SignIn.built() {
        return Ok(None);
    }
    let headers = req.headers();
    let authorization = headers.get("Authorization")?;
    let protocols = headers.get("Sec-WebSocket-Protocol")?;
    let cookies = headers.get("Cookie")?;
    let Ok(bearer) = auth::request_token(authorization.as_deref(), protocols.as_deref()) else {
        return Ok(None);
    };
    let Some((token, via_cookie)) = request_session(bearer, cookies.as_deref()) else {
        return Ok(None);
    };
    // Configuration problems answer first, as for any session request.
    let config = match glue_signin::config(env) {
        Ok(c) => c,
        Err(e) => return Ok(Some(Err(refusal(&e)?))),
    };
    if let Err(e) = glue_signin::session_secret(&config) {
        return Ok(Some(Err(refusal(&e)?)));
    }
    if via_cookie {
        let url = req.url()?;
        let upgrade = headers
            .get("Upgrade")?
            .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
        let method = req.method().to_string().to_ascii_uppercase();
        let origin = headers.get("Origin")?;
        let header_token = headers.get(cookie::CSRF_HEADER)?;
        let input = CsrfInput {
            method: &method,
            upgrade,
            origin: origin.as_deref(),
            cookie_token: cookies
                .as_deref()
                .and_then(|c| cookie::get(c, cookie::CSRF)),
            header_token: header_token.as_deref(),
        };
        if let Err(e) = check(
            &input,
            &config.allowed_origins(&url.origin().ascii_serialization()),
        ) {
            return Ok(Some(Err(refusal(&e)?)));
        }
    }
    match glue_signin::session_context(env, token).await {
        Ok(verified) => Ok(Some(Ok(verified))),
        Err(e) => Ok(Some(Err(refusal(&e)?))),
    }
}

/// Authenticates `req` for `shard`: session credentials here, anything
/// else through the JWT gate.
pub(crate) async fn gate(env: &Env, app: &App, shard: &str, req: &Request) -> Result<Gate> {
    let (caller, lease) = match session_caller(env, req).await? {
        None => return crate::glue::auth::gate(env, app, shard, req).await,
        Some(Err(resp)) => return Ok(Gate::Refuse(resp)),
        Some(Ok(c)) => c,
    };
    let manifest = match respond::manifest(app)? {
        Ok(m) => m,
        Err(answer) => return Ok(Gate::Refuse(answer)),
    };
    if let Err(e) = manifest.auth().admit(shard, Some(&caller)) {
        return Ok(Gate::Refuse(refusal(&SignInError::Unauthenticated(e))?));
    }
    let protocols = req.headers().get("Sec-WebSocket-Protocol")?;
    let mut fwd = crate::glue::auth::forward(req, protocols.as_deref(), &caller, &lease)?;
    // The shard needs the identity, not the browser's cookies.
    fwd.headers_mut()?.delete("Cookie")?;
    Ok(Gate::Pass(fwd, caller))
}

/// The caller of a cross-shard request (the cold path): a session, else
/// what the JWT gate's `identify` says.
pub(crate) async fn identify(
    env: &Env,
    app: &App,
    req: &Request,
) -> Result<std::result::Result<AuthContext, Response>> {
    match session_caller(env, req).await? {
        None => crate::glue::auth::identify(env, app, req).await,
        Some(r) => Ok(r.map(|(caller, _)| caller)),
    }
}

/// The caller and the manifest, the preamble of every `/v1` handler
/// outside the shards (jobs, workflows, crons, the cache): `Err` is the
/// answer to send as it is (a refused credential, or a manifest that
/// does not load).
#[cfg(any(feature = "jobs", feature = "cache"))]
pub(crate) async fn caller_and_manifest(
    env: &Env,
    app: &App,
    req: &Request,
) -> Result<std::result::Result<(AuthContext, std::sync::Arc<crate::manifest::Manifest>), Response>>
{
    let caller = match identify(env, app, req).await? {
        Ok(c) => c,
        Err(answer) => return Ok(Err(answer)),
    };
    Ok(respond::manifest(app)?.map(|manifest| (caller, manifest)))
}
