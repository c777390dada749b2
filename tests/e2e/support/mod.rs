//! Test support: the wrangler dev process, HTTP and WebSocket helpers.

pub mod jwks;
pub mod mini_http;
pub mod providers;
#[path = "../../wrangler_dev/mod.rs"]
pub mod wrangler_dev;

pub use wrangler_dev::project_root;

use std::future::Future;
use std::time::Duration;

use anyhow::{anyhow, ensure, Result};
use pylon_workers::client::{Backoff, Client, ClientConfig, Query, SubView, Subscription};
use pylon_workers::protocol::Encoding;
use serde_json::Value;

/// How long any single expected event may take.
pub const WAIT: Duration = Duration::from_secs(15);

/// GET a JSON document; fails on a non-2xx status.
pub async fn get_json(url: &str) -> Result<Value> {
    let resp = reqwest::get(url).await?;
    let status = resp.status();
    let body: Value = resp.json().await?;
    ensure!(status.is_success(), "GET {url}: {status} {body}");
    Ok(body)
}

/// GET and return status and JSON body, whatever the status.
pub async fn get_any(url: &str) -> Result<(u16, Value)> {
    let resp = reqwest::get(url).await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await?))
}

/// POST JSON and return status and JSON body, whatever the status. A body
/// that is not JSON, or cut short, is `null` (a refusal of an oversized
/// body may close the connection before its answer's body is read; the
/// status is what such a check needs, and a check of the body's fields
/// fails on `null`).
pub async fn post(url: &str, body: &Value) -> Result<(u16, Value)> {
    let resp = reqwest::Client::new().post(url).json(body).send().await?;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// A name unique to this run, so scenarios never share a shard by accident.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// Awaits `f` for at most [`WAIT`].
pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> Result<T> {
    tokio::time::timeout(WAIT, f)
        .await
        .map_err(|_| anyhow!("timed out waiting for {what}"))
}

pub async fn client(port: u16, shard: &str, encoding: Encoding) -> Result<Client> {
    // Loopback: short timeouts and retries, so a restart is noticed fast. A
    // connection attempt made while wrangler is still starting can hang.
    let config = ClientConfig::new(format!("ws://127.0.0.1:{port}"), shard)
        .encoding(encoding)
        .connect_timeout(Duration::from_secs(3))
        .backoff(Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            factor: 2.0,
        });
    Ok(within("connect", Client::connect(config)).await??)
}

/// Waits until the subscription's rows satisfy `pred`.
pub async fn wait_rows(
    sub: &mut Subscription,
    what: &str,
    pred: impl FnMut(&SubView) -> bool,
) -> Result<SubView> {
    Ok(within(what, sub.wait_for(pred)).await??)
}

pub fn cards() -> Query {
    Query::new("Card").order(serde_json::json!(["position"]).into())
}

/// A Card row of the example schema.
pub fn card(id: &str, title: &str, position: f64) -> Value {
    serde_json::json!({"id": id, "title": title, "done": false, "position": position,
                       "createdAt": "2026-11-23T00:00:00Z"})
}

pub fn ids(view: &SubView) -> Vec<String> {
    view.rows
        .iter()
        .filter_map(|r| r.get("id").and_then(|v| v.as_str()).map(str::to_owned))
        .collect()
}
