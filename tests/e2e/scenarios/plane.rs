//! Matchmaking into the 20 Hz `plane` game under `wrangler dev` (the board
//! exports `Duels`, a queue of the library's `Pairs` rules, and `Plane`;
//! docs/sims.md). Two signed-in players enqueue for a duel and are paired
//! into one fresh plane (the first hears it over its ticket socket, the
//! second in its answer); a third leaves the queue; tickets are their
//! player's, and bad callers (anonymous or another tenant on a `team:`
//! queue, oversized criteria, a flood on the listen-only ticket socket)
//! are answered while the queue serves on. Both then play: each socket acts as its verified player (and
//! may not act as the other), snapshots are per player (each sees itself,
//! and the other only within sight), steering moves a player, and ticks
//! come at the configured 20 Hz. Once both leave, the shard stops ticking
//! and holds no alarm: checked in the background ([`finish`]) while the
//! suite goes on.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use super::sims::{next, Ws};
use crate::support::{get_json, unique, within};
use crate::Ctx;

/// The plane's sight (src/sim/plane.rs `SIGHT`).
const SIGHT: f64 = 30.0;
/// The kind's configured rate; the test allows ±15% (a loaded machine runs
/// the suite; benches/sim.rs measures the rate itself).
const TICK_HZ: f64 = 20.0;
/// How long the tick rate is watched.
const RATE_WINDOW: Duration = Duration::from_secs(3);

/// A socket that offers `token`, as the clients do.
async fn open_as(ctx: &Ctx, path: &str, token: &str) -> Result<Ws> {
    let mut req = ctx.dev.ws(path).into_client_request()?;
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        format!("pylon.v1.json, bearer.{token}").parse()?,
    );
    let (ws, _) = within("connect", tokio_tungstenite::connect_async(req)).await??;
    Ok(ws)
}

async fn send(ws: &mut Ws, msg: Value) -> Result<()> {
    ws.send(Message::text(msg.to_string())).await?;
    Ok(())
}

