//! `hello` with a token on an open WebSocket: verified by the shard with
//! the router's code (HS256 and JWKS). The same caller gets a `welcome`; an
//! invalid token, another user, or the same user with other roles gets an
//! `err` and the connection keeps its identity (docs/protocol.md, `hello`).

use anyhow::{bail, ensure, Result};
use pylon_workers::auth::jwt;
use pylon_workers::auth::sign::sign_rs256;
use pylon_workers::client::{ClientConfig, RawConnection, Received};
use pylon_workers::protocol::{ErrorCode, ServerMsg};
use serde_json::{json, Value};

use super::auth::dev_secret;
use crate::support::jwks::TestKeys;
use crate::support::{unique, within};
use crate::Ctx;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The next `welcome` or `err` (skipping anything else).
async fn answer(raw: &mut RawConnection) -> Result<std::result::Result<(), (ErrorCode, String)>> {
    loop {
        match within("an answer", raw.recv()).await?? {
            Received::Msg(ServerMsg::Welcome(_)) => return Ok(Ok(())),
            Received::Msg(ServerMsg::Err(e)) => return Ok(Err((e.code, e.message))),
            Received::Msg(_) => continue,
            other => bail!("expected welcome or err, got {other:?}"),
        }
    }
}

pub(crate) async fn hello(
    raw: &mut RawConnection,
    token: &str,
) -> Result<std::result::Result<(), (ErrorCode, String)>> {
    raw.send_text(json!({"type": "hello", "client": "e2e/1", "token": token}).to_string())
        .await?;
    answer(raw).await
}

fn insert_todo(op: &str, owner: &str) -> String {
    json!({"type": "mut", "op": op, "ops": [{"type": "insert", "entity": "Todo",
           "row": {"id": op, "title": op, "done": false, "createdAt": "2026-11-23T00:00:00Z",
                   "ownerId": owner}}]})
    .to_string()
}

/// `ack` for `op`, or the code of its `err`.
async fn outcome(raw: &mut RawConnection, op: &str) -> Result<Option<ErrorCode>> {
    loop {
        match within("ack or err", raw.recv()).await?? {
            Received::Msg(ServerMsg::Ack(a)) if a.op == op => return Ok(None),
            Received::Msg(ServerMsg::Err(e)) if e.op.as_deref() == Some(op) => {
                return Ok(Some(e.code))
            }
            Received::Msg(_) => continue,
            other => bail!("expected ack or err, got {other:?}"),
        }
    }
}

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let secret = dev_secret()?;
    let keys = TestKeys::load()?;
    // Every test key published, whatever the jwks scenario left cached.
    let mut all = keys.initial();
    let rotated = keys.rotated();
    all["keys"]
        .as_array_mut()
        .unwrap()
        .extend(rotated["keys"].as_array().unwrap().iter().cloned());
    ctx.jwks.set_doc(all);
    ctx.jwks.set_up(true);

    let ann = unique("ann");
    let hs = |sub: &str, extra: Value| {
        let mut c = json!({"sub": sub, "aud": "pylon-dev", "exp": now() + 300});
        for (k, v) in extra.as_object().into_iter().flatten() {
            c[k] = v.clone();
        }
        jwt::sign_hs256(&c, secret.as_bytes())
    };
    let shard = unique("room");
    let config = ClientConfig::new(format!("ws://127.0.0.1:{}", ctx.dev.port), &shard)
        .token(hs(&ann, json!({})));
    let mut raw = within("connect", RawConnection::connect(&config)).await??;
    within("welcome", raw.recv_welcome()).await??;

    // A refreshed token for the same caller, HS256 then RS256: welcome.
    ensure!(hello(&mut raw, &hs(&ann, json!({"exp": now() + 900})))
        .await?
        .is_ok());
    let rs = sign_rs256(
        &json!({"sub": ann, "aud": "pylon-dev", "exp": now() + 300}),
        Some("rsa-b"),
        &keys.rsa_b,
    );
    let r = hello(&mut raw, &rs).await?;
    ensure!(r.is_ok(), "RS256 refresh: {r:?}");

    // Refused, each with its code; the socket stays open.
    let expired = hs(&ann, json!({"exp": now() - 3600}));
    let forged = jwt::sign_hs256(
        &json!({"sub": ann, "aud": "pylon-dev", "exp": now() + 300}),
        b"not-the-server-secret-not-the-server-secret",
    );
    let bob = hs(&unique("bob"), json!({}));
    let promoted = hs(&ann, json!({"roles": ["moderator"]}));
    for (what, token, code, reason) in [
        ("expired", &expired, ErrorCode::Unauthorized, "EXPIRED"),
        ("forged", &forged, ErrorCode::Unauthorized, "BAD_SIGNATURE"),
        (
            "garbage",
            &"x.y.z".to_owned(),
            ErrorCode::Unauthorized,
            "BAD_TOKEN",
        ),
        (
            "another user",
            &bob,
            ErrorCode::Forbidden,
            "IDENTITY_CHANGED",
        ),
        (
            "other roles",
            &promoted,
            ErrorCode::Forbidden,
            "IDENTITY_CHANGED",
        ),
    ] {
        match hello(&mut raw, token).await? {
            Err((c, m)) if c == code && m.starts_with(reason) => {}
            other => bail!("{what}: {other:?}"),
        }
    }

    // Still ann, and nothing more: her own Todo yes; a moderator's reach no.
    raw.send_text(insert_todo("t-own", &ann)).await?;
    ensure!(
        outcome(&mut raw, "t-own").await?.is_none(),
        "own todo refused"
    );
    raw.send_text(insert_todo("t-other", "someone-else"))
        .await?;
    ensure!(
        outcome(&mut raw, "t-other").await? == Some(ErrorCode::Forbidden),
        "someone else's todo accepted after a refused hello"
    );
    Ok(())
}
