//! Simulation shards against `wrangler dev`: the board's `plane` kind
//! (20 Hz, `/v1/sims/plane/{id}`).
//!
//! ```sh
//! bash scripts/build-worker.sh          # the bench builds nothing itself
//! cargo bench --features client --bench sim
//! ```
//!
//! It expects `build/` (the release Worker) and fails otherwise. Like the
//! fan-out bench it starts its own `wrangler dev` on a free loopback port
//! with a temporary `--persist-to` (under `target/bench-sim/`), once per
//! tick rate and once for the fan-out, each with the plane's rate set by
//! the deployment setting `PYLON_SIM_TICK_HZ_PLANE` (docs/sims.md), and
//! kills its process group after each. Measured (see docs/benchmarks.md,
//! "Simulation shards"):
//!
//! 1. ticks: one shard, S subscribers, for a window: ticks the shard ran
//!    per second (its stats) and per subscriber (tick numbers in the
//!    snapshots it received) against the configured rate; `ticks_skipped`;
//!    one subscriber sends an input every `PYLON_BENCH_INPUT_MS` on
//!    average, and the time until its own snapshot has `acked >= seq` is
//!    the input → snapshot latency; the spread of one tick's snapshots (first to last
//!    subscriber); and the shard's bill over the window (alarms fired and
//!    set, SQL rows written and read: `this_wake` of `GET …/stats`).
//! 2. idle (in the first rate's run): a shard that had one input and one
//!    socket, once it stopped ticking: its alarms and rows written over
//!    an idle window, from `GET …/stats` at both ends (`wakes` tells
//!    whether anything woke it in between).
//! 3. fan-out: the plane made event-driven (`PYLON_SIM_TICK_HZ_PLANE=0`),
//!    so that one input runs one tick and sends every socket its snapshot
//!    in that event: time from the input to the LAST of N receivers'
//!    snapshots. Floor, interleaved round by round (A B, then B A): a live
//!    shard's `bcast` from one writer to N sockets, time to the last. Both
//!    kinds of receiver are bare sockets with a reader task that decodes
//!    and stamps each frame on one channel, so the load generator costs
//!    both the same.
//!
//! Knobs (environment):
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `PYLON_BENCH_HZ` | `20,60` | tick rates measured, one `wrangler dev` each |
//! | `PYLON_BENCH_SUBS` | `100` | subscribers on the ticking shard |
//! | `PYLON_BENCH_WINDOW_SECS` | `30` | measured window per rate |
//! | `PYLON_BENCH_INPUT_MS` | `100` | the probe's mean input interval (each drawn from 0.5 to 1.5 times it) |
//! | `PYLON_BENCH_IDLE_SECS` | `90` | idle window (`0`: skip) |
//! | `PYLON_BENCH_N` | `100,999` | fan-out receiver counts (plus the sender: at most 1,000 sockets, the live shard's limit) |
//! | `PYLON_BENCH_ROUNDS` | `100` | measured fan-out rounds per kind and N |
//! | `PYLON_BENCH_WARMUP` | `10` | warm-up rounds per kind, not recorded |
//! | `PYLON_BENCH_ONLY` | all | comma list of `ticks`, `idle`, `fanout` |
//! | `PYLON_BENCH_VARS` | none | `NAME:VALUE,...` more wrangler vars (a name given here wins over [`BENCH_VARS`]) |
//! | `PYLON_BENCH_OBSERVABILITY` | `0` | `1` keeps `wrangler dev`'s local observability collector on |
//!
//! The collector is off unless asked for, as in the fan-out bench (it
//! traces every invocation on the object's thread; deployed Workers have
//! none). The default run takes about five minutes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context, Result};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use pylon_workers::client::{ClientConfig, RawConnection, Received};
use pylon_workers::protocol::{ClientMsg, Encoding, Frame, FrameRef, SendBcast, ServerMsg};
use pylon_workers::sim::plane::{Steer, View};
use pylon_workers::sim::wire::{self, InputMsg, SimClientMsg, SimServerMsg};
use pylon_workers::value::Value;
use serde_json::Value as Json;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

// The e2e suite's wrangler dev starter (free port, own process group).
mod support;
#[path = "../tests/wrangler_dev/mod.rs"]
mod wrangler_dev;
use support::{
    encoding_for, ensure_fds, env_list, env_num, median, ms, observability_on, stats, wants,
};
use wrangler_dev::{project_root as root, DevOptions};

