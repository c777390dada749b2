//! The cold-path routes, answered from D1 alone (no shard is woken):
//! `POST /v1/query` (`store::cold_query`) and `GET /v1/shards?after=&limit=`
//! (`store::list_shards`). Both run as the verified caller
//! (`glue::session_gate::identify`: no token where the manifest has
//! `anonymous: false` is a 401), count against the per-user limit, and see
//! only the shards the manifest's shard rules let the caller enter.

use crate::api_error::ApiError;
use crate::app::App;
use crate::glue::body::read_capped;
use crate::glue::d1::{D1Exec, D1_BINDING};
use crate::glue::respond;
use crate::policy::AuthContext;
use crate::store::{cold_query, list_shards, StoreError};
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

fn d1(env: &Env) -> std::result::Result<D1Exec, Result<Response>> {
    env.d1(D1_BINDING)
        .map(D1Exec)
        .map_err(|e| respond::internal(&format!("binding {D1_BINDING}"), &e))
}

/// The verified caller within the per-user limit, or the answer.
async fn caller(env: &Env, app: &App, req: &Request) -> Result<std::result::Result<AuthContext, Response>> {
    let caller = match crate::glue::session_gate::identify(env, app, req).await? {
        Ok(c) => c,
        Err(answer) => return Ok(Err(answer)),
    };
    if let Some(r) = super::router::user_limit(env, &caller).await? {
        return Ok(Err(r));
    }
    Ok(Ok(caller))
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
    let manifest = match app.manifest() {
        Ok(m) => m,
        Err(e) => return respond::error(&e),
    };
    let db = match d1(env) {
        Ok(db) => db,
        Err(r) => return r,
    };
    let caller = match caller(env, app, &req).await? {
        Ok(c) => c,
        Err(answer) => return Ok(answer),
    };
    match cold_query(&db, &manifest, &body, &caller).await {
        Ok(r) => respond::json(200, &serde_json::to_value(&r)?),
        Err(e) => store_error(&e),
    }
}

/// `GET /v1/shards?after=&limit=`.
pub(crate) async fn shards(req: Request, env: &Env, app: &App) -> Result<Response> {
    if req.method() != Method::Get {
        return respond::error(&ApiError::method_not_allowed("use GET /v1/shards"));
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
    let manifest = match app.manifest() {
        Ok(m) => m,
        Err(e) => return respond::error(&e),
    };
    let db = match d1(env) {
        Ok(db) => db,
        Err(r) => return r,
    };
    let caller = match caller(env, app, &req).await? {
        Ok(c) => c,
        Err(answer) => return Ok(answer),
    };
    match list_shards(&db, &manifest, &caller, after.as_deref(), limit).await {
        Ok(page) => respond::json(200, &serde_json::to_value(&page)?),
        Err(e) => store_error(&e),
    }
}
