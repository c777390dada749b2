//! Small named values an object keeps beside its data: its name, how many
//! times it woke, a shard's current seq. One table, `_pylon_meta`.
//!
//! ```
//! # #[cfg(feature = "sqlite")] {
//! use pylon_workers::storage::meta::Meta;
//! use pylon_workers::storage::SqliteConn;
//! let db = SqliteConn::open_in_memory().unwrap();
//! let meta = Meta::open(&db).unwrap();
//! assert_eq!(meta.add("wakes", 1).unwrap(), 1);
//! assert_eq!(meta.add("wakes", 1).unwrap(), 2);
//! meta.set_text("shard", "room-1").unwrap();
//! assert_eq!(meta.text("shard").unwrap().as_deref(), Some("room-1"));
//! // Several integers in one read; missing and non-integer ones are 0.
//! assert_eq!(meta.ints(["shard", "wakes", "none"]).unwrap(), [0, 2, 0]);
//! # }
//! ```

use crate::sql::SqlValue;
use crate::storage::{SqlConn, StorageError};

pub const WAKES: &str = "wakes";
pub const SHARD_NAME: &str = "shard";

pub struct Meta<'a, C: SqlConn> {
    conn: &'a C,
}

impl<'a, C: SqlConn> Meta<'a, C> {
    /// Creates the table if needed.
    pub fn open(conn: &'a C) -> Result<Self, StorageError> {
        conn.exec(
            "CREATE TABLE IF NOT EXISTS _pylon_meta (key TEXT PRIMARY KEY NOT NULL, value ANY) STRICT, WITHOUT ROWID",
            &[],
        )?;
        Ok(Self { conn })
    }

    /// For a connection whose table [`Meta::open`] already created (the
    /// shard store does at start-up): no DDL on the hot path.
    pub fn existing(conn: &'a C) -> Self {
        Self { conn }
    }

    /// Adds `by` to an integer value (missing counts as 0) and returns the sum.
    pub fn add(&self, key: &str, by: i64) -> Result<i64, StorageError> {
        self.add_with(key, by, C::exec)
    }

    /// [`Meta::add`] where the table may not exist yet (an object's first
    /// wake, before anything created it): the missing table is an error,
    /// not logged ([`SqlConn::probe`]); create it with [`Meta::open`].
    pub fn try_add(&self, key: &str, by: i64) -> Result<i64, StorageError> {
        self.add_with(key, by, C::probe)
    }

    fn add_with(
        &self,
        key: &str,
        by: i64,
        exec: fn(&C, &str, &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, StorageError>,
    ) -> Result<i64, StorageError> {
        let rows = exec(
            self.conn,
            "INSERT INTO _pylon_meta (key, value) VALUES (?1, ?2) \
             ON CONFLICT(key) DO UPDATE SET value = value + ?2 RETURNING value",
            &[SqlValue::Text(key.into()), SqlValue::Integer(by)],
        )?;
        match rows.first().and_then(|r| r.first()) {
            Some(SqlValue::Integer(v)) => Ok(*v),
            other => Err(StorageError::new(
                format!("meta {key} is not an integer: {other:?}"),
                "",
            )),
        }
    }

    pub fn int(&self, key: &str) -> Result<i64, StorageError> {
        Ok(match self.get(key)? {
            Some(SqlValue::Integer(v)) => v,
            _ => 0,
        })
    }

    /// Several values in one read, in the order of `keys` (`None`: not
    /// set).
    pub fn values<const N: usize>(
        &self,
        keys: [&str; N],
    ) -> Result<[Option<SqlValue>; N], StorageError> {
        let marks: Vec<String> = (1..=N).map(|i| format!("?{i}")).collect();
        let sql = format!(
            "SELECT key, value FROM _pylon_meta WHERE key IN ({})",
            marks.join(", ")
        );
        let params: Vec<SqlValue> = keys.iter().map(|k| SqlValue::Text((*k).into())).collect();
        let mut out = std::array::from_fn(|_| None);
        for row in self.conn.exec(&sql, &params)? {
            let mut row = row.into_iter();
            if let (Some(SqlValue::Text(k)), Some(v)) = (row.next(), row.next()) {
                if let Some(i) = keys.iter().position(|key| *key == k) {
                    out[i] = Some(v);
                }
            }
        }
        Ok(out)
    }

    /// Several integer values in one read, in the order of `keys` (a
    /// missing or non-integer value is 0, as with [`Meta::int`]).
    pub fn ints<const N: usize>(&self, keys: [&str; N]) -> Result<[i64; N], StorageError> {
        Ok(self.values(keys)?.map(|v| match v {
            Some(SqlValue::Integer(v)) => v,
            _ => 0,
        }))
    }

    pub fn text(&self, key: &str) -> Result<Option<String>, StorageError> {
        Ok(match self.get(key)? {
            Some(SqlValue::Text(t)) => Some(t),
            _ => None,
        })
    }

    pub fn set_text(&self, key: &str, value: &str) -> Result<(), StorageError> {
        self.set(key, SqlValue::Text(value.into()))
    }

    /// Sets `key`; writes no row when it already holds `value` (the
    /// shard's name is set again on every wake).
    pub fn set(&self, key: &str, value: SqlValue) -> Result<(), StorageError> {
        self.conn.exec(
            "INSERT INTO _pylon_meta (key, value) VALUES (?1, ?2) \
             ON CONFLICT(key) DO UPDATE SET value = excluded.value \
             WHERE value IS NOT excluded.value",
            &[SqlValue::Text(key.into()), value],
        )?;
        Ok(())
    }

    fn get(&self, key: &str) -> Result<Option<SqlValue>, StorageError> {
        let rows = self.conn.exec(
            "SELECT value FROM _pylon_meta WHERE key = ?1",
            &[SqlValue::Text(key.into())],
        )?;
        Ok(rows.into_iter().next().and_then(|r| r.into_iter().next()))
    }
}
