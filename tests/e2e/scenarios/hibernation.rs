use std::time::Duration;

use anyhow::{ensure, Result};

use crate::support::ws::Ws;
use crate::support::{get_json, unique};
use crate::Ctx;

/// Locally, workerd evicts an object after ~10 s with no events.
pub const IDLE_FOR_EVICTION: Duration = Duration::from_secs(13);

/// With a socket open, the shard idles until it is evicted; the next
/// message wakes a new instance (`wakes` went up), the socket is still open
/// and its attachment (the connection id) is intact.
pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let shard = unique("hib");
    let mut ws = Ws::connect(&ctx.dev.ws(&format!("/v1/shards/{shard}/ws"))).await?;
    let conn = ws.recv_type("welcome").await?["conn"].clone();
    let before = get_json(&ctx.dev.http(&format!("/v1/shards/{shard}/stats"))).await?;

    // The wait is the point: nothing may happen while the object goes idle.
    tokio::time::sleep(IDLE_FOR_EVICTION).await;

    ws.send_text("after the nap").await?;
    let m = ws.recv_type("echo").await?;
    ensure!(m["data"] == "after the nap", "{m}");
    ensure!(
        m["from"] == conn,
        "attachment lost: conn was {conn}, echo says {}",
        m["from"]
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
        after["connections"] == 1,
        "socket not kept across eviction: {after}"
    );
    ensure!(
        after["seq"] == before["seq"].as_u64().unwrap_or(0) + 1,
        "seq: {before} -> {after}"
    );
    Ok(())
}
