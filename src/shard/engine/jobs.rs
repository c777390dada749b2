//! Jobs from a mutation (docs/functions.md, "Jobs from a mutation"): a
//! mutation's `enqueue` is checked here and stored with its commit in the
//! job outbox; [`LiveShard`](crate::shard::LiveShard) sends the outbox to
//! the jobs ledger a batch at a time and deletes what the ledger took.
//! Every job carries an idempotency key (its own, or its id), so a batch
//! sent again after a lost answer enqueues nothing twice.

use serde_json::json;

use super::ShardEngine;
use crate::functions::{FnError, FnKind};
use crate::jobs::{job_id_for_commit, job_id_for_key, JobRequest, JobSpec};
use crate::policy::AuthContext;
use crate::protocol::ErrorCode;
use crate::shard::store::OutboxJob;
use crate::storage::{SqlConn, StorageError};

/// Jobs one mutation may enqueue.
pub const MAX_JOBS_PER_CALL: usize = 100;
/// Jobs sent to the ledger in one call, at most.
pub const JOBS_PER_SEND: usize = 50;
/// Meta key: failed sends in a row (reset by a success).
pub const JOB_OUTBOX_ATTEMPTS: &str = "job_outbox_attempts";
/// Meta key: the stage of the last failed send, until one succeeds.
pub const JOB_OUTBOX_ERROR: &str = "job_outbox_error";

/// The oldest jobs of the outbox, to send together.
#[derive(Clone, Debug, PartialEq)]
pub struct JobBatch {
    pub jobs: Vec<JobRequest>,
    /// The position of its last row: pass it to [`ShardEngine::jobs_taken`].
    pub through: (u64, u64),
    /// Rows that no longer read as a request (another runtime version's):
    /// deleted with the batch, never sent.
    pub unreadable: usize,
}

impl<C: SqlConn> ShardEngine<C> {
    /// The request for `spec`, the `idx`-th job of the call at `seq`, or
    /// why not: `BAD_JOB` (a limit of [`JobSpec::check`]), `UNKNOWN_QUEUE`,
    /// `UNKNOWN_FUNCTION`, or `WRONG_KIND` for a query (a job's handler is
    /// an action or a mutation). The job runs as `caller`, in this shard
    /// unless it names another.
    pub(super) fn job_request(
        &self,
        mut spec: JobSpec,
        caller: &AuthContext,
        seq: u64,
        idx: usize,
        now_ms: i64,
    ) -> Result<JobRequest, FnError> {
        spec.check()
            .map_err(|e| FnError::new(ErrorCode::BadJob, e.message))?;
        let queues = &self.manifest.background().jobs.queues;
        if !queues.contains(&spec.queue) {
            return Err(FnError::new(
                ErrorCode::UnknownQueue,
                format!(
                    "no queue {:?} in this app (jobs.queues: {})",
                    spec.queue,
                    queues.join(", ")
                ),
            ));
        }
        let handler = self
            .functions
            .lookup(&spec.name)
            .ok_or_else(|| FnError::unknown(&spec.name))?;
        if handler.kind == FnKind::Query {
            return Err(FnError::new(
                ErrorCode::WrongKind,
                format!(
                    "{:?} is a query: a job's handler is an action or a mutation",
                    spec.name
                ),
            ));
        }
        spec.shard.get_or_insert_with(|| self.shard.clone());
        let id = match &spec.key {
            Some(key) => job_id_for_key(key),
            None => job_id_for_commit(&self.shard, seq, idx as u64, now_ms),
        };
        // Keyless jobs are keyed by their id: a resent batch is a duplicate.
        spec.key.get_or_insert_with(|| id.clone());
        Ok(JobRequest {
            id,
            spec,
            caller: caller.clone(),
        })
    }

    /// Whether a commit added jobs since the last time this was asked.
    pub fn take_jobs_added(&mut self) -> bool {
        std::mem::take(&mut self.jobs_added)
    }

    /// The oldest jobs waiting (at most [`JOBS_PER_SEND`]), or `None` when
    /// none wait.
    pub fn job_batch(&self) -> Result<Option<JobBatch>, StorageError> {
        let rows = self.store.jobs_oldest(JOBS_PER_SEND)?;
        let Some(last) = rows.last() else {
            return Ok(None);
        };
        let through = (last.seq, last.idx);
        let total = rows.len();
        let jobs: Vec<JobRequest> = rows
            .into_iter()
            .filter_map(|r: OutboxJob| r.request)
            .collect();
        Ok(Some(JobBatch {
            unreadable: total - jobs.len(),
            jobs,
            through,
        }))
    }

    /// The ledger took a batch: its rows go and the failure count resets.
    pub fn jobs_taken(&self, through: (u64, u64)) -> Result<(), StorageError> {
        self.store.delete_jobs_through(through.0, through.1)?;
        let meta = self.store.meta()?;
        if meta.int(JOB_OUTBOX_ATTEMPTS)? != 0 {
            meta.set(JOB_OUTBOX_ATTEMPTS, crate::sql::SqlValue::Integer(0))?;
            meta.set(JOB_OUTBOX_ERROR, crate::sql::SqlValue::Null)?;
        }
        Ok(())
    }

    /// A send failed at `stage`: records it and returns the failures in a
    /// row (for the backoff, [`super::outbox_backoff_ms`]).
    pub fn jobs_failed(&self, stage: &str) -> Result<i64, StorageError> {
        let meta = self.store.meta()?;
        meta.set_text(JOB_OUTBOX_ERROR, stage)?;
        meta.add(JOB_OUTBOX_ATTEMPTS, 1)
    }

    /// Jobs waiting for the ledger.
    pub fn job_outbox_depth(&self) -> Result<u64, StorageError> {
        Ok(self.store.job_outbox_depth()?.0)
    }

    /// `{depth, lag_ms, attempts, last_error?}`, as the D1 outbox's.
    pub fn job_outbox_stats(&self, now_ms: i64) -> Result<serde_json::Value, StorageError> {
        let (depth, oldest) = self.store.job_outbox_depth()?;
        let meta = self.store.meta()?;
        let mut v = json!({
            "depth": depth,
            "lag_ms": oldest.map(|t| (now_ms - t).max(0)).unwrap_or(0),
            "attempts": meta.int(JOB_OUTBOX_ATTEMPTS)?,
        });
        if let Some(e) = meta.text(JOB_OUTBOX_ERROR)? {
            v["last_error"] = json!(e);
        }
        Ok(v)
    }
}
