//! The platform I/O objects ask their host for (`host::IoCall`), performed
//! with the Worker's bindings.

use worker::Env;

use crate::app::App;
use crate::glue::d1::{D1Exec, D1_BINDING};
use crate::host::{IoCall, IoOutcome};
use crate::store::apply_outbox_batch;

/// Performs `call` and returns what came of it; failures are outcomes,
/// never panics.
pub(crate) async fn perform(env: &Env, app: &App, call: IoCall) -> IoOutcome {
    match call {
        IoCall::VerifyToken { token } => {
            let now = crate::time::now_secs();
            IoOutcome::Verified(crate::glue::verify::verify_credential(env, app, &token, now).await)
        }
        IoCall::SessionLive { .. } if !crate::features::Feature::SignIn.built() => {
            IoOutcome::SessionLive(Err(crate::features::Feature::SignIn.not_built().message))
        }
        IoCall::SessionLive { sid } => IoOutcome::SessionLive(
            crate::glue::signin::session_live(env, &sid)
                .await
                .map_err(|e| e.to_string()),
        ),
        IoCall::RateLimit { binding, key } => IoOutcome::RateLimited {
            allowed: crate::glue::edge::allowed(env, binding, key).await,
        },
        IoCall::ApplyOutbox(batch) => {
            // The detail (D1's or SQLite's text) goes to the log; the
            // object records only the stage that failed.
            let fail = |stage: &str, detail: &dyn std::fmt::Display| {
                worker::console_error!("outbox drain failed: {stage}: {detail}");
                stage.to_owned()
            };
            let applied = async {
                let manifest = app.manifest().map_err(|e| fail("the manifest", &e))?;
                let db = env
                    .d1(D1_BINDING)
                    .map(D1Exec)
                    .map_err(|e| fail(&format!("binding {D1_BINDING}"), &e))?;
                apply_outbox_batch(&db, &manifest, &batch)
                    .await
                    .map(|_| ())
                    .map_err(|e| fail("applying to D1", &e))
            };
            IoOutcome::Applied(applied.await)
        }
        #[cfg(not(feature = "jobs"))]
        IoCall::EnqueueJobs(_) | IoCall::ReportWorkflow(_) | IoCall::SendJob { .. } => {
            IoOutcome::Applied(Err(crate::features::Feature::Jobs.not_built().message))
        }
        #[cfg(feature = "jobs")]
        IoCall::EnqueueJobs(jobs) => {
            let body = serde_json::json!({ "jobs": jobs });
            let system = crate::policy::AuthContext::anonymous();
            IoOutcome::Applied(ledger_post(env, "enqueue", &body, &system).await)
        }
        #[cfg(feature = "jobs")]
        IoCall::ReportWorkflow(summary) => {
            let body = serde_json::to_value(&summary).expect("a summary serializes");
            let system = crate::policy::AuthContext::anonymous();
            IoOutcome::Applied(ledger_post(env, "workflows", &body, &system).await)
        }
        #[cfg(feature = "jobs")]
        IoCall::SendJob {
            queue,
            message,
            delay_secs,
        } => IoOutcome::Applied(crate::glue::jobs::send(env, &queue, &message, delay_secs).await),
        IoCall::RunFunction(run) => {
            IoOutcome::Ran(crate::glue::run::run_function(env, app, &run).await)
        }
    }
}

/// A POST to the jobs ledger; `Err` says what failed (also logged).
#[cfg(feature = "jobs")]
async fn ledger_post(
    env: &Env,
    rest: &str,
    body: &serde_json::Value,
    caller: &crate::policy::AuthContext,
) -> Result<(), String> {
    let answer =
        crate::glue::internal::ledger(env, worker::Method::Post, rest, "", Some(body), caller)
            .await;
    let failed = match answer {
        Ok(a) if a.ok() => return Ok(()),
        Ok(a) => format!("the jobs ledger answered {}: {:?}", a.status, a.error()),
        Err(e) => format!("the jobs ledger: {e}"),
    };
    worker::console_error!("{rest}: {failed}");
    Err(failed)
}
