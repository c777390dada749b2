use std::time::Duration;

use anyhow::{bail, ensure, Result};
use pylon_workers::client::{ClientConfig, RawConnection, Received};
use pylon_workers::protocol::{ClientMsg, Encoding, Hello, ServerMsg};
use pylon_workers::value::Value;
use serde_json::json;

use crate::support::{card, cards, client, get_json, ids, post, unique, wait_rows, within};
use crate::Ctx;

/// Waits until the watched `boardSummary` counts `total` cards.
async fn wait_value(w: &mut pylon_workers::client::FnWatch, total: i64) -> Result<()> {
    within(
        &format!("boardSummary to count {total}"),
        w.wait_for(|v| v.value.get("total").and_then(Value::as_i64) == Some(total)),
    )
    .await??;
    Ok(())
}

/// Locally, workerd evicts an object after ~10 s with no events.
pub const IDLE_FOR_EVICTION: Duration = Duration::from_secs(13);
/// Idle periods to wait at most for one eviction.
const EVICTION_TRIES: usize = 4;

/// With sockets open and a live query subscribed, the shard idles until it
/// is evicted (`wakes` went up when next asked). Then an HTTP write reaches
/// the new instance, which rebuilt the subscription from storage and sends
/// the right diff
/// (its `from` is the seq the client holds); the sockets stayed open and
/// their attachments (connection ids, encodings) are intact.
pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let shard = unique("hib");
    let port = ctx.dev.port;
    let watcher = client(port, &shard, Encoding::Postcard).await?;
    let mut sub = watcher.subscribe(cards()).await?;
    watcher
        .mutate(vec![pylon_workers::protocol::Op::Insert {
            entity: "Card".into(),
            row: serde_json::from_value(card("before", "before the nap", 1.0))?,
        }])
        .await?;
    wait_rows(&mut sub, "the first row", |v| v.rows.len() == 1).await?;
    let config = ClientConfig::new(format!("ws://127.0.0.1:{port}"), &shard);
    let mut raw = within("raw connect", RawConnection::connect(&config)).await??;
    let conn = within("welcome", raw.recv_welcome()).await??.conn;
    // A live query function (docs/functions.md) watched across the nap.
    let functions = client(port, &shard, Encoding::Json).await?;
    let mut summary = within(
        "watch boardSummary",
        functions.watch("boardSummary", Value::Null),
    )
    .await??;
    wait_value(&mut summary, 1).await?;
    let before = get_json(&ctx.dev.http(&format!("/v1/shards/{shard}/stats"))).await?;
    // A simulation shard idles beside it, with a socket attached.
    let counter = ctx.dev.http(&format!("/v1/sims/counter/{shard}"));
    let (status, body) = post(&counter, &json!({"add": 4})).await?;
    ensure!(status == 200, "{status} {body}");
    let mut sim_socket =
        crate::scenarios::sims::open(ctx, &format!("/v1/sims/counter/{shard}/ws")).await?;
    let c0 = get_json(&counter).await?;

    // A call scheduled to run after the shard was evicted (its own shard,
    // idle from now on: the scheduled run is what wakes it).
    let later = unique("hib-sched");
    let url = ctx.dev.http(&format!("/v1/shards/{later}/fn/addCardLater"));
    let (status, body) = post(&url, &json!({"title": "woken", "delayMs": 12_000})).await?;
    ensure!(
        status == 200 && body["value"].is_string(),
        "{status} {body}"
    );

    // The wait is the point: nothing may happen while the object goes idle.
    // workerd does not always evict right after ~10 s, so look (a stats
    // request wakes an evicted object and rebuilds its subscriptions) and
    // idle again until it was.
    let w0 = before["wakes"].as_u64().unwrap_or(0);
    let mut evicted = false;
    for _ in 0..EVICTION_TRIES {
        tokio::time::sleep(IDLE_FOR_EVICTION).await;
        let now = get_json(&ctx.dev.http(&format!("/v1/shards/{shard}/stats"))).await?;
        if now["wakes"].as_u64().unwrap_or(0) > w0 {
            evicted = true;
            break;
        }
    }
    ensure!(
        evicted,
        "the object was not evicted in {EVICTION_TRIES} idle periods of {IDLE_FOR_EVICTION:?}"
    );
    // The scheduled call ran (after at least one idle period of 13 s).
    let count = ctx.dev.http(&format!("/v1/shards/{later}/query"));
    let (status, body) = post(&count, &json!({"entity": "Card", "count": true})).await?;
    ensure!(
        status == 200 && body["count"] == 1,
        "the scheduled card: {status} {body}"
    );
    let s = get_json(&ctx.dev.http(&format!("/v1/shards/{later}/stats"))).await?;
    ensure!(s["scheduled"] == 0, "{s}");

    // The counter kept its total and its socket across the same idle time
    // (an event-driven sim sets no alarm, so it may be evicted too), and
    // the socket still gets its snapshots.
    let (status, body) = post(&counter, &json!({"add": 1})).await?;
    ensure!(status == 200, "{status} {body}");
    loop {
        let m = crate::scenarios::sims::next(&mut sim_socket).await?;
        if m["type"] == "sim_snapshot" && m["total"] == 5 {
            break;
        }
    }
    let c1 = get_json(&counter).await?;
    ensure!(
        c1["total"] == 5 && c1["subscribers"] == 1 && c1["alarm_pending"] == false,
        "the counter after the idle time: {c0} -> {c1}"
    );

    let (status, body) = post(&ctx.dev.http(&format!("/v1/shards/{shard}/mutate")),
        &json!({"op": "after-nap", "ops": [{"type": "insert", "entity": "Card", "row": card("after", "after", 2.0)}]})).await?;
    ensure!(status == 200 && body["seq"] == 2, "{status} {body}");
    let v = wait_rows(&mut sub, "the diff after the wake", |v| v.rows.len() == 2).await?;
    // The watch was rebuilt from storage and ran again for the write.
    wait_value(&mut summary, 2).await?;
    // And a function call reaches the woken shard.
    let id = within(
        "a call after the wake",
        functions.call("addCardChecked", Value::from(json!({"title": "called"}))),
    )
    .await??;
    ensure!(id.as_str().is_some(), "addCardChecked returned {id:?}");
    wait_value(&mut summary, 3).await?;
    ensure!(
        ids(&v)[..2] == ["before", "after"] && v.seq.is_some_and(|s| s >= 2),
        "{:?} at {:?}",
        ids(&v),
        v.seq
    );

    let after = get_json(&ctx.dev.http(&format!("/v1/shards/{shard}/stats"))).await?;
    let (w0, w1) = (
        before["wakes"].as_u64().unwrap_or(0),
        after["wakes"].as_u64().unwrap_or(0),
    );
    ensure!(
        w1 > w0,
        "the object was not evicted and rebuilt: wakes {w0} -> {w1}"
    );
    ensure!(
        after["connections"] == 3,
        "sockets not kept across eviction: {after}"
    );
    ensure!(
        after["live_subscriptions"] == 1,
        "subscription not rebuilt: {after}"
    );

    // The raw socket's attachment survived: the shard still knows who it is.
    raw.send(&ClientMsg::Hello(Hello::default())).await?;
    loop {
        match within("welcome again", raw.recv()).await?? {
            Received::Msg(ServerMsg::Welcome(w)) => {
                ensure!(
                    w.conn == conn && w.seq == 3,
                    "attachment lost: was {conn}, now {w:?}"
                );
                break;
            }
            Received::Msg(_) => continue,
            other => bail!("expected welcome, got {other:?}"),
        }
    }
    Ok(())
}
