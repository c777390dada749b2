//! The stateless router Worker: `GET /healthz`, `GET /v1/openapi.json`
//! (`openapi.rs`), the cold-path routes served
//! from D1 (`POST /v1/query`, `GET /v1/shards`; see `cold.rs`), every
//! `/v1/shards/{shard}/...` request handed to the Shard object `{shard}`
//! and every `/v1/objects/{kind}/{name}/...` to object `{name}` of an app's
//! own kind, `/v1/cache` to the cache objects (`cache.rs`), `/v1/files`
//! to R2 and the file rows (`files.rs`), `/v1/channels`
//! to the channels' objects (`channels.rs`),
//! with the parsed path and the verified caller (`target.rs`). An app's
//! `export!` makes [`fetch`] its Worker's entry point.
//! Around them, the edge layer (`edge.rs`): CORS, security headers, and
//! rate limits per client (before auth) and per user (after it).

use crate::api_error::ApiError;
use crate::app::App;
use crate::edge::limits::Scope;
use crate::features::Feature;
use crate::glue::{edge, respond};
use crate::route::{self, Route};
use serde_json::json;
use worker::{Context, Env, Method, Request, Response, Result};

/// The Durable Object namespace binding of the Shard class (wrangler.toml).
const SHARD_BINDING: &str = "SHARD";

/// The Worker's `fetch` for `app`.
pub async fn fetch(req: Request, env: Env, _ctx: Context, app: &'static App) -> Result<Response> {
    let origin = req.headers().get("Origin")?;
    let https = req.url().map(|u| u.scheme() == "https").unwrap_or(false);
    let cors = edge::cors(&env);
    let preflight = match req.method() {
        Method::Options => edge::preflight(&req, &cors)?,
        _ => None,
    };
    let (resp, cors) = match preflight {
        Some((answer, true)) => (answer, cors),
        // A refused preflight: no CORS headers at all (Vary only).
        Some((answer, false)) => (answer, Default::default()),
        None => (route(req, &env, app).await?, cors),
    };
    edge::finish(resp, origin.as_deref(), https, &cors)
}

