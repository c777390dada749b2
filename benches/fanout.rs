//! End-to-end throughput and latency against `wrangler dev`.
//!
//! ```sh
//! bash scripts/build-worker.sh          # the bench builds nothing itself
//! cargo bench --features client --bench fanout
//! ```
//!
//! It expects `build/` (the release Worker) to exist and fails otherwise.
//! It starts its own `wrangler dev` on a free loopback port with a temporary
//! `--persist-to` (under `target/bench-fanout/`), and kills its process group
//! at the end. Three measurements (see docs/benchmarks.md):
//!
//! 1. fan-out: a writer commits one row that enters every subscriber's live
//!    query; time until the LAST of N subscribers holds the new seq. Baseline,
//!    interleaved round by round: the writer sends `bcast` (forwarded, no
//!    storage); time until the last of the N has the `Bcast` event.
//! 2. acknowledged single-row mutations per second on one shard with 100
//!    subscribers.
//! 3. time to the answer of `POST /v1/shards/{shard}/query` on a shard that
//!    workerd has evicted (idle ≥ 12 s), against the same request warm.
//!    Floor, in the same idles: `GET …/alive` on a second shard, which the
//!    host answers before it opens the object (what a first request after
//!    an eviction costs the platform alone), cold and warm.
//! 4. (`PYLON_BENCH_ONLY=slow`, not run by default) a stalled reader among
//!    N: each reader's latency from a write to its copy of the diff, p50
//!    and p99 over all readers and rounds, with one more socket subscribed
//!    that never reads (it passes the 1 MiB send window and is closed with
//!    4408), as a ratio to the same run without it; runs interleaved
//!    (without, with; then with, without), medians over the pairs.
//!
//! Knobs (environment):
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `PYLON_BENCH_N` | `100,999` | fan-out subscriber counts (a shard takes 1,000 connections; the writer is one) |
//! | `PYLON_BENCH_ROUNDS` | `100` | measured rounds per kind (live and bcast each) and N |
//! | `PYLON_BENCH_WARMUP` | `10` | warm-up rounds per kind, not recorded |
//! | `PYLON_BENCH_WRITERS` | `1,32` | writer counts for the mutation rate (each awaits its ack) |
//! | `PYLON_BENCH_DEPTH` | `8` | mutations in flight per writer in the pipelined variant (0: skip it) |
//! | `PYLON_BENCH_SECS` | `5` | length of one mutation-rate run |
//! | `PYLON_BENCH_RUNS` | `3` | mutation-rate runs per variant (median reported) |
//! | `PYLON_BENCH_FUNCTIONS` | `1` | `0`: the rate variants write through `mut` only, not also through the board's functions |
//! | `PYLON_BENCH_COLD` | `5` | eviction samples (each idles 13 s; 0: skip) |
//! | `PYLON_BENCH_ONLY` | all | comma list of `fanout`, `rate`, `cold` |
//! | `PYLON_BENCH_IDLE_SECS` | `13` | idle before each eviction sample |
//! | `PYLON_BENCH_SLOW_N` | `100` | readers in the stalled-reader runs |
//! | `PYLON_BENCH_SLOW_PAIRS` | `5` | pairs of runs (without, with the stalled reader) |
//! | `PYLON_BENCH_SLOW_ROUNDS` | `60` | writes per run (each about 24 KiB to every reader) |
//! | `PYLON_BENCH_SLOW_CONTROL` | `0` | `1`: the "with" runs get no stalled socket either (an A/A run: the noise floor of the ratios) |
//! | `PYLON_BENCH_VARS` | none | `NAME:VALUE,...` wrangler vars for this run, e.g. `PYLON_MAX_BATCH:1`; added to [`BENCH_VARS`] (a name given here wins) |
//! | `PYLON_BENCH_OBSERVABILITY` | `0` | `1` keeps `wrangler dev`'s local observability collector on (see below) |
//!
//! `wrangler dev` (4.x) streams a trace of every invocation (each WebSocket
//! message is one) to a local observability collector in the same workerd
//! process, for its local dashboard. On the object's thread that costs
//! about as much as our own work (perf: ~40% of it). Deployed Workers have
//! no such collector in the isolate, so the bench turns it off
//! (`X_LOCAL_OBSERVABILITY=false`) unless told otherwise, and says so in
//! its report.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use pylon_workers::client::{Client, Event, Query, Subscription};
use pylon_workers::client::{ClientConfig, RawConnection, Received};
use pylon_workers::protocol::{ClientMsg, Encoding, ErrorCode, Op, ServerMsg, Sub};
use pylon_workers::value::{Row, Value};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

