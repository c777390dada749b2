//! End-to-end suite: builds nothing itself (scripts/test.sh builds the
//! Worker once), starts `wrangler dev` on a free loopback port with a fresh
//! `--persist-to`, and runs each scenario against it as a client would.
//!
//! Run: `bash scripts/test.sh`, or after a build,
//! `cargo test --features e2e --test e2e -- [name-filter...]`.
//! On a failure the scenario's part of wrangler's log is printed.

mod scenarios;
mod support;

use std::future::Future;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Instant;

use anyhow::Result;
use support::jwks::{JwksServer, TestKeys};
use support::wrangler_dev::{log_file, project_root, DevOptions, WranglerDev};

pub struct Ctx {
    /// The run's directory (state, logs).
    pub dir: PathBuf,
    pub dev: WranglerDev,
    /// The JWKS endpoint the Worker's `PYLON_JWKS_URL` points at.
    pub jwks: JwksServer,
    /// Test OAuth providers and email API on 127.0.0.1 (sign-in scenario).
    pub providers: support::providers::Providers,
    /// Scenarios that run beside the others (on their own shards), joined
    /// by a later scenario by name.
    pub background: Vec<(&'static str, tokio::task::JoinHandle<Result<()>>)>,
}

impl Ctx {
    /// `kill -9` of wrangler dev, then the same start on the same persist
    /// dir and port.
    pub async fn restart(&mut self) -> Result<()> {
        self.dev.restart().await
    }

    /// Waits for the scenario `name` that a `start` set running beside the
    /// others, and gives its outcome.
    pub async fn join(&mut self, name: &str) -> Result<()> {
        let Some(i) = self.background.iter().position(|(n, _)| *n == name) else {
            anyhow::bail!("{name} was not started beside the others");
        };
        let (_, handle) = self.background.remove(i);
        handle
            .await
            .map_err(|e| anyhow::anyhow!("the {name} task panicked: {e}"))?
    }

    /// How the suite starts a wrangler dev of the board.
    pub fn wrangler(&self) -> DevOptions {
        wrangler(&self.providers)
    }
}

/// Every start of the board gets the test providers' URLs (sign-in), and
/// a jobs ledger that sends a lost job again after 4 s, not a minute (a
/// local queue loses its messages with a `kill -9` of wrangler).
fn wrangler(providers: &support::providers::Providers) -> DevOptions {
    DevOptions::new()
        .vars(providers.vars())
        .var("PYLON_JOBS_OVERDUE_MS", "4000")
}

type ScenarioFn = for<'a> fn(&'a mut Ctx) -> Pin<Box<dyn Future<Output = Result<()>> + 'a>>;

macro_rules! scenario {
    ($path:path) => {{
        fn boxed(ctx: &mut Ctx) -> Pin<Box<dyn Future<Output = Result<()>> + '_>> {
            Box::pin($path(ctx))
        }
        (stringify!($path), boxed as ScenarioFn)
    }};
}

fn all() -> Vec<(&'static str, ScenarioFn)> {
    vec![
        scenario!(scenarios::health::run),
        scenario!(scenarios::keepalive::start),
        scenario!(scenarios::rate_limit::start),
        scenario!(scenarios::routing::run),
        scenario!(scenarios::openapi::run),
        scenario!(scenarios::live::run),
        scenario!(scenarios::objects::run),
        scenario!(scenarios::cache::run),
        scenario!(scenarios::rooms::run),
        scenario!(scenarios::channels::run),
        scenario!(scenarios::functions::run),
        scenario!(scenarios::background_clients::run),
        scenario!(scenarios::background::start),
        scenario!(scenarios::sims::run),
        scenario!(scenarios::plane::run),
        scenario!(scenarios::auth::run),
        scenario!(scenarios::jwks::run),
        scenario!(scenarios::hello::run),
        scenario!(scenarios::slow_readers::run),
        scenario!(scenarios::expiry::start),
        // Before the first scenario that restarts wrangler.
        scenario!(scenarios::plane::finish),
        scenario!(scenarios::keepalive::finish),
        scenario!(scenarios::expiry::finish),
        scenario!(scenarios::background::finish),
        scenario!(scenarios::rooms::finish),
        scenario!(scenarios::signin::run),
        scenario!(scenarios::edge::run),
        scenario!(scenarios::bad_input::run),
        scenario!(scenarios::bounds::run),
        scenario!(scenarios::hibernation::run),
        scenario!(scenarios::restart::run),
        scenario!(scenarios::cache::after_restart),
        scenario!(scenarios::rooms::after_restart),
        scenario!(scenarios::channels::after_restart),
        scenario!(scenarios::background::after_restart),
        scenario!(scenarios::sim_client::run),
        scenario!(scenarios::minimal::start),
        scenario!(scenarios::cold_path::run),
        scenario!(scenarios::cold_access::run),
        scenario!(scenarios::minimal::finish),
        scenario!(scenarios::rate_limit::finish),
        // Last: it restarts wrangler itself, in the middle of an upload.
        scenario!(scenarios::files::run),
    ]
}

fn print_log_since(path: &Path, offset: u64) {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.seek(SeekFrom::Start(offset));
        let _ = f.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    let shown = &lines[lines.len().saturating_sub(150)..];
    eprintln!(
        "---- wrangler log ({} of {} lines) ----",
        shown.len(),
        lines.len()
    );
    for l in shown {
        eprintln!("{l}");
    }
    eprintln!("---- end of wrangler log ----");
}

#[tokio::main]
async fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let chosen: Vec<_> = all()
        .into_iter()
        .filter(|(name, _)| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        .collect();

    let dir = project_root()
        .join("target")
        .join("e2e")
        .join(support::unique("run"));
    let log = log_file(&dir);
    let providers = match support::providers::start().await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("e2e: could not start the test providers: {e:#}");
            std::process::exit(1);
        }
    };
    let keys = TestKeys::load().expect("the test keys in tests/fixtures/jwt");
    let jwks = JwksServer::start(keys.initial())
        .await
        .expect("starting the JWKS server");
    let started = wrangler(&providers)
        .var("PYLON_JWKS_URL", jwks.url())
        .var("PYLON_CORS_ORIGINS", scenarios::edge::ALLOWED_ORIGIN)
        .start(&dir)
        .await;
    let dev = match started {
        Ok(dev) => dev,
        Err(e) => {
            eprintln!("e2e: could not start wrangler dev: {e:#}");
            print_log_since(&log, 0);
            println!("e2e: 0 passed, {} failed", chosen.len());
            std::process::exit(1);
        }
    };
    let mut ctx = Ctx {
        dev,
        jwks,
        providers,
        dir: dir.clone(),
        background: Vec::new(),
    };

    let (mut passed, mut failed) = (0, 0);
    for (name, run) in chosen {
        let offset = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let started = Instant::now();
        let result = run(&mut ctx).await;
        let took = started.elapsed();
        match result {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok ({:.1}s)", took.as_secs_f64());
            }
            Err(e) => {
                failed += 1;
                println!("test {name} ... FAILED ({:.1}s)", took.as_secs_f64());
                eprintln!("{name}: {e:#}");
                print_log_since(&log, offset);
            }
        }
    }
    drop(ctx);
    if failed == 0 {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("e2e: state and log kept in {}", dir.display());
    }
    println!("e2e: {passed} passed, {failed} failed");
    std::process::exit(if failed == 0 { 0 } else { 1 });
}