/// The kind measured, and its deployment settings' suffix.
const KIND: &str = "plane";
/// Wrangler vars every run sets: room for 1,000 sockets on a plane (its
/// own limit is 64), and the live shard's per-connection message limit
/// lifted for the floor's writer, as in the fan-out bench.
const BENCH_VARS: &[(&str, &str)] = &[
    ("PYLON_SIM_MAX_SUBSCRIBERS_PLANE", "1000"),
    ("PYLON_MSGS_PER_SEC", "100000"),
    ("PYLON_MSG_BURST", "100000"),
];
/// Sockets opened at once while filling a shard.
const CONNECT_BATCH: usize = 50;
/// After the subscribers joined, before the window.
const SETTLE: Duration = Duration::from_secs(3);
/// How long one fan-out round may wait for its last receiver.
const ROUND_TIMEOUT: Duration = Duration::from_secs(10);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------
// simulation sockets and the shard's stats

/// What a socket received, decoded: a simulation socket's snapshot, ack
/// or refusal, or a live socket's `bcast`.
#[derive(Clone, Copy, Debug)]
enum Seen {
    Snapshot { tick: u64, acked: u64 },
    Ack { seq: u64, tick: u64 },
    Refused,
    Bcast { key: u64 },
}

type Arrivals = mpsc::UnboundedSender<(usize, Seen, Instant)>;

/// The sending half of a `pylon.sim.v1` socket; a task reads the other.
struct SimSocket {
    sink: SplitSink<Ws, Message>,
    encoding: Encoding,
    reader: JoinHandle<()>,
}

impl SimSocket {
    /// Opens a socket to shard `id`; its reader sends `(idx, seen, when)`
    /// on `tx` for every snapshot, ack and refusal.
    async fn open(
        port: u16,
        id: &str,
        encoding: Encoding,
        idx: usize,
        tx: Arrivals,
    ) -> Result<SimSocket> {
        let url = format!("ws://127.0.0.1:{port}/v1/sims/{KIND}/{id}/ws");
        let mut last = None;
        // A loaded machine can stall a handshake: three attempts, bounded.
        for _ in 0..3 {
            let mut req = url.as_str().into_client_request()?;
            req.headers_mut()
                .insert("Sec-WebSocket-Protocol", encoding.subprotocol().parse()?);
            // TCP_NODELAY: a small frame must not wait for a delayed ACK.
            let attempt = tokio_tungstenite::connect_async_with_config(req, None, true);
            match tokio::time::timeout(Duration::from_secs(20), attempt).await {
                Ok(Ok((ws, _))) => {
                    let (sink, stream) = ws.split();
                    let reader = tokio::spawn(read_sim(stream, encoding, idx, tx));
                    return Ok(SimSocket {
                        sink,
                        encoding,
                        reader,
                    });
                }
                Ok(Err(e)) => last = Some(anyhow::Error::from(e).context("sim connect")),
                Err(_) => last = Some(anyhow::anyhow!("sim connect timed out")),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("sim connect failed")))
    }

    async fn input(&mut self, seq: u64, input: Steer) -> Result<()> {
        let msg = SimClientMsg::Input(InputMsg { seq, input });
        let frame = match wire::encode_client(self.encoding, &msg) {
            Frame::Text(t) => Message::text(t),
            Frame::Binary(b) => Message::binary(b),
        };
        self.sink.send(frame).await.context("sending an input")
    }

    async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.sink.close()).await;
        self.reader.abort();
    }
}

async fn read_sim(mut stream: SplitStream<Ws>, encoding: Encoding, idx: usize, tx: Arrivals) {
    while let Some(Ok(msg)) = stream.next().await {
        let now = Instant::now();
        let frame = match &msg {
            Message::Text(t) => FrameRef::Text(t.as_str()),
            Message::Binary(b) => FrameRef::Binary(b),
            _ => continue,
        };
        let seen = match wire::decode_server::<View>(encoding, frame) {
            Ok(SimServerMsg::Snapshot(s)) => Seen::Snapshot {
                tick: s.tick,
                acked: s.acked,
            },
            Ok(SimServerMsg::Ack(a)) => Seen::Ack {
                seq: a.seq,
                tick: a.tick,
            },
            Ok(SimServerMsg::Err(_)) => Seen::Refused,
            _ => continue,
        };
        if tx.send((idx, seen, now)).is_err() {
            return;
        }
    }
}

