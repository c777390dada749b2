//! The stateless router Worker: `GET /healthz`, the cold-path routes served
//! from D1 (`POST /v1/query`, `GET /v1/shards`; see `cold.rs`), and every
//! `/v1/shards/{shard}/...` request handed to the Shard object `{shard}`.

use crate::api_error::ApiError;
use crate::glue::respond;
use crate::route::{self, Route};
use serde_json::json;
use worker::{event, Context, Env, Method, Request, Response, Result};

/// The Durable Object namespace binding of the Shard class (wrangler.toml).
const SHARD_BINDING: &str = "SHARD";

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    match route::parse(&req.path()) {
        Ok(Route::Health) if req.method() == Method::Get => respond::json(
            200,
            &json!({ "ok": true, "version": env!("CARGO_PKG_VERSION") }),
        ),
        Ok(Route::Health) => respond::error(&ApiError::method_not_allowed("use GET /healthz")),
        Ok(Route::ColdQuery) => super::cold::query(req, &env).await,
        Ok(Route::ShardList) => super::cold::shards(req, &env).await,
        Ok(Route::Shard { shard, .. }) => to_shard(&env, &shard, req).await,
        Err(e) => respond::error(&e),
    }
}

/// Authenticates the request, then forwards it with the caller in
/// `x-pylon-auth` (see `glue::auth`); the object reads its name from the path.
async fn to_shard(env: &Env, shard: &str, req: Request) -> Result<Response> {
    let req = match crate::glue::auth::gate(env, shard, &req).await? {
        crate::glue::auth::Gate::Pass(fwd) => fwd,
        crate::glue::auth::Gate::Refuse(resp) => return Ok(resp),
    };
    let stub = match env
        .durable_object(SHARD_BINDING)
        .and_then(|ns| ns.get_by_name(shard))
    {
        Ok(stub) => stub,
        Err(e) => return respond::internal(&format!("binding {SHARD_BINDING}"), &e),
    };
    match stub.fetch_with_request(req).await {
        Ok(resp) => Ok(resp),
        Err(e) => respond::internal(&format!("shard {shard}"), &e),
    }
}
