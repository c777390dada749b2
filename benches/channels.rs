//! Pub/sub fan-out against `wrangler dev` (docs/pubsub.md,
//! docs/benchmarks.md "Channels"): a message published with `POST
//! /v1/channels/{channel}/publish` until the LAST of N channel subscribers
//! (`/v1/channels/{channel}/ws`) has it; the baseline, interleaved round
//! by round in the same run, is a shard `bcast` sent by a client over its
//! socket until the last of N other clients of that shard has it.
//!
//! ```sh
//! bash scripts/build-worker.sh          # the bench builds nothing itself
//! cargo bench --features client --bench channels
//! ```
//!
//! The publish pays an HTTP request through the router Worker and one
//! call to the channel's object, and it stores the message; the `bcast`
//! is a frame on an open socket straight to the shard, stored nowhere. It
//! starts its own `wrangler dev` (observability collector off, as the
//! other benches) under `target/bench-channels/` and kills it at the end.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `PYLON_BENCH_N` | `100` | subscribers of each kind |
//! | `PYLON_BENCH_ROUNDS` | `100` | measured rounds of each kind |
//! | `PYLON_BENCH_WARMUP` | `10` | warm-up rounds, not recorded |
//! | `PYLON_BENCH_OBSERVABILITY` | `0` | `1` keeps `wrangler dev`'s local observability collector on |

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use futures_util::StreamExt;
use pylon_workers::auth::jwt;
use pylon_workers::client::Event;
use pylon_workers::protocol::Encoding;
use pylon_workers::value::Value;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

mod support;
#[path = "../tests/wrangler_dev/mod.rs"]
mod wrangler_dev;
use support::{close_all, connect, env_num, ms, observability_on, stats, Stats};
use wrangler_dev::{project_root as root, DevOptions};

/// How long one round may wait for its last receiver.
const ROUND_TIMEOUT: Duration = Duration::from_secs(10);
/// The per-connection message limit would cap the bcast writer.
const BENCH_VARS: &[(&str, &str)] = &[
    ("PYLON_MSGS_PER_SEC", "100000"),
    ("PYLON_MSG_BURST", "100000"),
];

/// A signed-in caller's token (the board's `chat:*` publish is signedIn).
fn token() -> Result<String> {
    let text = std::fs::read_to_string(root().join(".dev.vars"))?;
    let secret = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("PYLON_JWT_SECRET="))
        .context("PYLON_JWT_SECRET in .dev.vars")?
        .trim()
        .trim_matches('"')
        .to_owned();
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        + 3600;
    let claims = json!({"sub": "bench", "aud": "pylon-dev", "exp": exp});
    Ok(jwt::sign_hs256(&claims, secret.as_bytes()))
}

/// `n` subscribers of `channel`, each reporting `(id, when)` per message.
async fn channel_subscribers(
    port: u16,
    channel: &str,
    n: usize,
    tx: mpsc::UnboundedSender<(u64, Instant)>,
) -> Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let mut req =
            format!("ws://127.0.0.1:{port}/v1/channels/{channel}/ws").into_client_request()?;
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", "pylon.v1.json".parse()?);
        let (mut ws, _) = tokio::time::timeout(
            Duration::from_secs(20),
            tokio_tungstenite::connect_async(req),
        )
        .await
        .context("connect timed out")??;
        // The first frame is `ready`.
        let first = tokio::time::timeout(Duration::from_secs(20), ws.next()).await?;
        ensure!(matches!(first, Some(Ok(Message::Text(_)))), "{first:?}");
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(Ok(m)) = ws.next().await {
                let now = Instant::now();
                if let Message::Text(t) = m {
                    let v: serde_json::Value = serde_json::from_str(&t).unwrap_or_default();
                    if let Some(id) = v["id"].as_u64() {
                        if tx.send((id, now)).is_err() {
                            return;
                        }
                    }
                }
            }
        }));
    }
    Ok(tasks)
}

/// Waits for `n` reports of `key`; the last arrival, or `None` after
/// [`ROUND_TIMEOUT`].
async fn last_arrival(
    rx: &mut mpsc::UnboundedReceiver<(u64, Instant)>,
    key: u64,
    n: usize,
) -> Option<Instant> {
    let deadline = tokio::time::Instant::now() + ROUND_TIMEOUT;
    let (mut seen, mut last) = (0, None);
    while seen < n {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((k, t))) if k == key => {
                seen += 1;
                last = Some(last.map_or(t, |l: Instant| l.max(t)));
            }
            Ok(Some(_)) => {}
            _ => return None,
        }
    }
    last
}

