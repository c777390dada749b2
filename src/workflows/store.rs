//! One instance's tables in its Durable Object storage. Every change an
//! event makes is written here within that event, so it commits with the
//! timers the event set: what is stored is where the instance is.
//!
//! ```text
//! wf_instance (id = 1, the instance: its definition, caller, input, and
//!              where it is: status, step, attempt, in_flight, …)
//! wf_history  (step PK, name, kind, status, attempts, result, error, started_ms, finished_ms)
//! wf_events   (seq PK, name, payload, received_ms): events no step took yet, oldest first
//! ```
//!
//! JSON values (input, results, payloads) are stored as their JSON text; a
//! step's `result` column is NULL until the step completes.

use serde::{Deserialize, Serialize};

use super::status::Status;
use super::WorkflowDef;
use crate::policy::AuthContext;
use crate::sql::SqlValue;
use crate::storage::{SqlConn, StorageError};

/// How a step or an instance failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepError {
    /// Stable and upper-case: the function's error code, `EVENT_TIMEOUT`,
    /// `RESULT_TOO_LARGE`, …
    pub code: String,
    pub message: String,
}

impl StepError {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        StepError {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// One instance, as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    /// The definition it was started with: a deploy that changes the
    /// manifest does not change the steps of a running instance.
    pub def: WorkflowDef,
    /// Who started it; every step runs as this caller.
    pub caller: AuthContext,
    /// Where its steps' queries and mutations run.
    pub shard: Option<String>,
    pub input: serde_json::Value,
    pub created_ms: i64,
    pub status: Status,
    /// The step it is at (the number of steps once completed).
    pub step: u32,
    /// Attempts of the current `run` step started so far.
    pub attempt: u32,
    /// Whether the current `run` step's latest attempt was started and no
    /// outcome is recorded for it: after a restart it runs again.
    pub in_flight: bool,
    /// The last step's result, once completed.
    pub output: serde_json::Value,
    pub error: Option<StepError>,
    /// The payload of the last event a step took (`null` before any).
    pub last_event: serde_json::Value,
    pub waiting_for: Option<String>,
    /// When a sleep ends, a wait times out, or a retry runs.
    pub wake_at_ms: Option<i64>,
    pub updated_ms: i64,
    /// Counts changes of status or step; the jobs ledger was told about
    /// `reported` of them.
    pub version: i64,
    pub reported: i64,
}

/// One step in an instance's history: it is written when the step begins
/// and rewritten at each attempt and when it ends.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    pub step: u32,
    pub name: String,
    /// `run`, `sleep` or `waitForEvent`.
    pub kind: String,
    pub status: Status,
    pub attempts: u32,
    /// Present once the step completed (it may be `null`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// The last attempt's error, if it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<StepError>,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
}

pub struct InstanceStore<C> {
    sql: C,
}

const INSTANCE_COLUMNS: &str = "def, caller, shard, input, created_ms, status, step, attempt, \
     in_flight, output, error, last_event, waiting_for, wake_at_ms, updated_ms, version, reported";
const STEP_COLUMNS: &str =
    "step, name, kind, status, attempts, result, error, started_ms, finished_ms";

impl<C: SqlConn> InstanceStore<C> {
    /// Creates the tables if needed.
    pub fn open(sql: C) -> Result<Self, StorageError> {
        sql.exec(
            "CREATE TABLE IF NOT EXISTS wf_instance (id INTEGER PRIMARY KEY CHECK (id = 1), \
             def TEXT NOT NULL, caller TEXT NOT NULL, shard TEXT, input TEXT NOT NULL, \
             created_ms INTEGER NOT NULL, status TEXT NOT NULL, step INTEGER NOT NULL, \
             attempt INTEGER NOT NULL, in_flight INTEGER NOT NULL, output TEXT NOT NULL, \
             error TEXT, last_event TEXT NOT NULL, waiting_for TEXT, wake_at_ms INTEGER, \
             updated_ms INTEGER NOT NULL, version INTEGER NOT NULL, reported INTEGER NOT NULL) STRICT",
            &[],
        )?;
        sql.exec(
            "CREATE TABLE IF NOT EXISTS wf_history (step INTEGER PRIMARY KEY, name TEXT NOT NULL, \
             kind TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL, result TEXT, \
             error TEXT, started_ms INTEGER NOT NULL, finished_ms INTEGER) STRICT",
            &[],
        )?;
        sql.exec(
            "CREATE TABLE IF NOT EXISTS wf_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, \
             name TEXT NOT NULL, payload TEXT NOT NULL, received_ms INTEGER NOT NULL) STRICT",
            &[],
        )?;
        Ok(InstanceStore { sql })
    }

