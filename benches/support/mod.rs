//! What the benches against `wrangler dev` share: their knobs (environment
//! variables), the wrangler vars of a run, percentiles, the open-files
//! limit.
#![allow(dead_code)]

use std::time::Duration;

use anyhow::{ensure, Result};
use pylon_workers::client::{Backoff, Client, ClientConfig};
use pylon_workers::protocol::Encoding;
use tokio::task::JoinSet;

/// Fails unless the board's release Worker is built under `root`: the
/// benches measure a build, they never make one.
pub fn require_build(root: &std::path::Path) -> Result<()> {
    let build = root.join("build").join("index.js");
    ensure!(
        build.exists(),
        "{} is missing: build the Worker first (bash scripts/build-worker.sh); this bench builds nothing",
        build.display()
    );
    Ok(())
}

/// A comma list of numbers from `name`, or `default`.
pub fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// A number from `name`, or `default`.
pub fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default)
}

/// Whether `PYLON_BENCH_ONLY` (a comma list; unset: all) names `part`.
pub fn wants(part: &str) -> bool {
    match std::env::var("PYLON_BENCH_ONLY") {
        Ok(s) => s.split(',').any(|p| p.trim() == part),
        Err(_) => true,
    }
}

/// `PYLON_BENCH_VARS` (`NAME:VALUE,...`) over `base`, as (name, value)
/// pairs: a name given there wins.
pub fn bench_vars(base: &[(&str, &str)]) -> Vec<(String, String)> {
    let given: Vec<(String, String)> = std::env::var("PYLON_BENCH_VARS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|v| v.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().replace('\'', "")))
        .collect();
    let mut vars: Vec<(String, String)> = base
        .iter()
        .filter(|(k, _)| !given.iter().any(|(g, _)| g == k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    vars.extend(given);
    vars
}

/// Whether `wrangler dev`'s local observability collector stays on
/// (`PYLON_BENCH_OBSERVABILITY=1`).
pub fn observability_on() -> bool {
    std::env::var("PYLON_BENCH_OBSERVABILITY").is_ok_and(|v| v == "1")
}

/// Every 10th client speaks JSON, the rest postcard.
pub fn encoding_for(i: usize) -> Encoding {
    if i % 10 == 9 {
        Encoding::Json
    } else {
        Encoding::Postcard
    }
}

/// Nearest-rank percentile of sorted samples.
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub struct Stats {
    pub n: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

pub fn stats(mut v: Vec<f64>) -> Stats {
    v.sort_by(|a, b| a.total_cmp(b));
    Stats {
        n: v.len(),
        p50: pct(&v, 50.0),
        p95: pct(&v, 95.0),
        p99: pct(&v, 99.0),
        max: v.last().copied().unwrap_or(f64::NAN),
    }
}

/// The median of `v` (NaN when empty).
pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    pct(&v, 50.0)
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Makes sure the soft open-files limit covers `need` descriptors, raising
/// it within the hard limit if needed.
pub fn ensure_fds(need: u64) -> Result<()> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        ensure!(
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0,
            "getrlimit failed"
        );
        if (lim.rlim_cur as u64) < need {
            let want = (need.max(8192) as libc::rlim_t).min(lim.rlim_max);
            lim.rlim_cur = want;
            ensure!(
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0,
                "setrlimit failed"
            );
        }
    }
    ensure!(
        (lim.rlim_cur as u64) >= need,
        "open files limit {} (hard {}) is below the {need} this bench needs",
        lim.rlim_cur,
        lim.rlim_max
    );
    Ok(())
}

/// A live-query client of `shard`.
pub async fn connect(port: u16, shard: &str, encoding: Encoding) -> Result<Client> {
    let config = ClientConfig::new(format!("ws://127.0.0.1:{port}"), shard)
        .encoding(encoding)
        .connect_timeout(Duration::from_secs(10))
        .backoff(Backoff {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(2),
            factor: 2.0,
        });
    // A loaded machine (e.g. right after 1,000 sockets closed) can stall a
    // handshake: three attempts, each bounded.
    let mut last = None;
    for _ in 0..3 {
        match tokio::time::timeout(Duration::from_secs(20), Client::connect(config.clone())).await {
            Ok(Ok(c)) => return Ok(c),
            Ok(Err(e)) => last = Some(anyhow::Error::from(e).context("connect")),
            Err(_) => last = Some(anyhow::anyhow!("connect timed out")),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("connect failed")))
}

/// Closes `clients`, a hundred at a time.
pub async fn close_all(clients: Vec<Client>) {
    for chunk in clients.chunks(100) {
        let mut set = JoinSet::new();
        for c in chunk {
            let c = c.clone();
            set.spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(5), c.close()).await;
            });
        }
        while set.join_next().await.is_some() {}
    }
}
