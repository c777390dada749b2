//! `call`: a server function run in this shard (docs/functions.md). A
//! mutation's `ctx.db` writes are applied as they come (its later reads
//! see them) under one seq, and kept only if the whole call succeeds: then
//! they are recorded like one `mut` (log, outbox, op id, and the result
//! for retries) and fanned out as one diff per subscription. A failure
//! puts every row back.

use std::collections::BTreeSet;

use super::errors::{err, query_err, storage_err};
use super::jobs::MAX_JOBS_PER_CALL;
use super::writes::Applied;
use super::{Outbound, ShardEngine};
use crate::functions::{Ctx, Db, FnError, FnKind, Found, FunctionInfo, RustBody, When};
use crate::jobs::{JobRequest, JobSpec};
use crate::live::Change;
use crate::policy::AuthContext;
use crate::protocol::{ErrorCode, ErrorMsg, Op, Returned};
use crate::query::Query;
use crate::shard::http_query::{self, QueryFailure};
use crate::shard::store::ScheduledCall;
use crate::storage::SqlConn;
use crate::value::{Row, Value};

/// `ctx.db` calls one function call may make.
pub const MAX_DB_CALLS: u32 = 1_000;
/// Rows one call may read through `ctx.db.query`.
pub const MAX_ROWS_READ: usize = 10_000;

/// `ctx.db` for one call: reads and writes through the shard's policies
/// (or as the shard itself, for a trusted function).
pub(super) struct CallDb<'e, C: SqlConn> {
    engine: &'e ShardEngine<C>,
    /// Who the policies see: the caller, or an admin for a trusted function.
    auth: AuthContext,
    /// The caller itself: scheduled calls run as it.
    caller: AuthContext,
    kind: FnKind,
    seq: u64,
    pub(super) changes: Vec<Change>,
    /// Entities read: a watched query re-runs when one of them changes.
    pub(super) reads: BTreeSet<String>,
    calls: u32,
    rows_read: usize,
    /// The call's time, for `When::After`.
    now_ms: i64,
    pub(super) scheduled: Vec<ScheduledCall>,
    pub(super) cancelled: Vec<String>,
    /// Jobs enqueued, in order: stored with the commit.
    pub(super) jobs: Vec<JobRequest>,
}

/// Calls one mutation may schedule.
pub const MAX_SCHEDULED_PER_CALL: usize = 100;

impl<'e, C: SqlConn> CallDb<'e, C> {
    pub(super) fn new(
        engine: &'e ShardEngine<C>,
        caller: &AuthContext,
        info: &FunctionInfo,
        seq: u64,
        now_ms: i64,
    ) -> Self {
        let mut auth = caller.clone();
        if info.trusted {
            auth.is_admin = true;
        }
        CallDb {
            engine,
            auth,
            caller: caller.clone(),
            kind: info.kind,
            seq,
            changes: Vec::new(),
            reads: BTreeSet::new(),
            calls: 0,
            rows_read: 0,
            now_ms,
            scheduled: Vec::new(),
            cancelled: Vec::new(),
            jobs: Vec::new(),
        }
    }

    fn mutation_only(&self, what: &str) -> Result<(), FnError> {
        if self.kind != FnKind::Mutation {
            return Err(FnError::new(
                ErrorCode::ReadOnly,
                format!("a query cannot {what}: use a mutation"),
            ));
        }
        Ok(())
    }

    fn count_call(&mut self) -> Result<(), FnError> {
        self.calls += 1;
        if self.calls > MAX_DB_CALLS {
            return Err(FnError::new(
                ErrorCode::FunctionBudget,
                format!("at most {MAX_DB_CALLS} ctx.db calls in one function call"),
            ));
        }
        Ok(())
    }

    fn write(&mut self, op: Op) -> Result<Change, FnError> {
        if self.kind != FnKind::Mutation {
            return Err(FnError::new(
                ErrorCode::ReadOnly,
                format!("a query cannot {} rows: use a mutation", op.name()),
            ));
        }
        let max = self.engine.config.limits.max_ops_per_mut as usize;
        if self.changes.len() >= max {
            return Err(FnError::new(
                ErrorCode::TooManyOps,
                format!("at most {max} writes in one mutation"),
            ));
        }
        self.count_call()?;
        let idx = self.changes.len();
        let change = self
            .engine
            .apply_op(&self.auth, op, self.seq, idx, &self.changes)?;
        self.changes.push(change.clone());
        Ok(change)
    }
}

