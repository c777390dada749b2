use anyhow::{ensure, Result};

use crate::support::{get_any, get_json};
use crate::Ctx;

/// Bad shard names are 400 BAD_SHARD_NAME, unknown paths 404 NOT_FOUND,
/// both in the JSON error shape; a valid shard answers its stats.
pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let long = "a".repeat(129);
    for bad in ["bad%20name", "sl%2Fash", long.as_str()] {
        let (status, body) = get_any(&ctx.dev.http(&format!("/v1/shards/{bad}/stats"))).await?;
        ensure!(status == 400, "{bad}: status {status}");
        ensure!(body["error"]["code"] == "BAD_SHARD_NAME", "{bad}: {body}");
        ensure!(body["error"]["message"].is_string(), "{bad}: {body}");
    }
    let (status, body) = get_any(&ctx.dev.http("/nope")).await?;
    ensure!(
        status == 404 && body["error"]["code"] == "NOT_FOUND",
        "{status} {body}"
    );
    let (status, body) = get_any(&ctx.dev.http("/v1/shards/ok/unknown-endpoint")).await?;
    ensure!(
        status == 404 && body["error"]["code"] == "NOT_FOUND",
        "{status} {body}"
    );

    let name = "Team:acme.room_1-b";
    let stats = get_json(&ctx.dev.http(&format!("/v1/shards/{name}/stats"))).await?;
    ensure!(stats["shard"] == name, "{stats}");
    for key in ["connections", "wakes", "seq", "storage_bytes"] {
        ensure!(stats[key].is_u64(), "stats.{key} missing: {stats}");
    }
    Ok(())
}
