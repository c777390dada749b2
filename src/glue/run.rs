//! Runs a server function on someone's behalf outside a client's request
//! (a job, a cron entry, a workflow step): an action here in the Worker,
//! a query or mutation in its shard, as the caller the run names.

use std::rc::Rc;

use worker::{Env, Method};

use crate::app::App;
use crate::functions::{ActionCtx, ActionHost, FnError, FnKind, Found, FunctionRun, RustBody};
use crate::glue::internal::{self, SHARD_BINDING};
use crate::host::Pending;
use crate::policy::AuthContext;
use crate::protocol::ErrorCode;
use crate::shard::rooms::RoomOp;
use crate::value::Value;

/// Calls into one shard's functions as one caller: an action's
/// `runQuery`/`runMutation`, and the runs of this module.
pub(crate) struct ShardCalls {
    pub env: Env,
    /// `None`: the run names no shard, and calling into one is an error.
    pub shard: Option<String>,
    pub caller: AuthContext,
    /// For `ctx.rooms`' shard rules (`None`: it does not load).
    pub manifest: Option<std::sync::Arc<crate::manifest::Manifest>>,
}

impl ShardCalls {
    /// `POST fn/{name}?kind=…[&op=…]` of the shard.
    pub async fn call(
        &self,
        kind: FnKind,
        name: &str,
        args: &Value,
        op: Option<&str>,
    ) -> std::result::Result<Value, FnError> {
        let Some(shard) = &self.shard else {
            return Err(FnError::new(
                ErrorCode::BadArgs,
                format!(
                    "{name:?} is a {}: it runs in a shard, and this run names none",
                    kind.as_str()
                ),
            ));
        };
        let mut query = format!("kind={}", kind.as_str());
        if let Some(op) = op {
            query.push_str("&op=");
            query.push_str(&encode(op));
        }
        let body = serde_json::to_value(args).expect("values serialize");
        let answer = internal::call(
            &self.env,
            SHARD_BINDING,
            shard,
            Method::Post,
            &format!("fn/{name}"),
            &query,
            Some(&body),
            &self.caller,
        )
        .await;
        match answer {
            Ok(a) if a.ok() => {
                Ok(serde_json::from_value(a.body["value"].clone()).unwrap_or(Value::Null))
            }
            Ok(a) => {
                let (code, message) = a.error();
                Err(FnError::new(ErrorCode::parse_lenient(&code), message))
            }
            Err(e) => Err(unreachable_shard(name, &e)),
        }
    }
}

fn unreachable_shard(name: &str, e: &worker::Error) -> FnError {
    FnError::new(
        ErrorCode::Unavailable,
        format!("calling {name:?} in the shard failed: {e}"),
    )
}

/// Percent-encodes a query-string value (op ids are short and mostly
/// plain, but may hold `:`, `&` or spaces).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl ActionHost for ShardCalls {
    fn run<'a>(
        &'a self,
        kind: FnKind,
        name: &'a str,
        args: Value,
    ) -> Pending<'a, std::result::Result<Value, FnError>> {
        Box::pin(async move { self.call(kind, name, &args, None).await })
    }

    fn publish<'a>(
        &'a self,
        channel: &'a str,
        data: Value,
    ) -> Pending<'a, std::result::Result<Value, FnError>> {
        #[cfg(not(feature = "channels"))]
        return Box::pin(async move {
            let _ = (channel, data);
            Err(FnError::new(
                ErrorCode::Unavailable,
                crate::features::Feature::Channels.not_built().message,
            ))
        });
        #[cfg(feature = "channels")]
        Box::pin(async move {
            crate::channels::check_name(channel).map_err(|e| {
                crate::channels::refusal_as_fn_error(e.status(), e.code(), &e.public_message())
            })?;
            let body = serde_json::json!({ "data": data });
            match crate::glue::channels::publish(&self.env, &self.caller, channel, &body).await {
                Ok(a) if a.ok() => Ok(serde_json::from_value(serde_json::json!({
                    "id": a.body["id"], "at": a.body["at"],
                }))
                .unwrap_or(Value::Null)),
                Ok(a) => {
                    let (code, message) = a.error();
                    Err(crate::channels::refusal_as_fn_error(
                        a.status, &code, &message,
                    ))
                }
                Err(e) => Err(FnError::new(
                    ErrorCode::Unavailable,
                    format!("publishing to channel {channel:?} failed: {e}"),
                )),
            }
        })
    }

    fn room<'a>(
        &'a self,
        op: RoomOp,
        room: &'a str,
        body: serde_json::Value,
    ) -> Pending<'a, std::result::Result<Value, FnError>> {
        Box::pin(async move {
            let manifest = self.manifest.as_ref();
            crate::glue::rooms::call(&self.env, manifest, &self.caller, op, room, body).await
        })
    }
}

/// Runs an action with `args`, its queries and mutations going through `host`.
pub(crate) async fn action(
    app: &App,
    name: &str,
    caller: &AuthContext,
    host: Rc<ShardCalls>,
    args: Value,
) -> std::result::Result<Value, FnError> {
    match app.functions().find(name) {
        Some((_, Found::Rust(RustBody::Action(f)))) => {
            let ctx = ActionCtx {
                auth: caller,
                host: &*host,
            };
            f(ctx, args).await
        }
        Some((info, Found::Script(s))) if info.kind == FnKind::Action => {
            let host: Rc<dyn ActionHost> = host;
            s.run(name, FnKind::Action, caller, None, Some(host), &args)
                .await
        }
        Some((info, _)) => Err(FnError::new(
            ErrorCode::WrongKind,
            format!("{name:?} is a {}, not an action", info.kind.as_str()),
        )),
        None => Err(FnError::unknown(name)),
    }
}

/// Runs `run`: an action here, a query or mutation in its shard.
pub(crate) async fn run_function(
    env: &Env,
    app: &App,
    run: &FunctionRun,
) -> std::result::Result<Value, FnError> {
    let Some(info) = app.functions().lookup(&run.name) else {
        return Err(FnError::unknown(&run.name));
    };
    // The shard rules hold for a run as for its caller's own requests
    // (checked here, when it runs, whoever asked for it and when).
    if let Some(shard) = &run.shard {
        let manifest = app
            .manifest()
            .map_err(|e| FnError::new(ErrorCode::Internal, e.message))?;
        if let Err(e) = manifest.auth().admit_caller(shard, &run.caller) {
            return Err(FnError::new(
                ErrorCode::Forbidden,
                format!(
                    "{:?} may not enter shard {shard:?}: {e}",
                    run.caller.user_id
                ),
            ));
        }
    }
    let calls = Rc::new(ShardCalls {
        env: env.clone(),
        shard: run.shard.clone(),
        caller: run.caller.clone(),
        manifest: app.manifest().ok(),
    });
    match info.kind {
        FnKind::Action => action(app, &run.name, &run.caller, calls, run.args.clone()).await,
        kind => {
            calls
                .call(kind, &run.name, &run.args, run.op.as_deref())
                .await
        }
    }
}

/// For callers that only log: what a failed run of `name` said.
#[cfg(feature = "jobs")]
pub(crate) fn describe(e: &FnError) -> serde_json::Value {
    serde_json::json!({ "code": e.code.as_str(), "message": e.message })
}
