//! The jobs ledger's tables: every job with its status and attempts, the
//! workflow instances it lists, and the last run of each cron entry.

use serde_json::json;

use super::{JobRequest, JobStatus};
use crate::policy::AuthContext;
use crate::sql::SqlValue;
use crate::storage::{SqlConn, StorageError};
use crate::value::Value;
use crate::workflows::WorkflowSummary;

/// A job's result or error is kept up to this many bytes of JSON.
const MAX_KEPT_BYTES: usize = 16 * 1024;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS jobs (
        id TEXT PRIMARY KEY NOT NULL,
        name TEXT NOT NULL,
        queue TEXT NOT NULL,
        payload TEXT NOT NULL,
        priority INTEGER NOT NULL,
        max_retries INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL,
        error TEXT,
        result TEXT,
        key TEXT UNIQUE,
        shard TEXT,
        caller TEXT NOT NULL,
        run_at_ms INTEGER NOT NULL,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        started_ms INTEGER,
        finished_ms INTEGER,
        sends INTEGER NOT NULL DEFAULT 0,
        unsent INTEGER NOT NULL DEFAULT 1
    ) STRICT",
    // Every index is rows written per job (docs/cost.md, "Jobs"): the
    // newest-first list reads the table backwards by rowid (insertion
    // order) instead of an index on created_ms, and unsent or overdue
    // jobs are found among the waiting ones through jobs_by_status (a
    // partial index on `unsent` changed twice per job). Ledgers made
    // before drop those two.
    "CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, queue, created_ms)",
    "DROP INDEX IF EXISTS jobs_by_created",
    "DROP INDEX IF EXISTS jobs_unsent",
    "CREATE INDEX IF NOT EXISTS jobs_finished ON jobs (finished_ms) WHERE finished_ms IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS workflows (
        id TEXT PRIMARY KEY NOT NULL,
        workflow TEXT NOT NULL,
        status TEXT NOT NULL,
        step INTEGER NOT NULL,
        started_by TEXT,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    ) STRICT",
    "CREATE INDEX IF NOT EXISTS workflows_by_created ON workflows (created_ms)",
    "CREATE TABLE IF NOT EXISTS cron_runs (
        name TEXT PRIMARY KEY NOT NULL,
        runs INTEGER NOT NULL,
        failures INTEGER NOT NULL,
        last_ms INTEGER NOT NULL,
        last_ok INTEGER NOT NULL,
        last_error TEXT
    ) STRICT",
];

const JOB_COLUMNS: &str = "id, name, queue, payload, priority, max_retries, attempts, status, \
     error, result, key, shard, caller, run_at_ms, created_ms, updated_ms, started_ms, \
     finished_ms, sends";

/// One job as the ledger holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub id: String,
    pub name: String,
    pub queue: String,
    pub payload: Value,
    pub priority: i64,
    pub max_retries: i64,
    pub attempts: i64,
    pub status: JobStatus,
    pub error: Option<serde_json::Value>,
    pub result: Option<serde_json::Value>,
    pub key: Option<String>,
    pub shard: Option<String>,
    pub caller: AuthContext,
    pub run_at_ms: i64,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    /// How many times it was handed to its queue: a message names the
    /// send it came from, so a stale copy is told apart.
    pub sends: i64,
}

impl Job {
    /// Its JSON for the API (the caller shows as its user id only).
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "id": self.id,
            "name": self.name,
            "queue": self.queue,
            "payload": self.payload,
            "priority": self.priority,
            "maxRetries": self.max_retries,
            "attempts": self.attempts,
            "status": self.status.as_str(),
            "error": self.error,
            "result": self.result,
            "key": self.key,
            "shard": self.shard,
            "enqueuedBy": self.caller.user_id,
            "runAtMs": self.run_at_ms,
            "createdMs": self.created_ms,
            "updatedMs": self.updated_ms,
            "startedMs": self.started_ms,
            "finishedMs": self.finished_ms,
        })
    }
}

/// Filters of a listing.
#[derive(Clone, Debug, Default)]
pub struct JobFilter {
    pub status: Option<JobStatus>,
    pub queue: Option<String>,
    pub name: Option<String>,
    pub limit: usize,
}

pub struct LedgerStore<C> {
    sql: C,
}

fn text(s: &str) -> SqlValue {
    SqlValue::Text(s.to_owned())
}

fn opt_text(s: Option<&str>) -> SqlValue {
    s.map_or(SqlValue::Null, text)
}

fn json_text(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).expect("values serialize")
}

