//! Server functions under wrangler dev (docs/functions.md): TypeScript and
//! Rust functions called over the socket (both encodings) and HTTP, with
//! the guarantees a caller relies on: a mutation that fails after writing
//! leaves nothing and sends no diff; a retried op is applied once and
//! answered with its first result; policies hold inside functions; a
//! watched query function updates after a write; a mutation that fetches
//! fails with MUTATION_IO while the shard serves on; an action calls a
//! service on 127.0.0.1 and a mutation by name; bad callers get typed
//! errors.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::{bail, ensure, Result};
use pylon_workers::client::{ClientConfig, RawConnection, Received};
use pylon_workers::protocol::{
    Call, ClientMsg, Encoding, ErrorCode, ErrorMsg, FnValue, Returned, ServerMsg, Sub, Watch,
};
use pylon_workers::value::Value;
use serde_json::{json, Value as Json};

use crate::support::mini_http::{self, Resp};
use crate::support::{get_json, post, unique, within};
use crate::Ctx;

/// What a `call` came to, and the diffs that arrived before its answer.
struct Answer {
    result: Result<Returned, ErrorMsg>,
    diffs_before: usize,
}

async fn raw(port: u16, shard: &str, encoding: Encoding) -> Result<RawConnection> {
    let config = ClientConfig::new(format!("ws://127.0.0.1:{port}"), shard).encoding(encoding);
    let mut c = within("raw connect", RawConnection::connect(&config)).await??;
    within("welcome", c.recv_welcome()).await??;
    Ok(c)
}

fn args(v: Json) -> Value {
    Value::from(v)
}

/// The next message, presence aside.
async fn next_msg(c: &mut RawConnection) -> Result<ServerMsg> {
    loop {
        match within("a message", c.recv()).await?? {
            Received::Msg(ServerMsg::PresenceState(_) | ServerMsg::PresenceDiff(_)) => continue,
            Received::Msg(m) => return Ok(m),
            Received::Closed { .. } => bail!("the socket closed"),
            _ => continue,
        }
    }
}

async fn call(c: &mut RawConnection, op: &str, name: &str, a: Json) -> Result<Answer> {
    c.send(&ClientMsg::Call(Call {
        op: op.into(),
        name: name.into(),
        args: args(a),
    }))
    .await?;
    let mut diffs_before = 0;
    loop {
        match next_msg(c).await? {
            ServerMsg::Returned(r) if r.op == op => {
                return Ok(Answer {
                    result: Ok(r),
                    diffs_before,
                })
            }
            ServerMsg::Err(e) if e.op.as_deref() == Some(op) => {
                return Ok(Answer {
                    result: Err(e),
                    diffs_before,
                })
            }
            ServerMsg::Diff(_) | ServerMsg::Snap(_) => diffs_before += 1,
            _ => {}
        }
    }
}

fn ok(a: &Answer, what: &str) -> Result<Returned> {
    match &a.result {
        Ok(r) => Ok(r.clone()),
        Err(e) => bail!("{what}: {e:?}"),
    }
}

fn refused(a: &Answer, code: ErrorCode, what: &str) -> Result<ErrorMsg> {
    match &a.result {
        Err(e) if e.code == code => Ok(e.clone()),
        other => bail!("{what}: expected {code}, got {other:?}"),
    }
}

async fn stats(ctx: &Ctx, shard: &str) -> Result<Json> {
    get_json(&ctx.dev.http(&format!("/v1/shards/{shard}/stats"))).await
}

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let port = ctx.dev.port;
    for encoding in [Encoding::Json, Encoding::Postcard] {
        atomic_and_idempotent(ctx, port, encoding).await?;
    }
    live_query_function(ctx, port).await?;
    io_and_actions(ctx, port).await?;
    bad_callers(ctx, port).await?;
    Ok(())
}

