//! Which subscriptions a write can affect, without looking at the others.
//!
//! ```
//! use pylon_workers::live::{Change, SubKey, SubscriptionIndex};
//! use pylon_workers::manifest::{Entity, Field, FieldType};
//! use pylon_workers::query::Query;
//! use pylon_workers::value::Row;
//! let e = Entity { name: "Todo".into(), indexes: vec![], fields: vec![
//!     Field { name: "owner".into(), ty: FieldType::String, optional: false, unique: false },
//! ]};
//! let mut index = SubscriptionIndex::new();
//! for (i, owner) in ["ann", "bob"].into_iter().enumerate() {
//!     let q = Query::parse(&e, &serde_json::json!({"entity":"Todo","where":{"owner":owner}}).into()).unwrap();
//!     index.insert(SubKey(i as u64), &q);
//! }
//! let row: Row = [("id".to_string(), "t1".into()), ("owner".to_string(), "bob".into())].into();
//! let change = Change { entity: "Todo".into(), before: None, after: Some(row) };
//! assert_eq!(index.affected(&change), vec![SubKey(1)]);
//! ```
//!
//! A subscription is indexed by its entity and, when its filter has a
//! top-level equality conjunct (`{"owner": "bob", ...}`), by one such field
//! and value (text before numbers before bools, then the least used value): a write reaches it only if its row before or after the write has
//! that value (a row without it matches neither before nor after, so the
//! result cannot change). Other subscriptions of the entity are always
//! reached. The cost of a write is two hash lookups per indexed field of the
//! entity plus the subscriptions it reaches.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::manifest::FieldType;
use crate::query::{stored, Query, Stored};
use crate::sql::SqlValue;
use crate::value::Row;

use super::change::Change;

/// The caller's name for a subscription (map it to a connection and the
/// client's subscription id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubKey(pub u64);

/// A map keyed by [`SubKey`], hashed with one multiply: the keys are the
/// shard's own counters (nothing a client picks), and SipHash, the
/// default, was a noticeable part of sending one diff to many members.
pub type SubKeyMap<V> = HashMap<SubKey, V, BuildHasherDefault<SubKeyHasher>>;

/// The hasher of [`SubKeyMap`].
#[derive(Default)]
pub struct SubKeyHasher(u64);

impl Hasher for SubKeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing: spreads consecutive keys over the high bits
        // (which the table's control bytes use) as well as the low ones.
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Subscriptions by entity and top-level equality.
#[derive(Debug, Default)]
pub struct SubscriptionIndex {
    entities: HashMap<String, EntityIndex>,
    slots: SubKeyMap<Slot>,
}

#[derive(Debug, Default)]
struct EntityIndex {
    /// Subscriptions without an indexable equality.
    scan: Vec<SubKey>,
    fields: Vec<FieldIndex>,
}

#[derive(Debug)]
struct FieldIndex {
    field: String,
    ty: FieldType,
    ints: HashMap<i64, Vec<SubKey>>,
    reals: HashMap<u64, Vec<SubKey>>,
    texts: HashMap<String, Vec<SubKey>>,
}

#[derive(Debug)]
struct Slot {
    entity: String,
    eq: Option<(String, SqlValue)>,
}

/// Equal reals have equal keys (`-0.0 == 0.0`).
fn real_key(f: f64) -> u64 {
    if f == 0.0 {
        0
    } else {
        f.to_bits()
    }
}

impl FieldIndex {
    fn bucket(&mut self, v: &SqlValue) -> Option<&mut Vec<SubKey>> {
        Some(match v {
            SqlValue::Integer(i) => self.ints.entry(*i).or_default(),
            SqlValue::Real(f) => self.reals.entry(real_key(*f)).or_default(),
            SqlValue::Text(t) => self.texts.entry(t.clone()).or_default(),
            SqlValue::Null => return None,
        })
    }

    /// Subscriptions indexed under `v`.
    fn size(&self, v: &SqlValue) -> usize {
        match v {
            SqlValue::Integer(i) => self.ints.get(i).map_or(0, Vec::len),
            SqlValue::Real(f) => self.reals.get(&real_key(*f)).map_or(0, Vec::len),
            SqlValue::Text(t) => self.texts.get(t).map_or(0, Vec::len),
            SqlValue::Null => 0,
        }
    }

