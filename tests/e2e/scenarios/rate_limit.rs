//! Rate limits at the edge, on a second wrangler dev with the
//! `limits-test` environment (wrangler.toml: 15 requests per user and 40
//! per client address per 10 s, 5 WebSocket messages per second per
//! connection): a user over the limit gets 429 RATE_LIMITED (USER_RATE)
//! with Retry-After over HTTP and at the upgrade while another user is
//! still served; the address over its limit gets CLIENT_RATE; a socket
//! sending too fast gets `err RATE_LIMITED`; so does a user whose sockets
//! on two shards together send more than 8 messages per 10 s.
//!
//! The bindings count in windows aligned to the clock (10 s), so the
//! scenario starts at the beginning of one — a wait that is the point.
//! Its wrangler dev is its own, so it runs beside the other scenarios
//! (`start`, joined by `finish`), and its waits cost the suite nothing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Result};
use pylon_workers::auth::jwt;
use pylon_workers::client::{ClientConfig, RawConnection, Received};
use pylon_workers::protocol::{ErrorCode, ServerMsg};
use serde_json::{json, Value};

use super::auth::dev_secret;
use crate::support::wrangler_dev::DevOptions;
use crate::support::{unique, within};
use crate::Ctx;

/// Sleeps until the next 10 s window starts (plus a little).
async fn next_window() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let into = now.as_millis() % 10_000;
    tokio::time::sleep(Duration::from_millis((10_000 - into) as u64 + 150)).await;
}

async fn query(url: &str, token: Option<&str>) -> Result<(u16, Value, Option<String>)> {
    let req = reqwest::Client::new()
        .post(url)
        .json(&json!({"entity": "Card"}));
    send(req, token).await
}

/// Status, JSON body and `Retry-After` of a request.
async fn send(
    mut req: reqwest::RequestBuilder,
    token: Option<&str>,
) -> Result<(u16, Value, Option<String>)> {
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((status, resp.json().await?, retry))
}

fn limited(got: &(u16, Value, Option<String>), reason: &str) -> bool {
    got.0 == 429
        && got.1["error"]["code"] == "RATE_LIMITED"
        && got.1["error"]["reason"] == reason
        && got.2.as_deref() == Some("10")
}

pub async fn start(ctx: &mut Ctx) -> Result<()> {
    let options = ctx.wrangler().env("limits-test");
    let dir = ctx.dir.join("limits");
    let handle = tokio::spawn(async move { scenario(options, dir).await });
    ctx.background.push(("rate_limit", handle));
    Ok(())
}

pub async fn finish(ctx: &mut Ctx) -> Result<()> {
    ctx.join("rate_limit").await
}

