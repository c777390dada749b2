//! Every answer and socket of a shard is bounded, written as an attacker
//! would try it (issue #12): big rows come back over HTTP in pages under
//! the answer budget, all of them reachable; presence bombs are refused
//! while small presence works and a joiner's `presence_state` stays under
//! the shard's total; inserts that collide with another tenant's hidden
//! rows learn nothing (no `ALREADY_EXISTS`, no SQLite text); a ping flood
//! is refused and then closed with 4429 while another socket on the shard
//! keeps being answered; and 2 MiB bodies are refused with 413 before the
//! shard has read them (with `Content-Length`, and chunked without).

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context, Result};
use futures_util::{SinkExt, StreamExt};
use pylon_workers::auth::jwt;
use pylon_workers::client::{ClientConfig, RawConnection, Received};
use pylon_workers::protocol::{ErrorCode, ServerMsg};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use super::auth::dev_secret;
use crate::support::{card, unique, within};
use crate::Ctx;

/// The answer budget (`query::limits::MAX_RESULT_BYTES`).
const BUDGET: usize = 1 << 20;
/// The default presence bounds (docs/protocol.md, "Limits").
const PRESENCE_MAX: usize = 16 * 1024;
const PRESENCE_TOTAL: usize = 512 * 1024;

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let port = ctx.dev.port;
    big_rows_come_in_pages(port).await.context("paging")?;
    presence_is_bounded(port).await.context("presence")?;
    hidden_rows_leak_nothing(port).await.context("oracles")?;
    big_bodies_are_refused_early(port).await.context("bodies")?;
    a_flood_is_closed(port).await.context("flood")?;
    Ok(())
}

/// POST a JSON body (optionally with a bearer token): status, the raw
/// body's length, and the body as JSON.
async fn post(url: &str, body: &Value, token: Option<&str>) -> Result<(u16, usize, Value)> {
    let mut req = reqwest::Client::new().post(url).json(body);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await?;
    Ok((status, bytes.len(), serde_json::from_slice(&bytes)?))
}

async fn big_rows_come_in_pages(port: u16) -> Result<()> {
    let shard = unique("pages");
    let base = format!("http://127.0.0.1:{port}/v1/shards/{shard}");
    let big = "x".repeat(900 * 1024);
    for i in 0..3 {
        let mut row = card(&format!("big{i}"), &big, i as f64);
        row["title"] = json!(big);
        let (status, _, body) = post(
            &format!("{base}/mutate"),
            &json!({"ops": [{"type": "insert", "entity": "Card", "row": row}]}),
            None,
        )
        .await?;
        ensure!(status == 200, "insert {i}: {status} {body}");
    }
    // Page by page, as a client would, each answer under the budget.
    let mut q = json!({"entity": "Card", "order": ["position"]});
    let mut seen = Vec::new();
    for page in 0.. {
        ensure!(page < 10, "paging does not end");
        let (status, len, body) = post(&format!("{base}/query"), &q, None).await?;
        ensure!(status == 200, "page {page}: {status}");
        ensure!(len <= BUDGET, "page {page} is {len} bytes");
        for r in body["rows"].as_array().context("rows")? {
            seen.push(r["id"].as_str().unwrap_or_default().to_owned());
            ensure!(
                r["title"].as_str().map(str::len) == Some(big.len()),
                "a row came back cut"
            );
        }
        match body["next"].as_str() {
            Some(next) => q["after"] = json!(next),
            None => break,
        }
    }
    ensure!(seen == ["big0", "big1", "big2"], "{seen:?}");
    Ok(())
}

async fn connect(port: u16, shard: &str) -> Result<RawConnection> {
    let config = ClientConfig::new(format!("ws://127.0.0.1:{port}"), shard);
    let mut raw = within("connect", RawConnection::connect(&config)).await??;
    within("welcome", raw.recv_welcome()).await??;
    Ok(raw)
}

/// Sets a presence and waits for its outcome: `Ok` on the sender's own
/// `presence_diff`, `Err(code)` on an `err`.
async fn set_presence(raw: &mut RawConnection, state: Value) -> Result<Result<(), ErrorCode>> {
    raw.send_text(json!({"type": "presence", "state": state}).to_string())
        .await?;
    let state = pylon_workers::value::Value::from(state);
    loop {
        match within("presence answer", raw.recv()).await?? {
            Received::Msg(ServerMsg::Err(e)) => return Ok(Err(e.code)),
            Received::Msg(ServerMsg::PresenceDiff(d))
                if d.joins.iter().chain(&d.updates).any(|m| m.state == state) =>
            {
                return Ok(Ok(()))
            }
            Received::Msg(_) => continue,
            other => bail!("expected the presence answer, got {other:?}"),
        }
    }
}

