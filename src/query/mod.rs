//! Queries: a JSON query language, checked against an [`Entity`], with two
//! evaluators that agree exactly: SQLite SQL ([`Query::to_sql`]) and
//! in-memory ([`matches`], [`compare_rows`]).
//!
//! ```
//! use pylon_workers::manifest::{Entity, Field, FieldType};
//! use pylon_workers::query::Query;
//! use pylon_workers::value::Row;
//! let todo = Entity { name: "Todo".into(), indexes: vec![], fields: vec![
//!     Field { name: "done".into(), ty: FieldType::Bool, optional: false, unique: false },
//! ]};
//! let q = Query::parse(&todo, &serde_json::json!(
//!     {"entity":"Todo","where":{"done":false},"limit":50}).into()).unwrap();
//! let row: Row = [("id".to_string(), "t1".into()), ("done".to_string(), false.into())].into();
//! assert!(q.admits(&row));
//! let (sql, _params) = q.to_sql();
//! assert!(sql.starts_with(r#"SELECT "id", "done" FROM "Todo" WHERE "done" = ?"#));
//! ```
//!
//! The language and its semantics are documented in docs/queries.md.
//!
//! [`Entity`]: crate::manifest::Entity

mod ast;
pub mod budget;
mod compile;
mod cursor;
mod error;
mod eval;
mod glob;
mod like;
pub mod limits;
mod order;
mod parse;
mod stored;

pub use ast::{CmpOp, Filter, Query};
pub(crate) use compile::filter_sql;
pub use compile::quote_ident;
pub use cursor::Cursor;
pub use error::QueryError;
pub use eval::matches;
pub use glob::glob;
pub use like::like;
pub use order::compare_rows;
pub use order::OrderKey;
pub(crate) use stored::{stored, Stored};

use std::cmp::Ordering;

use crate::value::Row;

impl Query {
    /// Whether `row` is in this query's result set (ignoring `limit`): it
    /// matches the filter and, with `after`, sorts after the cursor.
    pub fn admits(&self, row: &Row) -> bool {
        matches(&self.filter, row)
            && self.after.as_ref().is_none_or(|c| {
                order::compare_to_keys(&self.order, row, &c.keys) == Ordering::Greater
            })
    }

    /// The order of two rows in this query's result.
    pub fn compare(&self, a: &Row, b: &Row) -> Ordering {
        compare_rows(&self.order, a, b)
    }

    /// The cursor text for continuing after `row`.
    pub fn cursor_after(&self, row: &Row) -> String {
        Cursor::from_row(&self.order, row).encode(&self.order)
    }

    /// The length of [`Query::cursor_after`]`(row)`, without building it.
    pub fn cursor_len_after(&self, row: &Row) -> usize {
        Cursor::encoded_len(&self.order, row)
    }
}