impl<C: SqlConn> Db for CallDb<'_, C> {
    fn get(&mut self, entity: &str, id: &str) -> Result<Option<Row>, FnError> {
        self.count_call()?;
        let e = self.engine.entity(entity)?;
        self.reads.insert(e.name.clone());
        let row = self
            .engine
            .store
            .get_row(e, id)
            .map_err(|e| storage_err(&e))?;
        let policies = self.engine.manifest.policies();
        Ok(row.filter(|r| policies.can_read(entity, &self.auth, r).is_allowed()))
    }

    fn query(&mut self, json: &Value) -> Result<Vec<Row>, FnError> {
        self.count_call()?;
        let name = Query::entity_name(json)
            .ok_or_else(|| err(ErrorCode::BadQuery, "a query names its entity"))?;
        let e = self.engine.entity(name)?;
        let query = Query::parse(e, json).map_err(|e| query_err(&e))?;
        if query.count {
            return Err(FnError::new(
                ErrorCode::BadQuery,
                "ctx.db.query returns rows: count them (`count` is for subscriptions)",
            ));
        }
        self.reads.insert(e.name.clone());
        let (rows, _) =
            http_query::page(&self.engine.store, &self.engine.manifest, &self.auth, query)
                .map_err(|f| match f {
                    QueryFailure::Refused(e) => FnError::from(e),
                    QueryFailure::Storage(e) => storage_err(&e).into(),
                })?;
        self.rows_read += rows.len();
        if self.rows_read > MAX_ROWS_READ {
            return Err(FnError::new(
                ErrorCode::FunctionBudget,
                format!("at most {MAX_ROWS_READ} rows read in one function call"),
            ));
        }
        Ok(rows)
    }

    fn insert(&mut self, entity: &str, row: Row) -> Result<String, FnError> {
        let change = self.write(Op::Insert {
            entity: entity.to_owned(),
            row,
        })?;
        Ok(change.id().unwrap_or_default().to_owned())
    }

    fn update(&mut self, entity: &str, id: &str, set: Row) -> Result<(), FnError> {
        self.write(Op::Update {
            entity: entity.to_owned(),
            id: id.to_owned(),
            set,
        })
        .map(drop)
    }

    fn delete(&mut self, entity: &str, id: &str) -> Result<(), FnError> {
        self.write(Op::Delete {
            entity: entity.to_owned(),
            id: id.to_owned(),
        })
        .map(drop)
    }

    fn schedule(&mut self, when: When, name: &str, args: Value) -> Result<String, FnError> {
        self.mutation_only("schedule")?;
        self.count_call()?;
        if self.scheduled.len() >= MAX_SCHEDULED_PER_CALL {
            return Err(FnError::new(
                ErrorCode::FunctionBudget,
                format!("at most {MAX_SCHEDULED_PER_CALL} scheduled calls in one mutation"),
            ));
        }
        let at_ms = match when {
            When::After(ms) => self.now_ms.saturating_add(ms.max(0)),
            When::At(at) => at,
        };
        // An action needs the Worker, not the shard: it is scheduled as a
        // job with a delay (sent only if this call commits, like the rest).
        if self
            .engine
            .functions
            .lookup(name)
            .is_some_and(|f| f.kind == FnKind::Action)
        {
            return self.schedule_action(name, args, at_ms);
        }
        // Mutations run on the shard's alarm: checked now, so a typo fails
        // the scheduling call.
        let target = self
            .engine
            .function(name, Some(FnKind::Mutation))
            .map_err(FnError::from)?;
        // The call's seq makes it unique: a mutation that schedules is
        // recorded under its seq even when it writes no row.
        let id = format!("t{}.{}", self.seq, self.scheduled.len());
        self.scheduled.push(ScheduledCall {
            id: id.clone(),
            at_ms,
            name: target.name,
            args,
            auth: self.caller.clone(),
        });
        Ok(id)
    }

    fn cancel(&mut self, id: &str) -> Result<(), FnError> {
        self.mutation_only("cancel a scheduled call")?;
        self.count_call()?;
        self.scheduled.retain(|c| c.id != id);
        self.cancelled.push(id.to_owned());
        Ok(())
    }

    fn enqueue(&mut self, spec: JobSpec) -> Result<String, FnError> {
        self.mutation_only("enqueue a job")?;
        self.count_call()?;
        self.enqueue_job(spec)
    }
}

