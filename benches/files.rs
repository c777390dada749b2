//! Upload and download throughput of files through the Worker against
//! `wrangler dev` (docs/files.md, docs/benchmarks.md "Files"): one client,
//! sequential `PUT /v1/files/{shard}/{id}` (streamed into local R2, then
//! the file row) and `GET` of the same file, for 1 MiB and 50 MiB files;
//! each size several times, reported as MiB/s (median, min, max).
//!
//! ```sh
//! bash scripts/build-worker.sh          # the bench builds nothing itself
//! cargo bench --features client --bench files
//! ```
//!
//! It starts its own `wrangler dev` (observability collector off, as the
//! other benches) on a free loopback port with a temporary `--persist-to`
//! under `target/bench-files/`, and kills it at the end.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `PYLON_BENCH_RUNS` | `5` | uploads and downloads per size |
//! | `PYLON_BENCH_SIZES_MIB` | `1,50` | file sizes |

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{ensure, Result};

mod support;
#[path = "../tests/wrangler_dev/mod.rs"]
mod wrangler_dev;
use support::{env_list, env_num, median, observability_on};
use wrangler_dev::{project_root as root, DevOptions};

const MIB: usize = 1024 * 1024;

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("files bench failed: {e:#}");
        std::process::exit(1);
    }
}

fn line(label: &str, mib: usize, v: &[f64]) {
    let min = v.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = v.iter().cloned().fold(0.0, f64::max);
    println!(
        "  {label:<9} {mib:>3} MiB  n={:<3} median {:>7.1}  min {:>7.1}  max {:>7.1} MiB/s",
        v.len(),
        median(v),
        min,
        max
    );
}

async fn run() -> Result<()> {
    support::require_build(root())?;
    let runs = env_num("PYLON_BENCH_RUNS", 5).max(1);
    let sizes = env_list("PYLON_BENCH_SIZES_MIB", "1,50");
    let dir: PathBuf = root()
        .join("target")
        .join("bench-files")
        .join(format!("run-{}", std::process::id()));
    let dev = DevOptions::new()
        .log_level("warn")
        .local_observability(observability_on())
        .start(&dir)
        .await?;
    eprintln!("wrangler dev on 127.0.0.1:{}, log {}", dev.port, dev.log.display());
    let http = reqwest::Client::builder().tcp_nodelay(true).build()?;
    println!();
    println!("files through the Worker under wrangler dev, 127.0.0.1, release Worker build, one client, sequential");
    for mib in sizes {
        let body: Vec<u8> = (0..mib * MIB).map(|i| (i * 31 + i / 4099) as u8).collect();
        let (mut up, mut down) = (Vec::new(), Vec::new());
        // One warm-up upload and download per size, not recorded.
        for i in 0..=runs {
            let url = dev.http(&format!("/v1/files/bench-files/f-{mib}-{i}"));
            let t = Instant::now();
            let resp = http
                .put(&url)
                .header("Content-Type", "application/octet-stream")
                .body(body.clone())
                .send()
                .await?;
            let status = resp.status().as_u16();
            let text = resp.text().await?;
            let put_s = t.elapsed().as_secs_f64();
            ensure!(status == 201, "PUT {url}: {status} {text}");
            let t = Instant::now();
            let resp = http.get(&url).send().await?;
            let status = resp.status().as_u16();
            let got = resp.bytes().await?;
            let get_s = t.elapsed().as_secs_f64();
            ensure!(status == 200 && got.len() == body.len(), "GET {url}: {status}, {} bytes", got.len());
            if i > 0 {
                up.push(mib as f64 / put_s);
                down.push(mib as f64 / get_s);
            }
        }
        line("upload", mib, &up);
        line("download", mib, &down);
    }
    drop(dev);
    Ok(())
}