/// Opens `n` sockets to `id` (encodings as [`encoding_for`]), numbered
/// `first..first + n`, in batches of [`CONNECT_BATCH`].
async fn open_many(
    port: u16,
    id: &str,
    first: usize,
    n: usize,
    tx: &Arrivals,
) -> Result<Vec<SimSocket>> {
    let mut out: Vec<(usize, SimSocket)> = Vec::with_capacity(n);
    let mut next = first;
    while next < first + n {
        let mut set = JoinSet::new();
        for i in next..(next + CONNECT_BATCH).min(first + n) {
            let (id, tx) = (id.to_owned(), tx.clone());
            set.spawn(async move {
                let s = SimSocket::open(port, &id, encoding_for(i), i, tx).await?;
                anyhow::Ok((i, s))
            });
        }
        while let Some(r) = set.join_next().await {
            out.push(r??);
        }
        next = first + out.len();
    }
    out.sort_by_key(|(i, _)| *i);
    Ok(out.into_iter().map(|(_, s)| s).collect())
}

async fn close_sims(sockets: Vec<SimSocket>) {
    let mut set = JoinSet::new();
    for s in sockets {
        set.spawn(s.close());
    }
    while set.join_next().await.is_some() {}
}

/// `GET /v1/sims/plane/{id}/stats`, and the wall time halfway through it.
async fn sim_stats(http: &reqwest::Client, port: u16, id: &str) -> Result<(Json, Instant)> {
    let url = format!("http://127.0.0.1:{port}/v1/sims/{KIND}/{id}/stats");
    let t0 = Instant::now();
    let r = http.get(&url).send().await?;
    let status = r.status();
    let v: Json = r.json().await?;
    let took = t0.elapsed();
    ensure!(status.is_success(), "GET {url}: {status} {v}");
    Ok((v, t0 + took / 2))
}

fn u(v: &Json, path: &[&str]) -> u64 {
    path.iter().fold(v, |v, k| &v[*k]).as_u64().unwrap_or(0)
}

/// What a shard's wake cost between two reads of its stats.
#[derive(Clone, Debug, Default)]
struct Bill {
    secs: f64,
    alarms_fired: u64,
    alarms_set: u64,
    rows_written: u64,
    rows_read: u64,
    statements: u64,
    /// Both reads saw the same wake (nothing was rebuilt in between).
    same_wake: bool,
}

impl Bill {
    fn between(a: &Json, b: &Json, secs: f64) -> Bill {
        let d = |path: &[&str]| u(b, path).saturating_sub(u(a, path));
        Bill {
            secs,
            alarms_fired: d(&["this_wake", "alarms_fired"]),
            alarms_set: d(&["this_wake", "alarms_set"]),
            rows_written: d(&["this_wake", "sql", "rows_written"]),
            rows_read: d(&["this_wake", "sql", "rows_read"]),
            statements: d(&["this_wake", "sql", "statements"]),
            same_wake: a["this_wake"]["opened_ms"] == b["this_wake"]["opened_ms"]
                && a["wakes"] == b["wakes"],
        }
    }

    fn per_hour(&self, n: u64) -> f64 {
        n as f64 * 3600.0 / self.secs
    }
}

// ---------------------------------------------------------------------------
// 1. ticks at a configured rate

struct TickResult {
    hz: u32,
    subs: usize,
    window_secs: f64,
    /// Ticks the shard ran per second (its stats).
    server_rate: f64,
    /// Per subscriber: tick numbers advanced per second, in its snapshots.
    client_rates: Vec<f64>,
    /// Per subscriber: snapshots received per second (one per wake).
    snapshot_rates: Vec<f64>,
    skipped: u64,
    /// Per tick seen by every subscriber: last arrival − first (ms).
    spread: Vec<f64>,
    /// Input → the sender's snapshot with `acked >= seq` (ms).
    latency: Vec<f64>,
    inputs: usize,
    unanswered: usize,
    refused: usize,
    bill: Bill,
}