impl<C: SqlConn> CallDb<'_, C> {
    /// `runAfter`/`runAt` of an action: a job of the default queue, run
    /// once (no retries, like a scheduled mutation), at most a queue's
    /// longest delay ahead. Its id is the job's (`GET /v1/jobs/{id}`).
    fn schedule_action(&mut self, name: &str, args: Value, at_ms: i64) -> Result<String, FnError> {
        let delay = at_ms.saturating_sub(self.now_ms).max(0) as u64;
        if delay > crate::jobs::MAX_DELAY_MS {
            return Err(FnError::bad_args(
                "schedule",
                format!(
                    "an action runs at most {} ms (12 hours, a queue's longest delay) ahead",
                    crate::jobs::MAX_DELAY_MS
                ),
            ));
        }
        let mut spec = JobSpec::new(name, args);
        spec.delay_ms = delay;
        spec.max_retries = 0;
        self.enqueue_job(spec)
    }

    fn enqueue_job(&mut self, spec: JobSpec) -> Result<String, FnError> {
        let jobs = crate::features::Feature::Jobs;
        if !jobs.built() {
            return Err(FnError::new(
                ErrorCode::Unavailable,
                jobs.not_built().message,
            ));
        }
        // The ledger keeps the first job of a key: so does one call.
        if let Some(key) = &spec.key {
            if let Some(first) = self.jobs.iter().find(|j| j.spec.key.as_ref() == Some(key)) {
                return Ok(first.id.clone());
            }
        }
        if self.jobs.len() >= MAX_JOBS_PER_CALL {
            return Err(FnError::new(
                ErrorCode::FunctionBudget,
                format!("at most {MAX_JOBS_PER_CALL} jobs enqueued in one mutation"),
            ));
        }
        let job =
            self.engine
                .job_request(spec, &self.caller, self.seq, self.jobs.len(), self.now_ms)?;
        let id = job.id.clone();
        self.jobs.push(job);
        Ok(id)
    }
}

/// What preparing a call came to.
pub(super) enum PreparedCall {
    /// Nothing to record: a retried op id (its first answer), a query, or
    /// a mutation that wrote nothing.
    Answered(Returned),
    /// Rows written at the call's seq; to be recorded, then fanned out.
    Applied(Returned, Applied),
}

/// What running a query or mutation came to.
pub(super) struct Ran {
    pub(super) value: Result<Value, FnError>,
    pub(super) changes: Vec<Change>,
    pub(super) reads: BTreeSet<String>,
    pub(super) scheduled: Vec<ScheduledCall>,
    pub(super) cancelled: Vec<String>,
    pub(super) jobs: Vec<JobRequest>,
}

impl<C: SqlConn> ShardEngine<C> {
    /// The function `name`, if it is of kind `want` (`None`: a query or a
    /// mutation): `WRONG_KIND` otherwise (an action is run by the router,
    /// not here).
    pub(super) fn function(
        &self,
        name: &str,
        want: Option<FnKind>,
    ) -> Result<FunctionInfo, ErrorMsg> {
        let info = self
            .functions
            .lookup(name)
            .ok_or_else(|| FnError::unknown(name).to_msg())?;
        let ok = match want {
            None => info.kind != FnKind::Action,
            Some(k) => info.kind == k,
        };
        if !ok {
            let how = match info.kind {
                FnKind::Action => format!(
                    "call it over HTTP: POST /v1/shards/{}/fn/{name}",
                    self.shard
                ),
                _ => format!(
                    "it cannot be run as a {}",
                    want.map_or("query or mutation", FnKind::as_str)
                ),
            };
            return Err(err(
                ErrorCode::WrongKind,
                format!("{name:?} is a {}: {how}", info.kind.as_str()),
            ));
        }
        Ok(info)
    }

    /// Runs a query or mutation over a fresh `ctx.db` at `seq`; its writes
    /// stay applied (the caller records or undoes them).
    pub(super) async fn run_function(
        &self,
        info: &FunctionInfo,
        auth: &AuthContext,
        args: Value,
        seq: u64,
        now_ms: i64,
    ) -> Ran {
        let mut db = CallDb::new(self, auth, info, seq, now_ms);
        let value = match self.functions.find(&info.name) {
            Some((_, Found::Rust(RustBody::Sync(f)))) => {
                let mut ctx = Ctx { auth, db: &mut db };
                f(&mut ctx, args)
            }
            Some((_, Found::Script(s))) => {
                s.run(&info.name, info.kind, auth, Some(&mut db), None, &args)
                    .await
            }
            Some((_, Found::Rust(RustBody::Action(_)))) | None => Err(FnError::unknown(&info.name)),
        };
        Ran {
            value,
            changes: db.changes,
            reads: db.reads,
            scheduled: db.scheduled,
            cancelled: db.cancelled,
            jobs: db.jobs,
        }
    }

