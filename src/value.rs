//! Field values and rows, shared by every engine module.
//!
//! ```
//! use pylon_workers::value::Value;
//! let v: Value = serde_json::from_str(r#"{"title":"a","done":false,"n":3}"#).unwrap();
//! assert_eq!(v.get("n"), Some(&Value::Int(3)));
//! ```
//!
//! In human-readable encodings (JSON) a `Value` is plain JSON. In binary
//! encodings (postcard) it is a tagged enum, because those formats cannot
//! describe themselves (`deserialize_any` is unsupported there).

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

pub(crate) mod decode;
pub use decode::MAX_DEPTH;

/// One row of an entity: field name to value. Every row has an `id` (text).
pub type Row = BTreeMap<String, Value>;

/// A dynamically typed field value.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// Numeric view of `Int` and `Float` (not of `Bool`).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// Member of a `Map` value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(m) => m.get(key),
            _ => None,
        }
    }

    /// A short name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Text(_) => "string",
            Value::List(_) => "list",
            Value::Map(_) => "map",
        }
    }
}

impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::Text(s),
            serde_json::Value::Array(a) => Value::List(a.into_iter().map(Value::from).collect()),
            serde_json::Value::Object(o) => {
                Value::Map(o.into_iter().map(|(k, v)| (k, Value::from(v))).collect())
            }
        }
    }
}

impl From<Value> for serde_json::Value {
    fn from(v: Value) -> Self {
        match v {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(b),
            Value::Int(i) => serde_json::Value::from(i),
            // Non-finite floats have no JSON form; they become null.
            Value::Float(f) => serde_json::Number::from_f64(f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Text(s) => serde_json::Value::String(s),
            Value::List(a) => serde_json::Value::Array(a.into_iter().map(Into::into).collect()),
            Value::Map(m) => {
                serde_json::Value::Object(m.into_iter().map(|(k, v)| (k, v.into())).collect())
            }
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}
impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

// Binary form: variant order is part of the wire format (pylon.v1.postcard).
#[derive(Serialize)]
enum TaggedRef<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(&'a str),
    List(&'a [Value]),
    Map(&'a BTreeMap<String, Value>),
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            match self {
                Value::Null => s.serialize_unit(),
                Value::Bool(b) => s.serialize_bool(*b),
                Value::Int(i) => s.serialize_i64(*i),
                Value::Float(f) if f.is_finite() => s.serialize_f64(*f),
                Value::Float(_) => s.serialize_unit(),
                Value::Text(t) => s.serialize_str(t),
                Value::List(l) => l.serialize(s),
                Value::Map(m) => m.serialize(s),
            }
        } else {
            let tagged = match self {
                Value::Null => TaggedRef::Null,
                Value::Bool(b) => TaggedRef::Bool(*b),
                Value::Int(i) => TaggedRef::Int(*i),
                Value::Float(f) => TaggedRef::Float(*f),
                Value::Text(t) => TaggedRef::Text(t),
                Value::List(l) => TaggedRef::List(l),
                Value::Map(m) => TaggedRef::Map(m),
            };
            tagged.serialize(s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_plain() {
        let v: Value = serde_json::from_str(r#"{"a":[1,2.5,"x",null,true]}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"a":[1,2.5,"x",null,true]}"#
        );
    }

    #[test]
    fn binary_refuses_non_finite_floats() {
        for f in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let bytes = postcard::to_allocvec(&Value::Float(f)).unwrap();
            assert!(postcard::from_bytes::<Value>(&bytes).is_err(), "{f}");
        }
        let ok = postcard::to_allocvec(&Value::Float(1.5)).unwrap();
        assert_eq!(
            postcard::from_bytes::<Value>(&ok).unwrap(),
            Value::Float(1.5)
        );
    }

    #[test]
    fn big_unsigned_becomes_float() {
        let v: Value = serde_json::from_str("18446744073709551615").unwrap();
        assert!(matches!(v, Value::Float(_)));
    }
}
