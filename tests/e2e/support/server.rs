//! One `wrangler dev` process on a free loopback port, with its own
//! `--persist-to` directory and log file. Killed (the whole process group,
//! workerd included) when dropped.

use std::fs::File;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// `--var NAME:VALUE` pairs for every start (the test providers' URLs);
/// set once, before the first start.
static EXTRA_VARS: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();

pub fn set_vars(vars: Vec<(String, String)>) {
    let _ = EXTRA_VARS.set(vars);
}

/// The extra vars as shell words.
fn var_args() -> String {
    EXTRA_VARS
        .get()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!(" --var '{k}:{}'", v.replace('\'', "'\\''")))
        .collect()
}

pub struct WranglerDev {
    child: Option<Child>,
    /// `--var NAME:VALUE` pairs given to wrangler (kept for restarts).
    pub vars: Vec<(String, String)>,
    /// `--env`, if not the top-level configuration.
    pub env: Option<String>,
    pub port: u16,
    pub persist: PathBuf,
    pub log: PathBuf,
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub fn project_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

impl WranglerDev {
    /// Starts wrangler dev on the already-built Worker and waits until
    /// `/healthz` answers.
    pub async fn start(persist: &Path, log: &Path, vars: &[(String, String)]) -> Result<Self> {
        Self::start_on(free_port()?, persist, log, vars, None).await
    }

    /// Like `start`, with a wrangler environment (`--env`).
    pub async fn start_env(
        persist: &Path,
        log: &Path,
        vars: &[(String, String)],
        env: &str,
    ) -> Result<Self> {
        Self::start_on(free_port()?, persist, log, vars, Some(env)).await
    }

    /// Like `start`, without applying the D1 migrations: the Worker's D1
    /// has no tables.
    pub async fn start_unmigrated(
        persist: &Path,
        log: &Path,
        vars: &[(String, String)],
    ) -> Result<Self> {
        Self::launch(free_port()?, persist, log, vars, None, false).await
    }

    /// Like `start`, on a given port (a restart keeps the clients' URL).
    pub async fn start_on(
        port: u16,
        persist: &Path,
        log: &Path,
        vars: &[(String, String)],
        env: Option<&str>,
    ) -> Result<Self> {
        Self::launch(port, persist, log, vars, env, true).await
    }

    async fn launch(
        port: u16,
        persist: &Path,
        log: &Path,
        vars: &[(String, String)],
        env: Option<&str>,
        migrate: bool,
    ) -> Result<Self> {
        // wrangler silently picks another port when this one is busy (a
        // killed workerd can hold it for a moment): wait until it is free.
        let free_by = Instant::now() + Duration::from_secs(30);
        while TcpListener::bind(("127.0.0.1", port)).is_err() {
            if Instant::now() > free_by {
                bail!("port {port} is still in use");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let inspector = free_port()?;
        if migrate {
            Self::migrate_d1(persist, log)?;
        }
        let log_file = File::options().create(true).append(true).open(log)?;
        let mut local_args: String = vars
            .iter()
            .map(|(k, v)| format!(" --var '{k}:{v}'"))
            .collect();
        if let Some(e) = env {
            local_args.push_str(&format!(" --env '{e}'"));
        }
        let script = format!(
            "source scripts/env.sh && exec wrangler dev --ip 127.0.0.1 --port {port} \
             --inspector-port {inspector} --persist-to '{}' --log-level info{}{local_args}",
            persist.display(),
            var_args()
        );
        let child = Command::new("bash")
            .arg("-c")
            .arg(script)
            .current_dir(project_root())
            .env("PYLON_SKIP_BUILD", "1")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            // Its own process group, so a kill reaches workerd too.
            .process_group(0)
            .spawn()
            .context("spawning wrangler dev")?;
        let mut dev = Self {
            child: Some(child),
            vars: vars.to_vec(),
            env: env.map(str::to_owned),
            port,
            persist: persist.into(),
            log: log.into(),
        };
        dev.wait_ready().await?;
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let ready = text
            .lines()
            .rev()
            .find(|l| l.contains("Ready on"))
            .unwrap_or_default();
        if !ready.contains(&format!(":{port}")) {
            bail!("wrangler dev is not on port {port}: {ready:?}");
        }
        Ok(dev)
    }

    /// Applies the D1 migrations to the local D1 under `persist`, once per
    /// directory (as scripts/dev.sh does before `wrangler dev`).
    fn migrate_d1(persist: &Path, log: &Path) -> Result<()> {
        let marker = persist.join(".d1-migrated");
        if marker.exists() {
            return Ok(());
        }
        let log_file = File::options().create(true).append(true).open(log)?;
        let script = format!(
            "source scripts/env.sh && exec wrangler d1 migrations apply DB --local --persist-to '{}'",
            persist.display()
        );
        let status = Command::new("bash")
            .arg("-c")
            .arg(script)
            .current_dir(project_root())
            .env("CI", "1") // never prompt
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .status()
            .context("running wrangler d1 migrations apply")?;
        if !status.success() {
            bail!("wrangler d1 migrations apply failed with {status} (see the log)");
        }
        std::fs::write(&marker, b"")?;
        Ok(())
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn ws(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{path}", self.port)
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
                bail!("wrangler dev exited early with {status}");
            }
            if let Ok(resp) = client.get(self.http("/healthz")).send().await {
                if resp.status().is_success() {
                    return Ok(());
                }
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!("wrangler dev was not ready after {READY_TIMEOUT:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
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
}

impl Drop for WranglerDev {
    fn drop(&mut self) {
        self.kill9();
    }
}