async fn ticks(
    http: &reqwest::Client,
    port: u16,
    hz: u32,
    subs: usize,
    window: Duration,
    input_every: Duration,
) -> Result<TickResult> {
    let id = format!("ticks-{hz}-{}", std::process::id());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let started = Instant::now();
    let mut sockets = open_many(port, &id, 0, subs, &tx).await?;
    drop(tx);
    eprintln!(
        "  {subs} subscribers on {id} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // Everything every socket sees, by socket, until the window closes.
    let collector = tokio::spawn(async move {
        let mut seen: Vec<Vec<(Seen, Instant)>> = vec![Vec::new(); subs];
        while let Some((i, s, t)) = rx.recv().await {
            seen[i].push((s, t));
        }
        seen
    });
    tokio::time::sleep(SETTLE).await;

    let (s0, t0) = sim_stats(http, port, &id).await?;
    // Socket 0 is the probe: it steers in circles, one input per interval
    // on average. Each interval is drawn from 0.5 to 1.5 times it, so the
    // inputs fall at every phase of the tick period rather than locked to
    // one (100 ms is two ticks at 20 Hz).
    let mut sent: Vec<(u64, Instant)> = Vec::new();
    let end = t0 + window;
    let mut next = Instant::now();
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    while next < end {
        tokio::time::sleep_until(next.into()).await;
        let seq = sent.len() as u64 + 1;
        let angle = seq as f64 * 0.3;
        let at = Instant::now();
        sockets[0]
            .input(
                seq,
                Steer::Steer {
                    x: angle.cos(),
                    y: angle.sin(),
                },
            )
            .await?;
        sent.push((seq, at));
        // xorshift64: a spread of phases, the same in every run.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let factor = 0.5 + (rng >> 11) as f64 / (1u64 << 53) as f64;
        next += input_every.mul_f64(factor);
    }
    tokio::time::sleep_until(end.into()).await;
    let (s1, t1) = sim_stats(http, port, &id).await?;
    // A little more, so the last inputs' snapshots arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for s in &sockets {
        s.reader.abort();
    }
    let seen = collector.await?;
    close_sims(sockets).await;

    let secs = (t1 - t0).as_secs_f64();
    let in_window = |t: &Instant| *t >= t0 && *t <= t1;
    let mut client_rates = Vec::new();
    let mut snapshot_rates = Vec::new();
    let mut by_tick: BTreeMap<u64, (Instant, Instant, usize)> = BTreeMap::new();
    for events in &seen {
        let snaps: Vec<(u64, Instant)> = events
            .iter()
            .filter_map(|(s, t)| match s {
                Seen::Snapshot { tick, .. } if in_window(t) => Some((*tick, *t)),
                _ => None,
            })
            .collect();
        snapshot_rates.push(snaps.len() as f64 / secs);
        if let (Some(first), Some(last)) = (snaps.first(), snaps.last()) {
            let dt = (last.1 - first.1).as_secs_f64();
            if dt > 0.0 {
                client_rates.push((last.0 - first.0) as f64 / dt);
            }
        }
        for (tick, t) in snaps {
            let e = by_tick.entry(tick).or_insert((t, t, 0));
            e.0 = e.0.min(t);
            e.1 = e.1.max(t);
            e.2 += 1;
        }
    }
    let spread = by_tick
        .values()
        .filter(|(_, _, n)| *n == subs)
        .map(|(a, b, _)| ms(*b - *a))
        .collect();
    // The probe's own snapshots carry its acked seq.
    let probe: Vec<(u64, Instant)> = seen[0]
        .iter()
        .filter_map(|(s, t)| match s {
            Seen::Snapshot { acked, .. } => Some((*acked, *t)),
            _ => None,
        })
        .collect();
    let refused = seen[0]
        .iter()
        .filter(|(s, _)| matches!(s, Seen::Refused))
        .count();
    let mut latency = Vec::new();
    let mut unanswered = 0;
    for (seq, at) in &sent {
        match probe.iter().find(|(acked, t)| acked >= seq && t >= at) {
            Some((_, t)) => latency.push(ms(*t - *at)),
            None => unanswered += 1,
        }
    }
    Ok(TickResult {
        hz,
        subs,
        window_secs: secs,
        server_rate: (u(&s1, &["tick"]) - u(&s0, &["tick"])) as f64 / secs,
        client_rates,
        snapshot_rates,
        skipped: u(&s1, &["ticks_skipped"]) - u(&s0, &["ticks_skipped"]),
        spread,
        latency,
        inputs: sent.len(),
        unanswered,
        refused,
        bill: Bill::between(&s0, &s1, secs),
    })
}

// ---------------------------------------------------------------------------
// 2. an idle shard

struct IdleResult {
    /// From the first read to the second.
    secs: f64,
    /// Wakes between the reads (the one the second read caused included).
    wakes: u64,
    /// The second read found the object rebuilt by that read itself.
    woken_by_read: bool,
    /// Nothing of the object ran between the two reads.
    nothing_ran: bool,
    /// Counted within one wake, when both reads saw the same one.
    bill: Bill,
    /// What the wake the second read caused cost (opening to answer it).
    read_cost_rows_written: u64,
    alarm_pending: bool,
    ticking: bool,
    stop_secs: f64,
}

