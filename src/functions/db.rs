//! `ctx.db`: what a query or mutation may do to its shard's rows, and the
//! context a Rust function gets.

use super::FnError;
use crate::jobs::JobSpec;
use crate::policy::AuthContext;
use crate::value::{Row, Value};

/// A function's view of its shard's rows (Pylon's `ctx.db`). In a
/// mutation every write is applied at once (later reads see it) and kept
/// only if the whole call succeeds; in a query the writes fail with
/// `READ_ONLY`. Policies apply to every call unless the function is
/// trusted.
pub trait Db {
    /// The row `id` of `entity`, or `None` when absent (or unreadable).
    fn get(&mut self, entity: &str, id: &str) -> Result<Option<Row>, FnError>;
    /// The rows of a query in the query language (docs/queries.md):
    /// `{"entity", "where"?, "order"?, "limit"?}`; at most 100 rows
    /// unless `limit` says otherwise (bounded like an HTTP query).
    fn query(&mut self, query: &Value) -> Result<Vec<Row>, FnError>;
    /// Inserts a row; its id (made by the shard when the row has none).
    fn insert(&mut self, entity: &str, row: Row) -> Result<String, FnError>;
    /// Sets the given fields of row `id`.
    fn update(&mut self, entity: &str, id: &str, set: Row) -> Result<(), FnError>;
    /// Deletes row `id`.
    fn delete(&mut self, entity: &str, id: &str) -> Result<(), FnError>;

    /// Schedules mutation `name` with `args` (Pylon's
    /// `ctx.scheduler.runAfter` / `runAt`): kept only if this call commits,
    /// then run by the shard on its alarm, as this call's caller. Its id.
    /// Mutations only.
    fn schedule(&mut self, when: When, name: &str, args: Value) -> Result<String, FnError> {
        let _ = (when, name, args);
        Err(FnError::new(
            crate::protocol::ErrorCode::ReadOnly,
            "only a mutation may schedule",
        ))
    }

    /// Cancels a scheduled call (nothing when it already ran or is
    /// unknown), if this call commits. Mutations only.
    fn cancel(&mut self, id: &str) -> Result<(), FnError> {
        let _ = id;
        Err(FnError::new(
            crate::protocol::ErrorCode::ReadOnly,
            "only a mutation may cancel a scheduled call",
        ))
    }

    /// Enqueues a job (Pylon's `enqueue(name, payload, options)`): kept
    /// only if this call commits, then handed to the jobs ledger. Its id.
    /// `BAD_JOB` for a spec over a limit, `UNKNOWN_QUEUE` for a queue the
    /// manifest does not list. Mutations only.
    fn enqueue(&mut self, spec: JobSpec) -> Result<String, FnError> {
        let _ = spec;
        Err(FnError::new(
            crate::protocol::ErrorCode::ReadOnly,
            "only a mutation may enqueue a job",
        ))
    }
}

/// When a scheduled call runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// This many ms after the scheduling call.
    After(i64),
    /// At this time (ms since the epoch); a past time is "at once".
    At(i64),
}

/// What a Rust query or mutation gets (Pylon's `ctx`).
pub struct Ctx<'a> {
    /// The verified caller.
    pub auth: &'a AuthContext,
    pub db: &'a mut dyn Db,
}

impl Ctx<'_> {
    /// The function's own error: `return Err(ctx.error("OUT_OF_STOCK", "…"))`.
    pub fn error(&self, code: &str, message: impl Into<String>) -> FnError {
        FnError::app(code, message)
    }

    /// Schedules mutation `name` to run `delay_ms` after this call commits
    /// (Pylon's `ctx.scheduler.runAfter`); its id.
    pub fn run_after(&mut self, delay_ms: i64, name: &str, args: Value) -> Result<String, FnError> {
        self.db.schedule(When::After(delay_ms), name, args)
    }

    /// Schedules mutation `name` to run at `at_ms` (ms since the epoch).
    pub fn run_at(&mut self, at_ms: i64, name: &str, args: Value) -> Result<String, FnError> {
        self.db.schedule(When::At(at_ms), name, args)
    }

    /// Cancels a scheduled call, if this call commits.
    pub fn cancel(&mut self, id: &str) -> Result<(), FnError> {
        self.db.cancel(id)
    }

    /// Enqueues a job, sent to the jobs ledger only if this call commits
    /// (Pylon's `JobOps.enqueue`); its id.
    pub fn enqueue(&mut self, spec: JobSpec) -> Result<String, FnError> {
        self.db.enqueue(spec)
    }

    /// The arguments as a typed value (serde), or `BAD_ARGS` saying why.
    pub fn args<T: serde::de::DeserializeOwned>(args: &Value) -> Result<T, FnError> {
        let json = serde_json::to_value(args).map_err(|e| FnError::bad_args("args", e))?;
        serde_json::from_value(json).map_err(|e| FnError::bad_args("args", e))
    }
}
