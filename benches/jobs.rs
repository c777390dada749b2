//! Jobs, timers and workflows against `wrangler dev` (docs/jobs.md,
//! docs/workflows.md): jobs per second through the local queue, and how
//! late timers fire.
//!
//! ```sh
//! bash scripts/build-worker.sh          # the bench builds nothing itself
//! cargo bench --features client --bench jobs
//! ```
//!
//! It expects `build/` (the release Worker) and fails otherwise. It starts
//! its own `wrangler dev` on a free loopback port with a temporary
//! `--persist-to` (under `target/bench-jobs/`), D1 migrated, and kills its
//! process group at the end. Measured (docs/benchmarks.md, "Jobs, timers
//! and workflows"):
//!
//! 1. throughput, per run and handler: N jobs enqueued by C concurrent
//!    HTTP clients (`POST /v1/jobs`, admin tokens). Enqueue rate (jobs
//!    accepted per second), end to end (N / first enqueue → last
//!    `finishedMs`; the bench polls `GET /v1/jobs/stats` for the done
//!    count), and each job's `finishedMs − createdMs`. Handlers: `noopJob`
//!    (an action, in the Worker) and `noopMutation` (a mutation in one
//!    shard). The floor, interleaved with them: the same clients reading
//!    one job N times (`GET /v1/jobs/{id}`: the router, a token, one
//!    ledger request). Also per run: the `wrangler dev` processes' CPU
//!    time per job, and for the mutation the shard's SQL rows written per
//!    job (its `/stats`).
//! 2. timer lateness: delayed jobs (`startedMs − runAtMs`), scheduled
//!    functions on a shard's alarm (`stampLater` → `stamp`: run time − due
//!    time), and workflow sleeps (`onboard`'s 2 s `cool` step:
//!    `finishedMs − startedMs − 2000`).
//!
//! Knobs (environment):
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `PYLON_BENCH_JOBS` | `300` | jobs per throughput run and handler |
//! | `PYLON_BENCH_CLIENTS` | `4` | concurrent HTTP clients enqueuing |
//! | `PYLON_BENCH_RUNS` | `3` | throughput runs (each: floor, action, mutation, rotated) |
//! | `PYLON_BENCH_TIMERS` | `60` | delayed jobs, and scheduled calls, with delays spread over 2–8 s |
//! | `PYLON_BENCH_WORKFLOWS` | `10` | `onboard` workflows started |
//! | `PYLON_BENCH_ONLY` | all | comma list of `throughput`, `delayed`, `scheduled`, `workflows` |
//! | `PYLON_BENCH_OBSERVABILITY` | `0` | `1` keeps `wrangler dev`'s local observability collector on |
//!
//! The router's rate limits (docs/edge.md: 3000 requests per 10 s per
//! address, 600 per user) hold here too: each enqueuing client signs as its
//! own admin, and a 429 stops the bench with a note to lower the load.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context, Result};
use pylon_workers::auth::jwt;
use serde_json::{json, Value as Json};
use tokio::task::JoinSet;

mod support;
#[path = "../tests/wrangler_dev/mod.rs"]
mod wrangler_dev;
use support::{env_num, median, observability_on, stats, wants};
use wrangler_dev::{project_root as root, DevOptions};

const AUDIENCE: &str = "pylon-dev";
/// How often the bench polls while it waits for jobs or timers.
const POLL: Duration = Duration::from_millis(100);
/// The shard the mutation jobs run in, and the one the scheduled calls use.
const JOB_SHARD: &str = "jobs-bench";
const TIMER_SHARD: &str = "timers-bench";
const WORKFLOW_SHARD: &str = "workflows-bench";
/// Timer delays are spread evenly over this range (ms).
const DELAY_MIN_MS: i64 = 2_000;
const DELAY_MAX_MS: i64 = 8_000;
/// `onboard`'s `cool` step (examples/board/schema.json).
const COOL_MS: i64 = 2_000;

fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// An HS256 token for `sub` (an admin when `admin`) with the dev secret.
fn token(sub: &str, admin: bool) -> Result<String> {
    let text = std::fs::read_to_string(root().join(".dev.vars"))?;
    let secret = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("PYLON_JWT_SECRET="))
        .context("PYLON_JWT_SECRET in .dev.vars")?
        .trim()
        .trim_matches('"');
    let claims =
        json!({"sub": sub, "aud": AUDIENCE, "exp": wall_ms() / 1000 + 3600, "admin": admin});
    Ok(jwt::sign_hs256(&claims, secret.as_bytes()))
}

