//! Jobs in the Worker (docs/jobs.md): `/v1/jobs` for servers and admins,
//! the send of a job's message to its queue binding (for the ledger), and
//! the queue consumer that runs each job's handler and tells the ledger
//! how it went.

use std::cmp::Reverse;

use worker::{
    Env, MessageBatch, MessageBuilder, MessageExt, Method, QueueRetryOptionsBuilder, Request,
    Response, Result,
};

use crate::api_error::ApiError;
use crate::app::App;
use crate::functions::{FnKind, FunctionRun};
use crate::glue::internal;
use crate::glue::{body, respond, session_gate};
use crate::jobs::{JobMessage, JobRequest, JobSpec};
use crate::manifest::Background;
use crate::policy::AuthContext;
use crate::value::Value;

/// A job request's body, at most (its payload is at most 64 KiB).
const MAX_BODY_BYTES: usize = 128 * 1024;
/// When the ledger cannot be reached, a message comes back this much later.
const LEDGER_DOWN_RETRY_SECS: u32 = 5;

/// Sends a job's message to its queue.
pub(crate) async fn send(
    env: &Env,
    queue: &str,
    message: &JobMessage,
    delay_secs: u32,
) -> std::result::Result<(), String> {
    let binding = Background::queue_binding(queue);
    let sent = async {
        let q = env.queue(&binding)?;
        let mut m = MessageBuilder::new(message.clone());
        if delay_secs > 0 {
            m = m.delay_seconds(delay_secs);
        }
        q.send(m.build()).await
    };
    sent.await.map_err(|e| {
        worker::console_error!("sending job {} to {binding}: {e}", message.id);
        format!("the queue binding {binding}: {e}")
    })
}

/// The ledger's answer, passed on as it is.
fn pass_on(answer: Result<internal::Answer>) -> Result<Response> {
    match answer {
        Ok(a) => respond::json(a.status, &a.body),
        Err(e) => respond::internal("the jobs ledger", &e),
    }
}

/// A job as the app knows it: a handler that exists and may be a job's
/// (an action, or a mutation with a shard the caller may enter).
pub(crate) fn check_handler(
    app: &App,
    spec: &JobSpec,
    caller: &AuthContext,
) -> std::result::Result<(), ApiError> {
    spec.check()?;
    let manifest = app.manifest()?;
    if !manifest.background().jobs.queues.contains(&spec.queue) {
        return Err(ApiError::bad_request(
            "UNKNOWN_QUEUE",
            format!("no queue {:?} in this app", spec.queue),
        ));
    }
    let Some(info) = app.functions().lookup(&spec.name) else {
        return Err(ApiError::new(
            404,
            "UNKNOWN_JOB",
            format!("no function {:?} to run as a job", spec.name),
        ));
    };
    match (info.kind, &spec.shard) {
        (FnKind::Query, _) => Err(ApiError::bad_request(
            "WRONG_KIND",
            format!(
                "{:?} is a query: a job runs an action or a mutation",
                spec.name
            ),
        )),
        (FnKind::Mutation, None) => Err(ApiError::bad_request(
            "BAD_JOB",
            format!("{:?} is a mutation: give the shard it runs in", spec.name),
        )),
        (_, Some(shard)) => manifest
            .auth()
            .admit_caller(shard, caller)
            .map_err(|e| ApiError::new(403, "FORBIDDEN", format!("shard {shard:?}: {e}"))),
        (FnKind::Action, None) => Ok(()),
    }
}

/// `/v1/jobs[/…]`.
pub(crate) async fn handle(mut req: Request, env: &Env, app: &App, rest: &str) -> Result<Response> {
    let (caller, manifest) = match session_gate::caller_and_manifest(env, app, &req).await? {
        Ok(found) => found,
        Err(answer) => return Ok(answer),
    };
    let query = req.url()?.query().unwrap_or_default().to_owned();
    match (req.method(), rest) {
        (Method::Post, "") => {
            if !manifest.background().jobs.enqueue.allows(&caller) {
                return respond::refused(&caller, "enqueuing jobs");
            }
            let bytes = match body::read_capped(&mut req, MAX_BODY_BYTES).await {
                Ok(b) => b,
                Err(e) => return respond::error(&e.to_api_error("PAYLOAD_TOO_LARGE")),
            };
            let spec: JobSpec = match serde_json::from_slice(&bytes) {
                Ok(s) => s,
                Err(e) => {
                    return respond::error(&ApiError::bad_request(
                        "BAD_JOB",
                        format!("the body is not a job: {e}"),
                    ))
                }
            };
            if let Err(e) = check_handler(app, &spec, &caller) {
                return respond::error(&e);
            }
            let job = JobRequest {
                id: String::new(),
                spec,
                caller: caller.clone(),
            };
            let body = serde_json::json!({ "jobs": [job] });
            match internal::ledger(env, Method::Post, "enqueue", "", Some(&body), &caller).await {
                Ok(a) if a.ok() => respond::json(a.status, &a.body["jobs"][0]),
                other => pass_on(other),
            }
        }
        (Method::Get, "") | (Method::Get, "stats") => {
            if !caller.is_admin {
                return respond::refused(&caller, "listing jobs");
            }
            let path = if rest.is_empty() {
                "jobs"
            } else {
                "jobs/stats"
            };
            pass_on(internal::ledger(env, Method::Get, path, &query, None, &caller).await)
        }
        (Method::Get, id) if !id.contains('/') => {
            // Admins, and whoever enqueued it.
            let a =
                internal::ledger(env, Method::Get, &format!("jobs/{id}"), "", None, &caller).await;
            match a {
                Ok(a) if a.ok() => {
                    let mine = caller.user_id.is_some()
                        && a.body["enqueuedBy"].as_str() == caller.user_id.as_deref();
                    if caller.is_admin || mine {
                        respond::json(200, &a.body)
                    } else {
                        respond::error(&ApiError::new(
                            404,
                            "JOB_NOT_FOUND",
                            format!("no job {id:?}"),
                        ))
                    }
                }
                other => pass_on(other),
            }
        }
        (Method::Post, action) => match action.rsplit_once('/') {
            Some((id, verb @ ("retry" | "cancel"))) if !id.contains('/') => {
                if !caller.is_admin {
                    return respond::refused(&caller, &format!("{verb} of a job"));
                }
                let path = format!("jobs/{id}/{verb}");
                pass_on(
                    internal::ledger(
                        env,
                        Method::Post,
                        &path,
                        "",
                        Some(&serde_json::json!({})),
                        &caller,
                    )
                    .await,
                )
            }
            _ => respond::error(&ApiError::not_found(format!(
                "no route POST /v1/jobs/{action}"
            ))),
        },
        (m, _) => respond::error(&ApiError::method_not_allowed(format!(
            "{m:?} /v1/jobs/{rest}: see docs/jobs.md"
        ))),
    }
}

