//! Requests the runtime makes to its own objects (the jobs ledger, a
//! workflow instance, a shard's functions) on someone's behalf: the same
//! internal headers the router writes for a client's request (the route
//! and the caller), so the object cannot tell them apart and applies the
//! same rules.

use worker::{Env, Headers, Method, Request, RequestInit, Result};

use crate::auth::{encode_caller, Lease, AUTH_HEADER};
use crate::policy::AuthContext;

/// The jobs ledger's binding and its one object.
#[cfg(feature = "jobs")]
pub(crate) const LEDGER_BINDING: &str = "JOB_LEDGER";
#[cfg(feature = "jobs")]
pub(crate) use crate::jobs::ledger::LEDGER_NAME;
/// Workflow instances, one object each.
#[cfg(feature = "jobs")]
pub(crate) const WORKFLOW_BINDING: &str = "WORKFLOW";
pub(crate) const SHARD_BINDING: &str = "SHARD";

/// An answer: its status and JSON body (`null` when it had none).
pub(crate) struct Answer {
    pub status: u16,
    pub body: serde_json::Value,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `error.code` and `error.message` of a refusal.
    pub fn error(&self) -> (String, String) {
        let e = &self.body["error"];
        (
            e["code"].as_str().unwrap_or("INTERNAL").to_owned(),
            e["message"].as_str().unwrap_or_default().to_owned(),
        )
    }
}

/// `method` `rest` (with `query`, already encoded, or empty) of object
/// `name` in namespace `binding`, as `caller`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn call(
    env: &Env,
    binding: &str,
    name: &str,
    method: Method,
    rest: &str,
    query: &str,
    body: Option<&serde_json::Value>,
    caller: &AuthContext,
) -> Result<Answer> {
    let headers = Headers::new();
    crate::glue::target::write_route(&headers, name, rest)?;
    headers.set(AUTH_HEADER, &encode_caller(caller, &Lease::default()))?;
    if body.is_some() {
        headers.set("Content-Type", "application/json")?;
    }
    let mut init = RequestInit::new();
    init.with_method(method).with_headers(headers);
    if let Some(b) = body {
        init.with_body(Some(b.to_string().into()));
    }
    let sep = if query.is_empty() { "" } else { "?" };
    let url = format!("https://object/{rest}{sep}{query}");
    let req = Request::new_with_init(&url, &init)?;
    let stub = env.durable_object(binding)?.get_by_name(name)?;
    let mut resp = stub.fetch_with_request(req).await?;
    let status = resp.status_code();
    let text = resp.text().await?;
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    Ok(Answer { status, body })
}

/// A request to the jobs ledger.
#[cfg(feature = "jobs")]
pub(crate) async fn ledger(
    env: &Env,
    method: Method,
    rest: &str,
    query: &str,
    body: Option<&serde_json::Value>,
    caller: &AuthContext,
) -> Result<Answer> {
    call(
        env,
        LEDGER_BINDING,
        LEDGER_NAME,
        method,
        rest,
        query,
        body,
        caller,
    )
    .await
}
