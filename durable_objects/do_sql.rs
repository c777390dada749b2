//! [`SqlConn`] over Durable Object SQLite storage.

use std::rc::Rc;

use crate::sql::SqlValue;
use crate::storage::meter::{MeterCell, SqlMeter};
use crate::storage::{SqlConn, StorageError, StorageErrorKind};
use worker::{SqlStorage, SqlStorageValue};

/// A handle on one object's SQLite (cheap to clone: the host and its
/// object each hold one), counting what its statements cost: the cursors'
/// `rowsRead` and `rowsWritten`, shared by the clones.
#[derive(Clone)]
pub struct DoSql(pub SqlStorage, Rc<MeterCell>);

impl DoSql {
    pub fn new(sql: SqlStorage) -> Self {
        DoSql(sql, Rc::default())
    }
}

fn to_js(v: &SqlValue) -> SqlStorageValue {
    match v {
        SqlValue::Null => SqlStorageValue::Null,
        SqlValue::Integer(i) => SqlStorageValue::Integer(*i),
        SqlValue::Real(f) => SqlStorageValue::Float(*f),
        SqlValue::Text(t) => SqlStorageValue::String(t.clone()),
    }
}

fn from_js(v: SqlStorageValue) -> SqlValue {
    match v {
        SqlStorageValue::Null => SqlValue::Null,
        SqlStorageValue::Boolean(b) => SqlValue::Integer(b as i64),
        SqlStorageValue::Integer(i) => SqlValue::Integer(i),
        SqlStorageValue::Float(f) => SqlValue::Real(f),
        SqlStorageValue::String(s) => SqlValue::Text(s),
        // This crate never stores blobs.
        SqlStorageValue::Blob(b) => SqlValue::Text(String::from_utf8_lossy(&b).into_owned()),
    }
}

/// The kind of a failed statement. Durable Object SQL reports failures as
/// JavaScript errors whose message carries SQLite's text and result code
/// (`UNIQUE constraint failed: T.c: SQLITE_CONSTRAINT (extended:
/// SQLITE_CONSTRAINT_UNIQUE)`) but no code property, so this is the one
/// place that reads the message: the extended code's name, or SQLite's
/// fixed wording for both clashes where a runtime leaves the code out.
fn kind_of(message: &str) -> StorageErrorKind {
    if message.contains("SQLITE_CONSTRAINT_UNIQUE")
        || message.contains("SQLITE_CONSTRAINT_PRIMARYKEY")
        || message.contains("UNIQUE constraint failed")
    {
        StorageErrorKind::UniqueViolation
    } else {
        StorageErrorKind::Other
    }
}

/// A failed statement, logged here with SQLite's text: answers carry a
/// generic message only (the engine never forwards this text). A probe's
/// missing table is not logged ([`SqlConn::probe`]).
fn fail(e: worker::Error, sql: &str, probing: bool) -> StorageError {
    let message = e.to_string();
    let err = StorageError::new(message.clone(), sql).with_kind(kind_of(&message));
    if !(probing && err.is_missing_table()) {
        worker::console_warn!("storage: {err}");
    }
    err
}

impl SqlConn for DoSql {
    fn exec(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, StorageError> {
        self.run(sql, params, false)
    }

    fn probe(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, StorageError> {
        self.run(sql, params, true)
    }

    fn meter(&self) -> Option<SqlMeter> {
        Some(self.1.get())
    }
}

impl DoSql {
    fn run(
        &self,
        sql: &str,
        params: &[SqlValue],
        probing: bool,
    ) -> Result<Vec<Vec<SqlValue>>, StorageError> {
        let fail = |e: worker::Error| fail(e, sql, probing);
        let cursor = self
            .0
            .exec(sql, params.iter().map(to_js).collect::<Vec<_>>())
            .map_err(fail)?;
        let rows = cursor
            .raw()
            .map(|row| {
                row.map(|vals| vals.into_iter().map(from_js).collect())
                    .map_err(fail)
            })
            .collect();
        // Final once the cursor is read to its end.
        self.1
            .add(cursor.rows_read() as u64, cursor.rows_written() as u64);
        rows
    }
}
