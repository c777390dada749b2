//! Sort orders: the keys of a query's order and how rows compare under
//! them (SQLite's order: NULLs first ascending, last descending).

use std::cmp::Ordering;

use crate::manifest::FieldType;
use crate::sql::SqlValue;
use crate::value::Row;

use super::stored::{cmp_stored, stored, Stored};

/// One sort key.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderKey {
    pub field: String,
    pub ty: FieldType,
    pub desc: bool,
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