/// JSON kept within [`MAX_KEPT_BYTES`]: a larger value is replaced by a
/// note saying how large it was.
fn kept(v: &serde_json::Value) -> String {
    let s = v.to_string();
    if s.len() <= MAX_KEPT_BYTES {
        s
    } else {
        json!({ "truncated": true, "bytes": s.len() }).to_string()
    }
}

fn as_text(v: Option<&SqlValue>) -> Option<String> {
    match v {
        Some(SqlValue::Text(s)) => Some(s.clone()),
        _ => None,
    }
}

fn as_int(v: Option<&SqlValue>) -> Option<i64> {
    match v {
        Some(SqlValue::Integer(n)) => Some(*n),
        _ => None,
    }
}

fn parse_json(v: Option<&SqlValue>) -> Option<serde_json::Value> {
    as_text(v).and_then(|s| serde_json::from_str(&s).ok())
}

fn job_of(r: &[SqlValue]) -> Option<Job> {
    Some(Job {
        id: as_text(r.first())?,
        name: as_text(r.get(1))?,
        queue: as_text(r.get(2))?,
        payload: as_text(r.get(3))
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(Value::Null),
        priority: as_int(r.get(4))?,
        max_retries: as_int(r.get(5))?,
        attempts: as_int(r.get(6))?,
        status: JobStatus::parse(&as_text(r.get(7))?)?,
        error: parse_json(r.get(8)),
        result: parse_json(r.get(9)),
        key: as_text(r.get(10)),
        shard: as_text(r.get(11)),
        caller: as_text(r.get(12))
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default(),
        run_at_ms: as_int(r.get(13))?,
        created_ms: as_int(r.get(14))?,
        updated_ms: as_int(r.get(15))?,
        started_ms: as_int(r.get(16)),
        finished_ms: as_int(r.get(17)),
        sends: as_int(r.get(18))?,
    })
}

impl<C: SqlConn> LedgerStore<C> {
    pub fn open(sql: C) -> Result<Self, StorageError> {
        for s in SCHEMA {
            sql.exec(s, &[])?;
        }
        Ok(LedgerStore { sql })
    }

    pub fn job(&self, id: &str) -> Result<Option<Job>, StorageError> {
        let rows = self.sql.exec(
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
            &[text(id)],
        )?;
        Ok(rows.first().and_then(|r| job_of(r)))
    }

    pub fn job_by_key(&self, key: &str) -> Result<Option<Job>, StorageError> {
        let rows = self.sql.exec(
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE key = ?1"),
            &[text(key)],
        )?;
        Ok(rows.first().and_then(|r| job_of(r)))
    }

    /// Records a new job, queued, with its first send begun (send 1, not
    /// yet taken by the queue): one write for both.
    pub fn insert(&self, id: &str, req: &JobRequest, now_ms: i64) -> Result<(), StorageError> {
        let s = &req.spec;
        self.sql.exec(
            "INSERT INTO jobs (id, name, queue, payload, priority, max_retries, status, key, \
             shard, caller, run_at_ms, created_ms, updated_ms, sends) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7, ?8, ?9, ?10, ?11, ?11, 1)",
            &[
                text(id),
                text(&s.name),
                text(&s.queue),
                SqlValue::Text(json_text(&s.payload)),
                SqlValue::Integer(s.priority.into()),
                SqlValue::Integer(s.max_retries.into()),
                opt_text(s.key.as_deref()),
                opt_text(s.shard.as_deref()),
                SqlValue::Text(json_text(&req.caller)),
                SqlValue::Integer(now_ms + s.delay_ms as i64),
                SqlValue::Integer(now_ms),
            ],
        )?;
        Ok(())
    }

    /// Marks a job as handed to its queue once more (or again after a
    /// failed send): returns its new send number.
    pub fn begin_send(&self, id: &str) -> Result<i64, StorageError> {
        let rows = self.sql.exec(
            "UPDATE jobs SET sends = sends + 1, unsent = 1 WHERE id = ?1 RETURNING sends",
            &[text(id)],
        )?;
        Ok(as_int(rows.first().and_then(|r| r.first())).unwrap_or(0))
    }

    /// The queue took send `send` of the job.
    pub fn sent(&self, id: &str, send: i64) -> Result<(), StorageError> {
        self.sql.exec(
            "UPDATE jobs SET unsent = 0 WHERE id = ?1 AND sends = ?2",
            &[text(id), SqlValue::Integer(send)],
        )?;
        Ok(())
    }

