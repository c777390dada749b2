//! Compiling a query to parameterized SQLite SQL.
//!
//! ```
//! use pylon_workers::manifest::{Entity, Field, FieldType};
//! use pylon_workers::query::Query;
//! use pylon_workers::sql::SqlValue;
//! let todo = Entity { name: "Todo".into(), indexes: vec![], fields: vec![
//!     Field { name: "n".into(), ty: FieldType::Int, optional: true, unique: false },
//! ]};
//! let json = serde_json::json!({"entity":"Todo","where":{"n":{"$gt":3}},"order":["-n"],"limit":50});
//! let (sql, params) = Query::parse(&todo, &json.into()).unwrap().to_sql();
//! assert_eq!(sql, r#"SELECT "id", "n" FROM "Todo" WHERE "n" > ? ORDER BY "n" DESC, "id" ASC LIMIT ?"#);
//! assert_eq!(params, vec![SqlValue::Integer(3), SqlValue::Integer(50)]);
//! ```
//!
//! Every literal is a bound parameter; identifiers are double-quoted.
//! `$ne` compiles to `IS NOT`, `$nin` to `(f IS NULL OR f NOT IN (...))`,
//! `$not` to `((...) IS NOT 1)`, so that null fields behave as documented in
//! `query::eval`.

use std::fmt::Write;

use crate::sql::{from_sql, SqlValue};
use crate::value::Row;

use super::ast::{CmpOp, Filter, Query};
use super::cursor::Cursor;

/// `name` as an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Whether a GLOB pattern is written into the SQL as a literal instead of
/// a bound parameter: when it holds only shard-name characters and the
/// wildcards `*` and `?` (no quote can occur, so the literal is safe).
/// Shard access patterns are such; inline, they cost no parameter (D1
/// allows 100 per statement) and SQLite plans an index range on their
/// literal prefix whatever the statement is prepared with.
pub(crate) fn inlines_glob(pattern: &str) -> bool {
    pattern
        .chars()
        .all(|c| crate::route::is_shard_name_char(c) || c == '*' || c == '?')
}

/// A filter alone as SQL (a `WHERE` condition) and its parameters.
pub(crate) fn filter_sql(f: &Filter) -> (String, Vec<SqlValue>) {
    let mut out = Out {
        sql: String::new(),
        params: Vec::new(),
    };
    out.filter(f);
    (out.sql, out.params)
}

struct Out {
    sql: String,
    params: Vec<SqlValue>,
}

impl Out {
    fn bind(&mut self, v: &SqlValue) {
        self.sql.push('?');
        self.params.push(v.clone());
    }

