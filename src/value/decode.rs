//! The one decoder of [`Value`]: bounded depth and bounded preallocation,
//! in both encodings.
//!
//! serde_json stops at 128 nested containers, but postcard has no limit at
//! all: a 1 MiB frame of `List(List(...))` is 500,000 levels and overflows
//! the stack. Every `Value` is therefore read through [`ValueSeed`], which
//! stops at [`MAX_DEPTH`] in JSON and postcard alike.
//!
//! Preallocation: postcard reports a sequence's claimed length as its size
//! hint (capped by the bytes left). Trusting it at every nesting level would
//! reserve far more memory than the frame holds, so sequences reserve at most
//! [`PREALLOC`] elements up front and grow from there.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};
use serde::Deserialize;

use super::Value;

/// Containers nested deeper than this are refused.
pub const MAX_DEPTH: usize = 64;

/// Elements reserved before any is read.
pub(crate) const PREALLOC: usize = 8;

fn too_deep<E: de::Error>() -> E {
    E::custom(format_args!("values nest deeper than {MAX_DEPTH} levels"))
}

pub(crate) fn capacity(hint: Option<usize>) -> usize {
    hint.unwrap_or(0).min(PREALLOC)
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ValueSeed { depth: 0 }.deserialize(d)
    }
}

/// A `Value` inside `depth` enclosing containers.
#[derive(Clone, Copy)]
pub(crate) struct ValueSeed {
    pub depth: usize,
}

impl ValueSeed {
    /// The seed for the elements of a container at this value's place, or an
    /// error when that container is one level too many.
    fn inner<E: de::Error>(self) -> Result<ValueSeed, E> {
        if self.depth >= MAX_DEPTH {
            Err(too_deep())
        } else {
            Ok(ValueSeed {
                depth: self.depth + 1,
            })
        }
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if d.is_human_readable() {
            d.deserialize_any(self)
        } else {
            // The tagged form of value.rs; variant order is wire format.
            const VARIANTS: &[&str] = &["Null", "Bool", "Int", "Float", "Text", "List", "Map"];
            d.deserialize_enum("Value", VARIANTS, Tagged(self))
        }
    }
}

/// Plain JSON (human-readable formats).
impl<'de> Visitor<'de> for ValueSeed {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        // Same rule as `Value`'s own impl: beyond i64 becomes a float.
        Ok(i64::try_from(u)
            .map(Value::Int)
            .unwrap_or(Value::Float(u as f64)))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Float(f))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        Ok(Value::Text(s.to_owned()))
    }
    fn visit_string<E: de::Error>(self, s: String) -> Result<Value, E> {
        Ok(Value::Text(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
        Ok(Value::List(collect_seq(seq, self.inner()?)?))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        Ok(Value::Map(collect_map(map, self.inner()?)?))
    }
}

fn collect_seq<'de, A: SeqAccess<'de>>(
    mut seq: A,
    inner: ValueSeed,
) -> Result<Vec<Value>, A::Error> {
    let mut out = Vec::with_capacity(capacity(seq.size_hint()));
    while let Some(v) = seq.next_element_seed(inner)? {
        out.push(v);
    }
    Ok(out)
}

fn collect_map<'de, A: MapAccess<'de>>(
    mut map: A,
    inner: ValueSeed,
) -> Result<BTreeMap<String, Value>, A::Error> {
    let mut out = BTreeMap::new();
    while let Some(k) = map.next_key::<String>()? {
        let v = map.next_value_seed(inner)?;
        out.insert(k, v);
    }
    Ok(out)
}

/// The tagged form (binary formats).
struct Tagged(ValueSeed);

impl<'de> Visitor<'de> for Tagged {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a tagged value")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let (tag, v) = data.variant::<u32>()?;
        Ok(match tag {
            0 => {
                v.unit_variant()?;
                Value::Null
            }
            1 => Value::Bool(v.newtype_variant()?),
            2 => Value::Int(v.newtype_variant()?),
            3 => {
                // As in `Value`'s own impl: JSON has no NaN or infinity, so
                // neither encoding may carry one (found by fuzzing).
                let f: f64 = v.newtype_variant()?;
                if !f.is_finite() {
                    return Err(de::Error::custom(
                        "a non-finite float has no place in a value",
                    ));
                }
                Value::Float(f)
            }
            4 => Value::Text(v.newtype_variant()?),
            5 => Value::List(v.newtype_variant_seed(ListSeed(self.0.inner()?))?),
            6 => Value::Map(v.newtype_variant_seed(MapSeed(self.0.inner()?))?),
            n => {
                return Err(de::Error::invalid_value(
                    de::Unexpected::Unsigned(n.into()),
                    &"a value tag 0..=6",
                ))
            }
        })
    }
}

/// The elements of a list, each a `Value` at the given depth.
struct ListSeed(ValueSeed);

impl<'de> DeserializeSeed<'de> for ListSeed {
    type Value = Vec<Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<Value>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ListSeed {
    type Value = Vec<Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Vec<Value>, A::Error> {
        collect_seq(seq, self.0)
    }
}

/// The entries of a map, each value at the given depth.
pub(crate) struct MapSeed(pub(crate) ValueSeed);

impl<'de> DeserializeSeed<'de> for MapSeed {
    type Value = BTreeMap<String, Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MapSeed {
    type Value = BTreeMap<String, Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        collect_map(map, self.0)
    }
}
