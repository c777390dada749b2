//! In-memory evaluation with SQLite's semantics: [`matches`] for a filter,
//! [`compare_rows`] for an order.
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
//! Row values are compared in their storage form (`crate::sql::to_sql`), as
//! SQLite compares them: NULL < numbers < text; integers and reals compare
//! numerically; text by bytes (BINARY collation). A comparison with a null
//! (or absent) field does not match, except `$ne`/`$nin`, which do. Rows are
//! assumed to fit their entity (they were stored through `to_sql`); a value
//! that does not is treated as null.

use std::cmp::Ordering;

use crate::manifest::FieldType;
use crate::sql::{to_sql, SqlValue};
use crate::value::{Row, Value};

use super::ast::{CmpOp, Filter, OrderKey};
use super::glob::glob;
use super::like::like;

/// A borrowed storage-form value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Stored<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    /// A non-null JSON value (only ever null-checked).
    Json,
}

fn is_text_type(ty: &FieldType) -> bool {
    matches!(
        ty,
        FieldType::String | FieldType::Id(_) | FieldType::Datetime
    )
}

/// The storage form of a field value, without copying text.
pub(crate) fn stored<'a>(ty: &FieldType, v: Option<&'a Value>) -> Stored<'a> {
    match v {
        None | Some(Value::Null) => Stored::Null,
        Some(_) if *ty == FieldType::Json => Stored::Json,
        // For text types `to_sql` is the identity on text.
        Some(Value::Text(s)) if is_text_type(ty) => Stored::Text(s),
        Some(v) => match to_sql(ty, v) {
            Ok(SqlValue::Integer(i)) => Stored::Int(i),
            Ok(SqlValue::Real(f)) => Stored::Real(f),
            // Text types with non-text values do not fit: null.
            Ok(SqlValue::Text(_) | SqlValue::Null) | Err(_) => Stored::Null,
        },
    }
}

impl<'a> Stored<'a> {
    pub(crate) fn of(v: &'a SqlValue) -> Self {
        match v {
            SqlValue::Null => Stored::Null,
            SqlValue::Integer(i) => Stored::Int(*i),
            SqlValue::Real(f) => Stored::Real(*f),
            SqlValue::Text(t) => Stored::Text(t),
        }
    }

    pub(crate) fn to_owned_sql(self) -> SqlValue {
        match self {
            Stored::Null | Stored::Json => SqlValue::Null,
            Stored::Int(i) => SqlValue::Integer(i),
            Stored::Real(f) => SqlValue::Real(f),
            Stored::Text(t) => SqlValue::Text(t.to_owned()),
        }
    }

    fn class(&self) -> u8 {
        match self {
            Stored::Null => 0,
            Stored::Int(_) | Stored::Real(_) => 1,
            Stored::Text(_) => 2,
            Stored::Json => 3,
        }
    }
}

/// SQLite's order of two storage values (NULLs equal to each other).
pub(crate) fn cmp_stored(a: Stored, b: Stored) -> Ordering {
    match (a, b) {
        (Stored::Int(x), Stored::Int(y)) => x.cmp(&y),
        (Stored::Real(x), Stored::Real(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (Stored::Int(x), Stored::Real(y)) => cmp_int_real(x, y),
        (Stored::Real(x), Stored::Int(y)) => cmp_int_real(y, x).reverse(),
        (Stored::Text(x), Stored::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
        (a, b) => a.class().cmp(&b.class()),
    }
}

/// Exact comparison of an integer with a real, as SQLite does it.
fn cmp_int_real(i: i64, f: f64) -> Ordering {
    if f.is_nan() {
        return Ordering::Greater;
    }
    if f >= 9_223_372_036_854_775_808.0 {
        return Ordering::Less;
    }
    if f < -9_223_372_036_854_775_808.0 {
        return Ordering::Greater;
    }
    let t = f.trunc();
    match i.cmp(&(t as i64)) {
        Ordering::Equal => 0.0f64.partial_cmp(&(f - t)).unwrap_or(Ordering::Equal),
        o => o,
    }
}

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

/// The storage value of one sort key of a row.
pub(crate) fn key_of<'a>(key: &OrderKey, row: &'a Row) -> Stored<'a> {
    stored(&key.ty, row.get(&key.field))
}

fn directed(key: &OrderKey, o: Ordering) -> Ordering {
    if key.desc {
        o.reverse()
    } else {
        o
    }
}

/// The order of two rows under `order` (SQLite's: NULLs first ascending,
/// last descending). With the `id` tie-break this is total.
pub fn compare_rows(order: &[OrderKey], a: &Row, b: &Row) -> Ordering {
    for key in order {
        let o = cmp_stored(key_of(key, a), key_of(key, b));
        if o != Ordering::Equal {
            return directed(key, o);
        }
    }
    Ordering::Equal
}

/// The order of a row against cursor key values (aligned with `order`).
pub(crate) fn compare_to_keys(order: &[OrderKey], row: &Row, keys: &[SqlValue]) -> Ordering {
    for (key, k) in order.iter().zip(keys) {
        let o = cmp_stored(key_of(key, row), Stored::of(k));
        if o != Ordering::Equal {
            return directed(key, o);
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_real() {
        assert_eq!(cmp_int_real(3, 3.0), Ordering::Equal);
        assert_eq!(cmp_int_real(3, 3.5), Ordering::Less);
        assert_eq!(cmp_int_real(-3, -3.5), Ordering::Greater);
        assert_eq!(cmp_int_real(i64::MAX, 9.3e18), Ordering::Less);
        assert_eq!(
            cmp_int_real(i64::MAX, 9_223_372_036_854_774_784.0),
            Ordering::Greater
        );
    }

    #[test]
    fn classes() {
        assert_eq!(cmp_stored(Stored::Null, Stored::Int(0)), Ordering::Less);
        assert_eq!(cmp_stored(Stored::Int(9), Stored::Text("")), Ordering::Less);
        assert_eq!(
            cmp_stored(Stored::Text("B"), Stored::Text("a")),
            Ordering::Less
        );
    }
}