    /// Runs query or mutation `name` for `auth` (`op`: the caller's op id,
    /// for a mutation's idempotent retry; `want`: the kind the caller
    /// expects, `None` for either). Returns the `result` and the diffs of
    /// its writes, sent before it.
    pub async fn call(
        &mut self,
        auth: &AuthContext,
        name: &str,
        args: Value,
        op: Option<String>,
        want: Option<FnKind>,
        now_ms: i64,
    ) -> Result<(Returned, Vec<Outbound>), ErrorMsg> {
        self.tick(now_ms);
        let op = op.unwrap_or_default();
        let current = self.store.seq().map_err(|e| storage_err(&e))?;
        let first = if op.is_empty() {
            None
        } else {
            let known = self
                .store
                .op_seqs(&[op.as_str()])
                .map_err(|e| storage_err(&e))?;
            known.get(&op).copied()
        };
        let (returned, applied) = match self
            .prepare_call(auth, name, want, args, op, now_ms, current + 1, first)
            .await?
        {
            PreparedCall::Answered(r) => return Ok((r, Vec::new())),
            PreparedCall::Applied(r, a) => (r, a),
        };
        self.record(std::slice::from_ref(&applied))?;
        self.save_results(&[(&returned.op, &returned.value)]);
        let mut out = self.fan_out(&applied.changes, applied.seq).await;
        if !self.coalescing() {
            out.extend(self.rerun_watches().await);
        }
        Ok((returned, out))
    }

    /// Runs a call at `seq` (its writes applied, not recorded), or answers
    /// it without running: `first` is the seq its op id was applied at.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn prepare_call(
        &self,
        auth: &AuthContext,
        name: &str,
        want: Option<FnKind>,
        args: Value,
        op: String,
        now_ms: i64,
        seq: u64,
        first: Option<u64>,
    ) -> Result<PreparedCall, ErrorMsg> {
        let info = self.function(name, want)?;
        if let (FnKind::Mutation, Some(first)) = (info.kind, first) {
            let value = self.store.fn_result(&op).map_err(|e| storage_err(&e))?;
            return Ok(PreparedCall::Answered(Returned {
                op,
                seq: first,
                value,
                dup: true,
            }));
        }
        let ran = self.run_function(&info, auth, args, seq, now_ms).await;
        let value = match ran.value.and_then(|v| self.fits(v)) {
            Ok(v) => v,
            Err(e) => {
                self.undo(&ran.changes);
                return Err(e.to_msg());
            }
        };
        // A call that only schedules or enqueues is recorded too, so a
        // retry of its op id does it once.
        if ran.changes.is_empty()
            && ran.scheduled.is_empty()
            && ran.cancelled.is_empty()
            && ran.jobs.is_empty()
        {
            return Ok(PreparedCall::Answered(Returned {
                op,
                seq: seq - 1,
                value,
                dup: false,
            }));
        }
        let applied = Applied {
            seq,
            op: op.clone(),
            at_ms: now_ms,
            changes: ran.changes,
            scheduled: ran.scheduled,
            cancelled: ran.cancelled,
            jobs: ran.jobs,
        };
        Ok(PreparedCall::Applied(
            Returned {
                op,
                seq,
                value,
                dup: false,
            },
            applied,
        ))
    }

    /// Keeps recorded calls' results with their op ids, for a retry's
    /// answer (without it a retry is still applied once, answered with a
    /// null value).
    pub(super) fn save_results(&self, results: &[(&String, &Value)]) {
        let kept: Vec<(&str, &Value)> = results
            .iter()
            .filter(|(op, _)| !op.is_empty())
            .map(|(op, v)| (op.as_str(), *v))
            .collect();
        let _ = self.store.save_fn_results(&kept);
    }

    /// A result small enough to answer in one frame.
    pub(super) fn fits(&self, value: Value) -> Result<Value, FnError> {
        let max = self.config.limits.max_frame_bytes;
        let len = serde_json::to_string(&value)
            .map(|t| t.len())
            .unwrap_or(usize::MAX);
        // Room for the envelope (`{"type":"result","op":…,"seq":…}`).
        if len + 512 > max {
            return Err(FnError::new(
                ErrorCode::ResultTooLarge,
                format!("the function returned {len} bytes of JSON; a result fits in {max}"),
            ));
        }
        Ok(value)
    }
}
