//! `wrangler dev` for the end-to-end suite and the fan-out bench: one
//! process on a free loopback port, with its own `--persist-to` directory
//! and log file, killed (the whole process group, workerd included) when
//! dropped. It builds nothing: the app's bundle must exist
//! (`bash scripts/build-worker.sh [APP_DIR]`).
//!
//! ```ignore
//! // The board (the root wrangler.toml), its D1 migrated first:
//! let dev = DevOptions::new().var("PYLON_CORS_ORIGINS", origin).start(&dir).await?;
//! // Another app, by its wrangler config:
//! let app = DevOptions::new().config("examples/minimal/wrangler.toml").start(&dir).await?;
//! ```
//!
//! A run directory holds the state (`state/`) and the log (`wrangler.log`).
#![allow(dead_code)]

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

const READY_TIMEOUT: Duration = Duration::from_secs(90);

pub fn project_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The log of the wrangler started in run directory `dir`.
pub fn log_file(dir: &Path) -> PathBuf {
    dir.join("wrangler.log")
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// How to start `wrangler dev`: which app, with which vars, and whether its
/// D1 is migrated first. Kept by the process, so a restart is the same start.
#[derive(Clone, Debug)]
pub struct DevOptions {
    /// `-c`, relative to the project root; `None`: the root wrangler.toml.
    config: Option<PathBuf>,
    /// `--env`, if not the top-level configuration.
    env: Option<String>,
    /// `--var NAME:VALUE` pairs, in order.
    vars: Vec<(String, String)>,
    migrate: bool,
    /// `X_LOCAL_OBSERVABILITY`; `None` leaves wrangler's default (on).
    observability: Option<bool>,
    log_level: &'static str,
}

impl Default for DevOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl DevOptions {
    /// The root wrangler.toml (the board), D1 migrated, `--log-level info`.
    pub fn new() -> Self {
        DevOptions {
            config: None,
            env: None,
            vars: Vec::new(),
            migrate: true,
            observability: None,
            log_level: "info",
        }
    }

    /// Another app's wrangler config, relative to the project root.
    pub fn config(mut self, path: impl Into<PathBuf>) -> Self {
        self.config = Some(path.into());
        self
    }

    /// A wrangler environment (`--env`).
    pub fn env(mut self, name: &str) -> Self {
        self.env = Some(name.to_owned());
        self
    }

    pub fn var(mut self, name: &str, value: impl Into<String>) -> Self {
        self.vars.push((name.to_owned(), value.into()));
        self
    }

    pub fn vars(mut self, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        self.vars.extend(vars);
        self
    }

    /// Without applying the D1 migrations: the Worker's D1 has no tables.
    pub fn unmigrated(mut self) -> Self {
        self.migrate = false;
        self
    }

    /// Turns wrangler's local observability collector on or off: it traces
    /// every invocation (each WebSocket message) on the object's thread.
    pub fn local_observability(mut self, on: bool) -> Self {
        self.observability = Some(on);
        self
    }

    pub fn log_level(mut self, level: &'static str) -> Self {
        self.log_level = level;
        self
    }

    /// Starts wrangler dev on a free port, with run directory `dir`, and
    /// waits until `/healthz` answers.
    pub async fn start(self, dir: &Path) -> Result<WranglerDev> {
        let port = free_port()?;
        self.start_on(port, dir).await
    }

    /// Like `start`, on a given port (a restart keeps the clients' URL).
    pub async fn start_on(self, port: u16, dir: &Path) -> Result<WranglerDev> {
        let persist = dir.join("state");
        let log = log_file(dir);
        std::fs::create_dir_all(&persist)?;
        // wrangler silently picks another port when this one is busy (a
        // killed workerd can hold it for a moment): wait until it is free.
        let free_by = Instant::now() + Duration::from_secs(30);
        while TcpListener::bind(("127.0.0.1", port)).is_err() {
            if Instant::now() > free_by {
                bail!("port {port} is still in use");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if self.migrate {
            self.migrate_d1(&persist, &log)?;
        }
        let mut args: Vec<String> = [
            "dev",
            "--ip",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--inspector-port",
            &free_port()?.to_string(),
            "--log-level",
            self.log_level,
            // GET /__scheduled?cron=… fires the scheduled handler (cron).
            "--test-scheduled",
        ]
        .map(str::to_owned)
        .into();
        args.extend(["--persist-to".into(), persist.display().to_string()]);
        args.extend(self.config_args());
        if let Some(e) = &self.env {
            args.extend(["--env".into(), e.clone()]);
        }
        for (k, v) in &self.vars {
            args.extend(["--var".into(), format!("{k}:{v}")]);
        }
        let mut cmd = wrangler(&args, &log)?;
        cmd.env("PYLON_SKIP_BUILD", "1")
            // Its own process group, so a kill reaches workerd too.
            .process_group(0);
        if let Some(on) = self.observability {
            cmd.env("X_LOCAL_OBSERVABILITY", if on { "true" } else { "false" });
        }
        let child = cmd.spawn().context("spawning wrangler dev")?;
        let mut dev = WranglerDev {
            child: Some(child),
            port,
            dir: dir.into(),
            persist,
            log,
            options: self,
        };
        dev.wait_ready().await?;
        dev.check_port()?;
        Ok(dev)
    }

    fn config_args(&self) -> Vec<String> {
        match &self.config {
            Some(c) => vec!["-c".into(), c.display().to_string()],
            None => Vec::new(),
        }
    }

    /// Applies the app's D1 migrations to the local D1 under `persist`,
    /// once per directory (as scripts/dev.sh does before `wrangler dev`).
    fn migrate_d1(&self, persist: &Path, log: &Path) -> Result<()> {
        let marker = persist.join(".d1-migrated");
        if marker.exists() {
            return Ok(());
        }
        let mut args: Vec<String> = ["d1", "migrations", "apply", "DB", "--local", "--persist-to"]
            .map(str::to_owned)
            .into();
        args.push(persist.display().to_string());
        args.extend(self.config_args());
        let status = wrangler(&args, log)?
            .env("CI", "1") // never prompt
            .status()
            .context("running wrangler d1 migrations apply")?;
        if !status.success() {
            bail!(
                "wrangler d1 migrations apply failed with {status}; see {}",
                log.display()
            );
        }
        std::fs::write(&marker, b"")?;
        Ok(())
    }
}

/// `wrangler ARGS` from the project root with the project's toolchain
/// (scripts/env.sh), output appended to `log`.
fn wrangler(args: &[String], log: &Path) -> Result<Command> {
    let log_file = File::options().create(true).append(true).open(log)?;
    let mut cmd = Command::new("bash");
    // The arguments go to wrangler as "$@": no shell quoting of values.
    cmd.arg("-c")
        .arg(r#"source scripts/env.sh && exec wrangler "$@""#)
        .arg("wrangler")
        .args(args)
        .current_dir(project_root())
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file);
    Ok(cmd)
}

/// A running `wrangler dev`.
pub struct WranglerDev {
    child: Option<Child>,
    pub port: u16,
    /// The run directory: `state/` and `wrangler.log`.
    pub dir: PathBuf,
    pub persist: PathBuf,
    pub log: PathBuf,
    options: DevOptions,
}

impl WranglerDev {
    pub fn http(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn ws(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{path}", self.port)
    }

    /// The process group of wrangler and its workerd processes (for
    /// benches that read their CPU time); `None` once killed.
    pub fn process_group(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    /// `kill -9`, then the same start on the same persist dir and port:
    /// clients reconnect to the URL they know.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill9();
        *self = self.options.clone().start_on(self.port, &self.dir).await?;
        Ok(())
    }

    /// `kill -9` of the whole process group: no graceful shutdown.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) with a negative pid signals that process group;
            // the group is the one this harness created for the child.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
        }
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let started = Instant::now();
        let client = reqwest::Client::new();
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "wrangler dev exited early with {status}; see {}",
                    self.log.display()
                );
            }
            if let Ok(resp) = client.get(self.http("/healthz")).send().await {
                if resp.status().is_success() {
                    return Ok(());
                }
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!(
                    "wrangler dev was not ready after {READY_TIMEOUT:?}; see {}",
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The `/healthz` that answered is this process's: its log says it is
    /// ready on our port. (Logged at `info` and below only.)
    fn check_port(&self) -> Result<()> {
        if !matches!(self.options.log_level, "info" | "debug") {
            return Ok(());
        }
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let ready = text
            .lines()
            .rev()
            .find(|l| l.contains("Ready on"))
            .unwrap_or_default();
        if !ready.contains(&format!(":{}", self.port)) {
            bail!("wrangler dev is not on port {}: {ready:?}", self.port);
        }
        Ok(())
    }
}

impl Drop for WranglerDev {
    fn drop(&mut self) {
        self.kill9();
    }
}