// The e2e suite's wrangler dev starter (free port, own process group).
mod support;
#[path = "../tests/wrangler_dev/mod.rs"]
mod wrangler_dev;
use support::{
    close_all, connect, encoding_for, ensure_fds, env_list, env_num, ms, observability_on, pct,
    stats, wants,
};
use wrangler_dev::{project_root as root, DevOptions, WranglerDev};

/// workerd evicts an idle object after ~10 s.
/// Default idle before a cold sample (`PYLON_BENCH_IDLE_SECS`).
const IDLE_FOR_EVICTION: Duration = Duration::from_secs(13);
/// How long one round may wait for its last receiver.
const ROUND_TIMEOUT: Duration = Duration::from_secs(10);
/// Clients connected at once while filling a shard.
const CONNECT_BATCH: usize = 50;
/// Rows present before subscribing (the live window is 20).
const SEED_ROWS: usize = 20;
/// Wrangler vars every run sets: the per-connection message limit
/// (default 100/s) would otherwise cap a writer's rate; the bench measures
/// the shard, and the limit has its own e2e scenario.
const BENCH_VARS: &[(&str, &str)] = &[
    ("PYLON_MSGS_PER_SEC", "100000"),
    ("PYLON_MSG_BURST", "100000"),
];

// ---------------------------------------------------------------------------
// small helpers

fn row(v: serde_json::Value) -> Row {
    serde_json::from_value(v).expect("a row")
}

fn card(id: &str, position: f64) -> Row {
    row(
        json!({"id": id, "title": format!("card {id}"), "done": false,
               "position": position, "createdAt": "2026-11-23T00:00:00Z"}),
    )
}

fn window() -> Query {
    Query::new("Card")
        .order(json!(["position"]).into())
        .limit(20)
}

/// Connects `n` clients to `shard`, each subscribed to [`window`], in
/// batches of [`CONNECT_BATCH`].
async fn subscribers(port: u16, shard: &str, n: usize) -> Result<Vec<(Client, Subscription)>> {
    let started = Instant::now();
    let mut out = Vec::with_capacity(n);
    let mut next = 0;
    while next < n {
        let mut set = JoinSet::new();
        for i in next..(next + CONNECT_BATCH).min(n) {
            let shard = shard.to_owned();
            set.spawn(async move {
                let c = connect(port, &shard, encoding_for(i)).await?;
                let s = tokio::time::timeout(Duration::from_secs(20), c.subscribe(window()))
                    .await
                    .context("subscribe timed out")??;
                anyhow::Ok((c, s))
            });
        }
        while let Some(r) = set.join_next().await {
            out.push(r??);
        }
        next = out.len();
    }
    eprintln!(
        "  {n} subscribers on {shard} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(out)
}

// ---------------------------------------------------------------------------
// 1. fan-out

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Live,
    Bcast,
}

struct FanoutResult {
    n: usize,
    live: Vec<f64>,
    bcast: Vec<f64>,
    missed: usize,
    connect_secs: f64,
}

/// Inserts [`SEED_ROWS`] cards at positions from `first_position` on;
/// the seq of that commit.
async fn seed(writer: &Client, first_position: f64) -> Result<u64> {
    let rows: Vec<Op> = (0..SEED_ROWS)
        .map(|i| Op::Insert {
            entity: "Card".into(),
            row: card(&format!("seed{i}"), first_position + i as f64),
        })
        .collect();
    Ok(writer.mutate(rows).await?.seq)
}

/// A watcher per subscriber, all reporting on one channel; then half a
/// second for the subscriptions to settle. The clients, the watchers'
/// tasks and the channel's receiving end.
async fn watch_all(
    subs: Vec<(Client, Subscription)>,
) -> (
    Vec<Client>,
    Vec<tokio::task::JoinHandle<()>>,
    mpsc::UnboundedReceiver<(Kind, u64, Instant)>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut clients = Vec::with_capacity(subs.len());
    let mut watchers = Vec::with_capacity(subs.len());
    for (c, s) in subs {
        watchers.push(spawn_watcher(&c, s, tx.clone()));
        clients.push(c);
    }
    drop(tx);
    tokio::time::sleep(Duration::from_millis(500)).await;
    (clients, watchers, rx)
}