/// A mutation that throws after two writes leaves nothing and sends no
/// diff; a good one sends one diff per subscription, then its result; a
/// retry of the same op is answered with the first result, applied once.
async fn atomic_and_idempotent(ctx: &Ctx, port: u16, encoding: Encoding) -> Result<()> {
    let shard = unique("fn");
    let mut writer = raw(port, &shard, encoding).await?;
    let mut reader = raw(port, &shard, encoding).await?;
    reader
        .send(&ClientMsg::Sub(Sub {
            id: "cards".into(),
            entity: "Card".into(),
            ..Default::default()
        }))
        .await?;
    match next_msg(&mut reader).await? {
        ServerMsg::Snap(s) if s.rows.is_empty() => {}
        other => bail!("expected an empty snap, got {other:?}"),
    }
    // The writer watches the cards too: its diff must come before its result.
    writer
        .send(&ClientMsg::Sub(Sub {
            id: "mine".into(),
            entity: "Card".into(),
            ..Default::default()
        }))
        .await?;
    match next_msg(&mut writer).await? {
        ServerMsg::Snap(_) => {}
        other => bail!("expected a snap, got {other:?}"),
    }

    let failed = call(&mut writer, "f1", "failAfterTwoWrites", json!({})).await?;
    let e = refused(&failed, ErrorCode::FunctionError, "failAfterTwoWrites")?;
    ensure!(e.message.starts_with("ON_PURPOSE:"), "{e:?}");
    let s = stats(ctx, &shard).await?;
    ensure!(
        s["seq"] == 0 && s["rows"]["Card"] == 0,
        "after the failed call: {s}"
    );

    let added = call(
        &mut writer,
        "a1",
        "addCardChecked",
        json!({"title": "first"}),
    )
    .await?;
    let r = ok(&added, "addCardChecked")?;
    ensure!(r.seq == 1 && !r.dup, "{r:?}");
    ensure!(
        added.diffs_before == 1,
        "one diff before the result, got {}",
        added.diffs_before
    );
    ensure!(
        failed.diffs_before == 0,
        "a failed call sent {} diffs",
        failed.diffs_before
    );
    let id = r.value.as_str().unwrap_or_default().to_owned();
    ensure!(!id.is_empty(), "addCardChecked returned {:?}", r.value);
    // The reader's next diff starts at 0: the failed call sent none.
    match next_msg(&mut reader).await? {
        ServerMsg::Diff(d) => ensure!(
            d.from == 0 && d.seq == 1 && d.added.len() == 1,
            "the first diff: {d:?}"
        ),
        other => bail!("expected a diff, got {other:?}"),
    }
    // The same op again: its first answer, nothing applied twice.
    let again = call(
        &mut writer,
        "a1",
        "addCardChecked",
        json!({"title": "first"}),
    )
    .await?;
    let r2 = ok(&again, "the retry")?;
    ensure!(r2.dup && r2.seq == 1 && r2.value == r.value, "{r2:?}");
    let s = stats(ctx, &shard).await?;
    ensure!(
        s["seq"] == 1 && s["rows"]["Card"] == 1,
        "after the retry: {s}"
    );
    writer.close(1000, "done").await?;
    reader.close(1000, "done").await?;
    Ok(())
}

/// `watch` of a query function: a value now, a new one after a write that
/// changes it (a Rust mutation, over HTTP), none for an unrelated write.
async fn live_query_function(ctx: &Ctx, port: u16) -> Result<()> {
    let shard = unique("fnw");
    let mut watcher = raw(port, &shard, Encoding::Json).await?;
    watcher
        .send(&ClientMsg::Watch(Watch {
            id: "w".into(),
            name: "boardSummary".into(),
            args: Value::Null,
        }))
        .await?;
    let first = match next_msg(&mut watcher).await? {
        ServerMsg::FnValue(v) => v,
        other => bail!("expected a value, got {other:?}"),
    };
    let mut writer = raw(port, &shard, Encoding::Json).await?;
    for (i, title) in ["a", "b"].iter().enumerate() {
        let a = call(
            &mut writer,
            &format!("w{i}"),
            "addCardChecked",
            json!({"title": title}),
        )
        .await?;
        ok(&a, "addCardChecked")?;
    }
    let mut latest: FnValue = first.clone();
    while latest.seq < 2 {
        match next_msg(&mut watcher).await? {
            ServerMsg::FnValue(v) => latest = v,
            other => bail!("expected values, got {other:?}"),
        }
    }
    ensure!(latest.value != first.value, "{first:?} -> {latest:?}");
    // A Rust function over HTTP; the watch sees it too.
    let url = ctx.dev.http(&format!("/v1/shards/{shard}/fn/archiveDone"));
    let (status, body) = post(&url, &json!({})).await?;
    ensure!(status == 200 && body["value"] == 0, "{status} {body}");
    Ok(())
}