/// The Worker's queue consumer: the jobs' queues, and their dead-letter
/// queue (a name ending in `-dead`), whose messages mark their jobs dead.
pub(crate) async fn consume(
    batch: MessageBatch<serde_json::Value>,
    env: &Env,
    app: &App,
) -> Result<()> {
    let dead_letters = batch.queue().ends_with("-dead");
    let mut messages = batch.messages()?;
    // Queues have no priorities: within a batch, higher runs first.
    messages.sort_by_key(|m| Reverse(m.body()["priority"].as_u64().unwrap_or(0)));
    for m in messages {
        let msg: JobMessage = match serde_json::from_value(m.body().clone()) {
            Ok(msg) => msg,
            Err(e) => {
                // A poison message: no job to run or to mark. Dropped, said.
                worker::console_error!("jobs: a message that is not a job ({e}): {}", m.body());
                m.ack();
                continue;
            }
        };
        let done = if dead_letters {
            mark_dead(env, &msg, &batch.queue()).await
        } else {
            run_job(env, app, &msg).await
        };
        if done {
            m.ack();
        } else {
            m.retry_with_options(
                &QueueRetryOptionsBuilder::new()
                    .with_delay_seconds(LEDGER_DOWN_RETRY_SECS)
                    .build(),
            );
        }
    }
    Ok(())
}

async fn mark_dead(env: &Env, msg: &JobMessage, queue: &str) -> bool {
    let body = serde_json::json!({
        "reason": format!("the queue gave up delivering it (dead-letter queue {queue})"),
    });
    let system = AuthContext::anonymous();
    let path = format!("runs/{}/dead", msg.id);
    matches!(internal::ledger(env, Method::Post, &path, "", Some(&body), &system).await, Ok(a) if a.ok())
}

/// Runs one delivered job; `false` when the ledger could not be told (the
/// message comes back, and the ledger sorts out what already happened).
async fn run_job(env: &Env, app: &App, msg: &JobMessage) -> bool {
    let system = AuthContext::anonymous();
    let start = serde_json::json!({ "send": msg.send });
    let path = format!("runs/{}/start", msg.id);
    let started = match internal::ledger(env, Method::Post, &path, "", Some(&start), &system).await
    {
        Ok(a) if a.ok() => a.body,
        Ok(a) => {
            worker::console_error!("jobs: starting {}: {} {:?}", msg.id, a.status, a.error());
            return false;
        }
        Err(e) => {
            worker::console_error!("jobs: starting {}: {e}", msg.id);
            return false;
        }
    };
    if started["run"] != true {
        return true;
    }
    let job = &started["job"];
    let run = FunctionRun {
        name: job["name"].as_str().unwrap_or_default().to_owned(),
        args: serde_json::from_value(job["payload"].clone()).unwrap_or(Value::Null),
        caller: serde_json::from_value(started["caller"].clone()).unwrap_or_default(),
        shard: job["shard"].as_str().map(str::to_owned),
        // One op per send: a redelivered send of a mutation job that
        // committed is answered with its first result, not applied again.
        op: Some(format!("job:{}:{}", msg.id, msg.send)),
    };
    let outcome = crate::glue::run::run_function(env, app, &run).await;
    let finish = match &outcome {
        Ok(v) => serde_json::json!({ "send": msg.send, "ok": true, "result": v }),
        Err(e) => serde_json::json!({
            "send": msg.send,
            "ok": false,
            "error": crate::glue::run::describe(e),
        }),
    };
    let path = format!("runs/{}/finish", msg.id);
    match internal::ledger(env, Method::Post, &path, "", Some(&finish), &system).await {
        Ok(a) if a.ok() => true,
        other => {
            let why = match other {
                Ok(a) => format!("{} {:?}", a.status, a.error()),
                Err(e) => e.to_string(),
            };
            worker::console_error!("jobs: finishing {}: {why}", msg.id);
            false
        }
    }
}
