//! What a simulation shard keeps in its Durable Object storage: the input
//! log (one row per acknowledged input, written in the same commit as the
//! input's acknowledgement) and the last persisted state. Values are
//! postcard, stored as base64 text (the storage holds no blobs).
//!
//! ```text
//! _sim_inputs (log PK, tick, subscriber, seq, at_ms, input)   the log
//! _sim_state  (id = 1, tick, body, at_ms)                     {version, figures, state}
//! ```

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::driver::{Figures, Queued};
use crate::sql::SqlValue;
use crate::storage::{SqlConn, StorageError};

/// The layout of a persisted state; a new layout takes a new number.
const STATE_VERSION: u32 = 1;

/// A logged input, its value still encoded.
#[derive(Clone, Debug, PartialEq)]
pub struct LogRow {
    pub log: u64,
    pub tick: u64,
    pub subscriber: String,
    pub seq: u64,
    pub at_ms: i64,
    /// postcard, base64.
    pub input: String,
}

/// Why stored bytes could not be read back.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("stored {what} does not decode: {detail}")]
    Decode { what: &'static str, detail: String },
}

/// The storage of one simulation shard.
pub struct SimStore<C> {
    sql: C,
}

#[derive(Serialize)]
struct PersistedRef<'a, S> {
    version: u32,
    figures: &'a Figures,
    state: &'a S,
}

#[derive(Deserialize)]
struct Persisted<S> {
    version: u32,
    figures: Figures,
    state: S,
}

impl<C: SqlConn> SimStore<C> {
    /// Creates the tables if needed.
    pub fn open(sql: C) -> Result<Self, StorageError> {
        sql.exec(
            "CREATE TABLE IF NOT EXISTS _sim_inputs (log INTEGER PRIMARY KEY NOT NULL, \
             tick INTEGER NOT NULL, subscriber TEXT NOT NULL, seq INTEGER NOT NULL, \
             at_ms INTEGER NOT NULL, input TEXT NOT NULL) STRICT",
            &[],
        )?;
        sql.exec(
            "CREATE TABLE IF NOT EXISTS _sim_state (id INTEGER PRIMARY KEY CHECK (id = 1), \
             tick INTEGER NOT NULL, body TEXT NOT NULL, at_ms INTEGER NOT NULL) STRICT",
            &[],
        )?;
        Ok(SimStore { sql })
    }

    pub fn sql(&self) -> &C {
        &self.sql
    }