async fn io_and_actions(ctx: &Ctx, port: u16) -> Result<()> {
    let shard = unique("fnio");
    let mut c = raw(port, &shard, Encoding::Json).await?;
    let io = call(&mut c, "io1", "fetchInMutation", json!({})).await?;
    refused(&io, ErrorCode::MutationIo, "fetchInMutation")?;
    // The shard serves on.
    let a = call(
        &mut c,
        "io2",
        "addCardChecked",
        json!({"title": "still here"}),
    )
    .await?;
    ok(&a, "a call after the refused one")?;
    let s = stats(ctx, &shard).await?;
    ensure!(s["rows"]["Card"] == 1, "{s}");

    // An action calls a service on 127.0.0.1, then a mutation by name.
    let hits = Arc::new(AtomicUsize::new(0));
    let seen = hits.clone();
    let service = mini_http::serve(Arc::new(move |req| {
        seen.fetch_add(1, Ordering::SeqCst);
        let q = req.query.get("q").cloned().unwrap_or_default();
        Resp::json(200, &json!(format!("{} at {}", q, req.path)))
    }))
    .await?;
    let url = ctx
        .dev
        .http(&format!("/v1/shards/{shard}/fn/rateLimitedLookup"));
    let service_url = format!("http://127.0.0.1:{service}");
    let (status, body) = post(&url, &json!({"serviceUrl": service_url, "q": "word"})).await?;
    ensure!(status == 200, "{status} {body}");
    ensure!(
        body["value"]["said"] == "\"word at /lookup\"" && body["value"]["cardId"].is_string(),
        "{body}"
    );
    ensure!(
        hits.load(Ordering::SeqCst) == 1,
        "the service was not called"
    );
    // Its rate limit: five a minute per caller (anonymous callers share one).
    let mut limited = None;
    for _ in 0..6 {
        let (status, body) = post(&url, &json!({"serviceUrl": service_url, "q": "again"})).await?;
        if status != 200 {
            limited = Some((status, body));
            break;
        }
    }
    match limited {
        Some((422, body))
            if body["error"]["code"] == "FUNCTION_ERROR"
                && body["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("RATE_LIMITED:")) => {}
        other => bail!("the sixth lookup in a minute: {other:?}"),
    }
    // Each admitted lookup added its card through a mutation by name.
    let s = stats(ctx, &shard).await?;
    ensure!(s["rows"]["Card"] == 6, "the actions' mutations: {s}");
    ensure!(hits.load(Ordering::SeqCst) == 5, "the service calls");
    Ok(())
}

async fn bad_callers(ctx: &Ctx, port: u16) -> Result<()> {
    let shard = unique("fnbad");
    let mut c = raw(port, &shard, Encoding::Json).await?;
    let a = call(&mut c, "b1", "noSuchFunction", json!({})).await?;
    refused(&a, ErrorCode::UnknownFunction, "unknown")?;
    let a = call(&mut c, "b2", "addCardChecked", json!({"title": 5})).await?;
    let e = refused(&a, ErrorCode::BadArgs, "bad args")?;
    ensure!(e.message.contains("title"), "{e:?}");
    let a = call(&mut c, "b3", "rateLimitedLookup", json!({})).await?;
    refused(&a, ErrorCode::WrongKind, "an action over the socket")?;
    // Policies hold inside a function: an anonymous caller may not add a
    // todo for someone.
    let a = call(
        &mut c,
        "b4",
        "addTodo",
        json!({"title": "t", "ownerId": "u1"}),
    )
    .await?;
    refused(&a, ErrorCode::Forbidden, "addTodo for another")?;
    let http = |name: &str| ctx.dev.http(&format!("/v1/shards/{shard}/fn/{name}"));
    let (status, body) = post(&http("noSuchFunction"), &json!({})).await?;
    ensure!(
        status == 404 && body["error"]["code"] == "UNKNOWN_FUNCTION",
        "{status} {body}"
    );
    let (status, body) = post(&http("addCardChecked"), &json!({"title": "t", "extra": 1})).await?;
    ensure!(
        status == 400 && body["error"]["code"] == "BAD_ARGS",
        "{status} {body}"
    );
    // Another tenant's shard: refused at the router.
    let (status, body) = post(
        &ctx.dev.http("/v1/shards/team:t9/fn/addCardChecked"),
        &json!({"title": "t"}),
    )
    .await?;
    ensure!(status == 401, "anonymous on a team shard: {status} {body}");
    // Oversized arguments.
    let big = "x".repeat(2 << 20);
    let (status, _) = post(&http("addCardChecked"), &json!({"title": big})).await?;
    ensure!(status == 413, "oversized args: {status}");
    let s = stats(ctx, &shard).await?;
    ensure!(s["seq"] == 0, "nothing was written by bad callers: {s}");
    Ok(())
}
