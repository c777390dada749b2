//! Opaque `after` cursors: the sort-key values and id of a row.
//!
//! ```
//! use pylon_workers::manifest::Entity;
//! use pylon_workers::query::{Cursor, Query};
//! use pylon_workers::value::Row;
//! let e = Entity { name: "T".into(), fields: vec![], indexes: vec![] };
//! let q = Query::parse(&e, &serde_json::json!({"entity":"T"}).into()).unwrap();
//! let row: Row = [("id".to_string(), "a".into())].into();
//! let text = Cursor::from_row(&q.order, &row).encode(&q.order);
//! assert_eq!(Cursor::decode(&text, &q.order).unwrap(), Cursor::from_row(&q.order, &row));
//! ```
//!
//! The text is the lowercase hex of a JSON array `[order, keys]`: `order`
//! spells the sort keys (`"-n"` for descending, the last one `"id"`), so a
//! cursor is refused (`BAD_CURSOR`) by a query with another order; `keys`
//! holds one value per sort key: `null`, an integer, a string, or
//! `{"r":"<16 hex digits>"}` (the bits of a real, so it round-trips exactly).

use crate::manifest::FieldType;
use crate::sql::SqlValue;
use crate::value::Row;

use super::error::QueryError;
use super::order::{key_of, OrderKey};

/// A position in a query's order: one storage value per sort key.
#[derive(Clone, Debug, PartialEq)]
pub struct Cursor {
    pub keys: Vec<SqlValue>,
}

fn spell(order: &[OrderKey]) -> Vec<String> {
    order
        .iter()
        .map(|k| {
            if k.desc {
                format!("-{}", k.field)
            } else {
                k.field.clone()
            }
        })
        .collect()
}

impl Cursor {
    /// The position of `row` in `order`.
    pub fn from_row(order: &[OrderKey], row: &Row) -> Cursor {
        Cursor {
            keys: order
                .iter()
                .map(|k| key_of(k, row).to_owned_sql())
                .collect(),
        }
    }

    /// The opaque text form.
    pub fn encode(&self, order: &[OrderKey]) -> String {
        let keys: Vec<serde_json::Value> = self
            .keys
            .iter()
            .map(|k| match k {
                SqlValue::Null => serde_json::Value::Null,
                SqlValue::Integer(i) => (*i).into(),
                SqlValue::Real(f) => serde_json::json!({ "r": format!("{:016x}", f.to_bits()) }),
                SqlValue::Text(t) => t.as_str().into(),
            })
            .collect();
        let json = serde_json::json!([spell(order), keys]).to_string();
        json.bytes().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses a cursor made by [`Cursor::encode`] for the same `order`.
    pub fn decode(text: &str, order: &[OrderKey]) -> Result<Cursor, QueryError> {
        let bad = |r: &str| QueryError::BadCursor {
            reason: r.to_owned(),
        };
        if !text.len().is_multiple_of(2) || text.len() > 16_384 {
            return Err(bad("not a cursor"));
        }
        let bytes = (0..text.len())
            .step_by(2)
            .map(|i| {
                text.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| bad("not a cursor"))?;
        let json: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|_| bad("not a cursor"))?;
        let [spelled, keys] = json.as_array().map(Vec::as_slice).unwrap_or(&[]) else {
            return Err(bad("not a cursor"));
        };
        if *spelled != serde_json::json!(spell(order)) {
            return Err(bad("made for another order"));
        }
        let keys = keys
            .as_array()
            .filter(|k| k.len() == order.len())
            .ok_or_else(|| bad("wrong keys"))?;
        let mut out = Vec::with_capacity(keys.len());
        for (key, k) in order.iter().zip(keys) {
            let v = match (&key.ty, k) {
                (_, serde_json::Value::Null) if key.field != "id" => SqlValue::Null,
                (FieldType::Int | FieldType::Bool, serde_json::Value::Number(n)) => {
                    SqlValue::Integer(n.as_i64().ok_or_else(|| bad("wrong key type"))?)
                }
                (FieldType::Float, serde_json::Value::Object(o)) => {
                    let bits = o
                        .get("r")
                        .and_then(|r| r.as_str())
                        .filter(|r| r.len() == 16);
                    let bits = bits.and_then(|r| u64::from_str_radix(r, 16).ok());
                    let f = f64::from_bits(bits.ok_or_else(|| bad("wrong key type"))?);
                    if !f.is_finite() {
                        return Err(bad("wrong key type"));
                    }
                    SqlValue::Real(f)
                }
                (
                    FieldType::String | FieldType::Id(_) | FieldType::Datetime,
                    serde_json::Value::String(s),
                ) => SqlValue::Text(s.clone()),
                _ => return Err(bad("wrong key type")),
            };
            out.push(v);
        }
        Ok(Cursor { keys: out })
    }
}
