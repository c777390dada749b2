//! Keepalives do not wake the shard: the platform answers them (the Durable
//! Object's WebSocket auto-response). Sockets idle for a minute with only
//! keepalives; the shard's `wakes` goes up by at most one (the stats request
//! that ends the minute may wake it once if it was evicted meanwhile),
//! where a keepalive that reached the shard would wake it after every ~10 s
//! of idleness (four or more over the minute).
//!
//! The minute runs in the background while the scenarios after `start` run
//! (on other shards); `finish` waits for it before a scenario restarts
//! wrangler.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Result};
use pylon_workers::client::{Client, ClientConfig, ConnState, RawConnection, Received};
use pylon_workers::protocol::{Encoding, Op};
use serde_json::json;

use crate::support::{card, cards, get_json, ids, post, unique, wait_rows, within};
use crate::Ctx;

/// How long the sockets idle with keepalives.
const IDLE: Duration = Duration::from_secs(60);
/// Between keepalives of the raw sockets (what the clients send after 30 s
/// of silence by default; shorter here so the minute holds several).
const EVERY: Duration = Duration::from_secs(15);

pub async fn start(ctx: &mut Ctx) -> Result<()> {
    let port = ctx.dev.port;
    let stats = ctx.dev.http("/v1/shards/");
    let handle = tokio::spawn(async move { idle_minute(port, stats).await });
    ctx.background.push(("keepalive", handle));
    Ok(())
}

pub async fn finish(ctx: &mut Ctx) -> Result<()> {
    ctx.join("keepalive").await
}

async fn idle_minute(port: u16, shards_url: String) -> Result<()> {
    let shard = unique("keepalive");
    let stats_url = format!("{shards_url}{shard}/stats");
    let mutate_url = format!("{shards_url}{shard}/mutate");

    // A full client with a live query, keepalive every 15 s (it treats 30 s
    // of silence as a dead connection and would reconnect: a new conn id).
    let config = ClientConfig::new(format!("ws://127.0.0.1:{port}"), &shard)
        .encoding(Encoding::Postcard)
        .keepalive(Some(EVERY));
    let watcher = within("connect", Client::connect(config)).await??;
    let mut sub = watcher.subscribe(cards()).await?;
    let (status, body) = post(&mutate_url, &json!({"op": "ka-1", "ops": [{"type": "insert", "entity": "Card", "row": card("one", "one", 1.0)}]})).await?;
    ensure!(status == 200, "{status} {body}");
    wait_rows(&mut sub, "the first row", |v| v.rows.len() == 1).await?;
    let conn_before = live_conn(&watcher.state())?;

    // Raw sockets in both encodings: the keepalive is the same text frame.
    let mut raws = Vec::new();
    for enc in Encoding::ALL {
        let config = ClientConfig::new(format!("ws://127.0.0.1:{port}"), &shard).encoding(enc);
        let mut raw = within("raw connect", RawConnection::connect(&config)).await??;
        within("welcome", raw.recv_welcome()).await??;
        raws.push(raw);
    }

    let w0 = get_json(&stats_url).await?["wakes"].as_u64().unwrap_or(0);
    let started = Instant::now();
    let mut acks = 0;
    while started.elapsed() < IDLE {
        tokio::time::sleep(EVERY.min(IDLE.saturating_sub(started.elapsed()))).await;
        for raw in &mut raws {
            raw.send_keepalive().await?;
            loop {
                match within("the keepalive's ack", raw.recv()).await?? {
                    Received::KeepaliveAck => break,
                    // Presence of the sockets that joined after this one.
                    Received::Msg(_) => continue,
                    other => bail!("{:?} socket: {other:?}", raw.encoding()),
                }
            }
            acks += 1;
        }
    }
    let after = get_json(&stats_url).await?;
    let w1 = after["wakes"].as_u64().unwrap_or(0);
    ensure!(acks >= 8, "only {acks} keepalives answered");
    ensure!(
        w1 <= w0 + 1,
        "keepalives woke the shard: wakes {w0} -> {w1} over {IDLE:?} ({acks} keepalives)"
    );
    ensure!(after["connections"] == 3, "sockets lost: {after}");
    let conn_after = live_conn(&watcher.state())?;
    ensure!(
        conn_before == conn_after,
        "the client reconnected ({conn_before} -> {conn_after}): its keepalives went unanswered"
    );

    // The sockets still carry the shard's messages.
    watcher
        .mutate(vec![Op::Insert {
            entity: "Card".into(),
            row: serde_json::from_value(card("two", "two", 2.0))?,
        }])
        .await?;
    let v = wait_rows(&mut sub, "the diff after the idle minute", |v| {
        v.rows.len() == 2
    })
    .await?;
    ensure!(ids(&v) == ["one", "two"], "{:?}", ids(&v));
    eprintln!("keepalive: {acks} keepalives over {IDLE:?}, wakes {w0} -> {w1}");
    Ok(())
}

fn live_conn(state: &ConnState) -> Result<String> {
    match state {
        ConnState::Live { conn, .. } => Ok(conn.clone()),
        other => bail!("the client is not live: {other:?}"),
    }
}