async fn ping(raw: &mut RawConnection, t: u64) -> Result<()> {
    raw.send_text(json!({"type": "ping", "t": t}).to_string())
        .await?;
    loop {
        match within("pong", raw.recv()).await?? {
            Received::Msg(ServerMsg::Pong(p)) if p.t == Some(t) => return Ok(()),
            Received::Msg(_) => continue,
            other => bail!("expected pong {t}, got {other:?}"),
        }
    }
}

/// `{"b":"…"}` of exactly `size` bytes of JSON.
fn blob(size: usize) -> Value {
    json!({"b": "p".repeat(size - 8)})
}

async fn presence_is_bounded(port: u16) -> Result<()> {
    let shard = unique("presence");
    let mut a = connect(port, &shard).await?;
    let small = json!({"name": "ann"});
    ensure!(set_presence(&mut a, small.clone()).await?.is_ok());
    // A 600 KiB presence (under the frame limit) is refused; ann keeps hers.
    let mut bomber = connect(port, &shard).await?;
    let got = set_presence(&mut bomber, blob(600 * 1024)).await?;
    ensure!(got == Err(ErrorCode::PresenceTooLarge), "{got:?}");
    let got = set_presence(&mut bomber, blob(PRESENCE_MAX + 1)).await?;
    ensure!(got == Err(ErrorCode::PresenceTooLarge), "{got:?}");
    // Many sockets at the per-connection maximum fill the shard's total;
    // then the next is refused.
    let mut fillers = Vec::new();
    let mut refused = false;
    for _ in 0..40 {
        let mut s = connect(port, &shard).await?;
        match set_presence(&mut s, blob(PRESENCE_MAX)).await? {
            Ok(()) => fillers.push(s),
            Err(ErrorCode::PresenceTooLarge) => {
                refused = true;
                break;
            }
            Err(other) => bail!("{other:?}"),
        }
    }
    ensure!(refused, "the shard's presence total was never reached");
    ensure!(
        fillers.len() == PRESENCE_TOTAL / PRESENCE_MAX - 1,
        "{} fillers",
        fillers.len()
    );
    // A small presence still fits; everyone else still works.
    ensure!(set_presence(&mut bomber, json!({"name": "bo"}))
        .await?
        .is_ok());
    ensure!(set_presence(&mut a, json!({"name": "ann", "away": true}))
        .await?
        .is_ok());
    // A joiner's presence_state holds everyone, within the total.
    let config = ClientConfig::new(format!("ws://127.0.0.1:{port}"), &shard);
    let mut joiner = within("connect", RawConnection::connect(&config)).await??;
    within("welcome", joiner.recv_welcome()).await??;
    let members = loop {
        match within("presence_state", joiner.recv()).await?? {
            Received::Msg(ServerMsg::PresenceState(p)) => break p.members,
            Received::Msg(_) => continue,
            other => bail!("expected presence_state, got {other:?}"),
        }
    };
    let bytes: usize = members
        .iter()
        .map(|m| {
            serde_json::to_string(&m.state)
                .map(|s| s.len())
                .unwrap_or(0)
        })
        .sum();
    ensure!(
        bytes <= PRESENCE_TOTAL,
        "presence_state holds {bytes} bytes"
    );
    ensure!(
        members.len() == fillers.len() + 2,
        "{} members",
        members.len()
    );
    ping(&mut a, 1).await?;
    Ok(())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn hidden_rows_leak_nothing(port: u16) -> Result<()> {
    let secret = dev_secret()?;
    let token = |sub: &str, tenant: &str| {
        jwt::sign_hs256(
            &json!({"sub": sub, "tenant": tenant, "roles": ["channelAdmin"],
                    "aud": "pylon-dev", "exp": now() + 600}),
            secret.as_bytes(),
        )
    };
    let (acme, evil) = (unique("acme"), unique("evil"));
    let ann = token("ann", &acme);
    let eve = token("eve", &evil);
    let shard = unique("oracle");
    let url = format!("http://127.0.0.1:{port}/v1/shards/{shard}");
    let slug = unique("acme-launch");
    let channel = |id: &str, slug: &str, tenant: &str| {
        json!({"ops": [{"type": "insert", "entity": "Channel", "row": {"id": id, "title": "t",
               "slug": slug, "tenantId": tenant, "createdAt": "2026-12-01T00:00:00Z"}}]})
    };
    let mutate = |body: Value, token: String| {
        let url = format!("{url}/mutate");
        async move { post(&url, &body, Some(&token)).await }
    };
    let (s, _, b) = mutate(channel("ch1", &slug, &acme), ann.clone()).await?;
    ensure!(s == 200, "ann's channel: {s} {b}");

    let leaks = |b: &Value| {
        let text = b.to_string();
        ["constraint", "UNIQUE", "SQLITE", "exists", &slug]
            .iter()
            .any(|w| text.contains(w))
    };
    // Eve, another tenant: the id and the slug of ann's hidden channel.
    let (s, _, by_id) = mutate(channel("ch1", &unique("x"), &evil), eve.clone()).await?;
    ensure!(
        s == 403 && by_id["error"]["code"] == "FORBIDDEN",
        "{s} {by_id}"
    );
    ensure!(!leaks(&by_id), "{by_id}");
    let (s, _, by_slug) = mutate(channel("ch2", &slug, &evil), eve.clone()).await?;
    ensure!(s == 403 && !leaks(&by_slug), "{s} {by_slug}");
    ensure!(
        by_id == by_slug,
        "the two refusals differ: {by_id} {by_slug}"
    );
    // Update and delete of the hidden row: like an id that does not exist.
    let update = |id: &str| {
        json!({"ops": [{"type": "update", "entity": "Channel", "id": id,
                                   "set": {"title": "mine"}}]})
    };
    let (s, _, hidden) = mutate(update("ch1"), eve.clone()).await?;
    let (s2, _, absent) = mutate(update("nope"), eve.clone()).await?;
    ensure!(s == 404 && s2 == 404, "{s} {hidden} / {s2} {absent}");
    ensure!(
        hidden["error"]["message"]
            .as_str()
            .map(|m| m.replace("ch1", "nope"))
            == absent["error"]["message"].as_str().map(str::to_owned),
        "{hidden} {absent}"
    );
    // Ann, who can read the row, is told what clashed, by field only.
    let (s, _, b) = mutate(channel("ch1", &unique("y"), &acme), ann.clone()).await?;
    ensure!(
        s == 409 && b["error"]["code"] == "ALREADY_EXISTS",
        "{s} {b}"
    );
    let (s, _, b) = mutate(channel("ch3", &slug, &acme), ann.clone()).await?;
    ensure!(
        s == 409 && b["error"]["code"] == "UNIQUE_VIOLATION",
        "{s} {b}"
    );
    let msg = b["error"]["message"].as_str().unwrap_or_default();
    ensure!(
        msg.contains("Channel.slug") && !msg.contains("constraint") && !msg.contains(&slug),
        "{msg}"
    );
    // Over a socket, eve gets the same refusal.
    let config = ClientConfig::new(format!("ws://127.0.0.1:{port}"), &shard).token(&eve);
    let mut raw = within("connect", RawConnection::connect(&config)).await??;
    within("welcome", raw.recv_welcome()).await??;
    let mut m = channel("ch4", &slug, &evil);
    m["type"] = json!("mut");
    m["op"] = json!("o1");
    raw.send_text(m.to_string()).await?;
    loop {
        match within("err", raw.recv()).await?? {
            Received::Msg(ServerMsg::Err(e)) => {
                ensure!(
                    e.code == ErrorCode::Forbidden && e.op.as_deref() == Some("o1"),
                    "{e:?}"
                );
                ensure!(
                    Some(e.message.as_str()) == by_id["error"]["message"].as_str(),
                    "{e:?}"
                );
                break;
            }
            Received::Msg(_) => continue,
            other => bail!("expected err, got {other:?}"),
        }
    }
    // And ann's channel is as she left it; eve sees none of it.
    let (_, _, b) = post(
        &format!("{url}/query"),
        &json!({"entity": "Channel"}),
        Some(&ann),
    )
    .await?;
    ensure!(
        b["rows"].as_array().map(Vec::len) == Some(1) && b["rows"][0]["slug"] == slug.as_str(),
        "{b}"
    );
    let (_, _, b) = post(
        &format!("{url}/query"),
        &json!({"entity": "Channel"}),
        Some(&eve),
    )
    .await?;
    ensure!(b["rows"].as_array().map(Vec::len) == Some(0), "{b}");
    Ok(())
}

async fn a_flood_is_closed(port: u16) -> Result<()> {
    let shard = unique("flood");
    let mut other = connect(port, &shard).await?;
    let mut req = format!("ws://127.0.0.1:{port}/v1/shards/{shard}/ws").into_client_request()?;
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "pylon.v1.json".parse()?);
    let (ws, _) = within("flood connect", tokio_tungstenite::connect_async(req)).await??;
    let (mut tx, mut rx) = ws.split();
    // Pings back to back, as fast as the socket takes them, until it closes
    // (or 3,000: the shard closes after about 400 (a burst's worth answered,
    // a burst's worth refused); what the client already sent then is
    // dropped unread, but the local runtime still receives it, and a larger
    // backlog slows the scenarios after this one for seconds).
    let sender = tokio::spawn(async move {
        let ping = json!({"type": "ping", "t": 0}).to_string();
        let mut sent = 0u32;
        while sent < 3_000 && tx.send(Message::text(ping.clone())).await.is_ok() {
            sent += 1;
        }
        sent
    });
    let (mut limited, mut pongs) = (0u32, 0u32);
    let mut checked_other = false;
    let code = loop {
        let msg = within("the flood's answers", rx.next()).await?;
        match msg {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(t.as_str())?;
                match v["type"].as_str() {
                    Some("pong") => pongs += 1,
                    Some("err") => {
                        ensure!(v["code"] == "RATE_LIMITED", "{v}");
                        ensure!(v.get("op").is_none() && v.get("sub").is_none(), "{v}");
                        limited += 1;
                    }
                    _ => {}
                }
                if limited == 1 && !checked_other {
                    // The shard still answers another socket mid-flood.
                    checked_other = true;
                    ping(&mut other, 7).await?;
                }
            }
            Some(Ok(Message::Close(c))) => break c.map(|c| u16::from(c.code)),
            Some(Ok(_)) => {}
            Some(Err(e)) => bail!("the flood socket failed before closing: {e}"),
            None => bail!("the flood socket ended without a close"),
        }
    };
    let sent = sender.await?;
    ensure!(
        code == Some(4429),
        "closed with {code:?} after {limited} refusals, {sent} sent"
    );
    ensure!(
        limited >= 200 && pongs >= 200,
        "{limited} refused, {pongs} answered"
    );
    ping(&mut other, 8).await?;
    eprintln!("flood: {sent} pings sent, {pongs} answered, {limited} refused, then 4429");
    settle(port).await
}