    /// Jobs whose latest send the queue has not taken (oldest first).
    pub fn unsent(&self, limit: usize) -> Result<Vec<Job>, StorageError> {
        let rows = self.sql.exec(
            &format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE unsent = 1 \
                 AND status IN ('queued', 'failed') ORDER BY created_ms LIMIT ?1"
            ),
            &[SqlValue::Integer(limit as i64)],
        )?;
        Ok(rows.iter().filter_map(|r| job_of(r)).collect())
    }

    /// Jobs sent but not started though due `grace_ms` ago: their message
    /// was lost (a queue restarted without it); the ledger sends them again.
    pub fn overdue(
        &self,
        now_ms: i64,
        grace_ms: i64,
        limit: usize,
    ) -> Result<Vec<Job>, StorageError> {
        let rows = self.sql.exec(
            &format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE status IN ('queued', 'failed') \
                 AND unsent = 0 AND run_at_ms < ?1 ORDER BY run_at_ms LIMIT ?2"
            ),
            &[
                SqlValue::Integer(now_ms - grace_ms),
                SqlValue::Integer(limit as i64),
            ],
        )?;
        Ok(rows.iter().filter_map(|r| job_of(r)).collect())
    }

    /// Whether any job may still need the ledger (queued or failed).
    pub fn any_waiting(&self) -> Result<bool, StorageError> {
        let rows = self.sql.exec(
            "SELECT 1 FROM jobs WHERE status IN ('queued', 'failed') LIMIT 1",
            &[],
        )?;
        Ok(!rows.is_empty())
    }

    /// A run begins: `running`, one more attempt.
    pub fn start(&self, id: &str, now_ms: i64) -> Result<(), StorageError> {
        self.sql.exec(
            "UPDATE jobs SET status = 'running', attempts = attempts + 1, started_ms = ?2, \
             updated_ms = ?2, unsent = 0 WHERE id = ?1",
            &[text(id), SqlValue::Integer(now_ms)],
        )?;
        Ok(())
    }

    /// The job ends or waits for its next attempt, with what its run gave.
    /// A next attempt (`run_at_ms`) is also the job's next send, recorded
    /// in the same write: its send number is returned (else the current one).
    pub fn set_outcome(
        &self,
        id: &str,
        status: JobStatus,
        result: Option<&serde_json::Value>,
        error: Option<&serde_json::Value>,
        run_at_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<i64, StorageError> {
        let finished = status.is_final().then_some(now_ms);
        let rows = self.sql.exec(
            "UPDATE jobs SET status = ?2, result = COALESCE(?3, result), error = ?4, \
             run_at_ms = COALESCE(?5, run_at_ms), finished_ms = ?6, updated_ms = ?7, \
             sends = sends + (?5 IS NOT NULL), \
             unsent = CASE WHEN ?5 IS NULL THEN unsent ELSE 1 END \
             WHERE id = ?1 RETURNING sends",
            &[
                text(id),
                text(status.as_str()),
                result.map_or(SqlValue::Null, |v| SqlValue::Text(kept(v))),
                error.map_or(SqlValue::Null, |v| SqlValue::Text(kept(v))),
                run_at_ms.map_or(SqlValue::Null, SqlValue::Integer),
                finished.map_or(SqlValue::Null, SqlValue::Integer),
                SqlValue::Integer(now_ms),
            ],
        )?;
        Ok(as_int(rows.first().and_then(|r| r.first())).unwrap_or(0))
    }

    /// A dead, failed or cancelled job made new: queued, no attempts.
    pub fn reset(&self, id: &str, now_ms: i64) -> Result<(), StorageError> {
        self.sql.exec(
            "UPDATE jobs SET status = 'queued', attempts = 0, error = NULL, result = NULL, \
             finished_ms = NULL, started_ms = NULL, run_at_ms = ?2, updated_ms = ?2 \
             WHERE id = ?1",
            &[text(id), SqlValue::Integer(now_ms)],
        )?;
        Ok(())
    }

    /// The newest jobs first.
    pub fn list(&self, f: &JobFilter) -> Result<Vec<Job>, StorageError> {
        let rows = self.sql.exec(
            &format!(
                "SELECT {JOB_COLUMNS} FROM jobs \
                 WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR queue = ?2) \
                 AND (?3 IS NULL OR name = ?3) \
                 ORDER BY rowid DESC LIMIT ?4"
            ),
            &[
                opt_text(f.status.map(JobStatus::as_str)),
                opt_text(f.queue.as_deref()),
                opt_text(f.name.as_deref()),
                SqlValue::Integer(f.limit as i64),
            ],
        )?;
        Ok(rows.iter().filter_map(|r| job_of(r)).collect())
    }

    /// Jobs per queue and status: `(queue, status, count)`.
    pub fn counts(&self) -> Result<Vec<(String, String, i64)>, StorageError> {
        let rows = self.sql.exec(
            "SELECT queue, status, COUNT(*) FROM jobs GROUP BY queue, status ORDER BY queue, status",
            &[],
        )?;
        Ok(rows
            .iter()
            .filter_map(|r| Some((as_text(r.first())?, as_text(r.get(1))?, as_int(r.get(2))?)))
            .collect())
    }

    /// Deletes finished jobs older than `before_ms` (at most `limit`).
    pub fn prune(&self, before_ms: i64, limit: usize) -> Result<usize, StorageError> {
        let rows = self.sql.exec(
            "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs \
             WHERE status IN ('done', 'cancelled') AND finished_ms < ?1 LIMIT ?2) RETURNING id",
            &[
                SqlValue::Integer(before_ms),
                SqlValue::Integer(limit as i64),
            ],
        )?;
        Ok(rows.len())
    }

    pub fn report_workflow(&self, w: &WorkflowSummary) -> Result<(), StorageError> {
        // A late report never takes an instance back to an older state.
        self.sql.exec(
            "INSERT INTO workflows (id, workflow, status, step, started_by, created_ms, updated_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT(id) DO UPDATE SET status = excluded.status, step = excluded.step, \
             updated_ms = excluded.updated_ms WHERE excluded.updated_ms >= workflows.updated_ms",
            &[
                text(&w.id),
                text(&w.workflow),
                text(&w.status),
                SqlValue::Integer(w.step.into()),
                opt_text(w.started_by.as_deref()),
                SqlValue::Integer(w.created_ms),
                SqlValue::Integer(w.updated_ms),
            ],
        )?;
        Ok(())
    }

    /// Workflow instances, newest first; `started_by` narrows to one user's.
    pub fn workflows(
        &self,
        workflow: Option<&str>,
        status: Option<&str>,
        started_by: Option<&str>,
        limit: usize,
    ) -> Result<Vec<WorkflowSummary>, StorageError> {
        let rows = self.sql.exec(
            "SELECT id, workflow, status, step, started_by, created_ms, updated_ms FROM workflows \
             WHERE (?1 IS NULL OR workflow = ?1) AND (?2 IS NULL OR status = ?2) \
             AND (?3 IS NULL OR started_by = ?3) ORDER BY created_ms DESC, id DESC LIMIT ?4",
            &[
                opt_text(workflow),
                opt_text(status),
                opt_text(started_by),
                SqlValue::Integer(limit as i64),
            ],
        )?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(WorkflowSummary {
                    id: as_text(r.first())?,
                    workflow: as_text(r.get(1))?,
                    status: as_text(r.get(2))?,
                    step: u32::try_from(as_int(r.get(3))?).ok()?,
                    started_by: as_text(r.get(4)),
                    created_ms: as_int(r.get(5))?,
                    updated_ms: as_int(r.get(6))?,
                })
            })
            .collect())
    }

    pub fn record_cron(
        &self,
        name: &str,
        at_ms: i64,
        error: Option<&str>,
    ) -> Result<(), StorageError> {
        let ok = i64::from(error.is_none());
        self.sql.exec(
            "INSERT INTO cron_runs (name, runs, failures, last_ms, last_ok, last_error) \
             VALUES (?1, 1, 1 - ?3, ?2, ?3, ?4) \
             ON CONFLICT(name) DO UPDATE SET runs = runs + 1, failures = failures + 1 - ?3, \
             last_ms = ?2, last_ok = ?3, last_error = ?4",
            &[
                text(name),
                SqlValue::Integer(at_ms),
                SqlValue::Integer(ok),
                opt_text(error),
            ],
        )?;
        Ok(())
    }

    /// Every cron entry's runs: name → `{runs, failures, lastMs, lastOk, lastError}`.
    pub fn cron_runs(&self) -> Result<serde_json::Map<String, serde_json::Value>, StorageError> {
        let rows = self.sql.exec(
            "SELECT name, runs, failures, last_ms, last_ok, last_error FROM cron_runs",
            &[],
        )?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some((
                    as_text(r.first())?,
                    json!({
                        "runs": as_int(r.get(1))?,
                        "failures": as_int(r.get(2))?,
                        "lastMs": as_int(r.get(3))?,
                        "lastOk": as_int(r.get(4))? == 1,
                        "lastError": as_text(r.get(5)),
                    }),
                ))
            })
            .collect())
    }
}
