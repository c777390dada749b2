//! Actions (docs/functions.md): run by the router Worker, outside any
//! shard's turn, so they may `fetch`; their `runQuery`/`runMutation` are
//! requests to the shard the action was called on, as the same caller
//! (policies apply to them as to the caller's own calls).

use std::rc::Rc;

use worker::{Env, Headers, Method, Request, RequestInit, Response, Result};

use crate::api_error::ApiError;
use crate::app::App;
use crate::functions::{ActionCtx, ActionHost, FnError, FnKind, Found, RustBody};
use crate::glue::auth::Gate;
use crate::glue::{body, edge, respond, session_gate, target};
use crate::host::Pending;
use crate::protocol::ErrorCode;
use crate::value::Value;

/// The Durable Object namespace binding of the Shard class.
const SHARD_BINDING: &str = "SHARD";
/// An action's arguments, at most (the shard's own calls are bounded by
/// its frame limit).
const MAX_ARGS_BYTES: usize = 1 << 20;

/// Calls into one shard on behalf of an action's caller.
struct ShardCalls {
    env: Env,
    shard: String,
    /// The forwarded request's headers: the verified caller, no credentials.
    headers: Headers,
}

impl ShardCalls {
    async fn call(
        &self,
        kind: FnKind,
        name: &str,
        args: Value,
    ) -> Result<std::result::Result<Value, FnError>> {
        let headers = Headers::new();
        for (k, v) in self.headers.entries() {
            headers.set(&k, &v)?;
        }
        target::write_route(&headers, &self.shard, &format!("fn/{name}"))?;
        headers.set("Content-Type", "application/json")?;
        let body = serde_json::to_string(&args).expect("values serialize");
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_body(Some(body.into()));
        let url = format!(
            "https://shard/v1/shards/{}/fn/{name}?kind={}",
            self.shard,
            kind.as_str()
        );
        let req = Request::new_with_init(&url, &init)?;
        let stub = self
            .env
            .durable_object(SHARD_BINDING)?
            .get_by_name(&self.shard)?;
        let mut resp = stub.fetch_with_request(req).await?;
        let status = resp.status_code();
        let json: serde_json::Value = resp.json().await?;
        if status == 200 {
            let value = serde_json::from_value(json["value"].clone()).unwrap_or(Value::Null);
            return Ok(Ok(value));
        }
        let code = json["error"]["code"].as_str().unwrap_or("INTERNAL");
        let message = json["error"]["message"].as_str().unwrap_or_default();
        Ok(Err(FnError::new(ErrorCode::parse_lenient(code), message)))
    }
}

impl ActionHost for ShardCalls {
    fn run<'a>(
        &'a self,
        kind: FnKind,
        name: &'a str,
        args: Value,
    ) -> Pending<'a, std::result::Result<Value, FnError>> {
        Box::pin(async move {
            match self.call(kind, name, args).await {
                Ok(r) => r,
                Err(e) => Err(FnError::new(
                    ErrorCode::Unavailable,
                    format!("calling {name:?} in the shard failed: {e}"),
                )),
            }
        })
    }
}

/// `POST /v1/shards/{shard}/fn/{name}` when `name` is an action.
pub async fn run(env: &Env, app: &App, shard: &str, name: &str, req: Request) -> Result<Response> {
    let (mut fwd, caller) = match session_gate::gate(env, app, shard, &req).await? {
        Gate::Pass(fwd, caller) => (fwd, caller),
        Gate::Refuse(resp) => return Ok(resp),
    };
    if let Some(r) = edge::user_limit(env, &caller).await? {
        return Ok(r);
    }
    let bytes = match body::read_capped(&mut fwd, MAX_ARGS_BYTES).await {
        Ok(b) => b,
        Err(e) => return respond::error(&e.to_api_error("FRAME_TOO_LARGE")),
    };
    let args: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                return respond::error(&ApiError::bad_request(
                    "BAD_FRAME",
                    format!("body is not JSON: {e}"),
                ))
            }
        }
    };
    let host: Rc<dyn ActionHost> = Rc::new(ShardCalls {
        env: env.clone(),
        shard: shard.to_owned(),
        headers: fwd.headers().clone(),
    });
    let result = match app.functions().find(name) {
        Some((_, Found::Rust(RustBody::Action(f)))) => {
            let ctx = ActionCtx {
                auth: &caller,
                host: &*host,
            };
            f(ctx, args).await
        }
        Some((info, Found::Script(s))) if info.kind == FnKind::Action => {
            s.run(
                name,
                FnKind::Action,
                &caller,
                None,
                Some(host.clone()),
                &args,
            )
            .await
        }
        _ => Err(FnError::unknown(name)),
    };
    match result {
        Ok(value) => respond::json(200, &serde_json::json!({ "value": value })),
        Err(e) => respond::error(&ApiError::from(&e.to_msg())),
    }
}
