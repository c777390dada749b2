//! One channel's storage: its kept messages (numbered, with the time they
//! were published and their data's JSON text) and, in `_pylon_meta`, the
//! last id given and whether the directory lists the channel. Ids only
//! grow: a message dropped by retention never gives its id to another.

use crate::sql::SqlValue;
use crate::storage::meta::Meta;
use crate::storage::{SqlConn, StorageError};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    data TEXT NOT NULL
) STRICT";
const LAST_ID: &str = "channel_last_id";
const LISTED: &str = "channel_listed";

/// A kept message.
#[derive(Clone, Debug, PartialEq)]
pub struct Stored {
    pub id: i64,
    pub at_ms: i64,
    pub data: String,
}

pub struct ChannelStore<C: SqlConn> {
    sql: C,
}

fn int(v: Option<&SqlValue>) -> Option<i64> {
    match v {
        Some(SqlValue::Integer(n)) => Some(*n),
        _ => None,
    }
}

impl<C: SqlConn> ChannelStore<C> {
    pub fn open(sql: C) -> Result<Self, StorageError> {
        sql.exec(SCHEMA, &[])?;
        Meta::open(&sql)?;
        Ok(ChannelStore { sql })
    }

    fn meta(&self) -> Meta<'_, C> {
        Meta::existing(&self.sql)
    }

    pub fn last_id(&self) -> Result<i64, StorageError> {
        self.meta().int(LAST_ID)
    }

    /// Stores a message with the next id, then drops what is beyond the
    /// last `keep` messages; the new id.
    pub fn append(&self, at_ms: i64, data: &str, keep: i64) -> Result<i64, StorageError> {
        let id = self.meta().add(LAST_ID, 1)?;
        self.sql.exec(
            "INSERT INTO messages (id, at_ms, data) VALUES (?1, ?2, ?3)",
            &[
                SqlValue::Integer(id),
                SqlValue::Integer(at_ms),
                SqlValue::Text(data.into()),
            ],
        )?;
        self.sql.exec(
            "DELETE FROM messages WHERE id <= ?1",
            &[SqlValue::Integer(id - keep)],
        )?;
        Ok(id)
    }

    /// The kept messages after `after` published after `since_ms` (older
    /// ones are due for the sweep), in id order, at most `limit`.
    pub fn after(
        &self,
        after: i64,
        since_ms: i64,
        limit: i64,
    ) -> Result<Vec<Stored>, StorageError> {
        let rows = self.sql.exec(
            "SELECT id, at_ms, data FROM messages WHERE id > ?1 AND at_ms > ?2 ORDER BY id LIMIT ?3",
            &[SqlValue::Integer(after), SqlValue::Integer(since_ms), SqlValue::Integer(limit)],
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|r| match (int(r.first()), int(r.get(1)), r.get(2)) {
                (Some(id), Some(at_ms), Some(SqlValue::Text(d))) => Some(Stored {
                    id,
                    at_ms,
                    data: d.clone(),
                }),
                _ => None,
            })
            .collect())
    }

    /// When the oldest kept message was published.
    pub fn oldest_at(&self) -> Result<Option<i64>, StorageError> {
        let rows = self.sql.exec("SELECT MIN(at_ms) FROM messages", &[])?;
        Ok(int(rows.first().and_then(|r| r.first())))
    }

    /// Deletes the messages published at or before `cutoff_ms`.
    pub fn drop_until(&self, cutoff_ms: i64) -> Result<(), StorageError> {
        self.sql.exec(
            "DELETE FROM messages WHERE at_ms <= ?1",
            &[SqlValue::Integer(cutoff_ms)],
        )?;
        Ok(())
    }

    pub fn kept(&self) -> Result<i64, StorageError> {
        let rows = self.sql.exec("SELECT COUNT(*) FROM messages", &[])?;
        Ok(int(rows.first().and_then(|r| r.first())).unwrap_or(0))
    }

    pub fn listed(&self) -> Result<bool, StorageError> {
        Ok(self.meta().int(LISTED)? == 1)
    }

    pub fn set_listed(&self) -> Result<(), StorageError> {
        self.meta().set(LISTED, SqlValue::Integer(1))
    }
}
