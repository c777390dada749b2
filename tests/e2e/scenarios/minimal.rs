//! The second app, examples/minimal (its own manifest, wrangler.toml and
//! D1 migrations), on a wrangler dev of its own: what `export!` gives an
//! app works end to end, so the seam between the library and an app that
//! is not the board cannot rot unnoticed.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use pylon_workers::client::Query;
use pylon_workers::protocol::{Encoding, Op};
use serde_json::{json, Value};

use crate::support::wrangler_dev::{DevOptions, WranglerDev};
use crate::support::{client, get_json, ids, post, unique, wait_rows, within};
use crate::Ctx;

/// The app's wrangler config, relative to the project root.
const CONFIG: &str = "examples/minimal/wrangler.toml";

/// A Note row of the app's schema.
fn note(id: &str, text: &str) -> Value {
    json!({"id": id, "text": text, "at": "2026-12-01T00:00:00Z"})
}

/// `/healthz`; a write over WebSocket reaches another client's live query
/// as a diff; the shard answers an HTTP query; the cold path
/// (`POST /v1/query`, D1) has the row once the outbox drained; after a
/// kill -9 and restart the shard still holds its rows and its seq.
///
/// It runs its own wrangler dev, beside the board's scenarios that follow
/// `start`; `finish` joins it.
pub async fn start(ctx: &mut Ctx) -> Result<()> {
    let dir = ctx.dir.join("minimal");
    let handle = tokio::spawn(async move {
        let mut dev = DevOptions::new().config(CONFIG).start(&dir).await?;
        let log = dev.log.clone();
        scenario(&mut dev)
            .await
            .with_context(|| format!("the minimal app's wrangler log: {}", log.display()))
    });
    ctx.background.push(("minimal", handle));
    Ok(())
}

pub async fn finish(ctx: &mut Ctx) -> Result<()> {
    ctx.join("minimal").await
}

async fn scenario(dev: &mut WranglerDev) -> Result<()> {
    let health = get_json(&dev.http("/healthz")).await?;
    ensure!(health["ok"] == true, "{health}");
    parts_left_out(dev).await?;

    let shard = unique("notes");
    let writer = client(dev.port, &shard, Encoding::Json).await?;
    let reader = client(dev.port, &shard, Encoding::Postcard).await?;
    let mut sub = reader.subscribe(Query::new("Note")).await?;
    let ack = writer
        .mutate(vec![Op::Insert {
            entity: "Note".into(),
            row: serde_json::from_value(note("n1", "hello"))?,
        }])
        .await?;
    ensure!(ack.seq == 1 && !ack.dup, "{ack:?}");
    wait_rows(&mut sub, "the reader to get the diff", |v| ids(v) == ["n1"]).await?;
    writer.close().await;
    reader.close().await;

    let query = dev.http(&format!("/v1/shards/{shard}/query"));
    let (status, body) = post(&query, &json!({"entity": "Note"})).await?;
    ensure!(
        status == 200 && body["seq"] == 1 && body["rows"][0]["text"] == "hello",
        "{status} {body}"
    );

    // D1 gets the row when the shard's outbox drains (an alarm).
    let cold = dev.http("/v1/query");
    let asked = json!({"entity": "Note", "shard": shard});
    within("the row in D1", async {
        loop {
            let (status, body) = post(&cold, &asked).await?;
            ensure!(status == 200, "cold query: {status} {body}");
            if body["rows"][0]["id"] == "n1" {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await??;

    dev.restart().await?;
    let (status, body) = post(&query, &json!({"entity": "Note"})).await?;
    ensure!(
        status == 200 && body["seq"] == 1 && body["rows"][0]["text"] == "hello",
        "after the restart: {status} {body}"
    );
    let (status, body) = post(
        &dev.http(&format!("/v1/shards/{shard}/mutate")),
        &json!({"op": "after-restart", "ops": [
            {"type": "insert", "entity": "Note", "row": note("n2", "again")}]}),
    )
    .await?;
    ensure!(status == 200 && body["seq"] == 2, "{status} {body}");
    Ok(())
}

/// The app is built without the runtime's optional parts (its Cargo.toml):
/// each one's routes answer 501 `NOT_BUILT` naming the feature, and the
/// Worker starts without their classes and queues in its wrangler.toml.
async fn parts_left_out(dev: &WranglerDev) -> Result<()> {
    let http = reqwest::Client::new();
    let cases = [
        ("GET", "/v1/jobs/stats", "jobs"),
        ("POST", "/v1/workflows", "jobs"),
        ("GET", "/v1/crons", "jobs"),
        ("GET", "/v1/cache/k", "cache"),
        ("GET", "/v1/channels", "channels"),
        ("GET", "/v1/files/notes/f1", "files"),
        ("GET", "/v1/openapi.json", "openapi"),
        ("POST", "/v1/auth/email/start", "signin"),
    ];
    for (method, path, feature) in cases {
        let req = match method {
            "GET" => http.get(dev.http(path)),
            _ => http.post(dev.http(path)).json(&json!({})),
        };
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let message = body["error"]["message"].as_str().unwrap_or_default();
        ensure!(
            status == 501
                && body["error"]["code"] == "NOT_BUILT"
                && message.contains(&format!("`{feature}`")),
            "{method} {path}: {status} {body}"
        );
    }
    Ok(())
}