    /// The instance, if it was started.
    pub fn load(&self) -> Result<Option<Instance>, StorageError> {
        let rows = self.sql.exec(
            &format!("SELECT {INSTANCE_COLUMNS} FROM wf_instance WHERE id = 1"),
            &[],
        )?;
        rows.first().map(|r| instance_of(r)).transpose()
    }

    /// Writes a new instance.
    pub fn insert(&self, i: &Instance) -> Result<(), StorageError> {
        let mut params = vec![
            SqlValue::Text(to_text(&i.def)),
            SqlValue::Text(to_text(&i.caller)),
            opt_text(i.shard.clone()),
            SqlValue::Text(to_text(&i.input)),
            SqlValue::Integer(i.created_ms),
        ];
        params.extend(changing(i));
        self.sql.exec(
            &format!(
                "INSERT INTO wf_instance (id, {INSTANCE_COLUMNS}) VALUES (1, ?1, ?2, ?3, ?4, ?5, \
                 ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
            ),
            &params,
        )?;
        Ok(())
    }

    /// Writes what changes (the definition, caller and input never do).
    pub fn save(&self, i: &Instance) -> Result<(), StorageError> {
        self.sql.exec(
            "UPDATE wf_instance SET status = ?1, step = ?2, attempt = ?3, in_flight = ?4, \
             output = ?5, error = ?6, last_event = ?7, waiting_for = ?8, wake_at_ms = ?9, \
             updated_ms = ?10, version = ?11, reported = ?12 WHERE id = 1",
            &changing(i),
        )?;
        Ok(())
    }

