//! The platform I/O objects ask their host for (`host::IoCall`), performed
//! with the Worker's bindings.

use worker::{Date, Env};

use crate::app::App;
use crate::glue::d1::{D1Exec, D1_BINDING};
use crate::host::{IoCall, IoOutcome};
use crate::store::apply_outbox_batch;

/// Performs `call` and returns what came of it; failures are outcomes,
/// never panics.
pub(crate) async fn perform(env: &Env, app: &App, call: IoCall) -> IoOutcome {
    match call {
        IoCall::VerifyToken { token } => {
            let now = Date::now().as_millis() as i64 / 1000;
            IoOutcome::Verified(crate::glue::verify::verify_token(env, app, &token, now).await)
        }
        IoCall::RateLimit { binding, key } => IoOutcome::RateLimited {
            allowed: crate::glue::edge::allowed(env, binding, key).await,
        },
        IoCall::ApplyOutbox(batch) => {
            let applied = async {
                let manifest = app.manifest().map_err(|e| e.message)?;
                let db = env
                    .d1(D1_BINDING)
                    .map(D1Exec)
                    .map_err(|e| format!("binding {D1_BINDING}: {e}"))?;
                apply_outbox_batch(&db, &manifest, &batch)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("applying to D1: {e}"))
            };
            IoOutcome::Applied(applied.await)
        }
    }
}