async fn idle(http: reqwest::Client, port: u16, window: Duration) -> Result<IdleResult> {
    let id = format!("idle-{}", std::process::id());
    // One socket and one input start it ticking; then it is left alone.
    let (tx, _rx) = mpsc::unbounded_channel();
    let mut s = SimSocket::open(port, &id, Encoding::Json, 0, tx).await?;
    s.input(1, Steer::Steer { x: 1.0, y: 0.0 }).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    s.close().await;
    let left = Instant::now();
    // It stops after its idle ticks (200 at 20 Hz: 10 s).
    let s0 = loop {
        let (v, _) = sim_stats(&http, port, &id).await?;
        if v["ticking"] == false && v["alarm_pending"] == false && v["subscribers"] == 0 {
            break v;
        }
        if left.elapsed() > Duration::from_secs(90) {
            bail!("{id} did not stop ticking: {v}");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let stop_secs = left.elapsed().as_secs_f64();
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let read_at_ms = wall_ms();
    let (s1, _) = sim_stats(&http, port, &id).await?;
    let secs = t0.elapsed().as_secs_f64();
    let wakes = u(&s1, &["wakes"]) - u(&s0, &["wakes"]);
    // The wake the second read found began with that read (its clock and
    // the Worker's are this machine's).
    let opened = s1["this_wake"]["opened_ms"].as_i64().unwrap_or(0);
    let woken_by_read = wakes >= 1 && opened >= read_at_ms - 1_000;
    let bill = Bill::between(&s0, &s1, secs);
    let nothing_ran = if bill.same_wake {
        bill.alarms_fired == 0 && bill.alarms_set == 0 && bill.rows_written == 0
    } else {
        wakes == 1 && woken_by_read
    };
    Ok(IdleResult {
        secs,
        wakes,
        woken_by_read,
        nothing_ran,
        read_cost_rows_written: if woken_by_read {
            u(&s1, &["this_wake", "sql", "rows_written"])
        } else {
            0
        },
        bill,
        alarm_pending: s1["alarm_pending"] == true,
        ticking: s1["ticking"] == true,
        stop_secs,
    })
}

// ---------------------------------------------------------------------------
// 3. fan-out against the raw broadcast

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Sim,
    Bcast,
}

struct FanoutResult {
    n: usize,
    sim: Vec<f64>,
    bcast: Vec<f64>,
    missed: usize,
    connect_secs: f64,
}

/// Waits until `n` receivers reported `kind` at `key` (a snapshot of
/// tick `>= key`, a bcast `== key`); the last arrival, or `None` after
/// [`ROUND_TIMEOUT`].
async fn last_arrival(
    rx: &mut mpsc::UnboundedReceiver<(usize, Seen, Instant)>,
    kind: Kind,
    key: u64,
    n: usize,
) -> Option<Instant> {
    let deadline = tokio::time::Instant::now() + ROUND_TIMEOUT;
    let (mut got, mut last) = (0, None);
    while got < n {
        let hit = match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((_, seen, t))) => match (kind, seen) {
                (Kind::Sim, Seen::Snapshot { tick, .. }) if tick >= key => Some(t),
                (Kind::Bcast, Seen::Bcast { key: k }) if k == key => Some(t),
                _ => None,
            },
            _ => return None,
        };
        if let Some(t) = hit {
            got += 1;
            last = Some(last.map_or(t, |l: Instant| l.max(t)));
        }
    }
    last
}

/// A bare live-protocol socket to `shard` (no client state machine, like
/// the simulation sockets), three attempts.
async fn raw_connect(port: u16, shard: &str, encoding: Encoding) -> Result<RawConnection> {
    let config = ClientConfig::new(format!("ws://127.0.0.1:{port}"), shard).encoding(encoding);
    let mut last = None;
    for _ in 0..3 {
        match tokio::time::timeout(Duration::from_secs(20), RawConnection::connect(&config)).await {
            Ok(Ok(c)) => return Ok(c),
            Ok(Err(e)) => last = Some(anyhow::Error::from(e).context("connect")),
            Err(_) => last = Some(anyhow::anyhow!("connect timed out")),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("connect failed")))
}