    /// Writes (or rewrites) one step's record.
    pub fn put_step(&self, r: &StepRecord) -> Result<(), StorageError> {
        self.sql.exec(
            &format!(
                "INSERT OR REPLACE INTO wf_history ({STEP_COLUMNS}) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            ),
            &[
                SqlValue::Integer(i64::from(r.step)),
                SqlValue::Text(r.name.clone()),
                SqlValue::Text(r.kind.clone()),
                SqlValue::Text(r.status.as_str().into()),
                SqlValue::Integer(i64::from(r.attempts)),
                opt_text(r.result.as_ref().map(to_text)),
                opt_text(r.error.as_ref().map(to_text)),
                SqlValue::Integer(r.started_ms),
                r.finished_ms.map_or(SqlValue::Null, SqlValue::Integer),
            ],
        )?;
        Ok(())
    }

    /// The record of step `step`, if it began.
    pub fn step(&self, step: u32) -> Result<Option<StepRecord>, StorageError> {
        let rows = self.sql.exec(
            &format!("SELECT {STEP_COLUMNS} FROM wf_history WHERE step = ?1"),
            &[SqlValue::Integer(i64::from(step))],
        )?;
        rows.first().map(|r| step_of(r)).transpose()
    }

    /// Every step that began, in order.
    pub fn history(&self) -> Result<Vec<StepRecord>, StorageError> {
        let rows = self.sql.exec(
            &format!("SELECT {STEP_COLUMNS} FROM wf_history ORDER BY step"),
            &[],
        )?;
        rows.iter().map(|r| step_of(r)).collect()
    }

    /// The results of the completed steps, by name.
    pub fn results(&self) -> Result<serde_json::Map<String, serde_json::Value>, StorageError> {
        let rows = self.sql.exec(
            "SELECT name, result FROM wf_history WHERE result IS NOT NULL ORDER BY step",
            &[],
        )?;
        let mut out = serde_json::Map::new();
        for r in rows {
            let c = Cols(&r);
            out.insert(c.text(0)?, c.json(1)?);
        }
        Ok(out)
    }

    /// Keeps an event no step waits for yet.
    pub fn buffer_event(
        &self,
        name: &str,
        payload: &serde_json::Value,
        now_ms: i64,
    ) -> Result<(), StorageError> {
        self.sql.exec(
            "INSERT INTO wf_events (name, payload, received_ms) VALUES (?1, ?2, ?3)",
            &[
                SqlValue::Text(name.into()),
                SqlValue::Text(to_text(payload)),
                SqlValue::Integer(now_ms),
            ],
        )?;
        Ok(())
    }

    /// How many events are kept.
    pub fn buffered(&self) -> Result<u64, StorageError> {
        let rows = self.sql.exec("SELECT COUNT(*) FROM wf_events", &[])?;
        Ok(rows.first().map_or(Ok(0), |r| Cols(r).int(0))? as u64)
    }

    /// Takes the oldest kept event named `name`: its payload.
    pub fn take_event(&self, name: &str) -> Result<Option<serde_json::Value>, StorageError> {
        let rows = self.sql.exec(
            "DELETE FROM wf_events WHERE seq = \
             (SELECT MIN(seq) FROM wf_events WHERE name = ?1) RETURNING payload",
            &[SqlValue::Text(name.into())],
        )?;
        rows.first().map(|r| Cols(r).json(0)).transpose()
    }

    /// Forgets the kept events (the instance finished: no step will take them).
    pub fn clear_events(&self) -> Result<(), StorageError> {
        self.sql.exec("DELETE FROM wf_events", &[])?;
        Ok(())
    }
}

/// The instance's columns that change, in `save`'s order.
fn changing(i: &Instance) -> Vec<SqlValue> {
    vec![
        SqlValue::Text(i.status.as_str().into()),
        SqlValue::Integer(i64::from(i.step)),
        SqlValue::Integer(i64::from(i.attempt)),
        SqlValue::Integer(i64::from(i.in_flight)),
        SqlValue::Text(to_text(&i.output)),
        opt_text(i.error.as_ref().map(to_text)),
        SqlValue::Text(to_text(&i.last_event)),
        opt_text(i.waiting_for.clone()),
        i.wake_at_ms.map_or(SqlValue::Null, SqlValue::Integer),
        SqlValue::Integer(i.updated_ms),
        SqlValue::Integer(i.version),
        SqlValue::Integer(i.reported),
    ]
}

fn instance_of(r: &[SqlValue]) -> Result<Instance, StorageError> {
    let c = Cols(r);
    Ok(Instance {
        def: c.parse(0)?,
        caller: c.parse(1)?,
        shard: c.opt_text(2)?,
        input: c.json(3)?,
        created_ms: c.int(4)?,
        status: c.status(5)?,
        step: c.int(6)? as u32,
        attempt: c.int(7)? as u32,
        in_flight: c.int(8)? != 0,
        output: c.json(9)?,
        error: c.opt_parse(10)?,
        last_event: c.json(11)?,
        waiting_for: c.opt_text(12)?,
        wake_at_ms: c.opt_int(13)?,
        updated_ms: c.int(14)?,
        version: c.int(15)?,
        reported: c.int(16)?,
    })
}

fn step_of(r: &[SqlValue]) -> Result<StepRecord, StorageError> {
    let c = Cols(r);
    Ok(StepRecord {
        step: c.int(0)? as u32,
        name: c.text(1)?,
        kind: c.text(2)?,
        status: c.status(3)?,
        attempts: c.int(4)? as u32,
        result: c.opt_parse(5)?,
        error: c.opt_parse(6)?,
        started_ms: c.int(7)?,
        finished_ms: c.opt_int(8)?,
    })
}

fn to_text<T: Serialize + ?Sized>(v: &T) -> String {
    // Plain data (maps with string keys, numbers, strings) always encodes.
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn opt_text(v: Option<String>) -> SqlValue {
    v.map_or(SqlValue::Null, SqlValue::Text)
}

/// One row's columns, read by position; a column of the wrong type is a
/// storage error naming it.
struct Cols<'a>(&'a [SqlValue]);

impl Cols<'_> {
    fn bad(&self, i: usize, want: &str) -> StorageError {
        StorageError::new(
            format!("column {i} is not {want}: {:?}", self.0.get(i)),
            "workflow instance row",
        )
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>, StorageError> {
        match self.0.get(i) {
            Some(SqlValue::Text(t)) => Ok(Some(t.clone())),
            Some(SqlValue::Null) => Ok(None),
            _ => Err(self.bad(i, "text")),
        }
    }

    fn text(&self, i: usize) -> Result<String, StorageError> {
        self.opt_text(i)?.ok_or_else(|| self.bad(i, "text"))
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>, StorageError> {
        match self.0.get(i) {
            Some(SqlValue::Integer(n)) => Ok(Some(*n)),
            // Storage that hands numbers through JavaScript may give a
            // whole number back as a float.
            Some(SqlValue::Real(f)) if f.fract() == 0.0 => Ok(Some(*f as i64)),
            Some(SqlValue::Null) => Ok(None),
            _ => Err(self.bad(i, "an integer")),
        }
    }

    fn int(&self, i: usize) -> Result<i64, StorageError> {
        self.opt_int(i)?.ok_or_else(|| self.bad(i, "an integer"))
    }

    fn status(&self, i: usize) -> Result<Status, StorageError> {
        Status::parse(&self.text(i)?).ok_or_else(|| self.bad(i, "a status"))
    }

    fn opt_parse<T: serde::de::DeserializeOwned>(
        &self,
        i: usize,
    ) -> Result<Option<T>, StorageError> {
        self.opt_text(i)?
            .map(|t| serde_json::from_str(&t).map_err(|_| self.bad(i, "its JSON")))
            .transpose()
    }

    fn parse<T: serde::de::DeserializeOwned>(&self, i: usize) -> Result<T, StorageError> {
        self.opt_parse(i)?.ok_or_else(|| self.bad(i, "JSON"))
    }

    fn json(&self, i: usize) -> Result<serde_json::Value, StorageError> {
        self.parse(i)
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;
    use crate::storage::SqliteConn;
    use serde_json::json;

    fn def() -> WorkflowDef {
        serde_json::from_value(json!({"name": "w", "steps": [{"name": "a", "run": "f"}]})).unwrap()
    }

    fn instance() -> Instance {
        Instance {
            def: def(),
            caller: AuthContext::user("u1"),
            shard: Some("board".into()),
            input: json!({"n": 1}),
            created_ms: 5,
            status: Status::Running,
            step: 0,
            attempt: 1,
            in_flight: true,
            output: json!(null),
            error: None,
            last_event: json!(null),
            waiting_for: None,
            wake_at_ms: Some(9),
            updated_ms: 5,
            version: 1,
            reported: 0,
        }
    }

    #[test]
    fn an_instance_reads_back_as_written() {
        let store = InstanceStore::open(SqliteConn::open_in_memory().unwrap()).unwrap();
        assert_eq!(store.load().unwrap(), None);
        let mut i = instance();
        store.insert(&i).unwrap();
        assert_eq!(store.load().unwrap().as_ref(), Some(&i));
        i.status = Status::Failed;
        i.error = Some(StepError::new("X", "y"));
        i.in_flight = false;
        i.wake_at_ms = None;
        store.save(&i).unwrap();
        assert_eq!(store.load().unwrap(), Some(i));
    }

    #[test]
    fn results_are_the_completed_steps_and_events_come_oldest_first() {
        let store = InstanceStore::open(SqliteConn::open_in_memory().unwrap()).unwrap();
        let mut rec = StepRecord {
            step: 0,
            name: "a".into(),
            kind: "run".into(),
            status: Status::Running,
            attempts: 1,
            result: None,
            error: None,
            started_ms: 1,
            finished_ms: None,
        };
        store.put_step(&rec).unwrap();
        assert!(store.results().unwrap().is_empty());
        rec.status = Status::Completed;
        rec.result = Some(json!(null));
        store.put_step(&rec).unwrap();
        assert_eq!(store.results().unwrap().get("a"), Some(&json!(null)));
        assert_eq!(store.step(0).unwrap(), Some(rec));

        store.buffer_event("e", &json!(1), 1).unwrap();
        store.buffer_event("f", &json!(2), 2).unwrap();
        store.buffer_event("e", &json!(3), 3).unwrap();
        assert_eq!(store.buffered().unwrap(), 3);
        assert_eq!(store.take_event("e").unwrap(), Some(json!(1)));
        assert_eq!(store.take_event("e").unwrap(), Some(json!(3)));
        assert_eq!(store.take_event("e").unwrap(), None);
        store.clear_events().unwrap();
        assert_eq!(store.buffered().unwrap(), 0);
    }
}