async fn route(req: Request, env: &Env, app: &App) -> Result<Response> {
    let route = route::parse(&req.path());
    if matches!(
        route,
        Ok(Route::ColdQuery
            | Route::ShardList
            | Route::Shard { .. }
            | Route::RoomList
            | Route::Room { .. }
            | Route::Object { .. }
            | Route::Background { .. }
            | Route::Cache { .. }
            | Route::Files { .. }
            | Route::Channels { .. }
            | Route::Auth { .. })
    ) {
        // Per client first, before any token is verified (sign-in routes
        // too: they send email and call identity providers).
        if let Some(r) = edge::limit(env, Scope::Client, edge::client_key(&req)?).await? {
            return Ok(r);
        }
    }
    match route {
        Ok(Route::Health) if req.method() == Method::Get => respond::json(
            200,
            &json!({ "ok": true, "version": env!("CARGO_PKG_VERSION") }),
        ),
        Ok(Route::Health) => respond::error(&ApiError::method_not_allowed("use GET /healthz")),
        // Describes the API, not data: no credentials, no rate limit.
        #[cfg(feature = "openapi")]
        Ok(Route::OpenApi) => super::openapi::answer(&req, app),
        Ok(Route::ColdQuery) => super::cold::query(req, env, app).await,
        Ok(Route::ShardList) => super::cold::shards(req, env, app).await,
        Ok(Route::RoomList) => super::cold::rooms(req, env, app).await,
        // The room's shard answers (docs/rooms.md), under the shard rules.
        Ok(Route::Room { room, rest }) => {
            let rest = if rest.is_empty() {
                "rooms".to_owned()
            } else {
                format!("rooms/{rest}")
            };
            to_object(env, app, SHARD_BINDING, &room, &rest, req).await
        }
        Ok(Route::Shard { shard, rest }) => match action_name(app, &req, &rest) {
            // Boxed: the action's future stays out of every other route's.
            Some(name) => Box::pin(super::actions::run(env, app, &shard, name, req)).await,
            None => to_object(env, app, SHARD_BINDING, &shard, &rest, req).await,
        },
        // An app's own kind: its binding has the class's name.
        Ok(Route::Object { kind, name, rest }) => match app.kind(&kind) {
            Some(class) => to_object(env, app, class, &name, &rest, req).await,
            None => respond::error(&ApiError::not_found(format!(
                "no object kind {kind:?} in this app"
            ))),
        },
        Ok(Route::Auth { rest }) if Feature::SignIn.built() => {
            super::signin::handle(req, env, &rest).await
        }
        // Boxed, like actions: these futures stay out of the others'.
        #[cfg(feature = "jobs")]
        Ok(Route::Background { area, rest }) => match area {
            route::Area::Jobs => Box::pin(super::jobs::handle(req, env, app, &rest)).await,
            route::Area::Workflows => {
                Box::pin(super::workflows::handle(req, env, app, &rest)).await
            }
            route::Area::Crons => Box::pin(super::cron::handle(req, env, app, &rest)).await,
        },
        #[cfg(feature = "cache")]
        Ok(Route::Cache { rest }) => Box::pin(super::cache::handle(req, env, app, &rest)).await,
        #[cfg(feature = "files")]
        Ok(Route::Files { rest }) => Box::pin(super::files::handle(req, env, app, &rest)).await,
        #[cfg(feature = "channels")]
        Ok(Route::Channels { rest }) => {
            Box::pin(super::channels::handle(req, env, app, &rest)).await
        }
        // The routes of a part this build leaves out (src/features.rs).
        #[allow(unreachable_patterns)]
        Ok(_) => respond::error(&left_out(&req.path())),
        Err(e) => respond::error(&e),
    }
}

/// 501 `NOT_BUILT` for a route of a part this build leaves out.
fn left_out(path: &str) -> ApiError {
    match crate::features::for_path(path) {
        Some(feature) => feature.not_built(),
        None => ApiError::not_found(format!("no route for {path}")),
    }
}

/// The action a `POST fn/{name}` names: actions run here, not in the
/// shard (docs/functions.md).
fn action_name<'r>(app: &App, req: &Request, rest: &'r str) -> Option<&'r str> {
    let name = rest.strip_prefix("fn/")?;
    let is_action = app
        .functions()
        .lookup(name)
        .is_some_and(|f| f.kind == crate::functions::FnKind::Action);
    (req.method() == Method::Post && is_action).then_some(name)
}

/// Authenticates the request (the manifest's shard rules apply to the
/// object's name, whatever its kind), then forwards it to object `name` of
/// the namespace `binding`, with the caller in `x-pylon-auth` (see
/// `glue::auth`) and the parsed path (`target.rs`).
async fn to_object(
    env: &Env,
    app: &App,
    binding: &str,
    name: &str,
    rest: &str,
    req: Request,
) -> Result<Response> {
    let req = match crate::glue::session_gate::gate(env, app, name, &req).await? {
        crate::glue::auth::Gate::Pass(mut fwd, caller) => {
            if let Some(r) = edge::user_limit(env, &caller).await? {
                return Ok(r);
            }
            crate::glue::target::write_route(fwd.headers_mut()?, name, rest)?;
            fwd
        }
        crate::glue::auth::Gate::Refuse(resp) => return Ok(resp),
    };
    let stub = match env
        .durable_object(binding)
        .and_then(|ns| ns.get_by_name(name))
    {
        Ok(stub) => stub,
        Err(e) => return respond::internal(&format!("binding {binding}"), &e),
    };
    match stub.fetch_with_request(req).await {
        Ok(resp) => Ok(resp),
        Err(e) => respond::internal(&format!("object {binding}/{name}"), &e),
    }
}
