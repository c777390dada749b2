//! In-memory evaluation of a filter with SQLite's semantics: [`matches`].
//!
//! ```
//! use pylon_workers::manifest::FieldType;
//! use pylon_workers::query::{matches, CmpOp, Filter};
//! use pylon_workers::sql::SqlValue;
//! use pylon_workers::value::{Row, Value};
//! let f = Filter::Cmp { field: "n".into(), ty: FieldType::Int, op: CmpOp::Gt, value: SqlValue::Integer(3) };
//! let row: Row = [("id".to_string(), Value::from("a")), ("n".to_string(), Value::Int(4))].into();
//! assert!(matches(&f, &row));
//! ```
//!
//! Row values are compared in their storage form (`stored.rs`). A
//! comparison with a null (or absent) field does not match, except
//! `$ne`/`$nin`, which do.

use std::cmp::Ordering;

use crate::value::{Row, Value};

use super::ast::{CmpOp, Filter};
use super::glob::glob;
use super::like::like;
use super::stored::{cmp_stored, stored, Stored};

/// Whether `row` matches `filter` (exactly as the compiled SQL would).
pub fn matches(filter: &Filter, row: &Row) -> bool {
    match filter {
        Filter::And(parts) => parts.iter().all(|f| matches(f, row)),
        Filter::Or(parts) => parts.iter().any(|f| matches(f, row)),
        Filter::Not(inner) => !matches(inner, row),
        Filter::Cmp {
            field,
            ty,
            op,
            value,
        } => {
            let v = stored(ty, row.get(field));
            if v == Stored::Null {
                return *op == CmpOp::Ne;
            }
            let o = cmp_stored(v, Stored::of(value));
            match op {
                CmpOp::Eq => o == Ordering::Equal,
                CmpOp::Ne => o != Ordering::Equal,
                CmpOp::Gt => o == Ordering::Greater,
                CmpOp::Gte => o != Ordering::Less,
                CmpOp::Lt => o == Ordering::Less,
                CmpOp::Lte => o != Ordering::Greater,
            }
        }
        Filter::In {
            field,
            ty,
            values,
            negated,
        } => {
            let v = stored(ty, row.get(field));
            if v == Stored::Null {
                return *negated;
            }
            let found = values
                .iter()
                .any(|x| cmp_stored(v, Stored::of(x)) == Ordering::Equal);
            found != *negated
        }
        Filter::Like { field, pattern } => match row.get(field) {
            Some(Value::Text(s)) => like(pattern, s),
            _ => false,
        },
        Filter::Glob { field, pattern } => match row.get(field) {
            Some(Value::Text(s)) => glob(pattern, s),
            _ => false,
        },
        Filter::Null { field, is_null } => {
            let null = matches!(row.get(field), None | Some(Value::Null));
            null == *is_null
        }
    }
}
