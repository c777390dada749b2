//! Named timers, kept in the object's storage and multiplexed onto its one
//! alarm: the alarm is always set to the earliest timer, and cleared when
//! there is none, so an idle object has no alarm and can rest.
//!
//! ```
//! # #[cfg(feature = "sqlite")] {
//! use pylon_workers::host::timers::Timers;
//! use pylon_workers::storage::SqliteConn;
//! let db = SqliteConn::open_in_memory().unwrap();
//! let timers = Timers::open(&db).unwrap();
//! timers.set("outbox", 500).unwrap();
//! timers.set("tick", 100).unwrap();
//! assert_eq!(timers.next().unwrap(), Some(100));
//! assert_eq!(timers.take_due(200).unwrap(), vec!["tick".to_string()]);
//! assert_eq!(timers.next().unwrap(), Some(500));
//! timers.cancel("outbox").unwrap();
//! assert_eq!(timers.next().unwrap(), None);
//! # }
//! ```

use crate::sql::SqlValue;
use crate::storage::{SqlConn, StorageError};

/// The timers table of one object.
pub struct Timers<'a, C: SqlConn> {
    conn: &'a C,
}

impl<'a, C: SqlConn> Timers<'a, C> {
    /// Creates the table if needed.
    pub fn open(conn: &'a C) -> Result<Self, StorageError> {
        conn.exec(
            "CREATE TABLE IF NOT EXISTS _pylon_timers \
             (name TEXT PRIMARY KEY NOT NULL, at_ms INTEGER NOT NULL) STRICT",
            &[],
        )?;
        Ok(Timers { conn })
    }

    /// Sets (or moves) timer `name` to `at_ms`.
    pub fn set(&self, name: &str, at_ms: i64) -> Result<(), StorageError> {
        self.conn.exec(
            "INSERT INTO _pylon_timers (name, at_ms) VALUES (?1, ?2) \
             ON CONFLICT(name) DO UPDATE SET at_ms = excluded.at_ms",
            &[SqlValue::Text(name.into()), SqlValue::Integer(at_ms)],
        )?;
        Ok(())
    }

    pub fn cancel(&self, name: &str) -> Result<(), StorageError> {
        self.conn.exec(
            "DELETE FROM _pylon_timers WHERE name = ?1",
            &[SqlValue::Text(name.into())],
        )?;
        Ok(())
    }

    /// The earliest timer's time.
    pub fn next(&self) -> Result<Option<i64>, StorageError> {
        let rows = self
            .conn
            .exec("SELECT MIN(at_ms) FROM _pylon_timers", &[])?;
        Ok(match rows.first().and_then(|r| r.first()) {
            Some(SqlValue::Integer(at)) => Some(*at),
            _ => None,
        })
    }

    /// Every timer, earliest first: `(name, at_ms)`.
    pub fn all(&self) -> Result<Vec<(String, i64)>, StorageError> {
        let rows = self.conn.exec(
            "SELECT name, at_ms FROM _pylon_timers ORDER BY at_ms, name",
            &[],
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|r| match (r.first(), r.get(1)) {
                (Some(SqlValue::Text(n)), Some(SqlValue::Integer(at))) => Some((n.clone(), *at)),
                _ => None,
            })
            .collect())
    }

    /// Removes and returns the timers due at `now_ms`, earliest first. The
    /// caller fires each; a handler may set its timer again.
    pub fn take_due(&self, now_ms: i64) -> Result<Vec<String>, StorageError> {
        let due = self.conn.exec(
            "SELECT name FROM _pylon_timers WHERE at_ms <= ?1 ORDER BY at_ms, name",
            &[SqlValue::Integer(now_ms)],
        )?;
        self.conn.exec(
            "DELETE FROM _pylon_timers WHERE at_ms <= ?1",
            &[SqlValue::Integer(now_ms)],
        )?;
        Ok(due
            .into_iter()
            .filter_map(|r| match r.into_iter().next() {
                Some(SqlValue::Text(n)) => Some(n),
                _ => None,
            })
            .collect())
    }
}
