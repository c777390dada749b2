//! Jobs, cron and workflows under wrangler dev (docs/jobs.md,
//! docs/workflows.md), with the local queues, the scheduled trigger
//! (`--test-scheduled`) and the Durable Objects:
//! - a delayed job runs after its delay and not before;
//! - a failing job retries, lands dead, and a retry by hand succeeds once
//!   its data is put right; the same idempotency key is one job;
//! - bad jobs and bad callers get typed errors;
//! - a cron trigger runs its function; an admin lists and triggers it;
//! - a three-step workflow with a sleep and an event completes, and one
//!   started before wrangler is killed (`kill -9`, in a later scenario)
//!   resumes at its step without running a finished step again.
//!
//! `start` runs beside the scenarios that follow it (on shards of its
//! own); `finish` joins it and starts the workflow and the job that must
//! cross the restarts; `after_restart` checks them.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use pylon_workers::auth::jwt;
use serde_json::{json, Value};

use crate::support::{unique, within};
use crate::Ctx;

const AUDIENCE: &str = "pylon-dev";

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A token for `sub` (an admin when `admin`), valid for ten minutes.
pub(crate) fn token(sub: &str, admin: bool) -> Result<String> {
    let secret = super::auth::dev_secret()?;
    let claims = json!({"sub": sub, "aud": AUDIENCE, "exp": now_secs() + 600, "admin": admin});
    Ok(jwt::sign_hs256(&claims, secret.as_bytes()))
}

