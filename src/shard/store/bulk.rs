//! Many rows into one runtime table in one statement, however many a flush
//! holds: bound directly (`VALUES (?1, …), (…)`) while they fit the
//! platform's bound-parameter limit, else as one JSON array read with
//! `json_each`.
//!
//! The direct form is the common one (a flush of one write: one log row,
//! one outbox row, one op id). The JSON form costs SQLite a parse of the
//! whole array and, for every `value ->> i`, a re-render and re-parse of
//! the element: in the shard bench that was most of the instructions of a
//! write. Both store the same values: a JSON integer, string or null
//! reads back as the same SQL integer, text or null.

use super::ShardStore;
use crate::query::limits::MAX_PARAMS;
use crate::sql::SqlValue;
use crate::storage::{SqlConn, StorageError};
use std::fmt::Write;

/// `rows` of `cols.len()` values each, flat, in column order. Only
/// integers, text and nulls (what the runtime's tables hold).
pub(super) struct Rows {
    table: &'static str,
    cols: &'static [&'static str],
    values: Vec<SqlValue>,
}

impl Rows {
    pub fn new(table: &'static str, cols: &'static [&'static str]) -> Rows {
        Rows {
            table,
            cols,
            values: Vec::new(),
        }
    }

    pub fn push(&mut self, row: impl IntoIterator<Item = SqlValue>) {
        let before = self.values.len();
        self.values.extend(row);
        debug_assert_eq!(self.values.len() - before, self.cols.len());
    }

    /// Whether the rows are bound directly (else they go as JSON).
    fn bound_directly(&self) -> bool {
        self.values.len() <= MAX_PARAMS
    }

    /// `INSERT INTO table (cols) VALUES (?1, …), (…)` for these rows.
    fn direct_sql(&self) -> String {
        let n = self.cols.len();
        let mut sql = format!(
            "INSERT INTO {} ({}) VALUES ",
            self.table,
            self.cols.join(", ")
        );
        for i in 0..self.values.len() {
            let sep = match (i % n, i) {
                (0, 0) => "(",
                (0, _) => "), (",
                _ => ", ",
            };
            let _ = write!(sql, "{sep}?{}", i + 1);
        }
        sql.push(')');
        sql
    }

    /// `INSERT INTO table (cols) SELECT … FROM json_each(?1)` and its one
    /// parameter, for rows too many to bind directly.
    fn json_statement(self) -> (String, Vec<SqlValue>) {
        let n = self.cols.len();
        let mut sql = format!("INSERT INTO {} ({}) ", self.table, self.cols.join(", "));
        sql.push_str("SELECT ");
        for i in 0..n {
            let sep = if i == 0 { "" } else { ", " };
            let _ = write!(sql, "{sep}value ->> {i}");
        }
        sql.push_str(" FROM json_each(?1)");
        let rows: Vec<serde_json::Value> = self
            .values
            .chunks(n)
            .map(|row| row.iter().map(json_of).collect())
            .collect();
        let json = serde_json::Value::Array(rows).to_string();
        (sql, vec![SqlValue::Text(json)])
    }
}

fn json_of(v: &SqlValue) -> serde_json::Value {
    match v {
        SqlValue::Null => serde_json::Value::Null,
        SqlValue::Integer(i) => (*i).into(),
        SqlValue::Real(f) => (*f).into(),
        SqlValue::Text(t) => t.as_str().into(),
    }
}

impl<C: SqlConn> ShardStore<C> {
    /// Inserts `rows` in one statement (none when there are none).
    pub(super) fn insert_many(&self, rows: Rows) -> Result<(), StorageError> {
        if rows.values.is_empty() {
            return Ok(());
        }
        if rows.bound_directly() {
            // The same few texts every flush: built once each.
            let key = (rows.table, rows.values.len());
            let mut texts = self.bulk_inserts.borrow_mut();
            let sql = texts.entry(key).or_insert_with(|| rows.direct_sql());
            return self.run(sql, &rows.values);
        }
        let (sql, params) = rows.json_statement();
        self.run(&sql, &params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLS: &[&str] = &["a", "b"];

    #[test]
    fn rows_that_fit_are_bound_directly_and_more_go_through_json() {
        let mut rows = Rows::new("t", COLS);
        rows.push([SqlValue::Integer(1), SqlValue::Text("x".into())]);
        rows.push([SqlValue::Integer(2), SqlValue::Null]);
        assert!(rows.bound_directly());
        let sql = rows.direct_sql();
        assert_eq!(sql, "INSERT INTO t (a, b) VALUES (?1, ?2), (?3, ?4)");
        assert_eq!(rows.values.len(), 4);

        let mut rows = Rows::new("t", COLS);
        for i in 0..=MAX_PARAMS / 2 {
            rows.push([SqlValue::Integer(i as i64), SqlValue::Null]);
        }
        assert!(!rows.bound_directly());
        let (sql, params) = rows.json_statement();
        assert_eq!(
            sql,
            "INSERT INTO t (a, b) SELECT value ->> 0, value ->> 1 FROM json_each(?1)"
        );
        let SqlValue::Text(json) = &params[0] else {
            panic!("{params:?}")
        };
        assert!(json.starts_with("[[0,null],[1,null],"), "{json}");
    }
}