/// One task per subscriber: records when its subscription reaches a new
/// seq and when a `bcast` arrives, on an unbounded channel (no shared lock,
/// no serialisation on one task).
fn spawn_watcher(
    client: &Client,
    mut sub: Subscription,
    tx: mpsc::UnboundedSender<(Kind, u64, Instant)>,
) -> tokio::task::JoinHandle<()> {
    let mut events = client.events();
    tokio::spawn(async move {
        let mut last = sub.seq().unwrap_or(0);
        loop {
            tokio::select! {
                r = sub.changed() => {
                    if r.is_err() { return; }
                    let now = Instant::now();
                    if let Some(s) = sub.seq() {
                        if s > last {
                            last = s;
                            if tx.send((Kind::Live, s, now)).is_err() { return; }
                        }
                    }
                }
                e = events.recv() => match e {
                    Ok(Event::Bcast(b)) => {
                        let now = Instant::now();
                        if let Value::Int(k) = b.data {
                            if tx.send((Kind::Bcast, k as u64, now)).is_err() { return; }
                        }
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return,
                }
            }
        }
    })
}

/// Waits until `n` receivers reported `(kind, >= key)`; returns the last
/// arrival, or `None` after [`ROUND_TIMEOUT`].
async fn last_arrival(
    rx: &mut mpsc::UnboundedReceiver<(Kind, u64, Instant)>,
    kind: Kind,
    key: u64,
    n: usize,
) -> Option<Instant> {
    let deadline = tokio::time::Instant::now() + ROUND_TIMEOUT;
    let mut got = 0;
    let mut last = None;
    while got < n {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((k, s, t))) => {
                let hit = match kind {
                    Kind::Live => s >= key,
                    Kind::Bcast => s == key,
                };
                if k == kind && hit {
                    got += 1;
                    last = Some(last.map_or(t, |l: Instant| l.max(t)));
                }
            }
            _ => return None,
        }
    }
    last
}

async fn fanout(port: u16, n: usize, rounds: usize, warmup: usize) -> Result<FanoutResult> {
    let shard = format!("fanout-{n}-{}", std::process::id());
    let writer = connect(port, &shard, Encoding::Postcard).await?;
    let mut seq = seed(&writer, 1000.0).await?;

    let started = Instant::now();
    let subs = subscribers(port, &shard, n).await?;
    let connect_secs = started.elapsed().as_secs_f64();
    let (mut clients, watchers, mut rx) = watch_all(subs).await;

    let (mut live, mut bcast, mut missed) = (Vec::new(), Vec::new(), 0);
    for round in 0..(warmup + rounds) {
        // A B, then B A: neither kind always goes first.
        let order = if round % 2 == 0 {
            [Kind::Live, Kind::Bcast]
        } else {
            [Kind::Bcast, Kind::Live]
        };
        for kind in order {
            while rx.try_recv().is_ok() {}
            let t0 = Instant::now();
            let last = match kind {
                Kind::Live => {
                    let expect = seq + 1;
                    let id = format!("r{round}");
                    // Lowest position so far: it enters every window.
                    let op = Op::Insert {
                        entity: "Card".into(),
                        row: card(&id, -(round as f64)),
                    };
                    let ack = writer.mutate(vec![op]);
                    let (ack, last) = tokio::join!(ack, last_arrival(&mut rx, kind, expect, n));
                    let ack = ack?;
                    ensure!(
                        ack.seq == expect,
                        "another writer on {shard}? seq {} != {expect}",
                        ack.seq
                    );
                    seq = ack.seq;
                    last
                }
                Kind::Bcast => {
                    let key = round as u64 + 1;
                    writer.broadcast("bench", Value::Int(key as i64)).await?;
                    last_arrival(&mut rx, kind, key, n).await
                }
            };
            match last {
                Some(t) if round >= warmup => {
                    let d = ms(t.saturating_duration_since(t0));
                    match kind {
                        Kind::Live => live.push(d),
                        Kind::Bcast => bcast.push(d),
                    }
                }
                Some(_) => {}
                None => missed += 1,
            }
            // Stay well under the per-connection message rate (100/s).
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    for w in &watchers {
        w.abort();
    }
    clients.push(writer);
    close_all(clients).await;
    Ok(FanoutResult {
        n,
        live,
        bcast,
        missed,
        connect_secs,
    })
}

// ---------------------------------------------------------------------------
// 4. a stalled reader among N

/// Padding of each write in the stalled-reader runs: the stalled socket
/// passes its 1 MiB window after about 43 rounds.
const SLOW_PAD: usize = 24 * 1024;

struct SlowRun {
    stalled: bool,
    /// Every reader's latency in every round (ms).
    p50: f64,
    p99: f64,
    /// Rounds in which some reader never got the write.
    missed: usize,
    /// Every sample, for the figures pooled over runs.
    lat: Vec<f64>,
    /// The close code the stalled socket read at the end.
    closed: Option<u16>,
}

/// A socket subscribed to [`window`] that will never be read again.
async fn stalled_socket(port: u16, shard: &str) -> Result<RawConnection> {
    let config = ClientConfig::new(format!("ws://127.0.0.1:{port}"), shard);
    let mut raw = RawConnection::connect(&config).await?;
    raw.recv_welcome().await?;
    let sub = Sub {
        id: "w".into(),
        entity: "Card".into(),
        order: json!(["position"]).into(),
        limit: Some(20),
        ..Default::default()
    };
    raw.send(&ClientMsg::Sub(sub)).await?;
    loop {
        if let ServerMsg::Snap(_) = raw.recv_msg().await? {
            return Ok(raw);
        }
    }
}

/// Waits for `n` receivers of `(Live, >= key)`; their arrival times.
async fn all_arrivals(
    rx: &mut mpsc::UnboundedReceiver<(Kind, u64, Instant)>,
    key: u64,
    n: usize,
) -> Vec<Instant> {
    let deadline = tokio::time::Instant::now() + ROUND_TIMEOUT;
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((Kind::Live, s, t))) if s >= key => got.push(t),
            Ok(Some(_)) => {}
            _ => break,
        }
    }
    got
}