/// `delay_i` of `m` delays spread evenly over [`DELAY_MIN_MS`, `DELAY_MAX_MS`].
fn spread_delay(i: usize, m: usize) -> i64 {
    let step = (DELAY_MAX_MS - DELAY_MIN_MS) / (m.max(2) as i64 - 1);
    DELAY_MIN_MS + i as i64 * step
}

// ---------------------------------------------------------------------------
// HTTP

/// The Worker's API over one pooled HTTP client.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    admin: String,
}

impl Api {
    fn new(port: u16) -> Result<Api> {
        Ok(Api {
            http: reqwest::Client::builder()
                .tcp_nodelay(true)
                .timeout(Duration::from_secs(30))
                .build()?,
            base: format!("http://127.0.0.1:{port}"),
            admin: token("bench-admin", true)?,
        })
    }

    /// One request: status and JSON body. A 429 fails (see the module doc).
    async fn call(
        &self,
        post: bool,
        path: &str,
        token: Option<&str>,
        body: Option<&Json>,
    ) -> Result<(u16, Json)> {
        let url = format!("{}{path}", self.base);
        let mut req = if post {
            self.http.post(&url)
        } else {
            self.http.get(&url)
        };
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.with_context(|| url.clone())?;
        let status = resp.status().as_u16();
        let body: Json = resp.json().await.unwrap_or(Json::Null);
        ensure!(
            status != 429,
            "{path}: rate limited ({body}); lower PYLON_BENCH_CLIENTS or PYLON_BENCH_JOBS"
        );
        Ok((status, body))
    }

    async fn admin_get(&self, path: &str) -> Result<Json> {
        let (s, b) = self.call(false, path, Some(&self.admin), None).await?;
        ensure!(s == 200, "GET {path}: {s} {b}");
        Ok(b)
    }

    /// `POST /v1/jobs` with `token`: the job's id.
    async fn enqueue(&self, token: &str, spec: &Json) -> Result<String> {
        let (s, b) = self.call(true, "/v1/jobs", Some(token), Some(spec)).await?;
        ensure!(s == 201, "enqueue {spec}: {s} {b}");
        Ok(b["id"].as_str().context("a job id")?.to_owned())
    }

    /// A shard's function, anonymous (the board's `*` shard rule).
    async fn function(&self, shard: &str, name: &str, args: &Json) -> Result<Json> {
        let path = format!("/v1/shards/{shard}/fn/{name}");
        let (s, b) = self.call(true, &path, None, Some(args)).await?;
        ensure!(s == 200, "{name}: {s} {b}");
        Ok(b["value"].clone())
    }
}

// ---------------------------------------------------------------------------
// 1. throughput

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Handler {
    Action,
    Mutation,
}

impl Handler {
    fn name(self) -> &'static str {
        match self {
            Handler::Action => "noopJob",
            Handler::Mutation => "noopMutation",
        }
    }

    fn spec(self, n: usize) -> Json {
        match self {
            Handler::Action => json!({"name": self.name(), "payload": {"n": n}}),
            Handler::Mutation => {
                json!({"name": self.name(), "payload": {"n": n}, "shard": JOB_SHARD})
            }
        }
    }
}

/// One throughput run of one handler.
#[derive(Debug)]
struct Throughput {
    enqueue_per_s: f64,
    jobs_per_s: f64,
    latency_p50_ms: f64,
    latency_p99_ms: f64,
    cpu_ms_per_job: f64,
    /// The shard's SQL rows written per job (mutation jobs only).
    shard_rows_per_job: Option<f64>,
}

/// Runs `work(i)` for i in 0..n on `clients` concurrent tasks, each with
/// its own admin token; the results in order of i.
async fn on_clients<F, Fut, T>(api: &Api, n: usize, clients: usize, work: F) -> Result<Vec<T>>
where
    F: Fn(Api, String, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<T>> + Send,
    T: Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let mut set = JoinSet::new();
    for c in 0..clients {
        let (api, next, work) = (api.clone(), next.clone(), work.clone());
        // Its own user: the per-user rate limit is per token subject.
        let token = token(&format!("bench-client-{c}"), true)?;
        set.spawn(async move {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok(done);
                }
                done.push((i, work(api.clone(), token.clone(), i).await?));
            }
        });
    }
    let mut all = Vec::with_capacity(n);
    while let Some(r) = set.join_next().await {
        all.extend(r??);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, t)| t).collect())
}

