use anyhow::{bail, ensure, Result};
use pylon_workers::client::{ClientConfig, RawConnection, Received};
use pylon_workers::protocol::{Encoding, ErrorCode, ServerMsg};
use serde_json::json;

use crate::support::{card, cards, client, ids, post, unique, wait_rows, within};
use crate::Ctx;

async fn next_err(raw: &mut RawConnection) -> Result<(ErrorCode, Option<String>, Option<String>)> {
    loop {
        match within("an err", raw.recv()).await?? {
            Received::Msg(ServerMsg::Err(e)) => return Ok((e.code, e.sub, e.op)),
            Received::Msg(_) => continue,
            other => bail!("expected an err, got {other:?}"),
        }
    }
}

/// Malformed frames, unknown types, unknown entities, wrong types and an
/// oversized frame each get their typed error; only the oversized frame
/// closes its socket (1009); everyone else keeps being served and nothing
/// stored is lost.
pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let shard = unique("bad");
    let port = ctx.dev.port;
    let good = client(port, &shard, Encoding::Json).await?;
    let mut watched = good.subscribe(cards()).await?;
    good.mutate(vec![pylon_workers::protocol::Op::Insert {
        entity: "Card".into(),
        row: serde_json::from_value(card("keep", "kept", 1.0))?,
    }])
    .await?;

    let config = ClientConfig::new(format!("ws://127.0.0.1:{port}"), &shard);
    let mut raw = within("raw connect", RawConnection::connect(&config)).await??;
    within("welcome", raw.recv_welcome()).await??;
    let cases = [
        ("{not json".to_owned(), ErrorCode::BadFrame),
        (json!({"type": "launch"}).to_string(), ErrorCode::UnknownType),
        (json!({"type": "sub", "id": "s1", "entity": "Nope"}).to_string(), ErrorCode::UnknownEntity),
        (json!({"type": "sub", "id": "s2", "entity": "Card", "where": {"nope": 1}}).to_string(), ErrorCode::UnknownField),
        (json!({"type": "mut", "op": "o1", "ops": [{"type": "insert", "entity": "Card",
            "row": {"id": "x", "title": 5, "done": false, "position": 1, "createdAt": "2026-11-23T00:00:00Z"}}]}).to_string(),
            ErrorCode::TypeMismatch),
        (json!({"type": "mut", "op": "o2", "ops": [{"type": "delete", "entity": "Card", "id": "absent"}]}).to_string(),
            ErrorCode::NotFound),
    ];
    for (frame, want) in cases {
        raw.send_text(&frame).await?;
        let (code, sub, op) = next_err(&mut raw).await?;
        ensure!(code == want, "{frame}: got {code:?}, want {want:?}");
        if frame.contains("\"s1\"") {
            ensure!(
                sub.as_deref() == Some("s1"),
                "err does not name the subscription: {sub:?}"
            );
        }
        if frame.contains("\"o2\"") {
            ensure!(
                op.as_deref() == Some("o2"),
                "err does not name the op: {op:?}"
            );
        }
    }
    // Still open after all of that.
    raw.send_text(&json!({"type": "ping", "t": 7}).to_string())
        .await?;
    loop {
        match within("pong", raw.recv()).await?? {
            Received::Msg(ServerMsg::Pong(p)) if p.t == Some(7) => break,
            Received::Msg(_) => continue,
            other => bail!("expected pong, got {other:?}"),
        }
    }
    // 2 MiB is over the 1 MiB frame limit: err, then close 1009.
    raw.send_text(&format!(
        r#"{{"type":"ping","pad":"{}"}}"#,
        "x".repeat(2 << 20)
    ))
    .await?;
    let mut closed = None;
    for _ in 0..5 {
        match within("close after a huge frame", raw.recv()).await?? {
            Received::Closed { code, .. } => {
                closed = Some(code);
                break;
            }
            _ => continue,
        }
    }
    ensure!(
        closed == Some(Some(1009)),
        "expected close 1009, got {closed:?}"
    );

    // A huge HTTP body is refused with its code, and the bad ones stored nothing.
    let url = format!("http://127.0.0.1:{port}/v1/shards/{shard}/mutate");
    let (status, body) = post(&url, &json!({"ops": [], "pad": "x".repeat(2 << 20)})).await?;
    ensure!(
        status == 413 && body["error"]["code"] == "FRAME_TOO_LARGE",
        "{status} {body}"
    );
    let (status, body) = post(
        &url,
        &json!({"ops": [{"type": "insert", "entity": "Ghost", "row": {}}]}),
    )
    .await?;
    ensure!(
        status == 400 && body["error"]["code"] == "UNKNOWN_ENTITY",
        "{status} {body}"
    );

    good.mutate(vec![pylon_workers::protocol::Op::Insert {
        entity: "Card".into(),
        row: serde_json::from_value(card("after", "still served", 2.0))?,
    }])
    .await?;
    let v = wait_rows(&mut watched, "the good client's next diff", |v| {
        v.rows.len() == 2
    })
    .await?;
    ensure!(ids(&v) == ["keep", "after"], "{:?}", ids(&v));
    Ok(())
}