fn line(label: &str, s: &Stats) {
    println!(
        "  {label:<34} n={:<4} p50 {:>6.2}  p95 {:>6.2}  p99 {:>6.2}  max {:>6.2} ms",
        s.n, s.p50, s.p95, s.p99, s.max
    );
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("channels bench failed: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> Result<()> {
    support::require_build(root())?;
    let n = env_num("PYLON_BENCH_N", 100).max(1);
    let rounds = env_num("PYLON_BENCH_ROUNDS", 100).max(1);
    let warmup = env_num("PYLON_BENCH_WARMUP", 10);
    support::ensure_fds(4 * n as u64 + 64)?;
    let dir: PathBuf = root()
        .join("target")
        .join("bench-channels")
        .join(format!("run-{}", std::process::id()));
    let mut opts = DevOptions::new()
        .log_level("warn")
        .local_observability(observability_on());
    for (k, v) in BENCH_VARS {
        opts = opts.var(k, *v);
    }
    let dev = opts.start(&dir).await?;
    eprintln!(
        "wrangler dev on 127.0.0.1:{}, log {}",
        dev.port,
        dev.log.display()
    );
    let http = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let token = token()?;
    let pid = std::process::id();
    let channel = format!("chat:bench-{pid}");
    let shard = format!("bench-bcast-{pid}");

    let (ctx, mut crx) = mpsc::unbounded_channel();
    let readers = channel_subscribers(dev.port, &channel, n, ctx).await?;
    let (btx, mut brx) = mpsc::unbounded_channel();
    let mut clients = Vec::with_capacity(n);
    let mut watchers = Vec::with_capacity(n);
    for _ in 0..n {
        let c = connect(dev.port, &shard, Encoding::Json).await?;
        let mut events = c.events();
        let tx = btx.clone();
        watchers.push(tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(Event::Bcast(b)) => {
                        let now = Instant::now();
                        if let Value::Int(k) = b.data {
                            if tx.send((k as u64, now)).is_err() {
                                return;
                            }
                        }
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return,
                }
            }
        }));
        clients.push(c);
    }
    let writer = connect(dev.port, &shard, Encoding::Json).await?;
    eprintln!("  {n} channel subscribers and {n} shard clients connected");

    let url = dev.http(&format!("/v1/channels/{channel}/publish"));
    let (mut publish, mut bcast, mut missed) = (Vec::new(), Vec::new(), 0);
    for round in 0..warmup + rounds {
        let key = round as u64 + 1;
        // Alternate which kind goes first, so drift hits both.
        for first in [round % 2 == 0, round % 2 == 1] {
            let t0 = Instant::now();
            let last = if first {
                let send = http
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"data": key}))
                    .send();
                let (resp, last) = tokio::join!(send, last_arrival(&mut crx, key, n));
                let resp = resp?;
                ensure!(resp.status().is_success(), "publish: {}", resp.status());
                last.map(|t| (true, t))
            } else {
                writer.broadcast("bench", Value::Int(key as i64)).await?;
                last_arrival(&mut brx, key, n).await.map(|t| (false, t))
            };
            match last {
                Some((kind, t)) if round >= warmup => {
                    let d = ms(t.saturating_duration_since(t0));
                    if kind {
                        publish.push(d)
                    } else {
                        bcast.push(d)
                    }
                }
                Some(_) => {}
                None => missed += 1,
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    for t in readers.iter().chain(watchers.iter()) {
        t.abort();
    }
    close_all(clients).await;
    drop(dev);

    let (p, b) = (stats(publish), stats(bcast));
    println!();
    println!(
        "channels under wrangler dev, 127.0.0.1, release Worker build; N = {n}, rounds interleaved"
    );
    println!(
        "  local observability collector: {}; rounds that missed a receiver: {missed}",
        if observability_on() { "on" } else { "off" }
    );
    line("publish (HTTP) -> last of N", &p);
    line("shard bcast -> last of N (baseline)", &b);
    println!(
        "  ratio to bcast: p50 {:.2}x, p99 {:.2}x",
        p.p50 / b.p50,
        p.p99 / b.p99
    );
    Ok(())
}
