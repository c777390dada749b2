//! [`D1Executor`] over the Workers D1 binding (`env.d1("DB")`).

use crate::sql::SqlValue;
use crate::storage::StorageError;
use crate::store::{D1Executor, Statement};
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};

/// The D1 binding of the cold path (wrangler.toml `[[d1_databases]]`).
pub(crate) const D1_BINDING: &str = "DB";

pub(crate) struct D1Exec(pub D1Database);

/// Ints of this crate are within ±(2^53 − 1) (`sql::MAX_SAFE_INT`), so a
/// JavaScript number carries them exactly.
fn to_js(v: &SqlValue) -> JsValue {
    match v {
        SqlValue::Null => JsValue::NULL,
        SqlValue::Integer(i) => JsValue::from_f64(*i as f64),
        SqlValue::Real(f) => JsValue::from_f64(*f),
        SqlValue::Text(t) => JsValue::from_str(t),
    }
}

/// D1 returns every number as a JavaScript number: integral ones come back
/// as `Integer` (`from_sql` widens them for float fields).
fn from_js(v: &JsValue) -> SqlValue {
    if let Some(f) = v.as_f64() {
        if f.fract() == 0.0 && f.abs() <= crate::sql::MAX_SAFE_INT as f64 {
            SqlValue::Integer(f as i64)
        } else {
            SqlValue::Real(f)
        }
    } else if let Some(s) = v.as_string() {
        SqlValue::Text(s)
    } else if let Some(b) = v.as_bool() {
        SqlValue::Integer(b as i64)
    } else {
        SqlValue::Null
    }
}

fn fail(e: worker::Error, sql: &str) -> StorageError {
    StorageError::new(e.to_string(), sql)
}

impl D1Exec {
    fn prepare(&self, sql: &str, params: &[SqlValue]) -> Result<D1PreparedStatement, StorageError> {
        let js: Vec<JsValue> = params.iter().map(to_js).collect();
        self.0.prepare(sql).bind(&js).map_err(|e| fail(e, sql))
    }
}

fn changes(r: &worker::D1Result) -> u64 {
    r.meta().ok().flatten().and_then(|m| m.changes).unwrap_or(0) as u64
}

impl D1Executor for D1Exec {
    async fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<u64, StorageError> {
        let r = self
            .prepare(sql, params)?
            .run()
            .await
            .map_err(|e| fail(e, sql))?;
        Ok(changes(&r))
    }

    async fn query(
        &self,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<Vec<Vec<SqlValue>>, StorageError> {
        let rows = self
            .prepare(sql, params)?
            .raw_js_value()
            .await
            .map_err(|e| fail(e, sql))?;
        Ok(rows
            .iter()
            .map(|row| {
                worker::js_sys::Array::from(row)
                    .iter()
                    .map(|v| from_js(&v))
                    .collect()
            })
            .collect())
    }

    async fn batch(&self, statements: Vec<Statement>) -> Result<Vec<u64>, StorageError> {
        let first = statements
            .first()
            .map(|s| s.sql.clone())
            .unwrap_or_default();
        let prepared = statements
            .iter()
            .map(|s| self.prepare(&s.sql, &s.params))
            .collect::<Result<Vec<_>, _>>()?;
        let results = self.0.batch(prepared).await.map_err(|e| fail(e, &first))?;
        Ok(results.iter().map(changes).collect())
    }
}
