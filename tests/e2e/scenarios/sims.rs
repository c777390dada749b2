//! Simulation shards under `wrangler dev`: the library's event-driven
//! `counter` kind (docs/sims.md), exported by the board, at
//! `/v1/sims/counter/{id}`. Two sockets and HTTP send inputs; each socket
//! gets its own snapshots (its own `acked`), inputs are acknowledged,
//! duplicates are not applied twice, bad input is refused while the shard
//! goes on (an oversized input, a flood closed with 4429), the input log
//! is readable as a replay, and an idle shard has no alarm. (Its state across an eviction and a `kill -9` is checked by
//! the `hibernation` and `restart` scenarios.)

use anyhow::{bail, ensure, Context, Result};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::support::{get_any, get_json, post, unique, within};
use crate::Ctx;

pub type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// A `pylon.sim.v1` socket in JSON.
pub async fn open(ctx: &Ctx, path: &str) -> Result<Ws> {
    let mut req = ctx.dev.ws(path).into_client_request()?;
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "pylon.v1.json".parse()?);
    let (ws, _) = within("connect", tokio_tungstenite::connect_async(req)).await??;
    Ok(ws)
}

/// The next message (text frames only).
pub async fn next(ws: &mut Ws) -> Result<Value> {
    loop {
        match within("a sim message", ws.next())
            .await?
            .context("socket ended")??
        {
            Message::Text(t) => return Ok(serde_json::from_str(&t)?),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => bail!("unexpected frame {other:?}"),
        }
    }
}

/// Messages until one of `kind` (returned).
async fn until(ws: &mut Ws, kind: &str) -> Result<Value> {
    for _ in 0..20 {
        let m = next(ws).await?;
        if m["type"] == kind {
            return Ok(m);
        }
    }
    bail!("no {kind} in 20 messages")
}

async fn send(ws: &mut Ws, msg: Value) -> Result<()> {
    ws.send(Message::text(msg.to_string())).await?;
    Ok(())
}

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let id = unique("count");
    let url = ctx.dev.http(&format!("/v1/sims/counter/{id}"));
    let stats = get_json(&url).await?;
    ensure!(stats["total"] == 0 && stats["kind"] == "counter", "{stats}");

    let mut a = open(ctx, &format!("/v1/sims/counter/{id}/ws")).await?;
    let welcome = next(&mut a).await?;
    ensure!(
        welcome["type"] == "sim_welcome" && welcome["protocol"] == "pylon.sim.v1",
        "{welcome}"
    );
    let first = until(&mut a, "sim_snapshot").await?;
    ensure!(first["total"] == 0, "{first}");

    send(
        &mut a,
        json!({"type": "sim_input", "seq": 1, "input": {"add": 5}}),
    )
    .await?;
    let ack = until(&mut a, "sim_ack").await?;
    ensure!(ack["seq"] == 1 && ack["dup"] != true, "{ack}");
    let snap = until(&mut a, "sim_snapshot").await?;
    ensure!(snap["total"] == 5 && snap["acked"] == 1, "{snap}");

    // A duplicate seq is acknowledged, not applied again; a bad input is
    // refused and the socket stays.
    send(
        &mut a,
        json!({"type": "sim_input", "seq": 1, "input": {"add": 5}}),
    )
    .await?;
    let dup = until(&mut a, "sim_ack").await?;
    ensure!(dup["dup"] == true, "{dup}");
    send(
        &mut a,
        json!({"type": "sim_input", "seq": 2, "input": {"add": 0}}),
    )
    .await?;
    let err = until(&mut a, "sim_err").await?;
    ensure!(err["code"] == "BAD_INPUT", "{err}");

    // A second subscriber, and an input over HTTP: each socket's snapshot
    // carries its own acked seq.
    let mut b = open(ctx, &format!("/v1/sims/counter/{id}/ws")).await?;
    let b_first = until(&mut b, "sim_snapshot").await?;
    ensure!(b_first["total"] == 5 && b_first["acked"] == 0, "{b_first}");
    let (status, body) = post(&url, &json!({"add": 3})).await?;
    ensure!(status == 200, "{status} {body}");
    let (a_snap, b_snap) = (
        until(&mut a, "sim_snapshot").await?,
        until(&mut b, "sim_snapshot").await?,
    );
    ensure!(a_snap["total"] == 8 && a_snap["acked"] == 1, "{a_snap}");
    ensure!(b_snap["total"] == 8 && b_snap["acked"] == 0, "{b_snap}");

    for bad in [json!({"add": 1001}), json!({"sub": 1}), json!("x")] {
        let (status, body) = post(&url, &bad).await?;
        ensure!(
            status == 400 && body["error"]["code"] == "BAD_INPUT",
            "{bad}: {status} {body}"
        );
    }
    let stats = get_json(&url).await?;
    ensure!(
        stats["total"] == 8 && stats["subscribers"] == 2 && stats["alarm_pending"] == false,
        "an event-driven counter with nothing to do has no alarm: {stats}"
    );
    // Oversized input over HTTP: the host refuses the body before the
    // kind reads it (the kind's max_input_bytes is its body cap).
    let big = json!({"add": 1, "pad": "x".repeat(20_000)});
    let (status, body) = post(&url, &big).await?;
    ensure!(
        status == 413 && body["error"]["code"] == "FRAME_TOO_LARGE",
        "{status} {body}"
    );
    // A flood on one socket: refused before decoding, then closed with
    // 4429; the other socket is still served.
    let mut flood = open(ctx, &format!("/v1/sims/counter/{id}/ws")).await?;
    let frames: Vec<Message> = (0..600)
        .map(|_| Message::text(r#"{"type":"sim_input","seq":0,"input":{"add":1}}"#))
        .collect();
    for f in frames {
        if flood.send(f).await.is_err() {
            break;
        }
    }
    let mut rate_limited = 0;
    let closed = loop {
        match within("the flood's answers", flood.next()).await? {
            Some(Ok(Message::Text(t))) => {
                if serde_json::from_str::<Value>(&t)?["code"] == "RATE_LIMITED" {
                    rate_limited += 1;
                }
            }
            Some(Ok(Message::Close(c))) => break c.map(|c| u16::from(c.code)),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break None,
        }
    };
    ensure!(
        closed == Some(4429) && rate_limited > 0,
        "flood: close {closed:?} after {rate_limited} RATE_LIMITED"
    );
    let (status, body) = post(&url, &json!({"add": 2})).await?;
    ensure!(status == 200, "{status} {body}");
    let a_snap = until(&mut a, "sim_snapshot").await?;
    ensure!(a_snap["total"] == 10, "the others are served: {a_snap}");

    let (status, replay) = get_any(&format!("{url}/replay")).await?;
    ensure!(status == 200, "{status} {replay}");
    ensure!(
        replay.to_string().contains("\"add\":5") && replay.to_string().contains("\"add\":3"),
        "the replay log holds the inputs: {replay}"
    );
    Ok(())
}