async fn scenario(options: DevOptions, dir: std::path::PathBuf) -> Result<()> {
    let dev = options.start(&dir).await?;
    let secret = dev_secret()?;
    let exp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() + 600;
    let token = |sub: &str| {
        jwt::sign_hs256(
            &json!({"sub": sub, "aud": "pylon-dev", "exp": exp}),
            secret.as_bytes(),
        )
    };
    let (ann, bob) = (token(&unique("ann")), token(&unique("bob")));
    let url = dev.http(&format!("/v1/shards/{}/query", unique("room")));

    next_window().await;
    // 15 per user: the 16th is refused, across shards too.
    for i in 0..15 {
        let got = query(&url, Some(&ann)).await?;
        ensure!(got.0 == 200, "request {i} of ann: {} {}", got.0, got.1);
    }
    let other_shard = dev.http(&format!("/v1/shards/{}/query", unique("room")));
    let got = query(&other_shard, Some(&ann)).await?;
    ensure!(limited(&got, "USER_RATE"), "ann's 16th: {got:?}");
    // The upgrade is a request too: refused before a socket opens.
    let resp = reqwest::Client::new()
        .get(dev.http(&format!("/v1/shards/{}/ws", unique("room"))))
        .header("Upgrade", "websocket")
        .header(
            "Sec-WebSocket-Protocol",
            format!("pylon.v1.json, bearer.{ann}"),
        )
        .send()
        .await?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await?;
    ensure!(
        status == 429 && body["error"]["reason"] == "USER_RATE",
        "ann's upgrade: {status} {body}"
    );
    // Another user from the same address is still served.
    let got = query(&url, Some(&bob)).await?;
    ensure!(got.0 == 200, "bob: {got:?}");
    // 40 per address: anonymous requests run into the client limit
    // (18 requests so far in this window).
    let mut refused_at = None;
    for i in 0..30 {
        let got = query(&url, None).await?;
        if got.0 == 429 {
            ensure!(limited(&got, "CLIENT_RATE"), "anonymous {i}: {got:?}");
            refused_at = Some(i);
            break;
        }
        ensure!(got.0 == 200, "anonymous {i}: {got:?}");
    }
    match refused_at {
        Some(i) if i >= 20 => {}
        other => bail!("the client limit refused at {other:?}, expected after 22 requests"),
    }
    // Every route counts, `alive` (answered before the object opens) too.
    let alive = url.replace("/query", "/alive");
    let got = send(reqwest::Client::new().get(&alive), None).await?;
    ensure!(
        limited(&got, "CLIENT_RATE"),
        "alive over the limit: {got:?}"
    );

    // Messages on an open socket: the shard's per-connection limiter.
    next_window().await;
    let config = ClientConfig::new(format!("ws://127.0.0.1:{}", dev.port), unique("room"));
    let mut raw = within("connect", RawConnection::connect(&config)).await??;
    within("welcome", raw.recv_welcome()).await??;
    for t in 0..12 {
        raw.send_text(json!({"type": "ping", "t": t}).to_string())
            .await?;
    }
    loop {
        match within("err RATE_LIMITED", raw.recv()).await?? {
            Received::Msg(ServerMsg::Err(e)) => {
                ensure!(e.code == ErrorCode::RateLimited, "{e:?}");
                break;
            }
            Received::Msg(_) => continue,
            other => bail!("expected err RATE_LIMITED, got {other:?}"),
        }
    }

    // Messages per user across sockets and shards (8 per 10 s here): each
    // socket stays under its own limit, together they exceed the user's.
    next_window().await;
    let carol = token(&unique("carol"));
    let open = |shard: String| {
        let config = ClientConfig::new(format!("ws://127.0.0.1:{}", dev.port), shard).token(&carol);
        async move {
            let mut raw = within("connect", RawConnection::connect(&config)).await??;
            within("welcome", raw.recv_welcome()).await??;
            anyhow::Ok(raw)
        }
    };
    let mut a = open(unique("room")).await?;
    let mut b = open(unique("room")).await?;
    for t in 0..5 {
        ensure!(
            ping(&mut a, t).await?.is_none(),
            "socket a, ping {t}: refused early"
        );
    }
    let mut refused = None;
    for t in 0..8 {
        if let Some(message) = ping(&mut b, t).await? {
            ensure!(message.contains("user"), "socket b: {message}");
            refused = Some(t);
            break;
        }
    }
    ensure!(
        matches!(refused, Some(t) if t >= 3),
        "the user's 8 messages per 10 s were not enforced across sockets: {refused:?}"
    );
    // The other shard learns it from its next counted message.
    let mut refused_a = false;
    for t in 5..8 {
        if ping(&mut a, t).await?.is_some() {
            refused_a = true;
            break;
        }
    }
    ensure!(refused_a, "socket a on another shard kept being served");
    drop(dev);
    Ok(())
}

/// Sends a ping and waits for its pong (`None`) or an `err RATE_LIMITED`
/// (its message); paced under the per-connection rate (5/s).
async fn ping(raw: &mut RawConnection, t: i64) -> Result<Option<String>> {
    tokio::time::sleep(Duration::from_millis(250)).await;
    raw.send_text(json!({"type": "ping", "t": t}).to_string())
        .await?;
    loop {
        match within("pong or err", raw.recv()).await?? {
            Received::Msg(ServerMsg::Pong(_)) => return Ok(None),
            Received::Msg(ServerMsg::Err(e)) => {
                ensure!(e.code == ErrorCode::RateLimited, "{e:?}");
                return Ok(Some(e.message));
            }
            Received::Msg(_) => continue,
            other => bail!("expected pong or err, got {other:?}"),
        }
    }
}