/// Waits until the dev server answers promptly again (it may still be
/// reading the flood's backlog), so the next scenario does not pay for it.
async fn settle(port: u16) -> Result<()> {
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/healthz");
    for _ in 0..100 {
        let started = std::time::Instant::now();
        let ok = http
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok && started.elapsed() < std::time::Duration::from_millis(200) {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    bail!("the dev server was still slow 20 s after the flood")
}

/// Sends a raw HTTP/1.1 request head and `body` (then nothing more: the
/// request is never finished) and returns the status line and the
/// response body, which must come while the request is still unfinished.
async fn post_partial(port: u16, head: &str, body: &[u8]) -> Result<(String, String)> {
    let s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let (mut r, mut w) = s.into_split();
    let mut out = head.as_bytes().to_vec();
    out.extend_from_slice(body);
    // Written beside the reading: a server that stops reading at its cap
    // leaves this write pending; the connection stays open meanwhile.
    let writer = tokio::spawn(async move {
        let _ = w.write_all(&out).await;
        std::future::pending::<()>().await;
        drop(w);
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let answer = async {
        loop {
            let n = r.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got);
            if let Some(end) = text.find("\r\n\r\n") {
                let len = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if got.len() >= end + 4 + len {
                    break;
                }
            }
        }
        anyhow::Ok(())
    };
    let answered = within("an answer before the body is complete", answer).await;
    writer.abort();
    answered??;
    let text = String::from_utf8_lossy(&got).into_owned();
    let status = text.lines().next().unwrap_or_default().to_owned();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

async fn big_bodies_are_refused_early(port: u16) -> Result<()> {
    let path = format!("/v1/shards/{}/mutate", unique("bodies"));
    // Declared 2 MiB: refused from the header; only 1 KiB is ever sent.
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        2 << 20
    );
    let (status, body) = post_partial(port, &head, &[b' '; 1024])
        .await
        .context("with Content-Length")?;
    ensure!(
        status.contains(" 413 ") && body.contains("FRAME_TOO_LARGE"),
        "{status} {body}"
    );
    // Chunked, no length: 1.5 MiB sent, never finished; refused at the cap.
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    );
    let mut chunks = Vec::new();
    for _ in 0..24 {
        chunks.extend_from_slice(format!("{:x}\r\n", 64 * 1024).as_bytes());
        chunks.extend_from_slice(&[b' '; 64 * 1024]);
        chunks.extend_from_slice(b"\r\n");
    }
    let (status, body) = post_partial(port, &head, &chunks)
        .await
        .context("chunked")?;
    ensure!(
        status.contains(" 413 ") && body.contains("FRAME_TOO_LARGE"),
        "{status} {body}"
    );
    Ok(())
}
