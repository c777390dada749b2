//! `/v1/channels` in the Worker (docs/pubsub.md): who the caller is, then
//! the channel's object (class `Channel`, one per channel) or the
//! directory. The objects check the manifest's `channels` rules
//! themselves; this file only identifies, routes and, after a channel's
//! first publish, lists it in the directory.

use serde_json::json;
use worker::{Env, Method, Request, Response, Result};

use crate::api_error::ApiError;
use crate::app::App;
use crate::auth::{self, Lease};
use crate::channels::{check_name, ChannelError, DIRECTORY_NAME, MAX_MESSAGE_BYTES};
use crate::glue::internal::{self, Answer};
use crate::glue::{body, edge, respond, session_gate};
use crate::policy::AuthContext;

/// The channels' binding, and the directory's (wrangler.toml).
const CHANNEL_BINDING: &str = "CHANNEL";
const DIRECTORY_BINDING: &str = "CHANNEL_DIRECTORY";

/// The caller: a token in the socket's subprotocol (browsers cannot set
/// headers on an upgrade), else as for the cold path (a bearer token, a
/// session cookie, or anonymous where the manifest allows).
async fn caller(
    env: &Env,
    app: &App,
    req: &Request,
) -> Result<std::result::Result<(AuthContext, Lease), Response>> {
    let protocols = req.headers().get("Sec-WebSocket-Protocol")?;
    if let Ok(Some(token)) = auth::request_token(None, protocols.as_deref()) {
        let verified =
            crate::glue::verify::verify_credential(env, app, token, crate::time::now_secs()).await;
        return Ok(match verified {
            Ok(c) => Ok(c),
            Err(e) => Err(crate::glue::auth::refusal(&e)?),
        });
    }
    Ok(session_gate::identify(env, app, req)
        .await?
        .map(|c| (c, Lease::default())))
}

/// `/v1/channels[/{name}/{what}]`.
pub(crate) async fn handle(mut req: Request, env: &Env, app: &App, rest: &str) -> Result<Response> {
    let (caller, lease) = match caller(env, app, &req).await? {
        Ok(c) => c,
        Err(answer) => return Ok(answer),
    };
    if let Some(r) = edge::user_limit(env, &caller).await? {
        return Ok(r);
    }
    let method = req.method();
    let query = req.url()?.query().unwrap_or_default().to_owned();
    let (name, what) = rest.split_once('/').unwrap_or((rest, ""));
    if rest.is_empty() {
        return match method.clone() {
            Method::Get => {
                let a = internal::call(
                    env,
                    DIRECTORY_BINDING,
                    DIRECTORY_NAME,
                    Method::Get,
                    "list",
                    &query,
                    None,
                    &caller,
                )
                .await;
                answer(a, "the channel directory")
            }
            _ => respond::error(&ApiError::method_not_allowed("use GET /v1/channels")),
        };
    }
    if let Err(e) = check_name(name) {
        return respond::error(&e.into());
    }
    match (method.clone(), what) {
        (Method::Get, "ws") => subscribe(env, req, name, &caller, &lease).await,
        (Method::Get, "history") => {
            let a = internal::call(
                env,
                CHANNEL_BINDING,
                name,
                Method::Get,
                "history",
                &query,
                None,
                &caller,
            )
            .await;
            answer(a, "a channel")
        }
        (Method::Post, "publish") => {
            let bytes = match body::read_capped(&mut req, MAX_MESSAGE_BYTES + 1024).await {
                Ok(b) => b,
                Err(e) => return respond::error(&e.to_api_error("MESSAGE_TOO_LARGE")),
            };
            let Ok(b) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
                let e = ChannelError::BadRequest("the body is a JSON object with \"data\"".into());
                return respond::error(&e.into());
            };
            let a = publish(env, &caller, name, &b).await;
            answer(a, "a channel")
        }
        (_, "ws" | "history" | "publish") => respond::error(&ApiError::method_not_allowed(
            format!("{method:?} /v1/channels/{name}/{what}"),
        )),
        _ => respond::error(&ApiError::not_found(format!("no channel route {what:?}"))),
    }
}

fn answer(a: Result<Answer>, what: &str) -> Result<Response> {
    match a {
        Ok(a) => respond::json(a.status, &a.body),
        Err(e) => respond::internal(what, &e),
    }
}

/// Hands the upgrade to the channel's object, with the caller.
async fn subscribe(
    env: &Env,
    req: Request,
    name: &str,
    caller: &AuthContext,
    lease: &Lease,
) -> Result<Response> {
    let upgrade = req.headers().get("Upgrade")?;
    if !upgrade.is_some_and(|u| u.eq_ignore_ascii_case("websocket")) {
        return respond::error(&ApiError::new(
            426,
            "UPGRADE_REQUIRED",
            "a WebSocket upgrade",
        ));
    }
    let protocols = req.headers().get("Sec-WebSocket-Protocol")?;
    let mut fwd = crate::glue::auth::forward(&req, protocols.as_deref(), caller, lease)?;
    fwd.headers_mut()?.delete("Cookie")?;
    crate::glue::target::write_route(fwd.headers_mut()?, name, "ws")?;
    let stub = env.durable_object(CHANNEL_BINDING)?.get_by_name(name)?;
    match stub.fetch_with_request(fwd).await {
        Ok(resp) => Ok(resp),
        Err(e) => respond::internal(&format!("channel {name}"), &e),
    }
}

/// Publishes `body` (`{"data": …}`) to channel `name` as `caller` (HTTP
/// and actions): the channel's answer. After a channel's first publish it
/// is added to the directory; a failure there is logged, and the next
/// publish tries again (the channel says `listed: false` until then).
pub(crate) async fn publish(
    env: &Env,
    caller: &AuthContext,
    name: &str,
    body: &serde_json::Value,
) -> Result<Answer> {
    let a = internal::call(
        env,
        CHANNEL_BINDING,
        name,
        Method::Post,
        "publish",
        "",
        Some(body),
        caller,
    )
    .await?;
    if a.ok() && a.body["listed"] == json!(false) {
        let rest = format!("channel/{name}");
        let listed = match internal::call(
            env,
            DIRECTORY_BINDING,
            DIRECTORY_NAME,
            Method::Put,
            &rest,
            "",
            None,
            caller,
        )
        .await
        {
            Ok(d) if d.ok() => internal::call(
                env,
                CHANNEL_BINDING,
                name,
                Method::Post,
                "listed",
                "",
                None,
                caller,
            )
            .await
            .map(|l| l.ok()),
            Ok(_) => Ok(false),
            Err(e) => Err(e),
        };
        if !matches!(listed, Ok(true)) {
            worker::console_error!("channels: listing {name} failed; the next publish tries again");
        }
    }
    Ok(a)
}