/// One run: `rounds` writes of a padded row that enters every window.
#[allow(clippy::too_many_arguments)]
async fn slow_run(
    port: u16,
    shard: &str,
    writer: &Client,
    rx: &mut mpsc::UnboundedReceiver<(Kind, u64, Instant)>,
    n: usize,
    rounds: usize,
    run: usize,
    stalled: bool,
) -> Result<SlowRun> {
    let control = env_num("PYLON_BENCH_SLOW_CONTROL", 0) == 1;
    let mut slow = match stalled && !control {
        true => Some(stalled_socket(port, shard).await?),
        false => None,
    };
    let pad = "x".repeat(SLOW_PAD);
    let (mut lat, mut missed) = (Vec::with_capacity(n * rounds), 0);
    let mut seq = 0;
    for round in 0..rounds {
        while rx.try_recv().is_ok() {}
        let id = format!("s{run}-{round}");
        let mut r = card(&id, -((run * rounds + round) as f64));
        r.insert("title".into(), Value::Text(pad.clone()));
        let t0 = Instant::now();
        let op = Op::Insert {
            entity: "Card".into(),
            row: r,
        };
        let ack = writer.mutate(vec![op]).await?;
        ensure!(seq == 0 || ack.seq == seq + 1, "another writer on {shard}?");
        seq = ack.seq;
        let got = all_arrivals(rx, ack.seq, n).await;
        if got.len() < n {
            missed += 1;
        }
        lat.extend(got.iter().map(|t| ms(t.saturating_duration_since(t0))));
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // The stalled socket reads what was queued for it, then its close.
    let mut closed = None;
    if let Some(raw) = slow.as_mut() {
        let drain = async {
            loop {
                match raw.recv().await {
                    Ok(Received::Closed { code, .. }) => return code,
                    Ok(_) => continue,
                    Err(_) => return None,
                }
            }
        };
        closed = tokio::time::timeout(Duration::from_secs(10), drain)
            .await
            .ok()
            .flatten();
    }
    let s = stats(lat.clone());
    Ok(SlowRun {
        stalled,
        p50: s.p50,
        p99: s.p99,
        missed,
        lat,
        closed,
    })
}

/// `pairs` pairs of runs on one shard with `n` readers.
async fn slow_readers(port: u16, n: usize, pairs: usize, rounds: usize) -> Result<Vec<SlowRun>> {
    let shard = format!("slow-{n}-{}", std::process::id());
    let writer = connect(port, &shard, Encoding::Postcard).await?;
    seed(&writer, 1e9).await?;
    let subs = subscribers(port, &shard, n).await?;
    let (mut clients, watchers, mut rx) = watch_all(subs).await;
    // A warm-up run, not recorded.
    slow_run(port, &shard, &writer, &mut rx, n, rounds / 4, 0, false).await?;
    let mut out = Vec::new();
    for pair in 0..pairs {
        let order = if pair % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for stalled in order {
            let run = 1 + out.len();
            let r = slow_run(port, &shard, &writer, &mut rx, n, rounds, run, stalled).await?;
            eprintln!(
                "  pair {pair} {}: p50 {:.1} p99 {:.1} ms, missed {}, stalled socket closed {:?}",
                if stalled { "with   " } else { "without" },
                r.p50,
                r.p99,
                r.missed,
                r.closed
            );
            out.push(r);
        }
    }
    for w in &watchers {
        w.abort();
    }
    clients.push(writer);
    close_all(clients).await;
    Ok(out)
}

// ---------------------------------------------------------------------------
// 2. acknowledged mutations per second

struct RateResult {
    label: String,
    per_run: Vec<f64>,
    rate_limited: u64,
    failed: u64,
}

/// What each round trip of the rate measurement is.
#[derive(Clone, Copy, PartialEq)]
enum Load {
    /// A one-row update as a `mut`.
    Mut,
    /// The same update as a call of a mutation function (TypeScript, or
    /// its Rust twin).
    Call(&'static str),
    /// A ping: the same round trips with no storage and no fan-out, the
    /// per-event floor of this machine's runtime, as a baseline.
    Ping,
}

async fn mutation_rate(
    port: u16,
    shard: &str,
    writers: usize,
    depth: usize,
    secs: u64,
    runs: usize,
    load: Load,
) -> Result<RateResult> {
    let mut ws = Vec::with_capacity(writers);
    for _ in 0..writers {
        ws.push(connect(port, shard, Encoding::Postcard).await?);
    }
    let ok = Arc::new(AtomicU64::new(0));
    let limited = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut per_run = Vec::new();
    for _ in 0..runs {
        ok.store(0, Ordering::Relaxed);
        let started = Instant::now();
        let end = started + Duration::from_secs(secs);
        let mut set = JoinSet::new();
        for (w, c) in ws.iter().enumerate() {
            for lane in 0..depth.max(1) {
                let (c, ok, limited, failed) =
                    (c.clone(), ok.clone(), limited.clone(), failed.clone());
                set.spawn(async move {
                    let mut k = 0u64;
                    while Instant::now() < end {
                        k += 1;
                        // One of the 20 rows every subscriber holds: each
                        // ack means a diff to all of them.
                        let id = format!("seed{}", (w + lane) % SEED_ROWS);
                        let title = format!("w{w}.{lane}.{k}");
                        let done = async {
                            match load {
                                Load::Ping => c.ping().await.map(|_| ()),
                                Load::Mut => {
                                    let op = Op::Update {
                                        entity: "Card".into(),
                                        id,
                                        set: row(json!({ "title": title })),
                                    };
                                    c.mutate(vec![op]).await.map(|_| ())
                                }
                                // The same update through one of the
                                // board's functions.
                                Load::Call(name) => c
                                    .call(name, json!({"cardId": id, "title": title}).into())
                                    .await
                                    .map(|_| ()),
                            }
                        };
                        match tokio::time::timeout(Duration::from_secs(10), done).await {
                            Ok(Ok(())) => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(Err(e)) if e.code() == Some(ErrorCode::RateLimited) => {
                                limited.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                            _ => {
                                failed.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                        }
                    }
                });
            }
        }
        while set.join_next().await.is_some() {}
        let took = started.elapsed().as_secs_f64();
        per_run.push(ok.load(Ordering::Relaxed) as f64 / took);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    close_all(ws).await;
    let label = if depth == 0 {
        format!("{writers} writer(s), 1 in flight each")
    } else {
        format!("{writers} writer(s), {depth} in flight each")
    };
    Ok(RateResult {
        label,
        per_run,
        rate_limited: limited.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
    })
}

// ---------------------------------------------------------------------------
// 3. first answer after an eviction

struct ColdResult {
    cold: Vec<f64>,
    warm: Vec<f64>,
    /// The floor: `GET …/alive` on a second shard, which the host answers
    /// before it opens the object (the platform's own cost of a first
    /// request after an eviction), cold and warm.
    floor_cold: Vec<f64>,
    floor_warm: Vec<f64>,
    not_evicted: usize,
}

/// Seeds `shard` with [`SEED_ROWS`] cards and leaves it with no socket.
async fn seeded(port: u16, shard: &str) -> Result<()> {
    let w = connect(port, shard, Encoding::Postcard).await?;
    let seed: Vec<Op> = (0..SEED_ROWS)
        .map(|i| Op::Insert {
            entity: "Card".into(),
            row: card(&format!("c{i}"), i as f64),
        })
        .collect();
    w.mutate(seed).await?;
    w.close().await;
    Ok(())
}

async fn cold_query(dev: &WranglerDev, port: u16, samples: usize) -> Result<ColdResult> {
    let shard = format!("cold-{}", std::process::id());
    let floor_shard = format!("floor-{}", std::process::id());
    seeded(port, &shard).await?;
    seeded(port, &floor_shard).await?;
    // A fresh TCP connection for every request, cold or warm alike.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let query_url = dev.http(&format!("/v1/shards/{shard}/query"));
    let alive_url = dev.http(&format!("/v1/shards/{floor_shard}/alive"));
    let body = json!({"entity": "Card", "order": ["position"], "limit": 20});
    let timed = |http: reqwest::Client| {
        let (url, body) = (query_url.clone(), body.clone());
        async move {
            let t0 = Instant::now();
            let r = http.post(&url).json(&body).send().await?;
            let status = r.status();
            let v: serde_json::Value = r.json().await?;
            let d = ms(t0.elapsed());
            ensure!(status.is_success(), "{status} {v}");
            ensure!(v["rows"].as_array().map(Vec::len) == Some(SEED_ROWS), "{v}");
            anyhow::Ok(d)
        }
    };
    let floor = |http: reqwest::Client| {
        let url = alive_url.clone();
        async move {
            let t0 = Instant::now();
            let r = http.get(&url).send().await?;
            let status = r.status();
            r.bytes().await?;
            let d = ms(t0.elapsed());
            ensure!(status.as_u16() == 204, "alive: {status}");
            anyhow::Ok(d)
        }
    };
    let wakes = |http: reqwest::Client, shard: String| {
        let url = dev.http(&format!("/v1/shards/{shard}/stats"));
        async move {
            let v: serde_json::Value = http.get(&url).send().await?.json().await?;
            anyhow::Ok(v["wakes"].as_u64().unwrap_or(0))
        }
    };
    let idle = std::env::var("PYLON_BENCH_IDLE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(IDLE_FOR_EVICTION);
    let mut r = ColdResult {
        cold: Vec::new(),
        warm: Vec::new(),
        floor_cold: Vec::new(),
        floor_warm: Vec::new(),
        not_evicted: 0,
    };
    for i in 0..samples {
        let before = wakes(http.clone(), shard.clone()).await?;
        let floor_before = wakes(http.clone(), floor_shard.clone()).await?;
        eprintln!("  cold sample {}/{samples}: idling {idle:?}", i + 1);
        tokio::time::sleep(idle).await;
        // Both shards were evicted in the same idle; which goes first
        // alternates, so neither always meets a busier runtime.
        let (d, f) = if i % 2 == 0 {
            let d = timed(http.clone()).await?;
            (d, floor(http.clone()).await?)
        } else {
            let f = floor(http.clone()).await?;
            (timed(http.clone()).await?, f)
        };
        // `alive` opens nothing, but the constructor counts the wake.
        if wakes(http.clone(), shard.clone()).await? > before
            && wakes(http.clone(), floor_shard.clone()).await? > floor_before
        {
            r.cold.push(d);
            r.floor_cold.push(f);
        } else {
            r.not_evicted += 1;
        }
        // The warm baselines, interleaved: the same requests right after.
        for _ in 0..5 {
            r.warm.push(timed(http.clone()).await?);
            r.floor_warm.push(floor(http.clone()).await?);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(r)
}

/// The warm line of an eviction sample's report and its cold ÷ warm.
fn warm_and_ratio(cold: &support::Stats, warm: &support::Stats, label: &str) {
    println!(
        "  warm:           n={} p50 {:.1} p95 {:.1} max {:.1}",
        warm.n, warm.p50, warm.p95, warm.max
    );
    println!(
        "  {label} cold/warm: p50 {:.2}x  p95 {:.2}x",
        cold.p50 / warm.p50,
        cold.p95 / warm.p95
    );
}

// ---------------------------------------------------------------------------

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("fanout bench failed: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> Result<()> {
    support::require_build(&root())?;
    let ns = env_list("PYLON_BENCH_N", "100,999");
    let rounds = env_num("PYLON_BENCH_ROUNDS", 100);
    let warmup = env_num("PYLON_BENCH_WARMUP", 10);
    let writers = env_list("PYLON_BENCH_WRITERS", "1,32");
    let depth = env_num("PYLON_BENCH_DEPTH", 8);
    let secs = env_num("PYLON_BENCH_SECS", 5) as u64;
    let runs = env_num("PYLON_BENCH_RUNS", 3);
    let cold_samples = env_num("PYLON_BENCH_COLD", 5);
    let max_n = ns.iter().copied().max().unwrap_or(0);
    ensure_fds(max_n as u64 + 256)?;

    let dir: PathBuf = root()
        .join("target")
        .join("bench-fanout")
        .join(format!("run-{}", std::process::id()));
    // Wrangler vars (limits, A/B settings on one build): see support::bench_vars.
    // D1 is not migrated: the shards' outbox drains fail (logged at error)
    // and write nothing to it.
    let dev = DevOptions::new()
        .vars(support::bench_vars(BENCH_VARS))
        .unmigrated()
        .log_level("warn")
        .local_observability(observability_on())
        .start(&dir)
        .await?;
    let port = dev.port;
    eprintln!(
        "wrangler dev on 127.0.0.1:{port}, log {}",
        dev.log.display()
    );

    let mut fan = Vec::new();
    if wants("fanout") {
        for &n in &ns {
            eprintln!("fan-out, N = {n}");
            let f = fanout(port, n, rounds, warmup).await?;
            let (l, b) = (stats(f.live.clone()), stats(f.bcast.clone()));
            eprintln!(
                "  live p50 {:.1} p99 {:.1} | bcast p50 {:.1} p99 {:.1} ms",
                l.p50, l.p99, b.p50, b.p99
            );
            fan.push(f);
        }
    }

    let mut rates = Vec::new();
    if wants("rate") {
        let shard = format!("rate-{}", std::process::id());
        let w = connect(port, &shard, Encoding::Postcard).await?;
        let seed: Vec<Op> = (0..SEED_ROWS)
            .map(|i| Op::Insert {
                entity: "Card".into(),
                row: card(&format!("seed{i}"), i as f64),
            })
            .collect();
        w.mutate(seed).await?;
        w.close().await;
        eprintln!("mutation rate, 100 subscribers");
        let subs = subscribers(port, &shard, 100).await?;
        // Keep the subscriptions alive (their clients drain the diffs).
        let mut variants: Vec<(usize, usize)> = writers.iter().map(|&w| (w, 0)).collect();
        if depth > 0 {
            if let Some(&w) = writers.iter().max() {
                variants.push((w, depth));
            }
        }
        for (w, d) in variants {
            eprintln!("  {w} writers, depth {d}: raw mut, then the same write through functions");
            // The raw write and the same write through the board's
            // functions (TypeScript and its Rust twin), interleaved run by
            // run so the machine's drift falls on all three alike.
            let mut loads = vec![
                (Load::Mut, ""),
                (Load::Call("renameCard"), ", function renameCard"),
                (Load::Call("renameCardRust"), ", function renameCardRust"),
            ];
            if env_num("PYLON_BENCH_FUNCTIONS", 1) == 0 {
                loads.truncate(1);
            }
            let mut results: Vec<Option<RateResult>> = loads.iter().map(|_| None).collect();
            for _ in 0..runs {
                for (i, (load, suffix)) in loads.iter().enumerate() {
                    let r = mutation_rate(port, &shard, w, d, secs, 1, *load).await?;
                    match &mut results[i] {
                        Some(acc) => {
                            acc.per_run.extend(r.per_run);
                            acc.rate_limited += r.rate_limited;
                            acc.failed += r.failed;
                        }
                        slot => {
                            let mut r = r;
                            r.label.push_str(suffix);
                            *slot = Some(r);
                        }
                    }
                }
            }
            rates.extend(results.into_iter().flatten());
        }
        let (clients, subs): (Vec<_>, Vec<_>) = subs.into_iter().unzip();
        drop(subs);
        close_all(clients).await;
        // The same load with nobody subscribed: what the fan-out costs.
        if let Some(&w) = writers.iter().max() {
            eprintln!("  {w} writers, depth 0, no subscribers");
            let mut r = mutation_rate(port, &shard, w, 0, secs, runs, Load::Mut).await?;
            r.label.push_str(", 0 subscribers");
            rates.push(r);
            // Pipelined too: against the pipelined floor, what the write
            // itself costs (storage, engine) apart from its fan-out.
            if depth > 0 {
                eprintln!("  {w} writers, depth {depth}, no subscribers");
                let mut r = mutation_rate(port, &shard, w, depth, secs, runs, Load::Mut).await?;
                r.label.push_str(", 0 subscribers");
                rates.push(r);
            }
            // Baseline: the same round trips as pings (no storage, no diffs),
            // one in flight and pipelined like the writes.
            let depths = if depth > 0 { vec![0, depth] } else { vec![0] };
            for d in depths {
                eprintln!("  {w} writers, depth {d}, ping round trips (baseline)");
                let mut r = mutation_rate(port, &shard, w, d, secs, runs, Load::Ping).await?;
                r.label = format!("{w} clients x {} in flight, pings (floor)", d.max(1));
                rates.push(r);
            }
        }
    }

    // Opt-in: a run of its own (`PYLON_BENCH_ONLY=slow`).
    let mut slow = Vec::new();
    let slow_n = env_num("PYLON_BENCH_SLOW_N", 100);
    let slow_rounds = env_num("PYLON_BENCH_SLOW_ROUNDS", 60);
    if std::env::var("PYLON_BENCH_ONLY").is_ok() && wants("slow") {
        let pairs = env_num("PYLON_BENCH_SLOW_PAIRS", 5);
        eprintln!("a stalled reader among {slow_n}, {pairs} pairs of {slow_rounds} rounds");
        slow = slow_readers(port, slow_n, pairs, slow_rounds).await?;
    }

    let mut cold = None;
    if wants("cold") && cold_samples > 0 {
        eprintln!("first answer after eviction, {cold_samples} samples");
        cold = Some(cold_query(&dev, port, cold_samples).await?);
    }
    drop(dev);

    // ---- report
    println!();
    println!("pylon-workers under wrangler dev, 127.0.0.1, release Worker build");
    let vars: Vec<String> = support::bench_vars(BENCH_VARS)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    println!(
        "wrangler local observability: {}; vars: {}",
        if observability_on() { "on" } else { "off" },
        vars.join(" ")
    );
    if !fan.is_empty() {
        println!();
        println!("1. fan-out: write -> LAST of N subscribers (ms); baseline: bcast -> last of N, interleaved");
        println!(
            "{:>5} {:>6} | {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} | {:>7} {:>7} | {:>6} {:>8}",
            "N",
            "rounds",
            "live p50",
            "p99",
            "max",
            "bcast p50",
            "p99",
            "max",
            "p50 x",
            "p99 x",
            "missed",
            "connect"
        );
        for f in &fan {
            let (l, b) = (stats(f.live.clone()), stats(f.bcast.clone()));
            println!(
                "{:>5} {:>6} | {:>8.1} {:>8.1} {:>8.1} | {:>9.1} {:>8.1} {:>8.1} | {:>7.2} {:>7.2} | {:>6} {:>7.1}s",
                f.n, l.n.min(b.n), l.p50, l.p99, l.max, b.p50, b.p99, b.max,
                l.p50 / b.p50, l.p99 / b.p99, f.missed, f.connect_secs
            );
        }
    }
    if !rates.is_empty() {
        println!();
        println!("2. acknowledged single-row updates per second, one shard, 100 subscribers ({secs} s runs)");
        for r in &rates {
            let mut v = r.per_run.clone();
            v.sort_by(|a, b| a.total_cmp(b));
            let runs: Vec<String> = r.per_run.iter().map(|x| format!("{x:.0}")).collect();
            println!(
                "  {:<36} median {:>7.0}/s  (runs: {})  rate-limited: {}  other errors: {}",
                r.label,
                pct(&v, 50.0),
                runs.join(", "),
                r.rate_limited,
                r.failed
            );
        }
    }
    if !slow.is_empty() {
        println!();
        println!(
            "4. a stalled reader among {slow_n}: write -> each reader's diff (ms), {slow_rounds} writes of {} KiB per run",
            SLOW_PAD / 1024
        );
        println!(
            "{:>4} | {:>8} {:>8} | {:>8} {:>8} | {:>7} {:>7} | {:>6} | closed",
            "pair", "w/o p50", "p99", "with p50", "p99", "p50 x", "p99 x", "missed"
        );
        let (mut r50, mut r99) = (Vec::new(), Vec::new());
        let (mut a50, mut a99, mut b50, mut b99) = (vec![], vec![], vec![], vec![]);
        for (i, pair) in slow.chunks(2).enumerate() {
            let (Some(a), Some(b)) = (
                pair.iter().find(|r| !r.stalled),
                pair.iter().find(|r| r.stalled),
            ) else {
                continue;
            };
            r50.push(b.p50 / a.p50);
            r99.push(b.p99 / a.p99);
            a50.push(a.p50);
            a99.push(a.p99);
            b50.push(b.p50);
            b99.push(b.p99);
            println!(
                "{:>4} | {:>8.1} {:>8.1} | {:>8.1} {:>8.1} | {:>7.2} {:>7.2} | {:>6} | {:?}",
                i,
                a.p50,
                a.p99,
                b.p50,
                b.p99,
                b.p50 / a.p50,
                b.p99 / a.p99,
                a.missed + b.missed,
                b.closed
            );
        }
        println!(
            "median | {:>8.1} {:>8.1} | {:>8.1} {:>8.1} | {:>7.2} {:>7.2} |",
            support::median(&a50),
            support::median(&a99),
            support::median(&b50),
            support::median(&b99),
            support::median(&r50),
            support::median(&r99)
        );
        let pooled = |stalled: bool| {
            stats(
                slow.iter()
                    .filter(|r| r.stalled == stalled)
                    .flat_map(|r| r.lat.iter().copied())
                    .collect(),
            )
        };
        let (a, b) = (pooled(false), pooled(true));
        println!(
            "pooled | {:>8.1} {:>8.1} | {:>8.1} {:>8.1} | {:>7.2} {:>7.2} | samples {} / {}",
            a.p50,
            a.p99,
            b.p50,
            b.p99,
            b.p50 / a.p50,
            b.p99 / a.p99,
            a.n,
            b.n
        );
    }
    if let Some(c) = &cold {
        let (k, w) = (stats(c.cold.clone()), stats(c.warm.clone()));
        let (fk, fw) = (stats(c.floor_cold.clone()), stats(c.floor_warm.clone()));
        println!();
        println!("3. POST /v1/shards/{{shard}}/query, fresh TCP connection each (ms)");
        println!(
            "  after eviction: n={} p50 {:.1} p95 {:.1} max {:.1}   (not evicted, dropped: {})",
            k.n, k.p50, k.p95, k.max, c.not_evicted
        );
        warm_and_ratio(&k, &w, "ratio");
        println!("  floor, GET …/alive (answered before the object opens):");
        println!(
            "  after eviction: n={} p50 {:.1} p95 {:.1} max {:.1}",
            fk.n, fk.p50, fk.p95, fk.max
        );
        warm_and_ratio(&fk, &fw, "floor ratio");
        println!(
            "  what a wake adds, query minus floor (cold - warm), p50: {:.1} - {:.1} ms",
            k.p50 - w.p50,
            fk.p50 - fw.p50
        );
    }
    Ok(())
}
