//! `GET /v1/openapi.json`: the app's OpenAPI document (`crate::openapi`),
//! built on the first request and kept for the isolate's life (the
//! manifest and the functions do not change while it lives).

use std::sync::OnceLock;

use worker::{Method, Request, Response, Result};

use crate::api_error::ApiError;
use crate::app::App;
use crate::glue::respond;

static DOCUMENT: OnceLock<String> = OnceLock::new();

/// How long caches may keep it: a deploy changes it.
const CACHE_CONTROL: &str = "public, max-age=300";

pub(crate) fn answer(req: &Request, app: &App) -> Result<Response> {
    if req.method() != Method::Get {
        return respond::error(&ApiError::method_not_allowed("use GET /v1/openapi.json"));
    }
    let text = match DOCUMENT.get() {
        Some(text) => text,
        None => {
            let manifest = match respond::manifest(app)? {
                Ok(m) => m,
                Err(answer) => return Ok(answer),
            };
            let functions = app.functions().list();
            let doc = crate::openapi::document(&manifest, &functions, env!("CARGO_PKG_VERSION"));
            DOCUMENT.get_or_init(|| doc.to_string())
        }
    };
    let mut resp = Response::from_bytes(text.as_bytes().to_vec())?;
    let headers = resp.headers_mut();
    headers.set("content-type", "application/json")?;
    headers.set("cache-control", CACHE_CONTROL)?;
    Ok(resp)
}
