use anyhow::{ensure, Result};

use crate::support::ws::Ws;
use crate::support::{get_json, unique};
use crate::Ctx;

/// kill -9 of wrangler dev, start again on the same persist dir: the
/// shard's stored state (seq, wakes, the connection id counter) is all there.
pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let shard = unique("restart");
    let mut ws = Ws::connect(&ctx.dev.ws(&format!("/v1/shards/{shard}/ws"))).await?;
    ws.recv_type("welcome").await?;
    for i in 0..3 {
        ws.send_text(&format!("m{i}")).await?;
        ws.recv_type("echo").await?;
    }
    let before = get_json(&ctx.dev.http(&format!("/v1/shards/{shard}/stats"))).await?;
    ensure!(before["seq"] == 3, "{before}");

    ctx.restart().await?;

    let after = get_json(&ctx.dev.http(&format!("/v1/shards/{shard}/stats"))).await?;
    ensure!(after["seq"] == 3, "seq lost in the restart: {after}");
    ensure!(
        after["wakes"].as_u64() > before["wakes"].as_u64(),
        "wakes did not survive or grow: {before} -> {after}"
    );
    let mut ws = Ws::connect(&ctx.dev.ws(&format!("/v1/shards/{shard}/ws"))).await?;
    let welcome = ws.recv_type("welcome").await?;
    ensure!(
        welcome["conn"] == "c2",
        "connection ids restarted: {welcome}"
    );
    ensure!(welcome["seq"] == 3, "{welcome}");
    Ok(())
}
