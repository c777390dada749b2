//! [`SqlConn`] over Durable Object SQLite storage.

use crate::sql::SqlValue;
use crate::storage::{SqlConn, StorageError};
use worker::{SqlStorage, SqlStorageValue};

pub(crate) struct DoSql(pub SqlStorage);

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

impl SqlConn for DoSql {
    fn exec(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, StorageError> {
        let fail = |e: worker::Error| StorageError::new(e.to_string(), sql);
        let cursor = self
            .0
            .exec(sql, params.iter().map(to_js).collect::<Vec<_>>())
            .map_err(fail)?;
        cursor
            .raw()
            .map(|row| {
                row.map(|vals| vals.into_iter().map(from_js).collect())
                    .map_err(fail)
            })
            .collect()
    }
}