/// One request with an optional bearer token: status and JSON body.
async fn call(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Result<(u16, Value)> {
    let client = reqwest::Client::new();
    let mut req = match method {
        "GET" => client.get(url),
        _ => client.post(url),
    };
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = within(url, req.send()).await??;
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

struct Api {
    base: String,
    admin: String,
}

impl Api {
    fn new(port: u16) -> Result<Api> {
        Ok(Api {
            base: format!("http://127.0.0.1:{port}"),
            admin: token("ops", true)?,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn admin_get(&self, path: &str) -> Result<Value> {
        let (s, b) = call("GET", &self.url(path), Some(&self.admin), None).await?;
        ensure!(s == 200, "GET {path}: {s} {b}");
        Ok(b)
    }

    async fn admin_post(&self, path: &str, body: Value) -> Result<(u16, Value)> {
        call("POST", &self.url(path), Some(&self.admin), Some(&body)).await
    }

    /// Calls a shard's function over HTTP (anonymous: the board's `*` rule).
    async fn function(&self, shard: &str, name: &str, args: Value) -> Result<Value> {
        let path = format!("/v1/shards/{shard}/fn/{name}");
        let (s, b) = call("POST", &self.url(&path), None, Some(&args)).await?;
        ensure!(s == 200, "{name}: {s} {b}");
        Ok(b["value"].clone())
    }

    async fn card(&self, shard: &str, id: &str) -> Result<Value> {
        self.function(shard, "cardById", json!({"cardId": id}))
            .await
    }

    /// Waits (up to `secs`) for job `id` to reach `status`.
    async fn job_until(&self, id: &str, status: &str, secs: u64) -> Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let job = self.admin_get(&format!("/v1/jobs/{id}")).await?;
            if job["status"] == status {
                return Ok(job);
            }
            if Instant::now() > deadline {
                bail!("job {id} is not {status} after {secs} s: {job}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn enqueue(&self, spec: Value) -> Result<String> {
        let (s, b) = self.admin_post("/v1/jobs", spec.clone()).await?;
        ensure!(s == 201, "enqueue {spec}: {s} {b}");
        Ok(b["id"].as_str().context("a job id")?.to_owned())
    }
}

pub async fn start(ctx: &mut Ctx) -> Result<()> {
    let port = ctx.dev.port;
    let handle = tokio::spawn(async move {
        let api = Api::new(port)?;
        let (jobs, cron, workflow) = tokio::join!(jobs(&api), cron(&api), workflow(&api));
        jobs.context("jobs")?;
        cron.context("cron")?;
        workflow.context("workflow")
    });
    ctx.background.push(("background", handle));
    Ok(())
}

async fn jobs(api: &Api) -> Result<()> {
    let shard = unique("jobs");
    // A delayed job (a mutation in the shard) runs after its delay, not before.
    let card = api
        .function(&shard, "addCardChecked", json!({"title": "to move"}))
        .await?;
    let card = card.as_str().context("a card id")?.to_owned();
    let delayed = api
        .enqueue(json!({"name": "moveCard", "payload": {"cardId": card, "column": "delayed", "position": 0}, "delayMs": 3000, "shard": shard}))
        .await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let early = api.admin_get(&format!("/v1/jobs/{delayed}")).await?;
    ensure!(early["status"] == "queued", "not before its delay: {early}");
    ensure!(
        api.card(&shard, &card).await?["column"].is_null(),
        "the card moved early"
    );
    let done = api.job_until(&delayed, "done", 20).await?;
    let waited = done["startedMs"].as_i64().unwrap_or(0) - done["createdMs"].as_i64().unwrap_or(0);
    ensure!(
        waited >= 3000,
        "started {waited} ms after it was enqueued, before its 3 s delay"
    );
    ensure!(api.card(&shard, &card).await?["column"] == "delayed");

    // A failing job retries with backoff, then is dead; fixed, a retry runs it.
    let broken = api
        .function(&shard, "addCardChecked", json!({"title": "broken"}))
        .await?;
    let broken = broken.as_str().context("a card id")?.to_owned();
    let failing = api
        .enqueue(json!({"name": "requireFixedTitle", "payload": {"cardId": broken}, "maxRetries": 1, "shard": shard}))
        .await?;
    let dead = api.job_until(&failing, "dead", 30).await?;
    ensure!(dead["attempts"] == 2, "one run and one retry: {dead}");
    ensure!(
        dead["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("NOT_FIXED")),
        "the handler's own error is kept: {dead}"
    );
    let listed = api.admin_get("/v1/jobs?status=dead&limit=500").await?;
    ensure!(
        listed["jobs"]
            .as_array()
            .is_some_and(|l| l.iter().any(|j| j["id"] == failing.as_str())),
        "listed with the dead: {listed}"
    );
    api.function(
        &shard,
        "renameCard",
        json!({"cardId": broken, "title": "fixed now"}),
    )
    .await?;
    let (s, b) = api
        .admin_post(&format!("/v1/jobs/{failing}/retry"), json!({}))
        .await?;
    ensure!(s == 200 && b["status"] == "queued", "retry: {s} {b}");
    api.job_until(&failing, "done", 20).await?;
    ensure!(api.card(&shard, &broken).await?["column"] == "checked");
    let (s, b) = api
        .admin_post(&format!("/v1/jobs/{failing}/retry"), json!({}))
        .await?;
    ensure!(
        s == 409 && b["error"]["code"] == "JOB_NOT_RETRYABLE",
        "{s} {b}"
    );

    // A job enqueued by a mutation leaves only if it commits.
    let before = api.admin_get("/v1/jobs?name=notifyCard&limit=500").await?["jobs"]
        .as_array()
        .map_or(0, Vec::len);
    let path = format!("/v1/shards/{shard}/fn/addCardAndNotify");
    let (s, b) = call(
        "POST",
        &api.url(&path),
        None,
        Some(&json!({"title": "rolled back", "failAfter": true})),
    )
    .await?;
    ensure!(
        s >= 400 && b["error"]["code"] == "FUNCTION_ERROR",
        "{s} {b}"
    );
    let made = api
        .function(&shard, "addCardAndNotify", json!({"title": "notify me"}))
        .await?;
    let (notified, job) = (
        made["id"].as_str().context("a card")?,
        made["job"].as_str().context("a job")?,
    );
    let done = api.job_until(job, "done", 20).await?;
    ensure!(
        done["shard"] == shard.as_str(),
        "the job runs in the mutation's shard: {done}"
    );
    ensure!(api.card(&shard, notified).await?["column"] == "notified");
    let after = api.admin_get("/v1/jobs?name=notifyCard&limit=500").await?["jobs"]
        .as_array()
        .map_or(0, Vec::len);
    ensure!(
        after == before + 1,
        "only the committed mutation's job: {before} -> {after}"
    );

    // One job per idempotency key.
    let key = unique("digest");
    let spec = json!({"name": "moveCard", "payload": {"cardId": card, "column": "keyed", "position": 0}, "shard": shard, "key": key});
    let (s1, a) = api.admin_post("/v1/jobs", spec.clone()).await?;
    let (s2, b) = api.admin_post("/v1/jobs", spec).await?;
    ensure!(
        s1 == 201 && s2 == 200 && a["id"] == b["id"] && b["created"] == false,
        "{a} {b}"
    );

    // Bad jobs and bad callers: typed errors.
    let url = api.url("/v1/jobs");
    for (spec, status, code) in [
        (json!({"name": "noSuchFunction"}), 404, "UNKNOWN_JOB"),
        (
            json!({"name": "moveCard", "queue": "nope", "shard": shard}),
            400,
            "UNKNOWN_QUEUE",
        ),
        (json!({"name": "moveCard"}), 400, "BAD_JOB"),
        (
            json!({"name": "cardById", "shard": shard}),
            400,
            "WRONG_KIND",
        ),
        (
            json!({"name": "requireFixedTitle", "delayMs": -1}),
            400,
            "BAD_JOB",
        ),
        (
            json!({"name": "requireFixedTitle", "payload": "x".repeat(70_000)}),
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        (
            json!({"name": "moveCard", "shard": "team:someone-else", "payload": {}}),
            403,
            "FORBIDDEN",
        ),
    ] {
        let (s, b) = call("POST", &url, Some(&token("ann", false)?), Some(&spec)).await?;
        ensure!(s == status && b["error"]["code"] == code, "{spec}: {s} {b}");
    }
    let (s, b) = call(
        "POST",
        &url,
        None,
        Some(&json!({"name": "requireFixedTitle"})),
    )
    .await?;
    ensure!(s == 401, "anonymous enqueue: {s} {b}");
    let (s, b) = call("GET", &url, Some(&token("ann", false)?), None).await?;
    ensure!(s == 403, "a user lists jobs: {s} {b}");
    let stats = api.admin_get("/v1/jobs/stats").await?;
    ensure!(
        stats["queues"]["default"]["done"].as_i64() >= Some(2),
        "stats: {stats}"
    );
    Ok(())
}

async fn cron(api: &Api) -> Result<()> {
    let cards = || async {
        let (s, b) = call(
            "POST",
            &api.url("/v1/shards/cron-board/query"),
            None,
            Some(&json!({"entity": "Card", "where": {"column": "cron"}})),
        )
        .await?;
        ensure!(s == 200, "query: {s} {b}");
        anyhow::Ok(b["rows"].as_array().map_or(0, Vec::len))
    };
    let before = cards().await?;
    // What the platform does at */30: wrangler's scheduled trigger.
    let (s, b) = call(
        "GET",
        &api.url("/__scheduled?cron=*/30+*+*+*+*"),
        None,
        None,
    )
    .await?;
    ensure!(s == 200, "the scheduled trigger: {s} {b}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while cards().await? <= before {
        ensure!(Instant::now() < deadline, "the cron entry did not run");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (s, ran) = api.admin_post("/v1/crons/tidyTick/run", json!({})).await?;
    ensure!(s == 200 && ran["ok"] == true, "run now: {s} {ran}");
    ensure!(
        cards().await? >= before + 2,
        "the manual run added a card too"
    );
    let listed = api.admin_get("/v1/crons").await?;
    let entry = &listed["crons"][0];
    ensure!(
        entry["name"] == "tidyTick" && entry["lastRuns"]["runs"].as_i64() >= Some(2),
        "{listed}"
    );
    let (s, b) = call(
        "GET",
        &api.url("/v1/crons"),
        Some(&token("ann", false)?),
        None,
    )
    .await?;
    ensure!(s == 403, "a user lists crons: {s} {b}");
    let (s, b) = api.admin_post("/v1/crons/nope/run", json!({})).await?;
    ensure!(s == 404 && b["error"]["code"] == "UNKNOWN_CRON", "{s} {b}");
    Ok(())
}

/// Starts `onboard` for `user` in `shard`; its id.
async fn start_onboard(api: &Api, user: &str, shard: &str, title: &str) -> Result<String> {
    let body = json!({"workflow": "onboard", "input": {"title": title}, "shard": shard});
    let (s, b) = call(
        "POST",
        &api.url("/v1/workflows"),
        Some(&token(user, false)?),
        Some(&body),
    )
    .await?;
    ensure!(s == 201, "start: {s} {b}");
    Ok(b["id"].as_str().context("an instance id")?.to_owned())
}

async fn workflow_until(api: &Api, user: &str, id: &str, status: &str, secs: u64) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let url = api.url(&format!("/v1/workflows/{id}"));
    loop {
        let (s, w) = call("GET", &url, Some(&token(user, false)?), None).await?;
        ensure!(s == 200, "get: {s} {w}");
        if w["status"] == status {
            return Ok(w);
        }
        if Instant::now() > deadline {
            bail!("workflow {id} is not {status} after {secs} s: {w}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn send_event(api: &Api, user: &str, id: &str, by: &str) -> Result<()> {
    let body = json!({"name": "approved", "payload": {"by": by}});
    let url = api.url(&format!("/v1/workflows/{id}/events"));
    let (s, b) = call("POST", &url, Some(&token(user, false)?), Some(&body)).await?;
    ensure!((200..300).contains(&s), "event: {s} {b}");
    Ok(())
}

/// The cards of `shard` whose title starts with `title`.
async fn titled(api: &Api, shard: &str, title: &str) -> Result<Vec<Value>> {
    let (s, b) = call(
        "POST",
        &api.url(&format!("/v1/shards/{shard}/query")),
        None,
        Some(&json!({"entity": "Card"})),
    )
    .await?;
    ensure!(s == 200, "query: {s} {b}");
    Ok(b["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["title"].as_str().is_some_and(|t| t.starts_with(title)))
        .cloned()
        .collect())
}

/// A finished workflow ran each of its run steps once.
fn each_step_once(w: &Value) -> Result<()> {
    for h in w["history"].as_array().into_iter().flatten() {
        if h["kind"] == "run" {
            ensure!(
                h["attempts"] == 1,
                "step {} ran {} times: {w}",
                h["name"],
                h["attempts"]
            );
        }
    }
    Ok(())
}

async fn workflow(api: &Api) -> Result<()> {
    let shard = unique("wf");
    let user = unique("newcomer");
    let id = start_onboard(api, &user, &shard, "welcome ann").await?;
    let waiting = workflow_until(api, &user, &id, "waiting", 20).await?;
    ensure!(
        waiting["steps"]["open"]["cardId"].is_string(),
        "the first step's result is kept: {waiting}"
    );
    // Someone else cannot see or drive it.
    let (s, b) = call(
        "GET",
        &api.url(&format!("/v1/workflows/{id}")),
        Some(&token("mallory", false)?),
        None,
    )
    .await?;
    ensure!(s == 404, "another user reads it: {s} {b}");
    let (s, b) = call(
        "POST",
        &api.url(&format!("/v1/workflows/{id}/events")),
        Some(&token("mallory", false)?),
        Some(&json!({"name": "approved"})),
    )
    .await?;
    ensure!(s == 404, "another user sends it an event: {s} {b}");
    send_event(api, &user, &id, "bob").await?;
    let done = workflow_until(api, &user, &id, "completed", 20).await?;
    each_step_once(&done)?;
    let cards = titled(api, &shard, "welcome ann").await?;
    ensure!(
        cards.len() == 1 && cards[0]["column"] == "onboarded",
        "{cards:?}"
    );
    ensure!(
        cards[0]["title"] == "welcome ann (approved by bob)",
        "{cards:?}"
    );
    let (s, listed) = call(
        "GET",
        &api.url("/v1/workflows"),
        Some(&token(&user, false)?),
        None,
    )
    .await?;
    ensure!(
        s == 200 && listed["workflows"][0]["id"] == id.as_str(),
        "{s} {listed}"
    );
    let (s, defs) = call(
        "GET",
        &api.url("/v1/workflows/definitions"),
        Some(&token(&user, false)?),
        None,
    )
    .await?;
    ensure!(
        s == 200 && defs["definitions"][0]["name"] == "onboard",
        "definitions: {s} {defs}"
    );
    let (s, defs) = call("GET", &api.url("/v1/workflows/definitions"), None, None).await?;
    ensure!(
        s == 200 && defs["definitions"] == json!([]),
        "none an anonymous caller may start: {s} {defs}"
    );
    // Bad starts.
    let url = api.url("/v1/workflows");
    let (s, b) = call(
        "POST",
        &url,
        Some(&token(&user, false)?),
        Some(&json!({"workflow": "nope"})),
    )
    .await?;
    ensure!(
        s == 404 && b["error"]["code"] == "UNKNOWN_WORKFLOW",
        "{s} {b}"
    );
    let (s, b) = call(
        "POST",
        &url,
        None,
        Some(&json!({"workflow": "onboard", "input": {"title": "x"}})),
    )
    .await?;
    ensure!(s == 401, "anonymous start: {s} {b}");
    let (s, b) = call(
        "POST",
        &url,
        Some(&token(&user, false)?),
        Some(&json!({"workflow": "onboard", "bogus": 1})),
    )
    .await?;
    ensure!(s == 400, "a start with an unknown field: {s} {b}");
    let (s, b) = call(
        "POST",
        &api.url(&format!("/v1/workflows/{id}/events")),
        Some(&token(&user, false)?),
        Some(&json!({"name": "approved"})),
    )
    .await?;
    ensure!(
        s == 409 && b["error"]["code"] == "WORKFLOW_FINISHED",
        "an event after the end: {s} {b}"
    );
    Ok(())
}

/// What must cross the restarts: a workflow waiting for its event, and a
/// delayed job.
struct Crossing {
    user: String,
    shard: String,
    workflow: String,
    job: String,
    card: String,
}

static CROSSING: std::sync::Mutex<Option<Crossing>> = std::sync::Mutex::new(None);

pub async fn finish(ctx: &mut Ctx) -> Result<()> {
    ctx.join("background").await?;

    let api = Api::new(ctx.dev.port)?;
    let (user, shard) = (unique("crosser"), unique("wf-cross"));
    let workflow = start_onboard(&api, &user, &shard, "crossing").await?;
    workflow_until(&api, &user, &workflow, "waiting", 20).await?;
    let card = api
        .function(&shard, "addCardChecked", json!({"title": "moved later"}))
        .await?;
    let card = card.as_str().context("a card id")?.to_owned();
    let job = api
        .enqueue(json!({"name": "moveCard", "payload": {"cardId": card, "column": "after-restart", "position": 0}, "delayMs": 4000, "shard": shard}))
        .await?;
    *CROSSING.lock().unwrap() = Some(Crossing {
        user,
        shard,
        workflow,
        job,
        card,
    });
    Ok(())
}

pub async fn after_restart(ctx: &mut Ctx) -> Result<()> {
    let Some(Crossing {
        user,
        shard,
        workflow,
        job,
        card,
    }) = CROSSING.lock().unwrap().take()
    else {
        bail!("background::finish did not run");
    };
    let api = Api::new(ctx.dev.port)?;
    // The job was due during the restarts; its message is lost with the
    // local queue, and the ledger sends it again (PYLON_JOBS_OVERDUE_MS).
    let done = api.job_until(&job, "done", 30).await?;
    ensure!(done["attempts"] == 1, "{done}");
    ensure!(api.card(&shard, &card).await?["column"] == "after-restart");
    let waiting = workflow_until(&api, &user, &workflow, "waiting", 10).await?;
    ensure!(waiting["step"] == 2, "still at the wait: {waiting}");
    send_event(&api, &user, &workflow, "carol").await?;
    let done = workflow_until(&api, &user, &workflow, "completed", 20).await?;
    each_step_once(&done)?;
    let cards = titled(&api, &shard, "crossing").await?;
    ensure!(cards.len() == 1, "the first step ran once: {cards:?}");
    ensure!(
        cards[0]["title"] == "crossing (approved by carol)",
        "{cards:?}"
    );
    Ok(())
}
