//! One cache object's table: a key, its value's JSON text and when it
//! expires. An expired row may linger until the sweep deletes it; every
//! read here leaves it out, so to callers it is gone at its expiry.

use crate::sql::SqlValue;
use crate::storage::{SqlConn, StorageError};

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS kv (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        expires_ms INTEGER
    ) STRICT",
    "CREATE INDEX IF NOT EXISTS kv_expires ON kv (expires_ms) WHERE expires_ms IS NOT NULL",
];

/// A live key's value (JSON text) and expiry.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub json: String,
    pub expires_ms: Option<i64>,
}

pub struct CacheStore<C> {
    sql: C,
}

fn text(s: &str) -> SqlValue {
    SqlValue::Text(s.to_owned())
}

fn int(v: Option<&SqlValue>) -> Option<i64> {
    match v {
        Some(SqlValue::Integer(n)) => Some(*n),
        _ => None,
    }
}

fn opt_int(v: Option<i64>) -> SqlValue {
    v.map_or(SqlValue::Null, SqlValue::Integer)
}

impl<C: SqlConn> CacheStore<C> {
    pub fn open(sql: C) -> Result<Self, StorageError> {
        for s in SCHEMA {
            sql.exec(s, &[])?;
        }
        Ok(CacheStore { sql })
    }

    /// The key's entry, unless it is absent or expired at `now_ms`.
    pub fn get(&self, key: &str, now_ms: i64) -> Result<Option<Entry>, StorageError> {
        let rows = self.sql.exec(
            "SELECT value, expires_ms FROM kv WHERE key = ?1 \
             AND (expires_ms IS NULL OR expires_ms > ?2)",
            &[text(key), SqlValue::Integer(now_ms)],
        )?;
        Ok(rows.first().and_then(|r| match r.first() {
            Some(SqlValue::Text(json)) => Some(Entry {
                json: json.clone(),
                expires_ms: int(r.get(1)),
            }),
            _ => None,
        }))
    }

    /// Writes the key (over whatever was there, expired or not).
    pub fn put(&self, key: &str, json: &str, expires_ms: Option<i64>) -> Result<(), StorageError> {
        self.sql.exec(
            "INSERT INTO kv (key, value, expires_ms) VALUES (?1, ?2, ?3) \
             ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires_ms = excluded.expires_ms",
            &[text(key), text(json), opt_int(expires_ms)],
        )?;
        Ok(())
    }

    /// Deletes the key; whether it was live at `now_ms` (an expired row
    /// goes too, and counts as absent).
    pub fn delete(&self, key: &str, now_ms: i64) -> Result<bool, StorageError> {
        let rows = self.sql.exec(
            "DELETE FROM kv WHERE key = ?1 RETURNING expires_ms",
            &[text(key)],
        )?;
        Ok(rows
            .first()
            .is_some_and(|r| int(r.first()).is_none_or(|at| at > now_ms)))
    }

    /// Sets or removes a live key's expiry.
    pub fn set_expiry(&self, key: &str, expires_ms: Option<i64>) -> Result<(), StorageError> {
        self.sql.exec(
            "UPDATE kv SET expires_ms = ?2 WHERE key = ?1",
            &[text(key), opt_int(expires_ms)],
        )?;
        Ok(())
    }

    /// Deletes up to `limit` rows expired at `now_ms`; how many.
    pub fn sweep(&self, now_ms: i64, limit: usize) -> Result<usize, StorageError> {
        let rows = self.sql.exec(
            "DELETE FROM kv WHERE key IN (SELECT key FROM kv \
             WHERE expires_ms IS NOT NULL AND expires_ms <= ?1 LIMIT ?2) RETURNING 1",
            &[SqlValue::Integer(now_ms), SqlValue::Integer(limit as i64)],
        )?;
        Ok(rows.len())
    }

    /// The earliest expiry of any row (from the index).
    pub fn next_expiry(&self) -> Result<Option<i64>, StorageError> {
        let rows = self.sql.exec(
            "SELECT MIN(expires_ms) FROM kv WHERE expires_ms IS NOT NULL",
            &[],
        )?;
        Ok(int(rows.first().and_then(|r| r.first())))
    }

    /// Live keys at `now_ms`, and how many of them expire.
    pub fn counts(&self, now_ms: i64) -> Result<(i64, i64), StorageError> {
        let rows = self.sql.exec(
            "SELECT COUNT(*), COUNT(expires_ms) FROM kv \
             WHERE expires_ms IS NULL OR expires_ms > ?1",
            &[SqlValue::Integer(now_ms)],
        )?;
        let r = rows.first();
        Ok((
            int(r.and_then(|r| r.first())).unwrap_or(0),
            int(r.and_then(|r| r.get(1))).unwrap_or(0),
        ))
    }
}