    fn filter(&mut self, f: &Filter) {
        match f {
            Filter::And(p) if p.is_empty() => self.sql.push('1'),
            Filter::Or(p) if p.is_empty() => self.sql.push('0'),
            Filter::And(p) | Filter::Or(p) if p.len() == 1 => self.filter(&p[0]),
            Filter::And(p) | Filter::Or(p) => {
                let joint = if matches!(f, Filter::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                self.sql.push('(');
                for (i, part) in p.iter().enumerate() {
                    if i > 0 {
                        self.sql.push_str(joint);
                    }
                    self.filter(part);
                }
                self.sql.push(')');
            }
            Filter::Not(inner) => {
                self.sql.push_str("((");
                self.filter(inner);
                self.sql.push_str(") IS NOT 1)");
            }
            Filter::Cmp {
                field, op, value, ..
            } => {
                let op = match op {
                    CmpOp::Eq => "=",
                    CmpOp::Ne => "IS NOT",
                    CmpOp::Gt => ">",
                    CmpOp::Gte => ">=",
                    CmpOp::Lt => "<",
                    CmpOp::Lte => "<=",
                };
                let _ = write!(self.sql, "{} {op} ", quote_ident(field));
                self.bind(value);
            }
            Filter::In {
                values, negated, ..
            } if values.is_empty() => self.sql.push(if *negated { '1' } else { '0' }),
            Filter::In {
                field,
                values,
                negated,
                ..
            } => {
                let f = quote_ident(field);
                if *negated {
                    let _ = write!(self.sql, "({f} IS NULL OR {f} NOT IN (");
                } else {
                    let _ = write!(self.sql, "{f} IN (");
                }
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        self.sql.push_str(", ");
                    }
                    self.bind(v);
                }
                self.sql.push_str(if *negated { "))" } else { ")" });
            }
            Filter::Like { field, pattern } => {
                let _ = write!(self.sql, "{} LIKE ", quote_ident(field));
                self.bind(&SqlValue::Text(pattern.clone()));
            }
            Filter::Glob { field, pattern } => {
                let _ = write!(self.sql, "{} GLOB ", quote_ident(field));
                if inlines_glob(pattern) {
                    let _ = write!(self.sql, "'{pattern}'");
                } else {
                    self.bind(&SqlValue::Text(pattern.clone()));
                }
            }
            Filter::Null { field, is_null } => {
                let not = if *is_null { "" } else { "NOT " };
                let _ = write!(self.sql, "{} IS {not}NULL", quote_ident(field));
            }
        }
    }

    /// Rows strictly after `cursor` in the order: a disjunction over key
    /// prefixes, `k1 after v1 OR (k1 IS v1 AND k2 after v2) OR ...`.
    fn after(&mut self, q: &Query, cursor: &Cursor) {
        self.sql.push('(');
        let mut first = true;
        for (i, (key, v)) in q.order.iter().zip(&cursor.keys).enumerate() {
            let f = quote_ident(&key.field);
            // Nothing sorts after NULL in a descending key (NULLs come last).
            if key.desc && *v == SqlValue::Null {
                continue;
            }
            if !first {
                self.sql.push_str(" OR ");
            }
            first = false;
            self.sql.push('(');
            for (prev, pv) in q.order.iter().zip(&cursor.keys).take(i) {
                let _ = write!(self.sql, "{} IS ", quote_ident(&prev.field));
                self.bind(pv);
                self.sql.push_str(" AND ");
            }
            match (key.desc, v) {
                (false, SqlValue::Null) => {
                    let _ = write!(self.sql, "{f} IS NOT NULL");
                }
                (false, v) => {
                    let _ = write!(self.sql, "{f} > ");
                    self.bind(v);
                }
                (true, v) => {
                    let _ = write!(self.sql, "({f} < ");
                    self.bind(v);
                    let _ = write!(self.sql, " OR {f} IS NULL)");
                }
            }
            self.sql.push(')');
        }
        if first {
            self.sql.push('0');
        }
        self.sql.push(')');
    }
}

impl Query {
    /// The SQL and its parameters. Rows come back with the columns of
    /// [`Query::columns`] (decode them with [`Query::decode_row`]); a count
    /// query returns one integer.
    pub fn to_sql(&self) -> (String, Vec<SqlValue>) {
        let mut out = Out {
            sql: String::with_capacity(128),
            params: Vec::new(),
        };
        let table = quote_ident(&self.entity);
        if self.count {
            let _ = write!(out.sql, "SELECT COUNT(*) FROM {table} WHERE ");
            out.filter(&self.filter);
            return (out.sql, out.params);
        }
        out.sql.push_str("SELECT ");
        for (i, (c, _)) in self.columns.iter().enumerate() {
            if i > 0 {
                out.sql.push_str(", ");
            }
            out.sql.push_str(&quote_ident(c));
        }
        let _ = write!(out.sql, " FROM {table} WHERE ");
        match &self.after {
            None => out.filter(&self.filter),
            Some(c) => {
                out.filter(&self.filter);
                out.sql.push_str(" AND ");
                out.after(self, c);
            }
        }
        out.sql.push_str(" ORDER BY ");
        for (i, k) in self.order.iter().enumerate() {
            if i > 0 {
                out.sql.push_str(", ");
            }
            let dir = if k.desc { "DESC" } else { "ASC" };
            let _ = write!(out.sql, "{} {dir}", quote_ident(&k.field));
        }
        if let Some(n) = self.limit {
            out.sql.push_str(" LIMIT ");
            out.bind(&SqlValue::Integer(n as i64));
        }
        (out.sql, out.params)
    }

    /// The same query for the `n` rows after `after` (or after the query's
    /// own cursor when `None`): what a live window fetches when a row leaves.
    pub fn page(&self, after: Option<&Row>, n: usize) -> Query {
        let mut q = self.clone();
        if let Some(row) = after {
            q.after = Some(Cursor::from_row(&self.order, row));
        }
        q.limit = Some(n);
        q.count = false;
        q
    }

    /// A result row from its column values (in [`Query::columns`] order).
    /// Null columns are kept as `Value::Null`.
    pub fn decode_row(&self, values: impl IntoIterator<Item = SqlValue>) -> Row {
        self.columns
            .iter()
            .zip(values)
            .map(|(c, v)| (c.0.clone(), from_sql(&c.1, v)))
            .collect()
    }
}
