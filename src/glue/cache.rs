//! `/v1/cache` in the Worker (docs/cache.md): who the caller is, whether
//! the manifest's `cache` section lets them read or write, then the
//! plan's calls to the cache objects (`cache::plan`), and one answer.

use worker::{Env, Method, Request, Response, Result};

use crate::app::App;
use crate::cache::plan::{self, Access};
use crate::cache::{check_scope, object_name};
use crate::glue::{body, internal, respond, session_gate};
use crate::host;

/// The cache objects' binding (wrangler.toml).
const CACHE_BINDING: &str = "CACHE";
/// A request body, at most: a value is at most 64 KiB of JSON, and a
/// `DEL` of 100 long keys needs room too.
const MAX_BODY_BYTES: usize = 256 * 1024;

fn host_method(m: &Method) -> host::Method {
    match m {
        Method::Get => host::Method::Get,
        Method::Post => host::Method::Post,
        Method::Put => host::Method::Put,
        Method::Delete => host::Method::Delete,
        _ => host::Method::Other,
    }
}

fn worker_method(m: host::Method) -> Method {
    match m {
        host::Method::Get => Method::Get,
        host::Method::Put => Method::Put,
        host::Method::Delete => Method::Delete,
        _ => Method::Post,
    }
}

/// `/v1/cache[/{rest}]`.
pub(crate) async fn handle(mut req: Request, env: &Env, app: &App, rest: &str) -> Result<Response> {
    let (caller, manifest) = match session_gate::caller_and_manifest(env, app, &req).await? {
        Ok(found) => found,
        Err(answer) => return Ok(answer),
    };
    let method = req.method();
    let bytes = match method {
        Method::Post | Method::Put => match body::read_capped(&mut req, MAX_BODY_BYTES).await {
            Ok(b) => b,
            Err(e) => return respond::error(&e.to_api_error("VALUE_TOO_LARGE")),
        },
        _ => Vec::new(),
    };
    let plan = match plan::plan(host_method(&method), rest, &bytes) {
        Ok(p) => p,
        Err(e) => return respond::error(&e),
    };
    let rules = &manifest.background().cache;
    let (who, what) = match plan.access {
        Access::Read => (rules.read, "reading the cache"),
        Access::Write => (rules.write, "writing to the cache"),
    };
    if !who.allows(&caller) {
        return respond::refused(&caller, what);
    }
    let keys = plan.keys.iter().map(String::as_str);
    if let Err(e) = check_scope(rules.scope, manifest.auth(), &caller, keys) {
        return respond::error(&e);
    }
    let mut answers = Vec::with_capacity(plan.calls.len());
    for call in &plan.calls {
        let name = object_name(call.object);
        let answer = internal::call(
            env,
            CACHE_BINDING,
            &name,
            worker_method(call.method),
            &call.rest,
            "",
            call.body.as_ref(),
            &caller,
        )
        .await;
        match answer {
            Ok(a) => answers.push(host::Response::json(a.status, a.body)),
            Err(e) => return respond::internal(&format!("cache object {name}"), &e),
        }
    }
    let answer = plan::merge(plan.merge, answers);
    respond::json(answer.status, &answer.body)
}