/// Reads a live socket, reporting each integer `bcast` on `tx`.
async fn read_bcasts(mut c: RawConnection, idx: usize, tx: Arrivals) {
    while let Ok(r) = c.recv().await {
        let now = Instant::now();
        match r {
            Received::Msg(ServerMsg::Bcast(b)) => {
                if let Value::Int(k) = b.data {
                    if tx.send((idx, Seen::Bcast { key: k as u64 }, now)).is_err() {
                        return;
                    }
                }
            }
            Received::Closed { .. } => return,
            _ => {}
        }
    }
}

async fn fanout(
    http: &reqwest::Client,
    port: u16,
    n: usize,
    rounds: usize,
    warmup: usize,
) -> Result<FanoutResult> {
    let pid = std::process::id();
    let (sim_id, floor_id) = (format!("fan-{n}-{pid}"), format!("floor-{n}-{pid}"));
    let started = Instant::now();
    // Every receiver reports on one channel, stamped where it lands:
    // socket, one decode, channel, as alike for both kinds as can be.
    let (tx, mut rx) = mpsc::unbounded_channel();
    // The simulation: a sender (a player) and n receivers.
    let (sender_tx, mut sender_rx) = mpsc::unbounded_channel();
    let mut sender = SimSocket::open(port, &sim_id, Encoding::Postcard, 0, sender_tx).await?;
    let receivers = open_many(port, &sim_id, 0, n, &tx).await?;
    // The floor: a writer and n sockets of a live shard.
    let mut writer = raw_connect(port, &floor_id, Encoding::Postcard).await?;
    writer.recv_welcome().await?;
    let mut readers = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(CONNECT_BATCH) {
        let mut set = JoinSet::new();
        for &i in chunk {
            let id = floor_id.clone();
            set.spawn(async move {
                let mut c = raw_connect(port, &id, encoding_for(i)).await?;
                c.recv_welcome().await?;
                anyhow::Ok((i, c))
            });
        }
        while let Some(r) = set.join_next().await {
            let (i, c) = r??;
            readers.push(tokio::spawn(read_bcasts(c, i, tx.clone())));
        }
    }
    drop(tx);
    let connect_secs = started.elapsed().as_secs_f64();
    eprintln!("  {n} + {n} receivers in {connect_secs:.1} s");
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (s, _) = sim_stats(http, port, &sim_id).await?;
    ensure!(s["tick_hz"] == 0, "the plane is not event-driven here: {s}");
    let mut tick = u(&s, &["tick"]);
    let (mut sim, mut bcast, mut missed) = (Vec::new(), Vec::new(), 0);
    for round in 0..(warmup + rounds) {
        let order = if round % 2 == 0 {
            [Kind::Sim, Kind::Bcast]
        } else {
            [Kind::Bcast, Kind::Sim]
        };
        for kind in order {
            while rx.try_recv().is_ok() {}
            let t0 = Instant::now();
            let last = match kind {
                Kind::Sim => {
                    let expect = tick + 1;
                    let seq = round as u64 + 1;
                    let angle = seq as f64;
                    sender
                        .input(
                            seq,
                            Steer::Steer {
                                x: angle.cos(),
                                y: angle.sin(),
                            },
                        )
                        .await?;
                    let last = last_arrival(&mut rx, kind, expect, n).await;
                    // Its ack says which tick it ran before.
                    let acked = loop {
                        match tokio::time::timeout(ROUND_TIMEOUT, sender_rx.recv()).await {
                            Ok(Some((_, Seen::Ack { seq: s, tick: t }, _))) if s == seq => break t,
                            Ok(Some((_, Seen::Refused, _))) => bail!("input {seq} refused"),
                            Ok(Some(_)) => {}
                            _ => bail!("no ack for input {seq}"),
                        }
                    };
                    ensure!(
                        acked == expect,
                        "another sender on {sim_id}? tick {acked} != {expect}"
                    );
                    tick = expect;
                    last
                }
                Kind::Bcast => {
                    let key = round as u64 + 1;
                    let msg = ClientMsg::Bcast(SendBcast {
                        topic: "bench".into(),
                        data: Value::Int(key as i64),
                    });
                    writer.send(&msg).await?;
                    last_arrival(&mut rx, kind, key, n).await
                }
            };
            match last {
                Some(t) if round >= warmup => {
                    let d = ms(t.saturating_duration_since(t0));
                    match kind {
                        Kind::Sim => sim.push(d),
                        Kind::Bcast => bcast.push(d),
                    }
                }
                Some(_) => {}
                None => missed += 1,
            }
            // Well under the sockets' message rate (100/s).
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    for r in &readers {
        r.abort();
    }
    let _ = writer.close(1000, "done").await;
    close_sims(receivers).await;
    sender.close().await;
    Ok(FanoutResult {
        n,
        sim,
        bcast,
        missed,
        connect_secs,
    })
}

// ---------------------------------------------------------------------------

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("sim bench failed: {e:#}");
        std::process::exit(1);
    }
}