/// An HTTP call with an optional token: status and JSON body.
async fn call(
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Result<(u16, Value)> {
    let mut req = reqwest::Client::new().request(method.clone(), url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let body = resp
        .json()
        .await
        .with_context(|| format!("{method} {url}: not JSON"))?;
    Ok((status, body))
}

/// The next snapshot with `acked` at least `seq` (refusals fail).
async fn acked(ws: &mut Ws, seq: u64) -> Result<Value> {
    for _ in 0..200 {
        let m = next(ws).await?;
        ensure!(m["type"] != "sim_err", "refused: {m}");
        if m["type"] == "sim_snapshot" && m["acked"].as_u64() >= Some(seq) {
            return Ok(m);
        }
    }
    bail!("input {seq} not in a snapshot within 200 messages")
}

/// The snapshot of tick `tick` (or the first after it).
async fn at_tick(ws: &mut Ws, tick: u64) -> Result<Value> {
    for _ in 0..200 {
        let m = next(ws).await?;
        if m["type"] == "sim_snapshot" && m["tick"].as_u64() >= Some(tick) {
            return Ok(m);
        }
    }
    bail!("no snapshot of tick {tick} within 200 messages")
}

fn pos(v: &Value) -> Result<(f64, f64)> {
    Ok((v["x"].as_f64().context("x")?, v["y"].as_f64().context("y")?))
}

fn dist(a: (f64, f64), b: (f64, f64)) -> f64 {
    (a.0 - b.0).hypot(a.1 - b.1)
}

/// Whether `snap` shows `who` among the others.
fn sees(snap: &Value, who: &str) -> bool {
    snap["others"]
        .as_array()
        .is_some_and(|o| o.iter().any(|p| p["id"] == who))
}

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let secret = super::auth::dev_secret()?;
    let (ua, ub, uc) = (unique("ada"), unique("bo"), unique("cy"));
    let [ta, tb, tc] = [&ua, &ub, &uc].map(|u| super::cold_access::token(&secret, u, json!({})));
    let queue = unique("duel");
    let base = ctx.dev.http(&format!("/v1/match/duels/{queue}"));
    use reqwest::Method;

    let (status, body) = call(Method::POST, &base, Some(&ta), Some(json!({"rank": 3}))).await?;
    ensure!(
        status == 400 && body["error"]["code"] == "BAD_CRITERIA",
        "{status} {body}"
    );

    // Ada waits, and listens on her ticket's socket.
    let (status, a) = call(
        Method::POST,
        &base,
        Some(&ta),
        Some(json!({"mode": "duel"})),
    )
    .await?;
    ensure!(
        status == 200 && a["status"] == "waiting" && a["player"] == ua.as_str(),
        "{status} {a}"
    );
    let ticket_a = a["ticket"].as_str().context("ticket")?.to_owned();
    let mut listen = open_as(
        ctx,
        &format!("/v1/match/duels/{queue}/ws?ticket={ticket_a}"),
        &ta,
    )
    .await?;
    let heard = next(&mut listen).await?;
    ensure!(
        heard["type"] == "mm_ticket" && heard["status"] == "waiting",
        "{heard}"
    );
    // Her ticket is hers: another player may not read it.
    let (status, body) = call(
        Method::GET,
        &format!("{base}/tickets/{ticket_a}"),
        Some(&tc),
        None,
    )
    .await?;
    ensure!(
        status == 403,
        "another player read the ticket: {status} {body}"
    );

    // Bad callers, each answered while the queue serves on. An anonymous
    // player may queue (its ticket is its identity); a `team:` queue is its
    // tenant's, as every object name is; criteria over 4 KiB are refused;
    // frames sent to a ticket socket (it only listens) are dropped unread.
    let (status, anon) = call(
        Method::POST,
        &format!("{base}-anon"),
        None,
        Some(json!({"mode": "solo"})),
    )
    .await?;
    ensure!(
        status == 200 && anon["status"] == "waiting" && anon["player"] == anon["ticket"],
        "anonymous: {status} {anon}"
    );
    let (acme, evil) = (unique("acme"), unique("evil"));
    let evil_t = super::cold_access::token(&secret, &uc, json!({"tenant": evil}));
    let team = ctx.dev.http(&format!("/v1/match/duels/team:{acme}"));
    let (status, body) = call(Method::POST, &team, None, Some(json!({"mode": "duel"}))).await?;
    ensure!(
        status == 401 && body["error"]["code"] == "UNAUTHORIZED",
        "anonymous on a team queue: {status} {body}"
    );
    let (status, body) = call(
        Method::POST,
        &team,
        Some(&evil_t),
        Some(json!({"mode": "duel"})),
    )
    .await?;
    ensure!(
        status == 403 && body["error"]["reason"] == "SHARD_DENIED",
        "another tenant's team queue: {status} {body}"
    );
    let huge = json!({"mode": "x".repeat(5 * 1024)});
    let (status, body) = call(Method::POST, &base, Some(&tc), Some(huge)).await?;
    // The host reads at most the queue's `max_criteria_bytes` of a body,
    // so the Worker answers with the host's code for any oversized body.
    ensure!(
        status == 413 && body["error"]["code"] == "FRAME_TOO_LARGE",
        "oversized criteria: {status} {body}"
    );
    for i in 0..300 {
        send(&mut listen, json!({"type": "flood", "n": i})).await?;
    }
    let stats = get_json(&base).await?;
    ensure!(
        stats["waiting"] == 1 && stats["sockets"] == 1,
        "after the flood: {stats}"
    );

    // Cy wants a race, then leaves the queue.
    let (status, c) = call(
        Method::POST,
        &base,
        Some(&tc),
        Some(json!({"mode": "race"})),
    )
    .await?;
    ensure!(status == 200 && c["status"] == "waiting", "{status} {c}");
    let left = format!("{base}/tickets/{}", c["ticket"].as_str().context("ticket")?);
    let (status, body) = call(Method::DELETE, &left, Some(&tc), None).await?;
    ensure!(status == 200 && body["status"] == "left", "{status} {body}");
    let (status, body) = call(Method::DELETE, &left, Some(&tc), None).await?;
    ensure!(
        status == 409 && body["error"]["code"] == "NOT_WAITING",
        "{status} {body}"
    );

    // Bo's duel pairs him with Ada (not with Cy, who left).
    let (status, b) = call(
        Method::POST,
        &base,
        Some(&tb),
        Some(json!({"mode": "duel"})),
    )
    .await?;
    ensure!(status == 200 && b["status"] == "assigned", "{status} {b}");
    let sim = b["sim"].as_str().context("sim")?.to_owned();
    ensure!(
        b["kind"] == "plane" && b["players"] == json!([ua, ub]),
        "{b}"
    );
    let heard = next(&mut listen).await?;
    ensure!(
        heard["status"] == "assigned"
            && heard["sim"] == sim.as_str()
            && heard["players"] == b["players"],
        "Ada's socket heard {heard}"
    );
    match within("the ticket socket's close", listen.next()).await? {
        Some(Ok(Message::Close(Some(f)))) => ensure!(u16::from(f.code) == 1000, "closed {f:?}"),
        other => bail!("the settled ticket's socket: {other:?}"),
    }
    let (status, polled) = call(
        Method::GET,
        &format!("{base}/tickets/{ticket_a}"),
        Some(&ta),
        None,
    )
    .await?;
    ensure!(
        status == 200 && polled["sim"] == sim.as_str(),
        "{status} {polled}"
    );
    let stats = get_json(&base).await?;
    ensure!(
        stats["assigned"] == 2 && stats["left"] == 1 && stats["groups"] == 1,
        "{stats}"
    );

    // Both join the plane as themselves; Bo may not act as Ada.
    let ws_path = |who: &str| format!("/v1/sims/plane/{sim}/ws?subscriber={who}");
    match open_as(ctx, &ws_path(&ua), &tb).await {
        Err(_) => {}
        Ok(mut ws) => {
            // Refused after the upgrade, if not before it.
            let m = next(&mut ws).await;
            ensure!(
                m.as_ref().map_or(true, |m| m["type"] == "sim_err"),
                "Bo acts as Ada: {m:?}"
            );
        }
    }
    let mut pa = open_as(ctx, &ws_path(&ua), &ta).await?;
    let mut pb = open_as(ctx, &ws_path(&ub), &tb).await?;
    for (ws, who) in [(&mut pa, &ua), (&mut pb, &ub)] {
        let w = next(ws).await?;
        ensure!(
            w["type"] == "sim_welcome" && w["subscriber"] == who.as_str() && w["tick_hz"] == 20,
            "{w}"
        );
        // Appear, standing still.
        send(
            ws,
            json!({"type": "sim_input", "seq": 1, "input": {"steer": {"x": 0, "y": 0}}}),
        )
        .await?;
    }
    let sa = acked(&mut pa, 1).await?;
    acked(&mut pb, 1).await?;

    // Per-player snapshots of one tick: each sees itself, and the other
    // exactly when within sight.
    let tick = sa["tick"].as_u64().context("tick")? + 1;
    let (sa, sb) = (at_tick(&mut pa, tick).await?, at_tick(&mut pb, tick).await?);
    ensure!(
        sa["tick"] == sb["tick"],
        "ticks differ: {} {}",
        sa["tick"],
        sb["tick"]
    );
    ensure!(sa["players"] == 2 && sb["players"] == 2, "{sa} {sb}");
    let (a_at, b_at) = (pos(&sa["me"])?, pos(&sb["me"])?);
    ensure!(
        a_at != b_at,
        "both snapshots show the same player: {sa} {sb}"
    );
    let d = dist(a_at, b_at);
    if (d - SIGHT).abs() > 1e-6 {
        ensure!(
            sees(&sa, &ub) == (d < SIGHT),
            "Ada at {a_at:?}, Bo at {b_at:?} ({d:.1} apart): {sa}"
        );
        ensure!(
            sees(&sb, &ua) == (d < SIGHT),
            "Bo at {b_at:?}, Ada at {a_at:?} ({d:.1} apart): {sb}"
        );
    }
    ensure!(
        !sees(&sa, &ua) && !sees(&sb, &ub),
        "a player among its own others"
    );

    // Ada steers toward the centre; the ticks come at 20 Hz meanwhile.
    let centre = (50.0, 50.0);
    let toward = (centre.0 - a_at.0, centre.1 - a_at.1);
    send(
        &mut pa,
        json!({"type": "sim_input", "seq": 2, "input": {"steer": {"x": toward.0, "y": toward.1}}}),
    )
    .await?;
    let first = acked(&mut pa, 2).await?;
    let (t0, started) = (first["tick"].as_u64().context("tick")?, Instant::now());
    let mut last = first;
    while started.elapsed() < RATE_WINDOW {
        let m = next(&mut pa).await?;
        if m["type"] == "sim_snapshot" {
            last = m;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let t1 = last["tick"].as_u64().context("tick")?;
    let rate = (t1 - t0) as f64 / elapsed;
    ensure!(
        (rate - TICK_HZ).abs() <= TICK_HZ * 0.15,
        "{} ticks in {elapsed:.2} s: {rate:.1} Hz, configured {TICK_HZ}",
        t1 - t0
    );
    let now_at = pos(&last["me"])?;
    // Along the line to the centre, measured from where she started: a
    // player who spawned near the centre passes it within the window and
    // keeps flying the same way, so her distance to it may grow again.
    let moved = (now_at.0 - a_at.0, now_at.1 - a_at.1);
    let reach = dist(a_at, centre);
    let along = if reach > 0.0 {
        (moved.0 * toward.0 + moved.1 * toward.1) / reach
    } else {
        0.0
    };
    let across = if reach > 0.0 {
        (moved.0 * toward.1 - moved.1 * toward.0).abs() / reach
    } else {
        0.0
    };
    ensure!(
        (along > 5.0 && across < along / 4.0) || dist(now_at, centre) < 1.0,
        "Ada did not move toward the centre: {a_at:?} -> {now_at:?} \
         ({along:.1} along the line to it, {across:.1} across)"
    );
    let stats = get_json(&ctx.dev.http(&format!("/v1/sims/plane/{sim}"))).await?;
    ensure!(
        stats["players"] == 2 && stats["ticking"] == true && stats["alarm_pending"] == true,
        "{stats}"
    );

    // Both leave; the shard empties.
    for ws in [&mut pa, &mut pb] {
        send(ws, json!({"type": "sim_input", "seq": 3, "input": "leave"})).await?;
        let snap = acked(ws, 3).await?;
        ensure!(snap["me"].is_null(), "{snap}");
        ws.close(None).await?;
    }
    let url = ctx.dev.http(&format!("/v1/sims/plane/{sim}"));
    ctx.background.push(("plane", tokio::spawn(rests(url))));
    Ok(())
}

/// An empty plane stops ticking after its idle ticks (200, 10 s) and
/// leaves no alarm.
async fn rests(url: String) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stats = get_json(&url).await?;
        if stats["alarm_pending"] == false {
            ensure!(
                stats["ticking"] == false && stats["players"] == 0 && stats["subscribers"] == 0,
                "{stats}"
            );
            // And stays so: no tick runs.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let later = get_json(&url).await?;
            ensure!(
                later["tick"] == stats["tick"] && later["alarm_pending"] == false,
                "{stats} then {later}"
            );
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the empty plane still has an alarm after 30 s: {stats}");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Joins the background check started by [`run`].
pub async fn finish(ctx: &mut Ctx) -> Result<()> {
    ctx.join("plane").await
}
