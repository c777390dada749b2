//! [`SqlConn`] over rusqlite, for native tests, benchmarks and tools.

use super::meter::{MeterCell, SqlMeter};
use super::{SqlConn, StorageError, StorageErrorKind};
use crate::sql::SqlValue;
use rusqlite::types::{ToSqlOutput, Value as RValue, ValueRef};

/// A rusqlite connection that speaks [`SqlConn`], counting what its
/// statements cost ([`SqlConn::meter`]).
pub struct SqliteConn(pub rusqlite::Connection, MeterCell);

impl SqliteConn {
    pub fn open_in_memory() -> rusqlite::Result<Self> {
        rusqlite::Connection::open_in_memory().map(Self::from)
    }
    pub fn open(path: impl AsRef<std::path::Path>) -> rusqlite::Result<Self> {
        rusqlite::Connection::open(path).map(Self::from)
    }
}

impl From<rusqlite::Connection> for SqliteConn {
    fn from(c: rusqlite::Connection) -> Self {
        SqliteConn(c, MeterCell::default())
    }
}

impl rusqlite::ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            SqlValue::Null => ToSqlOutput::Owned(RValue::Null),
            SqlValue::Integer(i) => ToSqlOutput::Owned(RValue::Integer(*i)),
            SqlValue::Real(f) => ToSqlOutput::Owned(RValue::Real(*f)),
            SqlValue::Text(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
        })
    }
}

fn from_ref(v: ValueRef<'_>) -> SqlValue {
    match v {
        ValueRef::Null => SqlValue::Null,
        ValueRef::Integer(i) => SqlValue::Integer(i),
        ValueRef::Real(f) => SqlValue::Real(f),
        ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
        // Never written by this crate; surfaced as text so nothing is lost silently.
        ValueRef::Blob(b) => SqlValue::Text(String::from_utf8_lossy(b).into_owned()),
    }
}

/// The kind of a failure, by SQLite's extended result code.
fn kind_of(e: &rusqlite::Error) -> StorageErrorKind {
    use rusqlite::ffi;
    match e.sqlite_error().map(|f| f.extended_code) {
        Some(ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY) => {
            StorageErrorKind::UniqueViolation
        }
        _ => StorageErrorKind::Other,
    }
}

impl SqlConn for SqliteConn {
    fn exec(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, StorageError> {
        let fail =
            |e: rusqlite::Error| StorageError::new(e.to_string(), sql).with_kind(kind_of(&e));
        let changes_before = self.0.total_changes();
        let mut out = Vec::new();
        let run = (|| {
            let mut stmt = self.0.prepare_cached(sql).map_err(fail)?;
            let columns = stmt.column_count();
            let mut rows = stmt
                .query(rusqlite::params_from_iter(params.iter()))
                .map_err(fail)?;
            while let Some(row) = rows.next().map_err(fail)? {
                let mut values = Vec::with_capacity(columns);
                for i in 0..columns {
                    values.push(from_ref(row.get_ref(i).map_err(fail)?));
                }
                out.push(values);
            }
            Ok(())
        })();
        let written = self.0.total_changes().saturating_sub(changes_before);
        self.1.add(out.len() as u64, written);
        run.map(|()| out)
    }

    fn meter(&self) -> Option<SqlMeter> {
        Some(self.1.get())
    }
}
