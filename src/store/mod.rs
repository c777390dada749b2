//! Data stores: the async [`DataStore`] interface over rows of a manifest,
//! implemented on D1 ([`D1DataStore`], the cold-path copy of every shard's
//! rows; a shard's own rows are `shard::ShardStore`'s); the write-behind
//! outbox that feeds D1 ([`outbox`]); and the cold-path query API
//! ([`cold`]). See docs/d1.md.
//!
//! ```
//! # #[cfg(feature = "sqlite")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use pylon_workers::manifest::Manifest;
//! use pylon_workers::store::{schema, DataStore, RusqliteExecutor};
//! use pylon_workers::{D1DataStore, D1Executor};
//! let m = Manifest::from_json_str(r#"{"entities":[{"name":"Todo","fields":[
//!     {"name":"title","type":"string"}]}]}"#).unwrap();
//! let db = RusqliteExecutor::open_in_memory().unwrap();
//! for sql in schema::d1_schema(&m) { db.execute(&sql, &[]).await.unwrap(); }
//! let store = D1DataStore::new(&db, m).for_shard("room-1");
//! let row = serde_json::from_value(serde_json::json!({"id":"t1","title":"a"})).unwrap();
//! store.insert("Todo", row).await.unwrap();
//! let again = serde_json::from_value(serde_json::json!({"id":"t1","title":"b"})).unwrap();
//! assert_eq!(store.insert("Todo", again).await.unwrap_err().code(), "ALREADY_EXISTS");
//! assert!(store.get("Todo", "t1").await.unwrap().is_some());
//! # }
//! # #[cfg(not(feature = "sqlite"))] fn main() {}
//! ```
//!
//! All traits here use `async fn` without `Send` bounds: Workers are
//! single-threaded, and the D1 binding's futures are not `Send`.

pub mod cold;
mod core;
mod error;
mod executor;
#[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
pub mod fuzz;
pub mod outbox;
mod policy_sql;
pub mod rooms;
pub mod schema;
pub mod shard_access;

use std::sync::Arc;

use serde::Serialize;

pub use cold::{cold_query, list_shards, ShardInfo, ShardPage};
pub use error::StoreError;
#[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
pub use executor::RusqliteExecutor;
pub use executor::{D1Executor, Statement};
pub use outbox::{apply_outbox_batch, OutboxBatch, OutboxChange};
pub use policy_sql::{read_filter, ReadFilter};
pub use rooms::{list_rooms, RoomCount, RoomInfo, RoomPage};

use crate::manifest::Manifest;
use crate::query::Query;
use crate::value::{Row, Value};

use self::core::Core;

/// D1's documented limits that the store plans within.
pub mod limits {
    /// Bound parameters per statement (D1).
    pub const MAX_PARAMS: usize = 100;
    /// Statements per batch. D1 counts each statement of a batch as a
    /// query; a Worker invocation may run 50 (free plan) or 1,000 (paid).
    /// 50 keeps one drain within either.
    pub const MAX_BATCH_STATEMENTS: usize = 50;
    /// Groups an aggregate may return.
    pub const MAX_GROUPS: usize = 1000;
}

/// A page of rows and the cursor of the next page (`None`: no more).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Page {
    pub rows: Vec<Row>,
    /// D1: the shard of each row (parallel to `rows`); empty on a shard's
    /// own store.
    pub shards: Vec<String>,
    /// Pass as `after` to continue. Set whenever the page is full.
    pub next: Option<String>,
}

/// One write of a [`DataStore::transaction`].
#[derive(Clone, Debug, PartialEq)]
pub enum WriteOp {
    /// A new row with its `id`.
    Insert {
        entity: String,
        row: Row,
    },
    /// A partial update: the fields of `set` only.
    Update {
        entity: String,
        id: String,
        set: Row,
    },
    Delete {
        entity: String,
        id: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggregateOp {
    Count,
    Sum,
    Min,
    Max,
}

impl AggregateOp {
    pub fn name(self) -> &'static str {
        match self {
            AggregateOp::Count => "count",
            AggregateOp::Sum => "sum",
            AggregateOp::Min => "min",
            AggregateOp::Max => "max",
        }
    }

    pub fn from_name(name: &str) -> Option<AggregateOp> {
        [
            AggregateOp::Count,
            AggregateOp::Sum,
            AggregateOp::Min,
            AggregateOp::Max,
        ]
        .into_iter()
        .find(|o| o.name() == name)
    }
}

/// `count` (of rows, or of non-null `field`), `sum` (int/float), `min`,
/// `max` (any field but json), optionally per value of `group_by`.
#[derive(Clone, Debug, PartialEq)]
pub struct Aggregate {
    pub op: AggregateOp,
    pub field: Option<String>,
    pub group_by: Option<String>,
}

/// One result of an aggregate: the group's value (`None` without
/// `group_by`) and the aggregate (`null` for sum/min/max of no rows).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AggregateRow {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<Value>,
    pub value: Value,
}

