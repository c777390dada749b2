//! Live queries: subscriptions whose results are maintained write by write,
//! producing [`Diff`]s, and an index that routes each write only to the
//! subscriptions it can affect.
//!
//! ```
//! use pylon_workers::live::{Change, Diff, SubKey, Subscription, SubscriptionIndex};
//! use pylon_workers::manifest::Entity;
//! use pylon_workers::query::Query;
//! let e = Entity { name: "T".into(), fields: vec![], indexes: vec![] };
//! let q = Query::parse(&e, &serde_json::json!({"entity":"T"}).into()).unwrap();
//! let mut index = SubscriptionIndex::new();
//! index.insert(SubKey(7), &q);
//! let sub = Subscription::from_rows(q, vec![]);
//! let change = Change { entity: "T".into(), before: None, after: Some([("id".to_string(), "a".into())].into()) };
//! assert_eq!(index.affected(&change), vec![SubKey(7)]);
//! # let _ = (sub, Diff::default());
//! ```
//!
//! The flow for one write: write the row to the store; build a [`Change`];
//! ask the [`SubscriptionIndex`] which subscriptions it may affect; call
//! [`Subscription::apply`] on each with that subscriber's visibility
//! predicate; send the non-empty diffs. See docs/live-queries.md.

mod between;
mod change;
mod diff;
mod error;
mod index;
mod source;
mod subscription;

pub use between::between;
pub use change::Change;
pub use diff::Diff;
pub use error::LiveError;
pub use index::{SubKey, SubKeyHasher, SubKeyMap, SubscriptionIndex};
pub use source::WindowSource;
pub use subscription::Subscription;
