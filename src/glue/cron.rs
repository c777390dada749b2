//! Cron (docs/jobs.md, "Cron"): the Worker's scheduled handler runs the
//! manifest's `crons` entries whose schedule fired, and `/v1/crons` lists
//! them with their last runs and runs one now, for admins. Each run is
//! recorded in the jobs ledger.

use worker::{Env, Method, Request, Response, Result, ScheduledEvent};

use crate::api_error::ApiError;
use crate::app::App;
use crate::functions::FunctionRun;
use crate::glue::{internal, respond, session_gate};
use crate::manifest::CronEntry;
use crate::policy::AuthContext;

/// Whom a cron entry runs as: an admin (the app's own schedule), named
/// `cron:{name}` for the logs and for `ctx.auth`.
fn cron_caller(name: &str) -> AuthContext {
    AuthContext {
        user_id: Some(format!("cron:{name}")),
        is_admin: true,
        ..Default::default()
    }
}

/// Runs one entry; `op` makes a mutation's run happen once per firing.
async fn run_entry(
    env: &Env,
    app: &App,
    entry: &CronEntry,
    at_ms: i64,
    op: String,
) -> serde_json::Value {
    let run = FunctionRun {
        name: entry.run.clone(),
        args: entry.args.clone(),
        caller: cron_caller(&entry.name),
        shard: entry.shard.clone(),
        op: Some(op),
    };
    let outcome = crate::glue::run::run_function(env, app, &run).await;
    let error = outcome
        .as_ref()
        .err()
        .map(|e| format!("{}: {}", e.code, e.message));
    if let Some(e) = &error {
        worker::console_error!("cron {}: {e}", entry.name);
    }
    let record = serde_json::json!({ "atMs": at_ms, "error": error });
    let path = format!("crons/{}", entry.name);
    let system = AuthContext::anonymous();
    if let Err(e) = internal::ledger(env, Method::Post, &path, "", Some(&record), &system).await {
        worker::console_error!("cron {}: recording the run: {e}", entry.name);
    }
    match outcome {
        Ok(v) => serde_json::json!({ "ok": true, "value": v }),
        Err(e) => serde_json::json!({ "ok": false, "error": crate::glue::run::describe(&e) }),
    }
}

fn same_schedule(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

/// The Worker's `scheduled` handler.
pub async fn scheduled(event: ScheduledEvent, env: Env, app: &'static App) {
    let manifest = match app.manifest() {
        Ok(m) => m,
        Err(e) => {
            worker::console_error!("cron: {}", e.message);
            return;
        }
    };
    let cron = event.cron();
    let at_ms = event.schedule() as i64;
    let due: Vec<&CronEntry> = manifest
        .background()
        .crons
        .iter()
        .filter(|c| same_schedule(&c.cron, &cron))
        .collect();
    if due.is_empty() {
        worker::console_warn!("cron: no manifest entry for the trigger {cron:?}");
    }
    for entry in due {
        run_entry(
            &env,
            app,
            entry,
            at_ms,
            format!("cron:{}:{at_ms}", entry.name),
        )
        .await;
    }
}

/// `/v1/crons[/…]`, for admins.
pub(crate) async fn handle(req: Request, env: &Env, app: &App, rest: &str) -> Result<Response> {
    let (caller, manifest) = match session_gate::caller_and_manifest(env, app, &req).await? {
        Ok(found) => found,
        Err(answer) => return Ok(answer),
    };
    if !caller.is_admin {
        return respond::refused(&caller, "cron entries (admins only)");
    }
    let crons = &manifest.background().crons;
    match (req.method(), rest.split_once('/')) {
        (Method::Get, None) if rest.is_empty() => {
            let runs = internal::ledger(env, Method::Get, "crons", "", None, &caller).await;
            let runs = match runs {
                Ok(a) if a.ok() => a.body["runs"].clone(),
                _ => serde_json::Value::Null,
            };
            let list: Vec<serde_json::Value> = crons
                .iter()
                .map(|c| {
                    let mut v = serde_json::to_value(c).expect("an entry serializes");
                    v["lastRuns"] = runs
                        .get(&c.name)
                        .cloned()
                        .unwrap_or(serde_json::Value::Null);
                    v
                })
                .collect();
            respond::json(200, &serde_json::json!({ "crons": list }))
        }
        (Method::Post, Some((name, "run"))) => {
            let Some(entry) = manifest.background().cron(name) else {
                return respond::error(&ApiError::new(
                    404,
                    "UNKNOWN_CRON",
                    format!("no cron entry {name:?} in the manifest"),
                ));
            };
            let now = crate::time::now_ms();
            let ran = run_entry(env, app, entry, now, format!("cron:{name}:manual:{now}")).await;
            respond::json(200, &ran)
        }
        _ => respond::error(&ApiError::not_found(format!(
            "no route {:?} /v1/crons/{rest}",
            req.method()
        ))),
    }
}
