//! The parsed, checked form of a query.
//!
//! ```
//! use pylon_workers::manifest::{Entity, Field, FieldType};
//! use pylon_workers::query::{Filter, Query};
//! let todo = Entity { name: "Todo".into(), indexes: vec![], fields: vec![
//!     Field { name: "done".into(), ty: FieldType::Bool, optional: false, unique: false },
//! ]};
//! let q = Query::parse(&todo, &serde_json::json!({"entity":"Todo","where":{"done":false}}).into()).unwrap();
//! assert!(matches!(q.filter, Filter::Cmp { .. }));
//! assert_eq!(q.order.last().unwrap().field, "id"); // always tie-broken by id
//! ```

use crate::manifest::{Entity, FieldType};
use crate::sql::SqlValue;

use super::cursor::Cursor;
use super::order::OrderKey;

/// A checked query on one entity. Build it with [`Query::parse`].
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub entity: String,
    pub filter: Filter,
    /// Sort keys; always ends with `id` (ascending unless the query said
    /// otherwise), so the order is total.
    pub order: Vec<OrderKey>,
    pub limit: Option<usize>,
    /// Rows strictly after this position in `order`.
    pub after: Option<Cursor>,
    /// A count query: the result is the number of matching rows.
    pub count: bool,
    /// The selected columns, `id` first, then the declared fields.
    pub columns: Vec<(String, FieldType)>,
}

/// A row predicate. Every literal is already in storage form (see
/// `crate::sql::to_sql`) and never `Null` (null checks are [`Filter::Null`]).
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    /// All hold (empty: true).
    And(Vec<Filter>),
    /// One holds (empty: false).
    Or(Vec<Filter>),
    /// The inner filter does not match (two-valued: a comparison with a
    /// null field does not match, so its `$not` does).
    Not(Box<Filter>),
    Cmp {
        field: String,
        ty: FieldType,
        op: CmpOp,
        value: SqlValue,
    },
    /// `$in` (`negated`: `$nin`, which also matches a null field).
    In {
        field: String,
        ty: FieldType,
        values: Vec<SqlValue>,
        negated: bool,
    },
    /// SQLite `LIKE` on a text field.
    Like { field: String, pattern: String },
    /// SQLite `GLOB` (case-sensitive) on a text field. Not part of the
    /// query language (the parser never makes one): stores use it to keep
    /// a query to the shards a caller may enter (`store::shard_access`).
    Glob { field: String, pattern: String },
    /// `is_null`: the field is null (or absent); else it is not.
    Null { field: String, is_null: bool },
}

/// A comparison operator. `Ne` is SQL `IS NOT`: it matches null fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Filter {
    /// The filter that matches every row.
    pub fn all() -> Filter {
        Filter::And(Vec::new())
    }

    /// Top-level equality conjuncts `(field, type, value)`: a row that
    /// matches the filter matches each of them.
    pub fn equalities(&self) -> Vec<(&str, &FieldType, &SqlValue)> {
        match self {
            Filter::Cmp {
                field,
                ty,
                op: CmpOp::Eq,
                value,
            } => vec![(field, ty, value)],
            Filter::And(parts) => parts.iter().flat_map(Filter::equalities).collect(),
            _ => Vec::new(),
        }
    }
}

/// The type of a queryable column: `id` is text.
pub(crate) fn column_type(entity: &Entity, name: &str) -> Option<FieldType> {
    if name == "id" {
        Some(FieldType::String)
    } else {
        entity.field(name).map(|f| f.ty.clone())
    }
}