/// `wrangler dev` with the bench's vars and the plane at `hz`.
async fn start(hz: u32, label: &str) -> Result<wrangler_dev::WranglerDev> {
    let dir: PathBuf = root()
        .join("target")
        .join("bench-sim")
        .join(format!("run-{}-{label}", std::process::id()));
    let hz_text = hz.to_string();
    let mut base = BENCH_VARS.to_vec();
    base.push(("PYLON_SIM_TICK_HZ_PLANE", &hz_text));
    let vars = support::bench_vars(&base);
    // D1 is not migrated: nothing here writes to it.
    let dev = DevOptions::new()
        .vars(vars)
        .unmigrated()
        .log_level("warn")
        .local_observability(observability_on())
        .start(&dir)
        .await?;
    eprintln!(
        "wrangler dev on 127.0.0.1:{} ({label}, PYLON_SIM_TICK_HZ_PLANE={hz}), log {}",
        dev.port,
        dev.log.display()
    );
    Ok(dev)
}

async fn run() -> Result<()> {
    support::require_build(&root())?;
    let hzs: Vec<u32> = env_list("PYLON_BENCH_HZ", "20,60")
        .into_iter()
        .map(|h| h as u32)
        .collect();
    let subs = env_num("PYLON_BENCH_SUBS", 100).max(1);
    let window = Duration::from_secs(env_num("PYLON_BENCH_WINDOW_SECS", 30) as u64);
    let input_every = Duration::from_millis(env_num("PYLON_BENCH_INPUT_MS", 100).max(1) as u64);
    let idle_window = Duration::from_secs(env_num("PYLON_BENCH_IDLE_SECS", 90) as u64);
    let ns = env_list("PYLON_BENCH_N", "100,999");
    let rounds = env_num("PYLON_BENCH_ROUNDS", 100);
    let warmup = env_num("PYLON_BENCH_WARMUP", 10);
    let max_n = ns.iter().copied().max().unwrap_or(0).max(subs);
    ensure_fds(2 * max_n as u64 + 256)?;
    let http = reqwest::Client::new();

    let mut tick_results = Vec::new();
    let mut idle_result = None;
    let want_idle = wants("idle") && !idle_window.is_zero();
    for (i, &hz) in hzs.iter().enumerate() {
        let idle_here = want_idle && i == 0;
        if !wants("ticks") && !idle_here {
            continue;
        }
        let dev = start(hz, &format!("{hz}hz")).await?;
        // The idle shard rests while the ticking one is measured.
        let idle_task = idle_here.then(|| tokio::spawn(idle(http.clone(), dev.port, idle_window)));
        if wants("ticks") {
            eprintln!("ticks at {hz} Hz, {subs} subscribers, {window:?} window");
            tick_results.push(ticks(&http, dev.port, hz, subs, window, input_every).await?);
        }
        if let Some(t) = idle_task {
            eprintln!("waiting for the idle window ({idle_window:?})");
            idle_result = Some((hz, t.await??));
        }
        drop(dev);
    }

    let mut fan = Vec::new();
    if wants("fanout") && !ns.is_empty() {
        let dev = start(0, "fanout").await?;
        for &n in &ns {
            eprintln!("fan-out, N = {n}");
            let f = fanout(&http, dev.port, n, rounds, warmup).await?;
            let (a, b) = (stats(f.sim.clone()), stats(f.bcast.clone()));
            eprintln!(
                "  sim p50 {:.1} p99 {:.1} | bcast p50 {:.1} p99 {:.1} ms",
                a.p50, a.p99, b.p50, b.p99
            );
            fan.push(f);
        }
        drop(dev);
    }

    // ---- report
    println!();
    println!(
        "simulation shards (kind `plane`) under wrangler dev, 127.0.0.1, release Worker build"
    );
    let vars: Vec<String> = support::bench_vars(BENCH_VARS)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    println!(
        "wrangler local observability: {}; vars: {} (+ PYLON_SIM_TICK_HZ_PLANE per run)",
        if observability_on() { "on" } else { "off" },
        vars.join(" ")
    );
    if !tick_results.is_empty() {
        println!();
        println!(
            "1. ticks, one shard, one subscriber sending an input every {input_every:?} on average"
        );
        println!(
            "{:>4} {:>5} {:>6} | {:>9} {:>7} | {:>9} {:>9} | {:>7} | {:>18} | {:>14} | {:>6}",
            "Hz",
            "subs",
            "window",
            "server/s",
            "x conf",
            "client/s",
            "snaps/s",
            "skipped",
            "latency p50/p99",
            "spread p50/p99",
            "unans."
        );
        for r in &tick_results {
            let (l, sp) = (stats(r.latency.clone()), stats(r.spread.clone()));
            let client = median(&r.client_rates);
            println!(
                "{:>4} {:>5} {:>5.1}s | {:>9.2} {:>7.4} | {:>9.2} {:>9.2} | {:>7} | {:>8.1} / {:>7.1} | {:>6.1} / {:>5.1} | {:>6}",
                r.hz, r.subs, r.window_secs, r.server_rate, r.server_rate / f64::from(r.hz),
                client, median(&r.snapshot_rates), r.skipped, l.p50, l.p99, sp.p50, sp.p99,
                r.unanswered
            );
        }
        println!("   (client/s and snaps/s: medians over subscribers; latency: input -> the sender's snapshot with acked >= seq, ms, n = inputs; spread: first -> last subscriber of one tick, ms)");
        println!();
        println!("   bill over the window (one wake), and per shard-hour extrapolated:");
        for r in &tick_results {
            let b = &r.bill;
            println!(
                "{:>4} Hz: alarms fired {} ({:.0}/h), set {} ({:.0}/h); SQL rows written {} ({:.0}/h), read {} ({:.0}/h), statements {} ({:.0}/h); inputs {} ({:.0}/h, {} refused){}",
                r.hz, b.alarms_fired, b.per_hour(b.alarms_fired), b.alarms_set, b.per_hour(b.alarms_set),
                b.rows_written, b.per_hour(b.rows_written), b.rows_read, b.per_hour(b.rows_read),
                b.statements, b.per_hour(b.statements), r.inputs, b.per_hour(r.inputs as u64), r.refused,
                if b.same_wake { "" } else { "  [NOT one wake: the object was rebuilt in the window]" }
            );
        }
    }
    if let Some((hz, r)) = &idle_result {
        println!();
        println!(
            "2. idle shard ({hz} Hz kind, stopped {:.1} s after its socket left): {:.1} s window",
            r.stop_secs, r.secs
        );
        println!(
            "   wakes in the window: {} ({}); alarm pending at the end: {}; ticking: {}",
            r.wakes,
            if r.woken_by_read {
                "the one the closing read caused"
            } else {
                "none caused by the read"
            },
            r.alarm_pending,
            r.ticking
        );
        if r.bill.same_wake {
            let b = &r.bill;
            println!(
                "   same wake: alarms fired {}, set {}, rows written {} over the window ({:.0}/h, {:.0}/h, {:.0}/h)",
                b.alarms_fired, b.alarms_set, b.rows_written,
                b.per_hour(b.alarms_fired), b.per_hour(b.alarms_set), b.per_hour(b.rows_written)
            );
        } else {
            println!(
                "   evicted in the window; opening it again to answer the read wrote {} rows",
                r.read_cost_rows_written
            );
        }
        println!(
            "   nothing of the object ran in the window: {} => 0 alarms and 0 rows written per idle shard-hour{}",
            r.nothing_ran,
            if r.nothing_ran { "" } else { " does NOT hold" }
        );
    }
    if !fan.is_empty() {
        println!();
        println!("3. fan-out: input -> LAST of N snapshots (plane event-driven); floor: live bcast -> last of N, interleaved (ms)");
        println!(
            "{:>5} {:>6} | {:>8} {:>8} {:>8} | {:>9} {:>8} {:>8} | {:>7} {:>7} | {:>6} {:>8}",
            "N",
            "rounds",
            "sim p50",
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
            let (a, b) = (stats(f.sim.clone()), stats(f.bcast.clone()));
            println!(
                "{:>5} {:>6} | {:>8.1} {:>8.1} {:>8.1} | {:>9.1} {:>8.1} {:>8.1} | {:>7.2} {:>7.2} | {:>6} {:>7.1}s",
                f.n, a.n.min(b.n), a.p50, a.p99, a.max, b.p50, b.p99, b.max,
                a.p50 / b.p50, a.p99 / b.p99, f.missed, f.connect_secs
            );
        }
    }
    Ok(())
}
