//! An app's own Durable Object kind through the router: the board's
//! `Tally` at `/v1/objects/Tally/{name}` (examples/board/src/tally.rs).
//! Requests and a WebSocket reach the named object with the caller the
//! router verified; the shard rules apply to its name; unknown kinds, bad
//! names and bad bodies get typed errors. (Its state across a `kill -9`
//! is checked by the `restart` scenario.)

use anyhow::{bail, ensure, Context, Result};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{get_any, get_json, post, unique, within};
use crate::Ctx;

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let name = unique("votes");
    let url = ctx.dev.http(&format!("/v1/objects/Tally/{name}"));
    ensure!(
        get_json(&url).await?["total"] == 0,
        "a new tally starts at 0"
    );

    let mut req = ctx
        .dev
        .ws(&format!("/v1/objects/Tally/{name}/ws"))
        .into_client_request()?;
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "pylon.v1.json".parse()?);
    let (mut ws, resp) = within("connect", tokio_tungstenite::connect_async(req)).await??;
    ensure!(
        resp.headers()
            .get("Sec-WebSocket-Protocol")
            .map(|v| v.as_bytes())
            == Some(b"pylon.v1.json"),
        "subprotocol not echoed: {:?}",
        resp.headers()
    );
    ensure!(next_total(&mut ws).await? == 0, "the total on connect");

    let (status, body) = post(&url, &json!({"by": 2})).await?;
    ensure!(status == 200 && body["total"] == 2, "{status} {body}");
    ensure!(
        next_total(&mut ws).await? == 2,
        "the socket hears of the vote"
    );
    let (status, body) = post(&url, &json!({"by": "two"})).await?;
    ensure!(
        status == 400 && body["error"]["code"] == "BAD_REQUEST",
        "{status} {body}"
    );
    let stats = get_json(&format!("{url}/stats")).await?;
    ensure!(stats["total"] == 2 && stats["connections"] == 1, "{stats}");

    for (path, want_status, want_code) in [
        ("/v1/objects/Nope/x", 404, "NOT_FOUND"),
        ("/v1/sims/nope/x", 404, "NOT_FOUND"),
        ("/v1/objects/Tally/bad%20name", 400, "BAD_SHARD_NAME"),
        // Shard rules apply to the names of every kind: team:* is its tenant's.
        ("/v1/objects/Tally/team:acme", 401, "UNAUTHORIZED"),
    ] {
        let (status, body) = get_any(&ctx.dev.http(path)).await?;
        ensure!(
            status == want_status && body["error"]["code"] == want_code,
            "{path}: {status} {body}"
        );
    }
    // Another tenant's token: refused like the shard itself refuses it, on
    // an app kind and on a simulation kind alike; the tenant's own passes.
    let secret = super::auth::dev_secret()?;
    let (acme, evil) = (unique("acme"), unique("evil"));
    let evil_t = super::cold_access::token(&secret, "eve", json!({"tenant": evil}));
    let acme_t = super::cold_access::token(&secret, "ann", json!({"tenant": acme}));
    let client = reqwest::Client::new();
    for path in [
        format!("/v1/objects/Tally/team:{acme}"),
        format!("/v1/sims/counter/team:{acme}"),
    ] {
        let url = ctx.dev.http(&path);
        let r = client.get(&url).bearer_auth(&evil_t).send().await?;
        let status = r.status().as_u16();
        let body: Value = r.json().await?;
        ensure!(
            status == 403 && body["error"]["reason"] == "SHARD_DENIED",
            "{path} as another tenant: {status} {body}"
        );
        let r = client.get(&url).bearer_auth(&acme_t).send().await?;
        ensure!(r.status() == 200, "{path} as its tenant: {}", r.status());
    }
    Ok(())
}

/// The next `{"type":"total"}` frame's total.
async fn next_total<S>(ws: &mut S) -> Result<Value>
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        match within("a total", ws.next())
            .await?
            .context("socket ended")??
        {
            Message::Text(t) => return Ok(serde_json::from_str::<Value>(&t)?["total"].clone()),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => bail!("unexpected frame {other:?}"),
        }
    }
}