/// Rows of a manifest's entities, asynchronously. Rows are validated and
/// encoded by the manifest (`insert_columns`, `update_columns`); errors
/// carry codes ([`StoreError::code`]). No policies apply here: callers
/// check them (the cold path does, see [`cold`]). `get`, `list`,
/// `list_after` and `lookup_unique` are queries: a store writes `query`.
#[allow(async_fn_in_trait)]
pub trait DataStore {
    /// The manifest whose entities the rows are of.
    fn manifest(&self) -> &Manifest;
    /// Inserts a row with its `id`; returns it as stored (absent optional
    /// fields null). `ALREADY_EXISTS`, `UNIQUE_VIOLATION`, row errors.
    async fn insert(&self, entity: &str, row: Row) -> Result<Row, StoreError>;
    async fn get(&self, entity: &str, id: &str) -> Result<Option<Row>, StoreError> {
        let q = core::row_query(self.manifest(), entity, "id", Value::from(id))?;
        Ok(self.query(&q, None).await?.rows.pop())
    }
    /// The first `limit` rows in `order` (field names, `-` for descending).
    async fn list(&self, entity: &str, order: &[&str], limit: usize) -> Result<Page, StoreError> {
        let q = core::list_query(self.manifest(), entity, order, limit)?;
        self.query(&q, None).await
    }
    /// The `limit` rows after a [`Page::next`] cursor of the same order.
    async fn list_after(
        &self,
        entity: &str,
        order: &[&str],
        limit: usize,
        cursor: &str,
    ) -> Result<Page, StoreError> {
        let q = core::list_query(self.manifest(), entity, order, limit)?;
        self.query(&q, Some(cursor)).await
    }
    /// Sets the fields of `set`; returns the row after. `NOT_FOUND`.
    async fn update(&self, entity: &str, id: &str, set: Row) -> Result<Row, StoreError>;
    /// `NOT_FOUND` if there is no such row.
    async fn delete(&self, entity: &str, id: &str) -> Result<(), StoreError>;
    /// The row whose unique `field` (a unique field, a one-field unique
    /// index, or `id`) equals `value`.
    async fn lookup_unique(
        &self,
        entity: &str,
        field: &str,
        value: &Value,
    ) -> Result<Option<Row>, StoreError> {
        core::check_unique(self.manifest(), entity, field)?;
        if value.is_null() {
            return Ok(None);
        }
        let q = core::row_query(self.manifest(), entity, field, value.clone())?;
        Ok(self.query(&q, None).await?.rows.pop())
    }
    /// A parsed query (`Query::parse`); continue with `after` = the
    /// previous page's `next` (not `Query::after`: a store's cursor may
    /// carry more keys than the query's order, like the shard on D1).
    async fn query(&self, query: &Query, after: Option<&str>) -> Result<Page, StoreError>;
    /// An aggregate over the rows matching `query`'s filter.
    async fn aggregate(
        &self,
        query: &Query,
        aggregate: &Aggregate,
    ) -> Result<Vec<AggregateRow>, StoreError>;
    /// All the writes or none (one batch). A failing write fails the whole
    /// transaction with that write's error.
    async fn transaction(&self, ops: Vec<WriteOp>) -> Result<(), StoreError>;
}

/// The D1 copy of every shard's rows (schema in [`schema`]). Unscoped, reads
/// span all shards (a row is then identified by shard and id: see
/// [`Page::shards`]) and writes are refused (`SHARD_REQUIRED`); scoped with
/// [`for_shard`](Self::for_shard), reads and writes concern that shard.
///
/// Deletes leave a tombstone (fields cleared, `_deleted = 1`, `_seq` kept)
/// so that the outbox's seq guard still works; an insert revives one.
/// Direct writes never change `_seq`: the shard's next change to the row,
/// applied by the outbox, wins. Uniqueness is checked per shard over live
/// rows, by guard statements in the same batch.
pub struct D1DataStore<E: D1Executor> {
    core: Core<E>,
}

impl<E: D1Executor> D1DataStore<E> {
    pub fn new(executor: E, manifest: impl Into<Arc<Manifest>>) -> Self {
        D1DataStore {
            core: Core {
                exec: executor,
                manifest: manifest.into(),
                shard: None,
            },
        }
    }

    /// This store scoped to one shard.
    pub fn for_shard(mut self, shard: impl Into<String>) -> Self {
        self.core.shard = Some(shard.into());
        self
    }

    /// A store scoped to one shard that borrows this one's executor.
    pub fn shard(&self, shard: impl Into<String>) -> D1DataStore<&E> {
        D1DataStore {
            core: Core {
                exec: &self.core.exec,
                manifest: self.core.manifest.clone(),
                shard: Some(shard.into()),
            },
        }
    }

    pub fn scope(&self) -> Option<&str> {
        self.core.shard.as_deref()
    }

    pub fn executor(&self) -> &E {
        &self.core.exec
    }

    pub(crate) fn core(&self) -> &Core<E> {
        &self.core
    }
}

impl<E: D1Executor> DataStore for D1DataStore<E> {
    fn manifest(&self) -> &Manifest {
        &self.core.manifest
    }

    async fn insert(&self, entity: &str, row: Row) -> Result<Row, StoreError> {
        self.core.insert(entity, row).await
    }

    async fn update(&self, entity: &str, id: &str, set: Row) -> Result<Row, StoreError> {
        self.core.update(entity, id, set).await?;
        self.get(entity, id)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                entity: entity.to_owned(),
                id: id.to_owned(),
            })
    }

    async fn delete(&self, entity: &str, id: &str) -> Result<(), StoreError> {
        self.core.delete(entity, id).await
    }

    async fn query(&self, query: &Query, after: Option<&str>) -> Result<Page, StoreError> {
        self.core.query(query, after, None).await
    }

    async fn aggregate(
        &self,
        query: &Query,
        aggregate: &Aggregate,
    ) -> Result<Vec<AggregateRow>, StoreError> {
        self.core.aggregate(query, aggregate, None).await
    }

    async fn transaction(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.core.transaction(ops).await
    }
}
