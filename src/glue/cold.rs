//! The cold-path routes, answered from D1 alone (no shard is woken):
//! `POST /v1/query` (`store::cold_query`), `GET /v1/shards?after=&limit=`
//! (`store::list_shards`) and `GET /v1/rooms` (`store::list_rooms`). All
//! run as the verified caller (`glue::session_gate::identify`: no token where the manifest has
//! `anonymous: false` is a 401), count against the per-user limit, and see
//! only the shards the manifest's shard rules let the caller enter.

use std::sync::Arc;

use crate::api_error::ApiError;
use crate::app::App;
use crate::glue::body::read_capped;
use crate::glue::d1::{D1Exec, D1_BINDING};
use crate::glue::{edge, respond};
use crate::host::Pending;
use crate::manifest::Manifest;
use crate::policy::AuthContext;
use crate::store::{cold_query, list_rooms, list_shards, RoomPage, StoreError};
use worker::{Env, Method, Request, Response, Result};

/// Request bodies are limited to this many bytes (413 above).
pub(crate) const MAX_BODY: usize = 1 << 20;

fn store_error(e: &StoreError) -> Result<Response> {
    match e {
        StoreError::Storage(s) => worker::console_error!("cold path: {s}"),
        StoreError::NotMigrated => worker::console_error!("cold path: {e}"),
        _ => {}
    }
    match e {
        // The same answer (and challenge) as the router's gate gives for
        // the shard itself.
        StoreError::Access(a) => crate::glue::auth::refusal(a),
        e => respond::error(&e.to_api_error()),
    }
}

/// What both routes answer with: the manifest, D1, and the verified
/// caller within the per-user limit.
struct Cold {
    manifest: Arc<Manifest>,
    db: D1Exec,
    caller: AuthContext,
}

/// The [`Cold`] context of `req`, or the answer.
async fn cold(env: &Env, app: &App, req: &Request) -> Result<std::result::Result<Cold, Response>> {
    let manifest = match respond::manifest(app)? {
        Ok(m) => m,
        Err(answer) => return Ok(Err(answer)),
    };
    let db = match env.d1(D1_BINDING) {
        Ok(db) => D1Exec(db),
        Err(e) => {
            return Ok(Err(respond::internal(
                &format!("binding {D1_BINDING}"),
                &e,
            )?))
        }
    };
    let caller = match crate::glue::session_gate::identify(env, app, req).await? {
        Ok(c) => c,
        Err(answer) => return Ok(Err(answer)),
    };
    if let Some(r) = edge::user_limit(env, &caller).await? {
        return Ok(Err(r));
    }
    Ok(Ok(Cold {
        manifest,
        db,
        caller,
    }))
}

/// `POST /v1/query`.
pub(crate) async fn query(mut req: Request, env: &Env, app: &App) -> Result<Response> {
    if req.method() != Method::Post {
        return respond::error(&ApiError::method_not_allowed("use POST /v1/query"));
    }
    let bytes = match read_capped(&mut req, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => return respond::error(&e.to_api_error("TOO_LARGE")),
    };
    let body: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => {
            return respond::error(&ApiError::bad_request(
                "BAD_QUERY",
                format!("body is not JSON: {e}"),
            ))
        }
    };
    let c = match cold(env, app, &req).await? {
        Ok(c) => c,
        Err(answer) => return Ok(answer),
    };
    match cold_query(&c.db, &c.manifest, &body, &c.caller).await {
        Ok(r) => respond::json(200, &serde_json::to_value(&r)?),
        Err(e) => store_error(&e),
    }
}

/// `GET /v1/shards?after=&limit=`.
pub(crate) async fn shards(req: Request, env: &Env, app: &App) -> Result<Response> {
    directory(req, env, app, false).await
}

/// `GET /v1/rooms?after=&limit=` (docs/rooms.md): the same paging and
/// access as the shard directory, over the room list.
pub(crate) async fn rooms(req: Request, env: &Env, app: &App) -> Result<Response> {
    directory(req, env, app, true).await
}

/// `store::list_rooms` on D1, for this route and an action's
/// `ctx.rooms.list` (`glue::rooms`): boxed, so both share one copy of its
/// code instead of each inlining its own (the bundle's size).
pub(crate) fn room_page<'a>(
    db: &'a D1Exec,
    manifest: &'a Manifest,
    caller: &'a AuthContext,
    after: Option<&'a str>,
    limit: usize,
) -> Pending<'a, std::result::Result<RoomPage, StoreError>> {
    Box::pin(list_rooms(db, manifest, caller, after, limit))
}

async fn directory(req: Request, env: &Env, app: &App, rooms: bool) -> Result<Response> {
    if req.method() != Method::Get {
        let path = if rooms { "/v1/rooms" } else { "/v1/shards" };
        return respond::error(&ApiError::method_not_allowed(format!("use GET {path}")));
    }
    let url = req.url()?;
    let mut after = None;
    let mut limit = 0usize;
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "after" => after = Some(v.into_owned()),
            "limit" => match v.parse::<usize>() {
                Ok(n) if (1..=1000).contains(&n) => limit = n,
                _ => {
                    return respond::error(&ApiError::bad_request(
                        "BAD_QUERY",
                        "limit is an integer from 1 to 1000",
                    ))
                }
            },
            _ => {}
        }
    }
    let c = match cold(env, app, &req).await? {
        Ok(c) => c,
        Err(answer) => return Ok(answer),
    };
    let page = if rooms {
        room_page(&c.db, &c.manifest, &c.caller, after.as_deref(), limit)
            .await
            .map(|p| serde_json::to_value(&p))
    } else {
        list_shards(&c.db, &c.manifest, &c.caller, after.as_deref(), limit)
            .await
            .map(|p| serde_json::to_value(&p))
    };
    match page {
        Ok(page) => respond::json(200, &page?),
        Err(e) => store_error(&e),
    }
}