    fn lookup(&self, row: &Row) -> &[SubKey] {
        let found = match stored(&self.ty, row.get(&self.field)) {
            Stored::Int(i) => self.ints.get(&i),
            Stored::Real(f) => self.reals.get(&real_key(f)),
            Stored::Text(t) => self.texts.get(t),
            Stored::Null | Stored::Json => None,
        };
        found.map(Vec::as_slice).unwrap_or_default()
    }

    fn remove(&mut self, v: &SqlValue, key: SubKey) {
        let drop_from = |b: &mut Vec<SubKey>| b.retain(|k| *k != key);
        match v {
            SqlValue::Integer(i) => {
                if let Some(b) = self.ints.get_mut(i) {
                    drop_from(b);
                    if b.is_empty() {
                        self.ints.remove(i);
                    }
                }
            }
            SqlValue::Real(f) => {
                let k = real_key(*f);
                if let Some(b) = self.reals.get_mut(&k) {
                    drop_from(b);
                    if b.is_empty() {
                        self.reals.remove(&k);
                    }
                }
            }
            SqlValue::Text(t) => {
                if let Some(b) = self.texts.get_mut(t) {
                    drop_from(b);
                    if b.is_empty() {
                        self.texts.remove(t);
                    }
                }
            }
            SqlValue::Null => {}
        }
    }
}

impl SubscriptionIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of indexed subscriptions.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Indexes subscription `key` with `query` (replacing an earlier one).
    pub fn insert(&mut self, key: SubKey, query: &Query) {
        self.remove(key);
        let entity = self.entities.entry(query.entity.clone()).or_default();
        let eq = query
            .filter
            .equalities()
            .into_iter()
            .min_by_key(|(field, ty, value)| {
                // Prefer selective types (a bool has two values), then the
                // value with the fewest subscriptions so far.
                let rank = match ty {
                    FieldType::String | FieldType::Id(_) => 0,
                    FieldType::Bool => 2,
                    _ => 1,
                };
                let rank = if *field == "id" { 0 } else { rank };
                let taken = entity
                    .fields
                    .iter()
                    .find(|f| f.field == *field)
                    .map_or(0, |f| f.size(value));
                (rank, taken)
            });
        let eq = match eq {
            Some((field, ty, value)) => {
                let pos = match entity.fields.iter().position(|f| f.field == field) {
                    Some(p) => p,
                    None => {
                        entity.fields.push(FieldIndex {
                            field: field.to_owned(),
                            ty: ty.clone(),
                            ints: HashMap::new(),
                            reals: HashMap::new(),
                            texts: HashMap::new(),
                        });
                        entity.fields.len() - 1
                    }
                };
                match entity.fields[pos].bucket(value) {
                    Some(bucket) => {
                        bucket.push(key);
                        Some((field.to_owned(), value.clone()))
                    }
                    None => None,
                }
            }
            None => None,
        };
        if eq.is_none() {
            entity.scan.push(key);
        }
        self.slots.insert(
            key,
            Slot {
                entity: query.entity.clone(),
                eq,
            },
        );
    }

    /// Forgets subscription `key`; whether it was indexed.
    pub fn remove(&mut self, key: SubKey) -> bool {
        let Some(slot) = self.slots.remove(&key) else {
            return false;
        };
        if let Some(entity) = self.entities.get_mut(&slot.entity) {
            match &slot.eq {
                Some((field, value)) => {
                    if let Some(f) = entity.fields.iter_mut().find(|f| f.field == *field) {
                        f.remove(value, key);
                    }
                }
                None => entity.scan.retain(|k| *k != key),
            }
        }
        true
    }

    /// The subscriptions `change` may affect, sorted, without duplicates.
    pub fn affected(&self, change: &Change) -> Vec<SubKey> {
        let mut out = Vec::new();
        self.affected_into(change, &mut out);
        out
    }

    /// [`SubscriptionIndex::affected`] into a reused buffer (cleared first).
    pub fn affected_into(&self, change: &Change, out: &mut Vec<SubKey>) {
        out.clear();
        let Some(entity) = self.entities.get(&change.entity) else {
            return;
        };
        out.extend_from_slice(&entity.scan);
        for f in &entity.fields {
            for row in [&change.before, &change.after].into_iter().flatten() {
                out.extend_from_slice(f.lookup(row));
            }
        }
        out.sort_unstable();
        out.dedup();
    }
}