    /// Logs one input.
    pub fn append(&self, row: &LogRow) -> Result<(), StorageError> {
        self.sql.exec(
            "INSERT INTO _sim_inputs (log, tick, subscriber, seq, at_ms, input) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            &[
                int(row.log),
                int(row.tick),
                SqlValue::Text(row.subscriber.clone()),
                int(row.seq),
                SqlValue::Integer(row.at_ms),
                SqlValue::Text(row.input.clone()),
            ],
        )?;
        Ok(())
    }

    /// The logged inputs for ticks after `tick`, in log order.
    pub fn rows_after(&self, tick: u64) -> Result<Vec<LogRow>, StorageError> {
        self.rows(
            "SELECT log, tick, subscriber, seq, at_ms, input FROM _sim_inputs \
             WHERE tick > ?1 ORDER BY log",
            &[int(tick)],
        )
    }

    /// The last `limit` logged inputs, in log order.
    pub fn last_rows(&self, limit: u32) -> Result<Vec<LogRow>, StorageError> {
        self.rows(
            "SELECT log, tick, subscriber, seq, at_ms, input FROM \
             (SELECT * FROM _sim_inputs ORDER BY log DESC LIMIT ?1) ORDER BY log",
            &[SqlValue::Integer(i64::from(limit))],
        )
    }

    /// The highest seq logged per subscriber.
    pub fn last_seqs(&self) -> Result<Vec<(String, u64)>, StorageError> {
        let rows = self.sql.exec(
            "SELECT subscriber, MAX(seq) FROM _sim_inputs GROUP BY subscriber",
            &[],
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|r| match (r.first(), r.get(1)) {
                (Some(SqlValue::Text(s)), Some(SqlValue::Integer(n))) => {
                    Some((s.clone(), *n as u64))
                }
                _ => None,
            })
            .collect())
    }

    /// The smallest and the largest log position kept, if any.
    pub fn log_span(&self) -> Result<Option<(u64, u64)>, StorageError> {
        let rows = self
            .sql
            .exec("SELECT MIN(log), MAX(log) FROM _sim_inputs", &[])?;
        Ok(match rows.first().map(Vec::as_slice) {
            Some([SqlValue::Integer(a), SqlValue::Integer(b)]) => Some((*a as u64, *b as u64)),
            _ => None,
        })
    }

    /// Drops logged inputs beyond the newest `keep`, but only those a
    /// persisted state through `tick` already contains.
    pub fn prune(&self, tick: u64, keep: u32) -> Result<(), StorageError> {
        self.sql.exec(
            "DELETE FROM _sim_inputs WHERE tick <= ?1 AND log <= \
             (SELECT MAX(log) FROM _sim_inputs) - ?2",
            &[int(tick), SqlValue::Integer(i64::from(keep))],
        )?;
        Ok(())
    }

    /// Persists `state` with the engine's figures.
    pub fn save_state<S: Serialize>(
        &self,
        figures: &Figures,
        state: &S,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let bytes = postcard::to_allocvec(&PersistedRef {
            version: STATE_VERSION,
            figures,
            state,
        })
        .map_err(|e| StoreError::Decode {
            what: "state (encoding it)",
            detail: e.to_string(),
        })?;
        self.sql.exec(
            "INSERT INTO _sim_state (id, tick, body, at_ms) VALUES (1, ?1, ?2, ?3) \
             ON CONFLICT(id) DO UPDATE SET tick = excluded.tick, body = excluded.body, \
             at_ms = excluded.at_ms",
            &[
                int(figures.tick),
                SqlValue::Text(STANDARD.encode(bytes)),
                SqlValue::Integer(at_ms),
            ],
        )?;
        Ok(())
    }

    /// The persisted state and figures, if one was persisted.
    pub fn load_state<S: DeserializeOwned>(&self) -> Result<Option<(Figures, S)>, StoreError> {
        let rows = self
            .sql
            .exec("SELECT body FROM _sim_state WHERE id = 1", &[])?;
        let Some(SqlValue::Text(body)) = rows.into_iter().next().and_then(|r| r.into_iter().next())
        else {
            return Ok(None);
        };
        let bad = |detail: String| StoreError::Decode {
            what: "state",
            detail,
        };
        let bytes = STANDARD.decode(body).map_err(|e| bad(e.to_string()))?;
        let p: Persisted<S> = postcard::from_bytes(&bytes).map_err(|e| {
            bad(format!(
                "{e} (a changed SimState type needs its old states converted)"
            ))
        })?;
        if p.version != STATE_VERSION {
            return Err(bad(format!("layout version {}", p.version)));
        }
        Ok(Some((p.figures, p.state)))
    }

    fn rows(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<LogRow>, StorageError> {
        let rows = self.sql.exec(sql, params)?;
        rows.into_iter()
            .map(|r| match r.as_slice() {
                [SqlValue::Integer(log), SqlValue::Integer(tick), SqlValue::Text(sub), SqlValue::Integer(seq), SqlValue::Integer(at), SqlValue::Text(input)] => {
                    Ok(LogRow {
                        log: *log as u64,
                        tick: *tick as u64,
                        subscriber: sub.clone(),
                        seq: *seq as u64,
                        at_ms: *at,
                        input: input.clone(),
                    })
                }
                _ => Err(StorageError::new("a malformed _sim_inputs row", sql)),
            })
            .collect()
    }
}

/// An input as the log keeps it.
pub fn encode_input<I: Serialize>(input: &I) -> Result<String, String> {
    postcard::to_allocvec(input)
        .map(|b| STANDARD.encode(b))
        .map_err(|e| e.to_string())
}

/// A logged input's value.
pub fn decode_input<I: DeserializeOwned>(text: &str) -> Result<I, String> {
    let bytes = STANDARD.decode(text).map_err(|e| e.to_string())?;
    postcard::from_bytes(&bytes).map_err(|e| e.to_string())
}

impl LogRow {
    /// The row with its input decoded, ready for the driver.
    pub fn decode<I: DeserializeOwned>(self) -> Result<Queued<I>, StoreError> {
        let input = decode_input(&self.input).map_err(|detail| StoreError::Decode {
            what: "input",
            detail: format!("log {}: {detail}", self.log),
        })?;
        Ok(Queued {
            log: self.log,
            tick: self.tick,
            subscriber: self.subscriber,
            seq: self.seq,
            at_ms: self.at_ms,
            input,
        })
    }
}

/// Seqs, ticks and log positions stay below 2^53 (DO storage hands
/// integers through JavaScript); the shard refuses seqs above that.
fn int(n: u64) -> SqlValue {
    SqlValue::Integer(n as i64)
}
