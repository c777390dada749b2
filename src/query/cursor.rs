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

use super::budget::json_len;
use super::error::QueryError;
use super::order::{key_of, OrderKey};
use super::stored::Stored;

/// Characters of `i` in decimal.
fn int_len(i: i64) -> usize {
    let mut n = 1 + usize::from(i < 0);
    let mut v = i.unsigned_abs();
    while v >= 10 {
        v /= 10;
        n += 1;
    }
    n
}

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
        // Without a string per byte: pages measure a cursor per row.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = String::with_capacity(json.len() * 2);
        for b in json.bytes() {
            text.push(HEX[(b >> 4) as usize] as char);
            text.push(HEX[(b & 15) as usize] as char);
        }
        text
    }

    /// The length of [`Cursor::encode`]'s text for the position of `row`,
    /// without building it (a page's byte budget asks it of every row).
    pub fn encoded_len(order: &[OrderKey], row: &Row) -> usize {
        let list = |items: usize, sum: usize| 2 + sum + items.saturating_sub(1);
        let spelled = order
            .iter()
            .map(|k| json_len(&k.field) + usize::from(k.desc))
            .sum();
        let keys = order
            .iter()
            .map(|k| match key_of(k, row) {
                Stored::Null | Stored::Json => 4,
                Stored::Int(i) => int_len(i),
                Stored::Real(_) => r#"{"r":"0123456789abcdef"}"#.len(),
                Stored::Text(t) => json_len(&t),
            })
            .sum();
        let json = list(2, list(order.len(), spelled) + list(order.len(), keys));
        2 * json
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Entity, Field};
    use crate::query::Query;
    use crate::value::Value;

    #[test]
    fn encoded_len_is_the_length_of_encode() {
        let field = |name: &str, ty: FieldType| Field {
            name: name.into(),
            ty,
            optional: true,
            unique: false,
        };
        let e = Entity {
            name: "T".into(),
            indexes: vec![],
            fields: vec![
                field("s", FieldType::String),
                field("n", FieldType::Int),
                field("f", FieldType::Float),
                field("b", FieldType::Bool),
                field("j", FieldType::Json),
                field("we\"ird", FieldType::String),
            ],
        };
        let texts = [
            "",
            "a",
            "quote \" and \\ and \n",
            "é✓ \u{1}",
            "x".repeat(300).leak(),
        ];
        let ints = [0, 7, -1, 10, -99, i64::MAX, i64::MIN];
        let floats = [0.0, -1.5, 1e300, f64::MIN_POSITIVE];
        for order in [
            serde_json::json!([]),
            serde_json::json!(["s"]),
            serde_json::json!(["-n", "f"]),
            serde_json::json!(["b", "-s"]),
            serde_json::json!(["-we\"ird", "-id"]),
        ] {
            let q = Query::parse(
                &e,
                &serde_json::json!({"entity": "T", "order": order}).into(),
            )
            .unwrap();
            for (i, t) in texts.iter().enumerate() {
                let mut row = Row::new();
                row.insert("id".into(), Value::from(*t));
                row.insert("s".into(), Value::from(texts[(i + 1) % texts.len()]));
                row.insert("we\"ird".into(), Value::from(*t));
                row.insert("n".into(), Value::Int(ints[i % ints.len()]));
                row.insert("f".into(), Value::Float(floats[i % floats.len()]));
                row.insert("b".into(), Value::Bool(i % 2 == 0));
                if i % 3 == 0 {
                    row.insert("j".into(), Value::from("{}"));
                    row.remove("n");
                }
                assert_eq!(
                    q.cursor_len_after(&row),
                    q.cursor_after(&row).len(),
                    "{order} {row:?}"
                );
            }
        }
    }
}
