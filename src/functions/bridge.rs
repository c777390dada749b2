//! The text form of `ctx.db` calls and their answers, as the TypeScript
//! runtime and the Rust side exchange them (docs/functions.md, "The
//! bridge"): a call is an op name and a JSON payload; every answer is an
//! envelope, `{"ok": value}` or `{"err": {"code", "message"}}`. Kept here,
//! without Workers types, so it is tested natively.

use serde_json::json;

use super::{Db, FnError, When};
use crate::jobs::JobSpec;
use crate::protocol::ErrorCode;
use crate::value::{Row, Value};

/// An answer as an envelope.
pub fn envelope(result: Result<Value, FnError>) -> String {
    match result {
        Ok(v) => json!({ "ok": v }).to_string(),
        Err(e) => json!({ "err": { "code": e.code.as_str(), "message": e.message } }).to_string(),
    }
}

/// An envelope back into a result; text that is not one is `FUNCTION_FAILED`.
pub fn parse_envelope(text: &str) -> Result<Value, FnError> {
    let parsed: Value = serde_json::from_str(text)
        .map_err(|e| FnError::failed(format!("the function runtime answered non-JSON: {e}")))?;
    let Value::Map(mut env) = parsed else {
        return Err(FnError::failed(
            "the function runtime answered badly: not an object",
        ));
    };
    if let Some(err) = env.remove("err") {
        let text = |k: &str| err.get(k).and_then(Value::as_str).map(str::to_owned);
        return match (text("code"), text("message")) {
            (Some(code), Some(message)) => {
                Err(FnError::new(ErrorCode::parse_lenient(&code), message))
            }
            _ => Err(FnError::failed(
                "the function runtime answered badly: err without code and message",
            )),
        };
    }
    // `{"ok": null}` has the key: told apart from a missing one.
    env.remove("ok")
        .ok_or_else(|| FnError::failed("the function runtime answered neither ok nor err"))
}

fn field<'v>(payload: &'v Value, name: &str) -> Result<&'v Value, FnError> {
    payload
        .get(name)
        .ok_or_else(|| FnError::bad_args(name, "missing"))
}

fn text<'v>(payload: &'v Value, name: &str) -> Result<&'v str, FnError> {
    field(payload, name)?
        .as_str()
        .ok_or_else(|| FnError::bad_args(name, "expected a string"))
}

fn row(payload: &Value, name: &str) -> Result<Row, FnError> {
    match field(payload, name)? {
        Value::Map(m) => Ok(m.clone()),
        _ => Err(FnError::bad_args(name, "expected an object")),
    }
}

/// One `ctx.db` call in text form: `op` is `get`, `query`, `insert`,
/// `update`, `delete`, `schedule`, `cancel` or `enqueue`; `payload` JSON
/// as docs/functions.md gives it.
pub fn dispatch_db(db: &mut dyn Db, op: &str, payload: &str) -> String {
    envelope(dispatch(db, op, payload))
}

fn dispatch(db: &mut dyn Db, op: &str, payload: &str) -> Result<Value, FnError> {
    let p: Value = serde_json::from_str(payload)
        .map_err(|e| FnError::new(ErrorCode::BadMessage, format!("ctx.db.{op}: {e}")))?;
    match op {
        "get" => Ok(db
            .get(text(&p, "entity")?, text(&p, "id")?)?
            .map_or(Value::Null, Value::Map)),
        "query" => Ok(Value::List(
            db.query(&p)?.into_iter().map(Value::Map).collect(),
        )),
        "insert" => Ok(Value::Text(
            db.insert(text(&p, "entity")?, row(&p, "row")?)?,
        )),
        "update" => {
            db.update(text(&p, "entity")?, text(&p, "id")?, row(&p, "set")?)?;
            Ok(Value::Null)
        }
        "delete" => {
            db.delete(text(&p, "entity")?, text(&p, "id")?)?;
            Ok(Value::Null)
        }
        "schedule" => {
            let ms = |k: &str| p.get(k).and_then(|v| v.as_f64()).map(|f| f as i64);
            let when = match (ms("delayMs"), ms("at")) {
                (Some(d), None) if d >= 0 => When::After(d),
                (None, Some(at)) => When::At(at),
                _ => return Err(FnError::bad_args("schedule", "give delayMs (≥ 0) or at")),
            };
            let args = p.get("args").cloned().unwrap_or(Value::Null);
            Ok(Value::Text(db.schedule(when, text(&p, "name")?, args)?))
        }
        "cancel" => {
            db.cancel(text(&p, "id")?)?;
            Ok(Value::Null)
        }
        "enqueue" => {
            // The payload is a `JobSpec` as JSON (camelCase).
            let spec: JobSpec = serde_json::from_str(payload)
                .map_err(|e| FnError::new(ErrorCode::BadJob, format!("ctx.jobs.enqueue: {e}")))?;
            Ok(Value::Text(db.enqueue(spec)?))
        }
        other => Err(FnError::new(
            ErrorCode::BadMessage,
            format!("ctx.db has no {other:?}"),
        )),
    }
}
