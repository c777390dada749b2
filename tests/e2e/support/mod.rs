//! Test support: the wrangler dev process, HTTP and WebSocket helpers.

pub mod server;
pub mod ws;

use anyhow::{ensure, Result};
use serde_json::Value;

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

/// A name unique to this run, so scenarios never share a shard by accident.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{nanos}", std::process::id())
}
