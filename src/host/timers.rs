//! Named timers, kept in the object's storage and multiplexed onto its one
//! alarm: the alarm is always set to the earliest armed timer, and cleared
//! when none is armed, so an idle object has no alarm and can rest.
//!
//! Each name keeps one row (a slot) once it was first set; firing or
//! cancelling a timer disarms its slot (`at_ms` NULL) instead of deleting
//! it. Timer names are a small fixed set per object kind, and an
//! `UPDATE` of one row in a `WITHOUT ROWID` table is one row written,
//! where a delete and an insert into a table with a text key are four
//! (table and key index, twice). A 20 Hz simulation re-arms its tick
//! timer on every tick, so this is most of what ticking writes.
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
//! let due = timers.due(200).unwrap();
//! assert_eq!(due, vec![("tick".to_string(), 100)]);
//! timers.disarm(&due).unwrap();
//! assert_eq!(timers.next().unwrap(), Some(500));
//! timers.cancel("outbox").unwrap();
//! assert_eq!(timers.next().unwrap(), None);
//! # }
//! ```

use crate::sql::SqlValue;
use crate::storage::{SqlConn, StorageError};

/// The earlier layout, which deleted a row on every fire; [`Timers::open`]
/// moves its rows into the slots once.
const OLD_TABLE: &str = "_pylon_timers";

/// The timers table of one object.
pub struct Timers<'a, C: SqlConn> {
    conn: &'a C,
}

impl<'a, C: SqlConn> Timers<'a, C> {
    /// Makes sure the table exists, in its current layout: one statement
    /// that reads no row when it does (the object's construction runs
    /// this once), a probe whose missing table is not logged when it
    /// does not (a new object).
    pub fn open(conn: &'a C) -> Result<Self, StorageError> {
        if conn
            .probe("SELECT 1 FROM _pylon_timer_slots LIMIT 0", &[])
            .is_ok()
        {
            return Ok(Timers { conn });
        }
        conn.exec(
            "CREATE TABLE IF NOT EXISTS _pylon_timer_slots \
             (name TEXT PRIMARY KEY NOT NULL, at_ms INTEGER) STRICT, WITHOUT ROWID",
            &[],
        )?;
        // The first wake after the upgrade: the earlier table's timers move
        // over, in the same event, so the move commits as one.
        let old = conn.exec(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            &[SqlValue::Text(OLD_TABLE.into())],
        )?;
        if !old.is_empty() {
            conn.exec(
                "INSERT OR REPLACE INTO _pylon_timer_slots (name, at_ms) \
                 SELECT name, at_ms FROM _pylon_timers",
                &[],
            )?;
            conn.exec("DROP TABLE _pylon_timers", &[])?;
        }
        Ok(Timers { conn })
    }

    /// The timers of an object whose construction already ran [`Timers::open`].
    pub fn on(conn: &'a C) -> Self {
        Timers { conn }
    }

    /// Sets (or moves) timer `name` to `at_ms`.
    pub fn set(&self, name: &str, at_ms: i64) -> Result<(), StorageError> {
        self.conn.exec(
            "INSERT INTO _pylon_timer_slots (name, at_ms) VALUES (?1, ?2) \
             ON CONFLICT(name) DO UPDATE SET at_ms = excluded.at_ms",
            &[SqlValue::Text(name.into()), SqlValue::Integer(at_ms)],
        )?;
        Ok(())
    }

    /// Disarms timer `name`: whether it was armed (nothing is written if
    /// it was not).
    pub fn cancel(&self, name: &str) -> Result<bool, StorageError> {
        let rows = self.conn.exec(
            "UPDATE _pylon_timer_slots SET at_ms = NULL WHERE name = ?1 AND at_ms IS NOT NULL \
             RETURNING 1",
            &[SqlValue::Text(name.into())],
        )?;
        Ok(!rows.is_empty())
    }

    /// The earliest armed timer's time.
    pub fn next(&self) -> Result<Option<i64>, StorageError> {
        let rows = self
            .conn
            .exec("SELECT MIN(at_ms) FROM _pylon_timer_slots", &[])?;
        Ok(match rows.first().and_then(|r| r.first()) {
            Some(SqlValue::Integer(at)) => Some(*at),
            _ => None,
        })
    }

    /// Every armed timer, earliest first: `(name, at_ms)`.
    pub fn all(&self) -> Result<Vec<(String, i64)>, StorageError> {
        let rows = self.conn.exec(
            "SELECT name, at_ms FROM _pylon_timer_slots WHERE at_ms IS NOT NULL \
             ORDER BY at_ms, name",
            &[],
        )?;
        Ok(pairs(rows))
    }

    /// The timers due at `now_ms`, earliest first, with the time each was
    /// armed for. Nothing is written: the caller fires each, then
    /// [`Timers::disarm`]s those their handlers did not set again.
    pub fn due(&self, now_ms: i64) -> Result<Vec<(String, i64)>, StorageError> {
        let rows = self.conn.exec(
            "SELECT name, at_ms FROM _pylon_timer_slots WHERE at_ms <= ?1 ORDER BY at_ms, name",
            &[SqlValue::Integer(now_ms)],
        )?;
        Ok(pairs(rows))
    }

    /// Disarms the `(name, at_ms)` timers still armed for that same time:
    /// one statement, and no row written for a timer that was moved since.
    pub fn disarm(&self, fired: &[(String, i64)]) -> Result<(), StorageError> {
        if fired.is_empty() {
            return Ok(());
        }
        let json = serde_json::to_string(fired).expect("pairs serialize");
        self.conn.exec(
            "UPDATE _pylon_timer_slots SET at_ms = NULL WHERE (name, at_ms) IN \
             (SELECT value ->> 0, value ->> 1 FROM json_each(?1))",
            &[SqlValue::Text(json)],
        )?;
        Ok(())
    }
}

fn pairs(rows: Vec<Vec<SqlValue>>) -> Vec<(String, i64)> {
    rows.into_iter()
        .filter_map(|r| match (r.first(), r.get(1)) {
            (Some(SqlValue::Text(n)), Some(SqlValue::Integer(at))) => Some((n.clone(), *at)),
            _ => None,
        })
        .collect()
}
