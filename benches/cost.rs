//! What a room costs: a stated workload against the board's live shards
//! under `wrangler dev`, metered per shard-hour and priced with the
//! platform's published prices (docs/cost.md).
//!
//! ```sh
//! bash scripts/build-worker.sh          # the bench builds nothing itself
//! cargo bench --features client --bench cost
//! ```
//!
//! It expects `build/` (the release Worker) and fails otherwise. Like the
//! other wrangler benches it starts its own `wrangler dev` on a free
//! loopback port with a temporary `--persist-to` (under
//! `target/bench-cost/`), D1 migrated, and kills its process group at the
//! end.
//!
//! The workload, at its real rate (not compressed: an object evicted
//! ~10 s after its last event wakes once per write at one write a minute,
//! and a compressed run would hide those wakes):
//!
//! 1. setup: R rooms (shards), C clients each, every client subscribed to
//!    the board's card window (`Card` by `position`, 20 rows). Counted
//!    apart: it is paid once per session, not per hour.
//! 2. active: each room gets W writes a minute (one client inserts a
//!    card), the rooms' writes spread evenly over the minute; every client
//!    receives the diff. Clients send the keepalive after 30 s without a
//!    frame, as the Rust and TypeScript clients do (answered by the
//!    platform, without waking the object).
//! 3. idle: sockets open, no writes, keepalives only.
//!
//! Metered: the shard's `GET /v1/shards/{shard}/stats` (`wakes`,
//! `this_wake`: alarms fired and set, SQL statements and rows read and
//! written, counted per wake; docs/host.md). The bench reads it one
//! second after each write's ack (the object is awake then, so the read
//! wakes nothing), and at each phase's ends; counts are summed per wake
//! (`opened_ms`). A phase-end read that finds the object evicted opens a
//! wake of its own: that wake is not counted. The cost of the reads
//! themselves (one request and a few rows read each) is measured on a
//! spare shard and taken off. WebSocket messages are counted by the
//! clients. D1 rows written are derived from what the outbox drain
//! writes (one upsert per changed row, plus one directory row per drain,
//! plus one per index the row's columns touch; src/store/outbox.rs) and
//! checked against the local D1 file's rows at the end.
//!
//! Knobs (environment):
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `PYLON_BENCH_ROOMS` | `50` | rooms (shards) driven (`1000` for the issue's workload; needs file descriptors and time) |
//! | `PYLON_BENCH_CLIENTS` | `10` | clients per room, each subscribed |
//! | `PYLON_BENCH_WRITES_PER_MIN` | `1` | writes per room per minute |
//! | `PYLON_BENCH_ACTIVE_SECS` | `180` | active phase (real time) |
//! | `PYLON_BENCH_IDLE_SECS` | `120` | idle phase (real time; `0`: skip) |
//! | `PYLON_BENCH_KEEPALIVE_SECS` | `30` | client keepalive after this much silence |
//! | `PYLON_BENCH_MONTH_ROOMS` | `1000` | rooms in the monthly projection |
//! | `PYLON_BENCH_ACTIVE_HOURS` | `8` | active hours per room per day in the projection (the rest idle, sockets open) |
//! | `PYLON_BENCH_VARS` | none | `NAME:VALUE,...` more wrangler vars |
//! | `PYLON_BENCH_OBSERVABILITY` | `0` | `1` keeps `wrangler dev`'s local observability collector on |
//!
//! Not measurable locally: duration (GB-s), which the platform bills for
//! the wall time an object is active and not hibernatable. The bench
//! gives an upper bound: wakes × the 10 s idle-eviction window × 128 MB.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{ensure, Context, Result};
use pylon_workers::client::{ClientConfig, RawConnection, Received};
use pylon_workers::protocol::{ClientMsg, Mut, Op, ServerMsg, Sub};
use pylon_workers::value::Row;
use serde_json::{json, Value as Json};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

mod support;
#[path = "../tests/wrangler_dev/mod.rs"]
mod wrangler_dev;
use support::{encoding_for, ensure_fds, env_num, median, observability_on};
use wrangler_dev::{project_root as root, DevOptions};

/// Sockets opened at once.
const CONNECT_BATCH: usize = 50;
/// After a write's ack, before its stats read: the outbox drain runs
/// 100 ms after a write.
const AFTER_WRITE: Duration = Duration::from_secs(1);
/// workerd evicts an idle object after ~10 s; a pause a little longer
/// separates a phase-end read's wake from the next phase.
const EVICTION_PAUSE: Duration = Duration::from_secs(12);
/// The idle-eviction window used for the duration estimate.
const EVICTION_WINDOW_SECS: f64 = 10.0;
/// Memory the platform bills an object's duration at.
const OBJECT_GB: f64 = 0.125;
/// Rows D1 writes per drained card: the row and its `byPosition` index
/// (migrations/0002_schema.sql).
const D1_ROWS_PER_CARD: u64 = 2;
/// Rows D1 writes per drain besides the cards: the `_pylon_shards`
/// directory row (its primary key is its only index).
const D1_ROWS_PER_DRAIN: u64 = 1;
const HOURS_PER_MONTH: f64 = 730.0;

/// Workers Paid prices (docs/cost.md has the source and the date read),
/// in dollars per unit.
mod price {
    /// Durable Objects requests (HTTP, WebSocket messages 20:1, alarms).
    pub const DO_REQUEST: f64 = 0.15 / 1e6;
    pub const DO_REQUESTS_INCLUDED: f64 = 1e6;
    /// Durable Objects duration, per GB-s.
    pub const DO_GBS: f64 = 12.50 / 1e6;
    pub const DO_GBS_INCLUDED: f64 = 400_000.0;
    /// SQLite-backed Durable Object storage rows.
    pub const DO_ROW_READ: f64 = 0.001 / 1e6;
    pub const DO_ROWS_READ_INCLUDED: f64 = 25e9;
    pub const DO_ROW_WRITTEN: f64 = 1.00 / 1e6;
    pub const DO_ROWS_WRITTEN_INCLUDED: f64 = 50e6;
    /// D1 rows.
    pub const D1_ROW_WRITTEN: f64 = 1.00 / 1e6;
    pub const D1_ROWS_WRITTEN_INCLUDED: f64 = 50e6;
    /// Workers requests (the WebSocket upgrade through the router).
    pub const WORKER_REQUEST: f64 = 0.30 / 1e6;
    /// Incoming WebSocket messages per billed request.
    pub const WS_MESSAGES_PER_REQUEST: f64 = 20.0;
    pub const PLAN_MONTHLY: f64 = 5.0;
}

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------
// clients

/// What every client counts, summed over all of them.
#[derive(Default)]
struct Counters {
    msgs_in: AtomicU64,
    msgs_out: AtomicU64,
    keepalives_out: AtomicU64,
    keepalive_acks_in: AtomicU64,
    errors: AtomicU64,
    acks: AtomicU64,
}

#[derive(Clone, Copy, Default, Debug)]
struct Tally {
    msgs_in: u64,
    msgs_out: u64,
    keepalives_out: u64,
    keepalive_acks_in: u64,
    errors: u64,
}

impl Counters {
    fn tally(&self) -> Tally {
        Tally {
            msgs_in: self.msgs_in.load(Ordering::Relaxed),
            msgs_out: self.msgs_out.load(Ordering::Relaxed),
            keepalives_out: self.keepalives_out.load(Ordering::Relaxed),
            keepalive_acks_in: self.keepalive_acks_in.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
        }
    }
}

impl std::ops::Sub for Tally {
    type Output = Tally;
    fn sub(self, b: Tally) -> Tally {
        Tally {
            msgs_in: self.msgs_in - b.msgs_in,
            msgs_out: self.msgs_out - b.msgs_out,
            keepalives_out: self.keepalives_out - b.keepalives_out,
            keepalive_acks_in: self.keepalive_acks_in - b.keepalive_acks_in,
            errors: self.errors - b.errors,
        }
    }
}

fn window_sub() -> ClientMsg {
    ClientMsg::Sub(Sub {
        id: "w".into(),
        entity: "Card".into(),
        order: json!(["position"]).into(),
        limit: Some(20),
        ..Default::default()
    })
}

fn card(id: &str, position: f64) -> Row {
    serde_json::from_value(
        json!({"id": id, "title": format!("card {id}"), "done": false,
        "position": position, "createdAt": "2026-11-23T00:00:00Z"}),
    )
    .expect("a row")
}

/// One client: a socket that counts every frame both ways, sends the
/// keepalive after `keepalive` of silence, and sends the writes it is
/// told to on `writes`.
async fn client_loop(
    mut c: RawConnection,
    keepalive: Duration,
    counters: Arc<Counters>,
    mut writes: mpsc::UnboundedReceiver<ClientMsg>,
) {
    let mut last_heard = Instant::now();
    loop {
        let due = tokio::time::Instant::from_std(last_heard + keepalive);
        tokio::select! {
            r = c.recv() => {
                last_heard = Instant::now();
                match r {
                    Ok(Received::KeepaliveAck) => {
                        counters.keepalive_acks_in.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Received::Msg(m)) => {
                        counters.msgs_in.fetch_add(1, Ordering::Relaxed);
                        match m {
                            ServerMsg::Err(_) => { counters.errors.fetch_add(1, Ordering::Relaxed); }
                            ServerMsg::Ack(_) => { counters.acks.fetch_add(1, Ordering::Relaxed); }
                            _ => {}
                        }
                    }
                    Ok(Received::Undecodable(_)) => {
                        counters.msgs_in.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => return,
                }
            }
            w = writes.recv() => match w {
                Some(msg) => {
                    if c.send(&msg).await.is_err() { return; }
                    counters.msgs_out.fetch_add(1, Ordering::Relaxed);
                }
                None => { let _ = c.close(1000, "done").await; return; }
            },
            _ = tokio::time::sleep_until(due) => {
                if c.send_keepalive().await.is_err() { return; }
                counters.keepalives_out.fetch_add(1, Ordering::Relaxed);
                // The next one after another period of silence.
                last_heard = Instant::now();
            }
        }
    }
}

struct Room {
    shard: String,
    /// The writer's (client 0's) command channel.
    writer: mpsc::UnboundedSender<ClientMsg>,
    others: Vec<mpsc::UnboundedSender<ClientMsg>>,
    tasks: Vec<JoinHandle<()>>,
}

async fn open_client(
    port: u16,
    shard: &str,
    i: usize,
    counters: &Counters,
) -> Result<RawConnection> {
    let config =
        ClientConfig::new(format!("ws://127.0.0.1:{port}"), shard).encoding(encoding_for(i));
    let mut last = None;
    for _ in 0..3 {
        match tokio::time::timeout(Duration::from_secs(20), RawConnection::connect(&config)).await {
            Ok(Ok(mut c)) => {
                c.recv_welcome().await?;
                counters.msgs_in.fetch_add(1, Ordering::Relaxed);
                c.send(&window_sub()).await?;
                counters.msgs_out.fetch_add(1, Ordering::Relaxed);
                return Ok(c);
            }
            Ok(Err(e)) => last = Some(anyhow::Error::from(e).context("connect")),
            Err(_) => last = Some(anyhow::anyhow!("connect timed out")),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("connect failed")))
}

async fn open_rooms(
    port: u16,
    rooms: usize,
    clients: usize,
    keepalive: Duration,
    counters: &Arc<Counters>,
) -> Result<Vec<Room>> {
    let pid = std::process::id();
    let all: Vec<(usize, usize)> = (0..rooms)
        .flat_map(|r| (0..clients).map(move |i| (r, i)))
        .collect();
    let mut opened: Vec<(usize, usize, RawConnection)> = Vec::with_capacity(all.len());
    for chunk in all.chunks(CONNECT_BATCH) {
        let mut set = JoinSet::new();
        for &(r, i) in chunk {
            let counters = counters.clone();
            set.spawn(async move {
                let c = open_client(port, &format!("cost-{pid}-{r}"), i, &counters).await?;
                anyhow::Ok((r, i, c))
            });
        }
        while let Some(x) = set.join_next().await {
            opened.push(x??);
        }
    }
    opened.sort_by_key(|(r, i, _)| (*r, *i));
    let mut out: Vec<Room> = Vec::new();
    for (r, i, c) in opened {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(client_loop(c, keepalive, counters.clone(), rx));
        if i == 0 {
            out.push(Room {
                shard: format!("cost-{pid}-{r}"),
                writer: tx,
                others: Vec::new(),
                tasks: vec![task],
            });
        } else {
            let room = out.last_mut().expect("client 0 first");
            room.others.push(tx);
            room.tasks.push(task);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// the shards' meters

/// One read of a shard's stats.
#[derive(Clone, Debug, Default)]
struct Meter {
    wakes: u64,
    opened_ms: i64,
    alarms_fired: u64,
    alarms_set: u64,
    statements: u64,
    rows_read: u64,
    rows_written: u64,
    outbox_depth: u64,
    /// When the request was sent (wall clock, ms).
    sent_ms: i64,
}

impl Meter {
    /// This wake was opened by the read itself.
    fn opened_by_read(&self) -> bool {
        self.opened_ms >= self.sent_ms - 50
    }
}

fn u(v: &Json, path: &[&str]) -> u64 {
    path.iter().fold(v, |v, k| &v[*k]).as_u64().unwrap_or(0)
}

async fn read_meter(http: &reqwest::Client, port: u16, shard: &str) -> Result<Meter> {
    let url = format!("http://127.0.0.1:{port}/v1/shards/{shard}/stats");
    let sent_ms = wall_ms();
    let r = http.get(&url).send().await?;
    let status = r.status();
    let v: Json = r.json().await?;
    ensure!(status.is_success(), "GET {url}: {status} {v}");
    Ok(Meter {
        wakes: u(&v, &["wakes"]),
        opened_ms: v["this_wake"]["opened_ms"].as_i64().unwrap_or(0),
        alarms_fired: u(&v, &["this_wake", "alarms_fired"]),
        alarms_set: u(&v, &["this_wake", "alarms_set"]),
        statements: u(&v, &["this_wake", "sql", "statements"]),
        rows_read: u(&v, &["this_wake", "sql", "rows_read"]),
        rows_written: u(&v, &["this_wake", "sql", "rows_written"]),
        outbox_depth: u(&v, &["outbox", "depth"]),
        sent_ms,
    })
}

/// The bill: counts the platform prices.
#[derive(Clone, Copy, Debug, Default)]
struct Bill {
    wakes: f64,
    alarms_fired: f64,
    alarms_set: f64,
    statements: f64,
    rows_read: f64,
    rows_written: f64,
}

impl Bill {
    fn add_delta(&mut self, last: &Meter, base: Option<&Meter>) {
        let b = |f: fn(&Meter) -> u64| base.map_or(0, f);
        self.alarms_fired += (last.alarms_fired - b(|m| m.alarms_fired)) as f64;
        self.alarms_set += (last.alarms_set - b(|m| m.alarms_set)) as f64;
        self.statements += (last.statements - b(|m| m.statements)) as f64;
        self.rows_read += (last.rows_read - b(|m| m.rows_read)) as f64;
        self.rows_written += (last.rows_written - b(|m| m.rows_written)) as f64;
    }

    fn less_reads(&mut self, reads: f64, one: &Bill) {
        self.statements = (self.statements - reads * one.statements).max(0.0);
        self.rows_read = (self.rows_read - reads * one.rows_read).max(0.0);
        self.rows_written = (self.rows_written - reads * one.rows_written).max(0.0);
    }
}

/// A phase's reads of one shard: the first and last are the phase's ends,
/// the ones between follow writes.
#[derive(Default)]
struct Trail {
    reads: Vec<Meter>,
}

impl Trail {
    /// Sums the phase's wakes: per `opened_ms`, the last read less the
    /// phase-start read if that wake was already open then. A wake the
    /// phase-end read opened is the read's, not the workload's. Returns
    /// the bill, the wakes the workload caused, the mid-phase reads
    /// counted in, and the wakes no read saw (their rows are missing).
    fn bill(&self, per_read: &Bill) -> (Bill, u64, u64) {
        let (first, last) = (&self.reads[0], self.reads.last().expect("two reads"));
        let mut by_wake: BTreeMap<i64, (Option<&Meter>, &Meter, usize)> = BTreeMap::new();
        for (k, m) in self.reads.iter().enumerate() {
            let e = by_wake.entry(m.opened_ms).or_insert((None, m, 0));
            if k == 0 {
                e.0 = Some(m);
            }
            e.1 = m;
            // Reads whose cost lands in a counted wake: every one after
            // the phase-start read.
            if k > 0 {
                e.2 += 1;
            }
        }
        let end_opened = last.opened_by_read() && last.opened_ms != first.opened_ms;
        let mut bill = Bill::default();
        let mut reads_in = 0;
        let mut seen_wakes = 0;
        for (&opened, &(base, m, reads)) in &by_wake {
            if end_opened && opened == last.opened_ms {
                continue;
            }
            if base.is_none() {
                seen_wakes += 1;
            }
            bill.add_delta(m, base);
            reads_in += reads;
        }
        bill.less_reads(reads_in as f64, per_read);
        let wakes = (last.wakes - first.wakes).saturating_sub(u64::from(end_opened));
        bill.wakes = wakes as f64;
        (bill, wakes, wakes.saturating_sub(seen_wakes))
    }
}

/// What one stats read costs an awake object: two reads back to back on
/// a spare shard.
async fn calibrate(http: &reqwest::Client, port: u16) -> Result<Bill> {
    let shard = format!("cost-{}-calibrate", std::process::id());
    let mut samples = Vec::new();
    read_meter(http, port, &shard).await?;
    for _ in 0..5 {
        let a = read_meter(http, port, &shard).await?;
        let b = read_meter(http, port, &shard).await?;
        if a.opened_ms == b.opened_ms {
            let mut one = Bill::default();
            one.add_delta(&b, Some(&a));
            samples.push(one);
        }
    }
    ensure!(
        !samples.is_empty(),
        "no two reads of the spare shard in one wake"
    );
    let med = |f: fn(&Bill) -> f64| median(&samples.iter().map(f).collect::<Vec<_>>());
    Ok(Bill {
        statements: med(|b| b.statements),
        rows_read: med(|b| b.rows_read),
        rows_written: med(|b| b.rows_written),
        ..Bill::default()
    })
}

async fn read_all(http: &reqwest::Client, port: u16, rooms: &[Room]) -> Result<Vec<Meter>> {
    let mut out = Vec::with_capacity(rooms.len());
    for chunk in rooms.chunks(25) {
        let mut set = JoinSet::new();
        for (k, r) in chunk.iter().enumerate() {
            let (http, shard) = (http.clone(), r.shard.clone());
            set.spawn(async move { anyhow::Ok((k, read_meter(&http, port, &shard).await?)) });
        }
        let mut got = Vec::new();
        while let Some(x) = set.join_next().await {
            got.push(x??);
        }
        got.sort_by_key(|(k, _)| *k);
        out.extend(got.into_iter().map(|(_, m)| m));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// phases

/// A phase's totals over all rooms.
#[derive(Clone, Copy, Debug, Default)]
struct Phase {
    secs: f64,
    rooms: usize,
    bill: Bill,
    unseen_wakes: u64,
    writes: u64,
    msgs: Tally,
}

impl Phase {
    fn shard_hours(&self) -> f64 {
        self.rooms as f64 * self.secs / 3600.0
    }
}

/// Per shard-hour figures of a phase.
#[derive(Clone, Copy, Debug, Default)]
struct PerHour {
    wakes: f64,
    alarms_fired: f64,
    alarms_set: f64,
    rows_read: f64,
    rows_written: f64,
    d1_rows_written: f64,
    ws_in: f64,
    ws_out: f64,
    keepalives: f64,
    writes: f64,
}

impl PerHour {
    fn of(p: &Phase) -> PerHour {
        let h = p.shard_hours();
        let writes = p.writes as f64 / h;
        PerHour {
            wakes: p.bill.wakes / h,
            alarms_fired: p.bill.alarms_fired / h,
            alarms_set: p.bill.alarms_set / h,
            rows_read: p.bill.rows_read / h,
            rows_written: p.bill.rows_written / h,
            d1_rows_written: writes * (D1_ROWS_PER_CARD + D1_ROWS_PER_DRAIN) as f64,
            // Messages the object receives: the clients' (keepalives
            // included: the platform answers them, but they arrive).
            ws_in: p.msgs.msgs_out as f64 / h + p.msgs.keepalives_out as f64 / h,
            ws_out: p.msgs.msgs_in as f64 / h + p.msgs.keepalive_acks_in as f64 / h,
            keepalives: p.msgs.keepalives_out as f64 / h,
            writes,
        }
    }

    /// Billed Durable Object requests: incoming messages 20:1, alarms.
    fn do_requests(&self) -> f64 {
        self.ws_in / price::WS_MESSAGES_PER_REQUEST + self.alarms_fired
    }

    /// Upper bound: every wake held for the eviction window.
    fn gb_s(&self) -> f64 {
        self.wakes * EVICTION_WINDOW_SECS * OBJECT_GB
    }

    /// Dollars, at the list prices, before any included allowance.
    fn dollars(&self) -> [f64; 5] {
        [
            self.do_requests() * price::DO_REQUEST,
            self.rows_read * price::DO_ROW_READ + self.rows_written * price::DO_ROW_WRITTEN,
            self.d1_rows_written * price::D1_ROW_WRITTEN,
            self.gb_s() * price::DO_GBS,
            0.0,
        ]
    }

    fn scale(&self, k: f64) -> PerHour {
        PerHour {
            wakes: self.wakes * k,
            alarms_fired: self.alarms_fired * k,
            alarms_set: self.alarms_set * k,
            rows_read: self.rows_read * k,
            rows_written: self.rows_written * k,
            d1_rows_written: self.d1_rows_written * k,
            ws_in: self.ws_in * k,
            ws_out: self.ws_out * k,
            keepalives: self.keepalives * k,
            writes: self.writes * k,
        }
    }

    fn plus(&self, o: &PerHour) -> PerHour {
        PerHour {
            wakes: self.wakes + o.wakes,
            alarms_fired: self.alarms_fired + o.alarms_fired,
            alarms_set: self.alarms_set + o.alarms_set,
            rows_read: self.rows_read + o.rows_read,
            rows_written: self.rows_written + o.rows_written,
            d1_rows_written: self.d1_rows_written + o.d1_rows_written,
            ws_in: self.ws_in + o.ws_in,
            ws_out: self.ws_out + o.ws_out,
            keepalives: self.keepalives + o.keepalives,
            writes: self.writes + o.writes,
        }
    }
}

async fn active(
    http: &reqwest::Client,
    port: u16,
    rooms: &[Room],
    counters: &Arc<Counters>,
    secs: u64,
    writes_per_min: usize,
    per_read: &Bill,
) -> Result<(Phase, Vec<Meter>)> {
    let start_reads = read_all(http, port, rooms).await?;
    tokio::time::sleep(EVICTION_PAUSE).await;
    let t0 = counters.tally();
    let started = Instant::now();
    let period = Duration::from_secs_f64(60.0 / writes_per_min.max(1) as f64);
    let end = started + Duration::from_secs(secs);
    let mut set = JoinSet::new();
    for (r, room) in rooms.iter().enumerate() {
        let (http, shard, writer) = (http.clone(), room.shard.clone(), room.writer.clone());
        let offset = period.mul_f64(r as f64 / rooms.len() as f64);
        let counters = counters.clone();
        set.spawn(async move {
            let mut reads = Vec::new();
            let mut writes = 0u64;
            let mut at = started + offset;
            while at < end {
                tokio::time::sleep_until(at.into()).await;
                let acks = counters.acks.load(Ordering::Relaxed);
                let id = format!("{shard}-{writes}");
                let msg = ClientMsg::Mut(Mut {
                    op: format!("op-{id}"),
                    ops: vec![Op::Insert {
                        entity: "Card".into(),
                        row: card(&id, writes as f64),
                    }],
                });
                writer.send(msg).context("writer gone")?;
                writes += 1;
                // The ack (any room's: only the wait matters), then the drain.
                let deadline = Instant::now() + Duration::from_secs(5);
                while counters.acks.load(Ordering::Relaxed) == acks && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                tokio::time::sleep(AFTER_WRITE).await;
                reads.push(read_meter(&http, port, &shard).await?);
                at += period;
            }
            anyhow::Ok((r, writes, reads))
        });
    }
    let mut mids: Vec<(usize, u64, Vec<Meter>)> = Vec::new();
    while let Some(x) = set.join_next().await {
        mids.push(x??);
    }
    tokio::time::sleep_until(end.into()).await;
    let secs_run = started.elapsed().as_secs_f64();
    let t1 = counters.tally();
    let end_reads = read_all(http, port, rooms).await?;
    mids.sort_by_key(|(r, _, _)| *r);
    let mut phase = Phase {
        secs: secs_run,
        rooms: rooms.len(),
        msgs: t1 - t0,
        ..Phase::default()
    };
    for (r, writes, reads) in mids {
        let mut trail = Trail::default();
        trail.reads.push(start_reads[r].clone());
        trail.reads.extend(reads);
        trail.reads.push(end_reads[r].clone());
        let (bill, _, unseen) = trail.bill(per_read);
        add(&mut phase.bill, &bill);
        phase.unseen_wakes += unseen;
        phase.writes += writes;
    }
    Ok((phase, end_reads))
}

fn add(a: &mut Bill, b: &Bill) {
    a.wakes += b.wakes;
    a.alarms_fired += b.alarms_fired;
    a.alarms_set += b.alarms_set;
    a.statements += b.statements;
    a.rows_read += b.rows_read;
    a.rows_written += b.rows_written;
}

async fn idle(
    http: &reqwest::Client,
    port: u16,
    rooms: &[Room],
    counters: &Arc<Counters>,
    start_reads: Vec<Meter>,
    secs: u64,
    per_read: &Bill,
) -> Result<Phase> {
    let t0 = counters.tally();
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let t1 = counters.tally();
    let secs_run = started.elapsed().as_secs_f64();
    let end_reads = read_all(http, port, rooms).await?;
    let mut phase = Phase {
        secs: secs_run,
        rooms: rooms.len(),
        msgs: t1 - t0,
        ..Phase::default()
    };
    for (a, b) in start_reads.into_iter().zip(end_reads) {
        let trail = Trail { reads: vec![a, b] };
        let (bill, _, unseen) = trail.bill(per_read);
        add(&mut phase.bill, &bill);
        phase.unseen_wakes += unseen;
    }
    Ok(phase)
}

/// Card rows and directory rows of this run's shards in the local D1.
fn d1_rows(persist: &Path) -> Result<(u64, u64)> {
    let prefix = format!("cost-{}-%", std::process::id());
    let (mut cards, mut shards) = (0, 0);
    let files = sqlite_files(persist)?;
    ensure!(
        files.iter().any(|p| p.to_string_lossy().contains("D1")),
        "no D1 file under {}",
        persist.display()
    );
    for p in files
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("D1"))
    {
        let db =
            rusqlite::Connection::open_with_flags(&p, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let count = |sql: &str| -> u64 {
            db.query_row(sql, [&prefix], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
                .unwrap_or(0)
        };
        cards += count("SELECT count(*) FROM \"Card\" WHERE \"_shard\" LIKE ?1");
        shards += count("SELECT count(*) FROM _pylon_shards WHERE shard LIKE ?1");
    }
    Ok((cards, shards))
}

/// The SQLite files under `dir` (miniflare keeps D1 in one, under a
/// `…D1DatabaseObject` folder).
fn sqlite_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = e?.path();
        if p.is_dir() {
            out.extend(sqlite_files(&p)?);
        } else if p.extension().and_then(|x| x.to_str()) == Some("sqlite") {
            out.push(p);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("cost bench failed: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> Result<()> {
    support::require_build(&root())?;
    let rooms_n = env_num("PYLON_BENCH_ROOMS", 50).max(1);
    let clients = env_num("PYLON_BENCH_CLIENTS", 10).max(1);
    let wpm = env_num("PYLON_BENCH_WRITES_PER_MIN", 1).max(1);
    let active_secs = env_num("PYLON_BENCH_ACTIVE_SECS", 180) as u64;
    let idle_secs = env_num("PYLON_BENCH_IDLE_SECS", 120) as u64;
    let keepalive = Duration::from_secs(env_num("PYLON_BENCH_KEEPALIVE_SECS", 30).max(1) as u64);
    let month_rooms = env_num("PYLON_BENCH_MONTH_ROOMS", 1000) as f64;
    let active_hours = (env_num("PYLON_BENCH_ACTIVE_HOURS", 8) as f64).min(24.0);
    ensure_fds((rooms_n * clients) as u64 + 256)?;

    let dir: PathBuf = root()
        .join("target")
        .join("bench-cost")
        .join(format!("run-{}", std::process::id()));
    let vars = support::bench_vars(&[]);
    let dev = DevOptions::new()
        .vars(vars)
        .log_level("warn")
        .local_observability(observability_on())
        .start(&dir)
        .await?;
    let port = dev.port;
    eprintln!(
        "wrangler dev on 127.0.0.1:{port}, log {}",
        dev.log.display()
    );
    let http = reqwest::Client::new();
    let per_read = calibrate(&http, port).await?;
    eprintln!("one stats read costs an awake shard {per_read:?}");

    let counters = Arc::new(Counters::default());
    let t_setup = Instant::now();
    let rooms = open_rooms(port, rooms_n, clients, keepalive, &counters).await?;
    let setup = counters.tally();
    eprintln!(
        "{rooms_n} rooms x {clients} clients subscribed in {:.1} s",
        t_setup.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;

    eprintln!("active: {active_secs} s at {wpm} write(s)/min per room");
    let (act, end_reads) =
        active(&http, port, &rooms, &counters, active_secs, wpm, &per_read).await?;
    let idle_phase = if idle_secs > 0 {
        eprintln!("idle: {idle_secs} s");
        Some(
            idle(
                &http, port, &rooms, &counters, end_reads, idle_secs, &per_read,
            )
            .await?,
        )
    } else {
        None
    };
    let final_reads = read_all(&http, port, &rooms).await?;
    let depth: u64 = final_reads.iter().map(|m| m.outbox_depth).sum();
    let errors = counters.tally().errors;
    for room in rooms {
        drop(room.writer);
        drop(room.others);
        for t in room.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
    let d1 = d1_rows(&dir.join("state"));
    drop(dev);

    // ---- report
    let a = PerHour::of(&act);
    println!();
    println!("cost of a room under wrangler dev, 127.0.0.1, release Worker build");
    println!(
        "workload: {rooms_n} rooms x {clients} clients (each subscribed to a 20-row window), {wpm} write(s)/min per room at real rate for {:.0} s, then idle {:.0} s; keepalive after {}s of silence; local observability {}",
        act.secs,
        idle_phase.map_or(0.0, |p| p.secs),
        keepalive.as_secs(),
        if observability_on() { "on" } else { "off" }
    );
    println!(
        "setup (once per session, not per hour): {} connections = {} Worker requests + {} DO requests; {} messages in, {} out",
        rooms_n * clients,
        rooms_n * clients,
        rooms_n * clients,
        setup.msgs_out,
        setup.msgs_in
    );
    println!(
        "writes {}, server errors {errors}, outbox depth at the end {depth}; one stats read (taken off) = {} statements, {} rows read, {} written",
        act.writes, per_read.statements, per_read.rows_read, per_read.rows_written
    );
    match &d1 {
        Ok((cards, shards)) => println!(
            "local D1: {cards} cards (of {} written) and {shards} directory rows (of {rooms_n} shards) arrived",
            act.writes
        ),
        Err(e) => println!("local D1 not read: {e:#}"),
    }
    println!(
        "wakes no read saw (their rows are missing from the counts): active {}, idle {}",
        act.unseen_wakes,
        idle_phase.map_or(0, |p| p.unseen_wakes)
    );
    let i = idle_phase.map(|p| PerHour::of(&p)).unwrap_or_default();
    let month_one = a
        .scale(active_hours * HOURS_PER_MONTH / 24.0)
        .plus(&i.scale((24.0 - active_hours) * HOURS_PER_MONTH / 24.0));
    let month = month_one.scale(month_rooms);
    println!();
    println!(
        "{:<34} {:>16} {:>16} {:>18}",
        "per shard-hour / month",
        "active",
        "idle",
        format!("month, {month_rooms:.0} rooms")
    );
    let row = |name: &str, f: fn(&PerHour) -> f64| {
        println!(
            "{:<34} {:>16.2} {:>16.2} {:>18.0}",
            name,
            f(&a),
            f(&i),
            f(&month)
        );
    };
    row("writes", |p| p.writes);
    row("wakes", |p| p.wakes);
    row("alarms fired", |p| p.alarms_fired);
    row("alarms set", |p| p.alarms_set);
    row("DO SQL rows read", |p| p.rows_read);
    row("DO SQL rows written", |p| p.rows_written);
    row("D1 rows written", |p| p.d1_rows_written);
    row("WS messages in (to the object)", |p| p.ws_in);
    row("  of which keepalives", |p| p.keepalives);
    row("WS messages out (to clients)", |p| p.ws_out);
    row("DO requests billed (in/20 + alarms)", |p| p.do_requests());
    row("GB-s upper bound (wakes x 10 s)", |p| p.gb_s());
    println!();
    let names = [
        "DO requests",
        "DO SQL rows",
        "D1 rows written",
        "DO duration (bound)",
    ];
    println!(
        "{:<34} {:>16} {:>16} {:>18}",
        "dollars at list price", "active /h", "idle /h", "month, gross"
    );
    let (da, di, dm) = (a.dollars(), i.dollars(), month.dollars());
    for (k, n) in names.iter().enumerate() {
        println!("{:<34} {:>16.8} {:>16.8} {:>18.2}", n, da[k], di[k], dm[k]);
    }
    let sum = |d: &[f64; 5]| d.iter().sum::<f64>();
    println!(
        "{:<34} {:>16.8} {:>16.8} {:>18.2}",
        "total",
        sum(&da),
        sum(&di),
        sum(&dm)
    );
    // The month after the plan's included usage.
    let over = |used: f64, included: f64, p: f64| (used - included).max(0.0) * p;
    let billed = price::PLAN_MONTHLY
        + over(
            month.do_requests(),
            price::DO_REQUESTS_INCLUDED,
            price::DO_REQUEST,
        )
        + over(
            month.rows_read,
            price::DO_ROWS_READ_INCLUDED,
            price::DO_ROW_READ,
        )
        + over(
            month.rows_written,
            price::DO_ROWS_WRITTEN_INCLUDED,
            price::DO_ROW_WRITTEN,
        )
        + over(
            month.d1_rows_written,
            price::D1_ROWS_WRITTEN_INCLUDED,
            price::D1_ROW_WRITTEN,
        )
        + over(month.gb_s(), price::DO_GBS_INCLUDED, price::DO_GBS);
    let worker_reqs = rooms_n as f64 * clients as f64;
    println!(
        "month for {month_rooms:.0} rooms ({active_hours:.0} h/day active, the rest idle with sockets open), after included usage, with the $5 plan: ${billed:.2} (duration at its upper bound; without it ${:.2})",
        billed - over(month.gb_s(), price::DO_GBS_INCLUDED, price::DO_GBS)
    );
    println!(
        "(connections: {worker_reqs:.0} Worker requests per session of these rooms, ${:.6} each session at list price)",
        worker_reqs * (price::WORKER_REQUEST + price::DO_REQUEST)
    );
    Ok(())
}
