use anyhow::{ensure, Result};

use crate::support::unique;
use crate::support::ws::Ws;
use crate::Ctx;

/// Two clients on one shard see each other's messages; a client on another
/// shard does not.
pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let room = unique("room");
    let other = unique("other");
    let url = |s: &str| ctx.dev.ws(&format!("/v1/shards/{s}/ws"));
    let mut a = Ws::connect(&url(&room)).await?;
    let mut b = Ws::connect(&url(&room)).await?;
    let mut c = Ws::connect(&url(&other)).await?;
    let a_conn = a.recv_type("welcome").await?["conn"].clone();
    b.recv_type("welcome").await?;
    c.recv_type("welcome").await?;

    a.send_text("hello from a").await?;
    for (who, ws) in [("a", &mut a), ("b", &mut b)] {
        let m = ws.recv_type("echo").await?;
        ensure!(
            m["data"] == "hello from a" && m["from"] == a_conn,
            "{who} got {m}"
        );
    }
    // c's first echo must be its own message, not a's.
    c.send_text("hello from c").await?;
    let m = c.recv_type("echo").await?;
    ensure!(
        m["data"] == "hello from c",
        "the other shard's client got {m}"
    );
    Ok(())
}