/// Enqueues `n` jobs of `handler`: their ids, and the seconds from the
/// first request sent to the last answer.
async fn enqueue_all(
    api: &Api,
    handler: Handler,
    n: usize,
    clients: usize,
) -> Result<(Vec<String>, f64)> {
    let started = Instant::now();
    let ids = on_clients(api, n, clients, move |api, token, i| async move {
        api.enqueue(&token, &handler.spec(i)).await
    })
    .await?;
    Ok((ids, started.elapsed().as_secs_f64()))
}

/// The default queue's counts of jobs by status.
async fn counts(api: &Api) -> Result<Json> {
    let s = api.admin_get("/v1/jobs/stats").await?;
    Ok(s["queues"]["default"].clone())
}

fn count(counts: &Json, status: &str) -> u64 {
    counts[status].as_u64().unwrap_or(0)
}

/// Waits until `done` reaches `target` and no job waits (queued, running
/// or failed: a job enqueued before may finish meanwhile); fails when a
/// job died or nothing moved for a minute.
async fn wait_done(api: &Api, target: u64, dead_before: u64) -> Result<()> {
    let (mut last, mut moved) = (0, Instant::now());
    loop {
        let c = counts(api).await?;
        let done = count(&c, "done");
        let waiting = ["queued", "running", "failed"]
            .iter()
            .map(|s| count(&c, s))
            .sum::<u64>();
        if done >= target && waiting == 0 {
            return Ok(());
        }
        ensure!(
            count(&c, "dead") == dead_before,
            "a job died (GET /v1/jobs?status=dead)"
        );
        if done != last {
            (last, moved) = (done, Instant::now());
        }
        ensure!(
            moved.elapsed() < Duration::from_secs(60),
            "no job finished for a minute: {c}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// The ledger's records of jobs `ids` (all named `name`): the newest 500
/// in one listing, any older one by id.
async fn job_records(api: &Api, name: &str, ids: &[String]) -> Result<Vec<Json>> {
    let listed = api
        .admin_get(&format!("/v1/jobs?name={name}&limit=500"))
        .await?;
    let wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let mut found: Vec<Json> = listed["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|j| j["id"].as_str().is_some_and(|id| wanted.contains(id)))
        .cloned()
        .collect();
    let have: HashSet<String> = found
        .iter()
        .filter_map(|j| j["id"].as_str().map(str::to_owned))
        .collect();
    for id in ids.iter().filter(|id| !have.contains(*id)) {
        found.push(api.admin_get(&format!("/v1/jobs/{id}")).await?);
    }
    Ok(found)
}

fn ms_field(j: &Json, field: &str) -> Result<i64> {
    j[field]
        .as_i64()
        .with_context(|| format!("{field} of {}", j["id"]))
}

/// CPU time (ms) of every process in `wrangler dev`'s process group:
/// workerd (the Worker, its objects, the local queue), its proxy, wrangler.
fn group_cpu_ms(pgid: i32) -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks_per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut ticks = 0u64;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the command's closing parenthesis: state is 3rd,
        // pgrp 5th, utime 14th, stime 15th (proc(5)).
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() > 12 && f[2].parse::<i32>() == Ok(pgid) {
            ticks += f[11].parse::<u64>().unwrap_or(0) + f[12].parse::<u64>().unwrap_or(0);
        }
    }
    ticks as f64 * 1e3 / ticks_per_s
}

/// The shard's current wake and its SQL rows written so far in it.
async fn shard_rows_written(api: &Api, shard: &str) -> Result<(i64, u64)> {
    let (s, v) = api
        .call(false, &format!("/v1/shards/{shard}/stats"), None, None)
        .await?;
    ensure!(s == 200, "stats of {shard}: {s} {v}");
    let wake = v["this_wake"]["opened_ms"].as_i64().unwrap_or(0);
    Ok((
        wake,
        v["this_wake"]["sql"]["rows_written"].as_u64().unwrap_or(0),
    ))
}

/// One run: `n` jobs of `handler`, enqueued by `clients`, until all are done.
async fn throughput(
    api: &Api,
    pgid: i32,
    handler: Handler,
    n: usize,
    clients: usize,
) -> Result<Throughput> {
    let before = counts(api).await?;
    let (done_before, dead_before) = (count(&before, "done"), count(&before, "dead"));
    let shard_before = shard_rows_written(api, JOB_SHARD).await?;
    let cpu_before = group_cpu_ms(pgid);
    let first_ms = wall_ms();
    let (ids, enqueue_secs) = enqueue_all(api, handler, n, clients).await?;
    wait_done(api, done_before + n as u64, dead_before).await?;
    let cpu_ms = group_cpu_ms(pgid) - cpu_before;
    let shard_after = shard_rows_written(api, JOB_SHARD).await?;
    let records = job_records(api, handler.name(), &ids).await?;
    ensure!(records.len() == n, "{} of {n} jobs found", records.len());
    let mut latencies = Vec::with_capacity(n);
    let mut last_ms = first_ms;
    for j in &records {
        ensure!(j["status"] == "done", "not done: {j}");
        let finished = ms_field(j, "finishedMs")?;
        latencies.push((finished - ms_field(j, "createdMs")?) as f64);
        last_ms = last_ms.max(finished);
    }
    let lat = stats(latencies);
    // Same wake before and after: the delta is the jobs' (the stats reads
    // write nothing).
    let shard_rows = (handler == Handler::Mutation && shard_before.0 == shard_after.0)
        .then(|| (shard_after.1 - shard_before.1) as f64 / n as f64);
    Ok(Throughput {
        enqueue_per_s: n as f64 / enqueue_secs,
        jobs_per_s: n as f64 * 1e3 / (last_ms - first_ms).max(1) as f64,
        latency_p50_ms: lat.p50,
        latency_p99_ms: lat.p99,
        cpu_ms_per_job: cpu_ms / n as f64,
        shard_rows_per_job: shard_rows,
    })
}

/// The floor: `n` reads of one job by `clients` (`GET /v1/jobs/{id}`),
/// per second.
async fn read_floor(api: &Api, id: &str, n: usize, clients: usize) -> Result<f64> {
    let path = format!("/v1/jobs/{id}");
    let started = Instant::now();
    on_clients(api, n, clients, move |api, token, _| {
        let path = path.clone();
        async move {
            let (s, b) = api.call(false, &path, Some(&token), None).await?;
            ensure!(s == 200, "GET {path}: {s} {b}");
            anyhow::Ok(())
        }
    })
    .await?;
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

// ---------------------------------------------------------------------------
// 2. timers

/// Delayed jobs: per job, `startedMs − runAtMs`, and the same against the
/// whole seconds the queue was given (`createdMs + ⌈delay⌉`).
async fn delayed_lateness(api: &Api, m: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    let mut ids = Vec::with_capacity(m);
    for i in 0..m {
        let spec = json!({"name": "noopJob", "payload": {"n": i}, "delayMs": spread_delay(i, m)});
        ids.push(api.enqueue(&api.admin, &spec).await?);
    }
    let deadline = Instant::now() + Duration::from_millis(DELAY_MAX_MS as u64 + 30_000);
    let mut records = Vec::with_capacity(m);
    for id in &ids {
        loop {
            let j = api.admin_get(&format!("/v1/jobs/{id}")).await?;
            if j["status"] == "done" {
                records.push(j);
                break;
            }
            ensure!(Instant::now() < deadline, "delayed job {id} not done: {j}");
            tokio::time::sleep(POLL).await;
        }
    }
    let (mut vs_due, mut vs_whole) = (Vec::new(), Vec::new());
    for j in &records {
        let (created, run_at) = (ms_field(j, "createdMs")?, ms_field(j, "runAtMs")?);
        let started = ms_field(j, "startedMs")?;
        let whole_secs = (run_at - created + 999) / 1000;
        vs_due.push((started - run_at) as f64);
        vs_whole.push((started - created - whole_secs * 1000) as f64);
    }
    Ok((vs_due, vs_whole))
}

/// Scheduled functions: `m` calls of `stampLater` (one shard), each
/// scheduling `stamp`; per call, the time `stamp` ran minus its due time.
async fn scheduled_lateness(api: &Api, m: usize) -> Result<Vec<f64>> {
    let tag = format!("stamps-{}", wall_ms());
    for i in 0..m {
        let args = json!({"delayMs": spread_delay(i, m), "tag": tag});
        api.function(TIMER_SHARD, "stampLater", &args).await?;
    }
    let deadline = Instant::now() + Duration::from_millis(DELAY_MAX_MS as u64 + 30_000);
    let query = json!({"entity": "Card", "where": {"column": tag}, "limit": 1000});
    let path = format!("/v1/shards/{TIMER_SHARD}/query");
    loop {
        let (s, b) = api.call(true, &path, None, Some(&query)).await?;
        ensure!(s == 200, "query: {s} {b}");
        let rows = b["rows"].as_array().cloned().unwrap_or_default();
        if rows.len() >= m {
            return rows.iter().map(stamp_lateness).collect();
        }
        ensure!(
            Instant::now() < deadline,
            "{} of {m} scheduled calls ran",
            rows.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A `stamp` card's lateness: its title is "ran <ms>", its position the due ms.
fn stamp_lateness(card: &Json) -> Result<f64> {
    let ran: f64 = card["title"]
        .as_str()
        .and_then(|t| t.strip_prefix("ran "))
        .and_then(|t| t.parse().ok())
        .with_context(|| format!("a stamp card: {card}"))?;
    let due = card["position"].as_f64().context("a due time")?;
    Ok(ran - due)
}

/// Workflow sleeps: `k` `onboard` instances; per instance, when its `cool`
/// step finished minus when it was due (`startedMs + 2000`).
async fn workflow_lateness(api: &Api, k: usize) -> Result<Vec<f64>> {
    let user = token("bench-onboarder", false)?;
    let mut ids = Vec::with_capacity(k);
    for i in 0..k {
        let body = json!({"workflow": "onboard", "input": {"title": format!("bench {i}")}, "shard": WORKFLOW_SHARD});
        let (s, b) = api
            .call(true, "/v1/workflows", Some(&user), Some(&body))
            .await?;
        ensure!(s == 201, "start onboard: {s} {b}");
        ids.push(b["id"].as_str().context("an instance id")?.to_owned());
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut late = Vec::with_capacity(k);
    for id in &ids {
        loop {
            let (s, w) = api
                .call(false, &format!("/v1/workflows/{id}"), Some(&user), None)
                .await?;
            ensure!(s == 200, "workflow {id}: {s} {w}");
            if let Some(cool) = cool_step(&w) {
                late.push(
                    (ms_field(cool, "finishedMs")? - ms_field(cool, "startedMs")? - COOL_MS) as f64,
                );
                break;
            }
            if w["status"] == "failed" {
                bail!("workflow {id} failed: {w}");
            }
            ensure!(Instant::now() < deadline, "workflow {id} did not wake: {w}");
            tokio::time::sleep(POLL).await;
        }
    }
    Ok(late)
}

/// The `cool` step's record once it completed.
fn cool_step(w: &Json) -> Option<&Json> {
    w["history"]
        .as_array()?
        .iter()
        .find(|h| h["name"] == "cool" && h["status"] == "completed")
}

// ---------------------------------------------------------------------------
// report

/// "median (min–max)" of `v`.
fn spread(v: &[f64], digits: usize) -> String {
    let (lo, hi) = v
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(*x), hi.max(*x))
        });
    format!("{:.digits$} ({lo:.digits$}–{hi:.digits$})", median(v))
}

/// One value per run of `h`.
fn per_run(runs: &[(Handler, Throughput)], h: Handler, f: fn(&Throughput) -> f64) -> Vec<f64> {
    runs.iter()
        .filter(|(k, _)| *k == h)
        .map(|(_, t)| f(t))
        .collect()
}

fn print_throughput(floor: &[f64], runs: &[(Handler, Throughput)]) {
    type Row = (&'static str, fn(&Throughput) -> f64, usize);
    let rows: [Row; 5] = [
        (
            "enqueued per second (POST /v1/jobs)",
            |t| t.enqueue_per_s,
            0,
        ),
        ("jobs done per second, end to end", |t| t.jobs_per_s, 1),
        ("enqueue → done p50 (ms)", |t| t.latency_p50_ms, 0),
        ("enqueue → done p99 (ms)", |t| t.latency_p99_ms, 0),
        ("wrangler dev CPU per job (ms)", |t| t.cpu_ms_per_job, 2),
    ];
    println!();
    println!(
        "| median (min–max) over runs | action (noopJob) | mutation (noopMutation, one shard) |"
    );
    println!("|---|---|---|");
    for (label, f, digits) in rows {
        let cell = |h| spread(&per_run(runs, h, f), digits);
        println!(
            "| {label} | {} | {} |",
            cell(Handler::Action),
            cell(Handler::Mutation)
        );
    }
    // Runs are interleaved with the floor: run i's rate over run i's floor.
    let of_floor = |h| -> String {
        let rates = per_run(runs, h, |t| t.enqueue_per_s);
        let ratios: Vec<f64> = rates.iter().zip(floor).map(|(r, f)| r / f).collect();
        spread(&ratios, 2)
    };
    println!(
        "| enqueue rate / read floor of the same run | {} | {} |",
        of_floor(Handler::Action),
        of_floor(Handler::Mutation)
    );
    let shard = per_run(runs, Handler::Mutation, |t| {
        t.shard_rows_per_job.unwrap_or(f64::NAN)
    });
    println!(
        "| shard SQL rows written per job | – | {} |",
        spread(&shard, 1)
    );
    println!(
        "| read floor: GET /v1/jobs/{{id}} per second, same clients | {} | |",
        spread(floor, 0)
    );
}

fn print_lateness(rows: &[(&str, Vec<f64>)]) {
    println!();
    println!("| timer | n | p50 (ms) | p99 (ms) | max (ms) |");
    println!("|---|---|---|---|---|");
    for (label, v) in rows {
        let s = stats(v.clone());
        println!(
            "| {label} | {} | {:.0} | {:.0} | {:.0} |",
            s.n, s.p50, s.p99, s.max
        );
    }
}

// ---------------------------------------------------------------------------

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("jobs bench failed: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> Result<()> {
    support::require_build(root())?;
    let n = env_num("PYLON_BENCH_JOBS", 300);
    let clients = env_num("PYLON_BENCH_CLIENTS", 4).max(1);
    let runs = env_num("PYLON_BENCH_RUNS", 3);
    let timers = env_num("PYLON_BENCH_TIMERS", 60);
    let workflows = env_num("PYLON_BENCH_WORKFLOWS", 10);

    let dir: PathBuf = root()
        .join("target")
        .join("bench-jobs")
        .join(format!("run-{}", std::process::id()));
    let dev = DevOptions::new()
        .log_level("warn")
        .local_observability(observability_on())
        .start(&dir)
        .await?;
    let pgid = dev
        .process_group()
        .context("wrangler dev's process group")?;
    eprintln!(
        "wrangler dev on 127.0.0.1:{}, log {}; observability collector {}",
        dev.port,
        dev.log.display(),
        if observability_on() { "on" } else { "off" }
    );
    let api = Api::new(dev.port)?;

    if wants("throughput") {
        // Warm-up: the router, the ledger, the consumer and the shard.
        for h in [Handler::Action, Handler::Mutation] {
            throughput(&api, pgid, h, 20.min(n), clients).await?;
        }
        let probe = api.enqueue(&api.admin, &Handler::Action.spec(0)).await?;
        let c = counts(&api).await?;
        wait_done(&api, count(&c, "done"), count(&c, "dead")).await?;
        let (mut floor, mut done) = (Vec::new(), Vec::new());
        for run in 0..runs {
            // A B C, then B C A, ...: drift hits every kind alike.
            for step in 0..3 {
                match (run + step) % 3 {
                    0 => floor.push(read_floor(&api, &probe, n, clients).await?),
                    1 => done.push((
                        Handler::Action,
                        throughput(&api, pgid, Handler::Action, n, clients).await?,
                    )),
                    _ => done.push((
                        Handler::Mutation,
                        throughput(&api, pgid, Handler::Mutation, n, clients).await?,
                    )),
                }
            }
            eprintln!(
                "run {}: floor {:.0}/s; {:?}",
                run + 1,
                floor[run],
                &done[done.len() - 2..]
            );
        }
        println!("\nthroughput: {n} jobs per run, {clients} clients, {runs} runs");
        print_throughput(&floor, &done);
    }

    let mut late: Vec<(&str, Vec<f64>)> = Vec::new();
    if wants("delayed") {
        let (due, whole) = delayed_lateness(&api, timers).await?;
        late.push(("delayed job: startedMs − runAtMs", due));
        late.push(("delayed job: against its whole-second queue delay", whole));
    }
    if wants("scheduled") {
        late.push((
            "scheduled function (runAfter, shard alarm)",
            scheduled_lateness(&api, timers).await?,
        ));
    }
    if wants("workflows") {
        late.push((
            "workflow sleep (onboard's 2 s cool step)",
            workflow_lateness(&api, workflows).await?,
        ));
    }
    if !late.is_empty() {
        println!("\ntimer lateness: delays spread over {DELAY_MIN_MS}–{DELAY_MAX_MS} ms");
        print_lateness(&late);
    }
    Ok(())
}
