//! The cache's read latency against `wrangler dev` (docs/cache.md,
//! docs/benchmarks.md "Cache"): sequential `GET /v1/cache/{key}` requests
//! from one client, and the floor of the same run, `GET /healthz` (the
//! router Worker alone, no Durable Object), interleaved request by
//! request so drift hits both; reported as p50/p99 and their ratio.
//!
//! ```sh
//! bash scripts/build-worker.sh          # the bench builds nothing itself
//! cargo bench --features client --bench cache
//! ```
//!
//! It starts its own `wrangler dev` (observability collector off, as the
//! other benches) on a free loopback port with a temporary `--persist-to`
//! under `target/bench-cache/`, and kills it at the end.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `PYLON_BENCH_ROUNDS` | `500` | measured GETs (and as many `/healthz`) |
//! | `PYLON_BENCH_WARMUP` | `50` | warm-up rounds, not recorded |
//! | `PYLON_BENCH_OBSERVABILITY` | `0` | `1` keeps `wrangler dev`'s local observability collector on |

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use pylon_workers::auth::jwt;
use serde_json::{json, Value};

mod support;
#[path = "../tests/wrangler_dev/mod.rs"]
mod wrangler_dev;
use support::{env_num, ms, observability_on, stats, Stats};
use wrangler_dev::{project_root as root, DevOptions};

/// A signed-in caller's token (the board's `cache.write` is signedIn),
/// from the development secret in `.dev.vars`.
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

/// One GET's time; fails unless it answers `want`.
async fn timed_get(http: &reqwest::Client, url: &str, want: u16) -> Result<Duration> {
    let t = Instant::now();
    let resp = http.get(url).send().await?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await?;
    let took = t.elapsed();
    ensure!(
        status == want,
        "GET {url}: {status} {}",
        String::from_utf8_lossy(&body)
    );
    Ok(took)
}

fn line(label: &str, s: &Stats) {
    println!(
        "  {label:<28} n={:<4} p50 {:>6.2}  p95 {:>6.2}  p99 {:>6.2}  max {:>6.2} ms",
        s.n, s.p50, s.p95, s.p99, s.max
    );
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("cache bench failed: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> Result<()> {
    support::require_build(root())?;
    let rounds = env_num("PYLON_BENCH_ROUNDS", 500).max(1);
    let warmup = env_num("PYLON_BENCH_WARMUP", 50);
    let dir: PathBuf = root()
        .join("target")
        .join("bench-cache")
        .join(format!("run-{}", std::process::id()));
    let dev = DevOptions::new()
        .log_level("warn")
        .local_observability(observability_on())
        .start(&dir)
        .await?;
    eprintln!(
        "wrangler dev on 127.0.0.1:{}, log {}",
        dev.port,
        dev.log.display()
    );
    let http = reqwest::Client::builder().tcp_nodelay(true).build()?;

    // One key with a small JSON value, written once.
    let key_url = dev.http("/v1/cache/bench%2Fkey");
    let resp = http
        .put(&key_url)
        .bearer_auth(token()?)
        .json(&json!({"value": {"user": "ann", "score": 42}}))
        .send()
        .await?;
    ensure!(resp.status().is_success(), "put: {}", resp.status());
    let value: Value = http.get(&key_url).send().await?.json().await?;
    ensure!(value["value"]["score"] == 42, "{value}");
    let health = dev.http("/healthz");

    let (mut gets, mut floor) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for i in 0..warmup + rounds {
        // A B A B: the floor and the cache read alternate, request by request.
        let f = timed_get(&http, &health, 200).await?;
        let g = timed_get(&http, &key_url, 200).await?;
        if i >= warmup {
            floor.push(ms(f));
            gets.push(ms(g));
        }
    }
    drop(dev);

    let (g, f) = (stats(gets), stats(floor));
    println!();
    println!(
        "cache reads under wrangler dev, 127.0.0.1, release Worker build, one client, sequential"
    );
    println!(
        "  local observability collector: {}",
        if observability_on() { "on" } else { "off" }
    );
    line("GET /v1/cache/{key}", &g);
    line("GET /healthz (floor)", &f);
    println!(
        "  ratio to the floor: p50 {:.2}x, p99 {:.2}x",
        g.p50 / f.p50,
        g.p99 / f.p99
    );
    Ok(())
}
