//! The Rust background clients (`pylon_workers::client::background` over
//! `PlainHttp`) against wrangler dev, on the board's manifest:
//! - an admin enqueues a `moveCard` job in a fresh shard; it runs, is
//!   listed and counted; retry and cancel of the done job are refused with
//!   their codes;
//! - a signed-in user starts `onboard`, which sleeps, waits for
//!   `approved`, takes the event sent with `send_event` and completes; a
//!   second instance is cancelled;
//! - an admin runs the cron entry `tidyTick` now and sees it listed;
//! - a user listing jobs gets the typed error `FORBIDDEN`.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use pylon_workers::auth::jwt;
use pylon_workers::client::background::{
    EnqueueOptions, JobFilter, JobStatus, Jobs, RequestError, Scheduler, StartOptions,
    WorkflowFilter, WorkflowStatus, Workflows,
};
use serde_json::{json, Value};

use crate::support::{post, unique};
use crate::Ctx;

/// A token for `sub` (an admin when `admin`), valid for ten minutes.
fn token(sub: &str, admin: bool) -> Result<String> {
    let secret = super::auth::dev_secret()?;
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs()
        + 600;
    let claims = json!({"sub": sub, "aud": "pylon-dev", "exp": exp, "admin": admin});
    Ok(jwt::sign_hs256(&claims, secret.as_bytes()))
}

/// Calls `f` every 200 ms until it gives `Some`, for at most `secs`.
async fn until<T, F: Future<Output = Result<Option<T>>>>(
    what: &str,
    secs: u64,
    mut f: impl FnMut() -> F,
) -> Result<T> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await? {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("{what}: not after {secs} s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The code of a call that had to be refused.
fn refused<T: std::fmt::Debug>(r: Result<T, RequestError>) -> Result<(u16, String)> {
    match r {
        Err(RequestError::Refused { status, code, .. }) => Ok((status, code)),
        other => bail!("expected a refusal: {other:?}"),
    }
}

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let base = format!("http://127.0.0.1:{}", ctx.dev.port);
    let admin = token("ops", true)?;
    let shard = unique("bg-clients");
    let user = unique("rustacean");

    // A job: a card moved by `moveCard` in a fresh shard.
    let (s, b) = post(
        &format!("{base}/v1/shards/{shard}/fn/addCardChecked"),
        &json!({"title": "x"}),
    )
    .await?;
    ensure!(s == 200, "addCardChecked: {s} {b}");
    let card = b["value"].as_str().context("a card id")?.to_owned();
    let jobs = Jobs::new(&base).token(admin.clone());
    let payload = json!({"cardId": card, "column": "by-rust", "position": 0});
    let queued = jobs
        .enqueue(
            "moveCard",
            payload.clone(),
            EnqueueOptions::default().shard(&shard),
        )
        .await?;
    ensure!(
        queued.created && queued.status == JobStatus::Queued,
        "{queued:?}"
    );
    let done = until("the job done", 10, || async {
        let job = jobs.get(&queued.id).await?;
        Ok((job.status == JobStatus::Done).then_some(job))
    })
    .await?;
    ensure!(
        done.name == "moveCard"
            && done.payload == payload
            && done.shard.as_deref() == Some(shard.as_str())
            && done.attempts == 1
            && done.enqueued_by.as_deref() == Some("ops"),
        "{done:?}"
    );
    let listed = jobs
        .list(&JobFilter::default().name("moveCard").limit(500))
        .await?;
    ensure!(
        listed.iter().any(|j| j.id == queued.id),
        "listed: {listed:?}"
    );
    let stats = jobs.stats().await?;
    ensure!(stats.count("default", JobStatus::Done) >= 1, "{stats:?}");
    ensure!(
        refused(jobs.retry(&queued.id).await)? == (409, "JOB_NOT_RETRYABLE".into()),
        "retry of a done job"
    );
    ensure!(
        refused(jobs.cancel(&queued.id).await)? == (409, "JOB_NOT_CANCELLABLE".into()),
        "cancel of a done job"
    );

    // A workflow, as a signed-in user: open, sleep 2 s, wait, close.
    let workflows = Workflows::new(&base).token(token(&user, false)?);
    let started = workflows
        .start(
            "onboard",
            json!({"title": "rust client"}),
            StartOptions::default().shard(&shard),
        )
        .await?;
    ensure!(
        started.workflow == "onboard" && started.started_by.as_deref() == Some(user.as_str()),
        "{started:?}"
    );
    let id = started.id;
    let waiting = until("the workflow waiting", 10, || async {
        let w = workflows.get(&id).await?;
        Ok((w.status == WorkflowStatus::Waiting).then_some(w))
    })
    .await?;
    ensure!(
        waiting.waiting_for.as_deref() == Some("approved")
            && waiting.steps["open"]["cardId"].is_string(),
        "{waiting:?}"
    );
    workflows
        .send_event(&id, "approved", json!({"by": "rust"}))
        .await?;
    let completed = until("the workflow completed", 10, || async {
        let w = workflows.get(&id).await?;
        Ok((w.status == WorkflowStatus::Completed).then_some(w))
    })
    .await?;
    ensure!(
        completed.output["approvedBy"] == "rust" && completed.step_name.is_none(),
        "{completed:?}"
    );
    let mine = workflows
        .list(&WorkflowFilter::default().workflow("onboard"))
        .await?;
    ensure!(
        mine.iter().any(|w| w.id == id && w.status == "completed"),
        "listed: {mine:?}"
    );
    let (s, b) = post(
        &format!("{base}/v1/shards/{shard}/query"),
        &json!({"entity": "Card", "where": {"column": "onboarded"}}),
    )
    .await?;
    let titles: Vec<&Value> = b["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| &r["title"])
        .collect();
    ensure!(
        s == 200 && titles == [&json!("rust client (approved by rust)")],
        "{s} {b}"
    );
    let second = workflows
        .start(
            "onboard",
            json!({"title": "cancelled"}),
            StartOptions::default().shard(&shard),
        )
        .await?;
    let cancelled = workflows.cancel(&second.id).await?;
    ensure!(
        cancelled.status == WorkflowStatus::Cancelled,
        "{cancelled:?}"
    );
    ensure!(
        refused(workflows.cancel(&second.id).await)? == (409, "WORKFLOW_FINISHED".into()),
        "cancel of a cancelled instance"
    );

    // Cron: run the entry now; it is listed with the run.
    let scheduler = Scheduler::new(&base).token(admin);
    let ran = scheduler.trigger("tidyTick").await?;
    ensure!(
        ran.ok && ran.value.as_ref().is_some_and(Value::is_string),
        "{ran:?}"
    );
    let crons = scheduler.list().await?;
    let tidy = crons
        .iter()
        .find(|c| c.name == "tidyTick")
        .context("tidyTick listed")?;
    ensure!(
        tidy.last_runs
            .as_ref()
            .is_some_and(|r| r.runs >= 1 && r.last_ok),
        "{tidy:?}"
    );

    // A refusal, typed: a user may not list jobs.
    let as_user = Jobs::new(&base).token(token(&user, false)?);
    match as_user.list(&JobFilter::default()).await {
        Err(e) if e.code() == "FORBIDDEN" && e.status() == Some(403) => Ok(()),
        other => bail!("a user lists jobs: {other:?}"),
    }
}
