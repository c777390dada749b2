//! The storage form of values: what is bound to and read from SQLite
//! (DO storage, D1, rusqlite), and the one mapping from field types to it.
//!
//! | field type            | SQLite     | notes                               |
//! |-----------------------|------------|-------------------------------------|
//! | string, id(E)         | TEXT       |                                     |
//! | datetime              | TEXT       | RFC 3339, UTC (`Z`), checked        |
//! | int                   | INTEGER    | within ±(2^53 − 1), see below       |
//! | float                 | REAL       | ints are widened                    |
//! | bool                  | INTEGER    | 0 / 1                               |
//! | json                  | TEXT       | the JSON text of any value          |
//!
//! Ints are limited to the range JavaScript numbers hold exactly, because
//! Durable Object storage hands values through JavaScript: a larger int
//! would come back changed. It is refused on write instead, everywhere.

use crate::manifest::FieldType;
use crate::value::Value;

/// The largest int stored exactly: 2^53 − 1.
pub const MAX_SAFE_INT: i64 = (1 << 53) - 1;

/// A value as SQLite stores it. Blobs are never used.
#[derive(Clone, Debug, PartialEq)]
pub enum SqlValue {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
}

/// A value that does not fit the declared type of its field.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("expected {expected}, got {got}")]
pub struct TypeMismatch {
    pub expected: String,
    pub got: &'static str,
}

/// Encodes `v` for a column of type `ty`. `Null` passes through; whether the
/// field may be null is the caller's check.
pub fn to_sql(ty: &FieldType, v: &Value) -> Result<SqlValue, TypeMismatch> {
    let mismatch = || TypeMismatch {
        expected: ty.name(),
        got: v.type_name(),
    };
    if v.is_null() {
        return Ok(SqlValue::Null);
    }
    Ok(match ty {
        FieldType::String | FieldType::Id(_) => {
            SqlValue::Text(v.as_str().ok_or_else(mismatch)?.to_owned())
        }
        FieldType::Datetime => {
            let s = v
                .as_str()
                .filter(|s| is_rfc3339_utc(s))
                .ok_or_else(mismatch)?;
            SqlValue::Text(s.to_owned())
        }
        FieldType::Int => SqlValue::Integer(
            v.as_i64()
                .filter(|i| i.unsigned_abs() <= MAX_SAFE_INT as u64)
                .ok_or_else(mismatch)?,
        ),
        FieldType::Float => match v {
            Value::Float(f) if f.is_finite() => SqlValue::Real(*f),
            Value::Int(i) => SqlValue::Real(*i as f64),
            _ => return Err(mismatch()),
        },
        FieldType::Bool => SqlValue::Integer(v.as_bool().ok_or_else(mismatch)? as i64),
        FieldType::Json => SqlValue::Text(serde_json::to_string(v).map_err(|_| mismatch())?),
    })
}

/// Decodes a stored value of a column of type `ty`. Values that do not fit
/// (written by something else than this crate) are returned as they are.
pub fn from_sql(ty: &FieldType, v: SqlValue) -> Value {
    match (ty, v) {
        (_, SqlValue::Null) => Value::Null,
        (FieldType::Bool, SqlValue::Integer(i)) => Value::Bool(i != 0),
        (FieldType::Float, SqlValue::Integer(i)) => Value::Float(i as f64),
        (FieldType::Json, SqlValue::Text(t)) => serde_json::from_str(&t).unwrap_or(Value::Text(t)),
        (_, SqlValue::Integer(i)) => Value::Int(i),
        (_, SqlValue::Real(f)) => Value::Float(f),
        (_, SqlValue::Text(t)) => Value::Text(t),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, the one datetime form we store, so that
/// text order is time order.
pub fn is_rfc3339_utc(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 20 || b[b.len() - 1] != b'Z' {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(99);
    let shape = digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !shape {
        return false;
    }
    let fraction_ok = match &b[19..b.len() - 1] {
        [] => true,
        [b'.', rest @ ..] => !rest.is_empty() && rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    fraction_ok
        && (1..=12).contains(&num(5..7))
        && (1..=31).contains(&num(8..10))
        && num(11..13) < 24
        && num(14..16) < 60
        && num(17..19) < 61
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes() {
        assert!(is_rfc3339_utc("2026-11-23T04:16:32Z"));
        assert!(is_rfc3339_utc("2026-11-23T04:16:32.123Z"));
        assert!(!is_rfc3339_utc("2026-11-23T04:16:32+01:00"));
        assert!(!is_rfc3339_utc("2026-13-23T04:16:32Z"));
        assert!(!is_rfc3339_utc("2026-11-23T04:16:32.Z"));
    }

    #[test]
    fn round_trips() {
        let cases = [
            (FieldType::Bool, Value::Bool(true)),
            (FieldType::Int, Value::Int(-4)),
            (FieldType::Float, Value::Float(1.5)),
            (FieldType::Json, serde_json::json!({"a":[1]}).into()),
            (FieldType::Datetime, Value::from("2026-01-01T00:00:00Z")),
        ];
        for (ty, v) in cases {
            assert_eq!(from_sql(&ty, to_sql(&ty, &v).unwrap()), v, "{ty:?}");
        }
    }

    #[test]
    fn mismatches() {
        assert!(to_sql(&FieldType::Int, &Value::Float(1.5)).is_err());
        assert!(to_sql(&FieldType::Bool, &Value::Int(1)).is_err());
        assert!(to_sql(&FieldType::String, &Value::Int(1)).is_err());
        assert!(to_sql(&FieldType::Int, &Value::Int(MAX_SAFE_INT)).is_ok());
        assert!(to_sql(&FieldType::Int, &Value::Int(-MAX_SAFE_INT - 1)).is_err());
    }
}
