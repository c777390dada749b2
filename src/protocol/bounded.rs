//! `deserialize_with` helpers for the protocol's messages: rows and lists of
//! rows read through the one bounded `Value` decoder (`value::decode`), and
//! any other list with bounded preallocation.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

pub(crate) use crate::value::decode::ValueSeed;
use crate::value::decode::{capacity, MapSeed};
use crate::value::{Row, Value};

/// `deserialize_with` for a `Value` field.
pub(crate) fn value<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
    ValueSeed { depth: 0 }.deserialize(d)
}

/// `deserialize_with` for a `Row` field.
pub(crate) fn row<'de, D: Deserializer<'de>>(d: D) -> Result<Row, D::Error> {
    RowSeed.deserialize(d)
}

/// `deserialize_with` for a `Vec<Row>` field.
pub(crate) fn rows<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Row>, D::Error> {
    d.deserialize_seq(SeqOf(RowSeed))
}

/// `deserialize_with` for any other `Vec<T>` field.
pub(crate) fn vec<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Vec<T>, D::Error> {
    d.deserialize_seq(SeqOf(PhantomData::<T>))
}

/// A row: a map whose values sit one level deep.
#[derive(Clone, Copy)]
pub(crate) struct RowSeed;

impl<'de> DeserializeSeed<'de> for RowSeed {
    type Value = Row;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Row, D::Error> {
        MapSeed(ValueSeed { depth: 1 }).deserialize(d)
    }
}

/// A sequence of whatever seed `S` reads (`PhantomData<T>` reads a plain
/// `T`), with bounded preallocation.
struct SeqOf<S>(S);

impl<'de, S> Visitor<'de> for SeqOf<S>
where
    S: DeserializeSeed<'de> + Copy,
{
    type Value = Vec<S::Value>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(capacity(seq.size_hint()));
        while let Some(v) = seq.next_element_seed(self.0)? {
            out.push(v);
        }
        Ok(out)
    }
}
