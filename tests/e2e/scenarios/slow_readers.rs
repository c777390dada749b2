//! A socket that stops reading is contained (issue #18): a raw socket
//! subscribes and then is never polled again while about 3 MiB of diffs
//! go out; the shard closes it with 4408 (too far behind) once the send
//! window (1 MiB) is unreceipted, while a reading socket, which sends
//! receipts as it reads, gets every diff and stays open. Then a socket
//! that floods bad receipts is closed with 4429 (they take the rate like
//! any frame) while the reader is still served. The JSON `welcome`
//! announces the window (1 MiB).

use std::time::Duration;

use anyhow::{bail, ensure, Result};
use pylon_workers::client::{ClientConfig, RawConnection, Received};
use pylon_workers::protocol::{close, ClientMsg, Encoding, ErrorCode, ServerMsg, Sub};
use serde_json::json;

use crate::support::{card, get_json, post, unique, within};
use crate::Ctx;

/// Writes, each a card of [`ROW_BYTES`]: 3 MiB in all.
const WRITES: usize = 48;
const ROW_BYTES: usize = 64 * 1024;

async fn subscribed(port: u16, shard: &str, enc: Encoding) -> Result<RawConnection> {
    let config = ClientConfig::new(format!("ws://127.0.0.1:{port}"), shard).encoding(enc);
    let mut raw = within("raw connect", RawConnection::connect(&config)).await??;
    let welcome = within("welcome", raw.recv_welcome()).await??;
    // The window is announced in JSON (clients receipt each quarter of it);
    // postcard's `welcome` has no room for a new field.
    let want = (enc == Encoding::Json).then_some(1u64 << 20);
    ensure!(welcome.window == want, "{enc:?} welcome: {welcome:?}");
    let sub = Sub {
        id: "s".into(),
        entity: "Card".into(),
        ..Default::default()
    };
    raw.send(&ClientMsg::Sub(sub)).await?;
    loop {
        match within("the snap", raw.recv_msg()).await?? {
            ServerMsg::Snap(_) => return Ok(raw),
            _ => continue,
        }
    }
}

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let port = ctx.dev.port;
    let shard = unique("slow");
    let mutate = ctx.dev.http(&format!("/v1/shards/{shard}/mutate"));
    let stats = ctx.dev.http(&format!("/v1/shards/{shard}/stats"));

    let stalled = subscribed(port, &shard, Encoding::Json).await?;
    let mut reader = subscribed(port, &shard, Encoding::Postcard).await?;
    // The reader reads (and receipts) all along, in its own task.
    let reading = tokio::spawn(async move {
        let mut rows = 0;
        while rows < WRITES {
            match within("a diff", reader.recv()).await?? {
                Received::Msg(ServerMsg::Diff(d)) => rows += d.added.len(),
                Received::Msg(_) => {}
                other => bail!("the reader got {other:?} after {rows} rows"),
            }
        }
        Ok::<_, anyhow::Error>(reader)
    });

    let title = "x".repeat(ROW_BYTES);
    for i in 0..WRITES {
        let row = card(&format!("big-{i}"), &title, i as f64);
        let body = json!({"op": format!("slow-{i}"), "ops": [{"type": "insert", "entity": "Card", "row": row}]});
        let (status, got) = post(&mutate, &body).await?;
        ensure!(status == 200, "write {i}: {status} {got}");
    }
    let mut reader = within("the reader's diffs", reading).await???;

    // Now the stalled socket reads what was queued for it: at most the
    // window and one frame, then the close.
    let mut stalled = stalled;
    let mut queued = 0;
    let code = loop {
        match within("the stalled socket's close", stalled.recv()).await?? {
            Received::Msg(ServerMsg::Diff(d)) => queued += d.added.len(),
            Received::Msg(_) | Received::KeepaliveAck | Received::Undecodable(_) => {}
            Received::Closed { code, .. } => break code,
            other => bail!("stalled socket: {other:?}"),
        }
    };
    ensure!(
        code == Some(close::BEHIND),
        "the stalled socket closed with {code:?}, not 4408"
    );
    ensure!(
        queued < WRITES,
        "the stalled socket was sent all {queued} rows"
    );

    // The reader is still open and served.
    reader.send(&ClientMsg::Ping(Default::default())).await?;
    loop {
        match within("pong", reader.recv()).await?? {
            Received::Msg(ServerMsg::Pong(_)) => break,
            Received::Msg(_) => continue,
            other => bail!("the reader after the writes: {other:?}"),
        }
    }
    bad_receipts_are_closed(port, &shard).await?;
    // The reader is still served after the flood beside it.
    reader.send(&ClientMsg::Ping(Default::default())).await?;
    loop {
        match within("pong after the flood", reader.recv()).await?? {
            Received::Msg(ServerMsg::Pong(_)) => break,
            Received::Msg(_) => continue,
            other => bail!("the reader after the flood: {other:?}"),
        }
    }
    let s = get_json(&stats).await?;
    ensure!(
        s["send_window"]["behind_closes"] == 1,
        "stats: {}",
        s["send_window"]
    );
    ensure!(s["connections"] == 1, "connections: {}", s["connections"]);
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}

/// A socket that keeps sending bad receipts: each takes a token of its
/// rate like any frame (answered `BAD_MESSAGE` within it, `RATE_LIMITED`
/// beyond), and the burst's worth of refusals close it with 4429.
async fn bad_receipts_are_closed(port: u16, shard: &str) -> Result<()> {
    let config = ClientConfig::new(format!("ws://127.0.0.1:{port}"), shard);
    let mut bad = within("raw connect", RawConnection::connect(&config)).await??;
    within("welcome", bad.recv_welcome()).await??;
    for _ in 0..600 {
        if bad
            .send_text(r#"{"type":"recv","bytes":"lots"}"#)
            .await
            .is_err()
        {
            break;
        }
    }
    let (mut bad_message, mut rate_limited) = (0, 0);
    let code = loop {
        match within("the bad receipts' close", bad.recv()).await?? {
            Received::Msg(ServerMsg::Err(e)) if e.code == ErrorCode::BadMessage => bad_message += 1,
            Received::Msg(ServerMsg::Err(e)) if e.code == ErrorCode::RateLimited => {
                rate_limited += 1
            }
            Received::Msg(_) | Received::KeepaliveAck => {}
            Received::Closed { code, .. } => break code,
            other => bail!("bad receipts: {other:?}"),
        }
    };
    ensure!(
        code == Some(close::RATE_LIMITED) && bad_message > 0 && rate_limited > 0,
        "bad receipts: close {code:?} after {bad_message} BAD_MESSAGE, {rate_limited} RATE_LIMITED"
    );
    Ok(())
}
