//! The job outbox (`_pylon_job_outbox`): jobs a mutation enqueued, written
//! in its commit and deleted once the jobs ledger took them
//! (docs/functions.md, "Jobs from a mutation").

use super::{int, text, uint, ShardStore};
use crate::jobs::JobRequest;
use crate::sql::SqlValue;
use crate::storage::{SqlConn, StorageError};

/// One job waiting to be sent: the `idx`-th job of the mutation `seq`,
/// committed at `at_ms`.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxJob {
    pub seq: u64,
    pub idx: u64,
    pub at_ms: i64,
    /// `None` when the stored text no longer reads as a request (written
    /// by another version of the runtime): it is dropped, not sent.
    pub request: Option<JobRequest>,
}

impl<C: SqlConn> ShardStore<C> {
    /// Stores jobs in one statement (part of their mutation's record).
    pub fn put_jobs(&self, jobs: &[OutboxJob]) -> Result<(), StorageError> {
        let rows: Vec<serde_json::Value> = jobs
            .iter()
            .filter_map(|j| {
                let request = serde_json::to_string(j.request.as_ref()?).ok()?;
                Some(serde_json::json!([j.seq, j.idx, request, j.at_ms]))
            })
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        self.run(
            "INSERT INTO _pylon_job_outbox (seq, idx, request, at) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(?1)",
            &[SqlValue::Text(serde_json::Value::Array(rows).to_string())],
        )
    }

    /// The oldest `limit` jobs, in commit order.
    pub fn jobs_oldest(&self, limit: usize) -> Result<Vec<OutboxJob>, StorageError> {
        self.read(
            "SELECT seq, idx, request, at FROM _pylon_job_outbox ORDER BY seq, idx LIMIT ?1",
            &[SqlValue::Integer(limit as i64)],
            |r| OutboxJob {
                seq: uint(&r[0]),
                idx: uint(&r[1]),
                request: text(&r[2]).and_then(|t| serde_json::from_str(t).ok()),
                at_ms: int(&r[3]),
            },
        )
    }

    /// Deletes the jobs up to and including (`seq`, `idx`): the ones the
    /// ledger took. Jobs committed since have larger seqs and stay.
    pub fn delete_jobs_through(&self, seq: u64, idx: u64) -> Result<(), StorageError> {
        self.delete_through("_pylon_job_outbox", seq, idx)
    }

    /// Jobs waiting, and when the oldest was committed.
    pub fn job_outbox_depth(&self) -> Result<(u64, Option<i64>), StorageError> {
        self.depth_of("_pylon_job_outbox")
    }
}
