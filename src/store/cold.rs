//! The cold path: queries that span shards, answered from D1 with the
//! manifest's shard rules and the caller's read policies applied, and the
//! shard directory.
//!
//! `POST /v1/query` bodies:
//!
//! ```json
//! {"entity": "Todo", "where": {"done": false}, "order": ["-createdAt"],
//!  "limit": 50, "after": "<next of the previous page>", "shard": "room-1"}
//! {"entity": "Todo", "where": {"done": false},
//!  "aggregate": {"op": "count", "groupBy": "ownerId"}}
//! ```
//!
//! `where` and `order` are the engine's query language (docs/queries.md);
//! `limit` defaults to 100 (at most 1000); `shard` restricts to one shard.
//! A page also ends early, with `next`, where one more row would take the
//! answer past `query::limits::MAX_RESULT_BYTES` of JSON; a single row
//! over it is `RESULT_TOO_LARGE` (413).
//! `aggregate.op` is `count` (of rows, or of non-null `field`), `sum`,
//! `min` or `max` (with `field`); `groupBy` is optional.
//!
//! Shard rules: the caller sees only rows of shards the manifest's rules
//! let it enter (`auth.shards`, as for a request to the shard itself),
//! checked in SQL on `_shard` (`store::shard_access`) for rows and
//! aggregates alike; a named `shard` the caller may not enter is refused
//! with the shard's own answer (`StoreError::Access`: 401
//! `MISSING_TOKEN`, 403 `SHARD_DENIED`). A D1 without tables answers
//! `D1_NOT_MIGRATED` (503).
//!
//! Read policies: the caller sees only rows `can_read` allows. When the
//! entity's `allowRead` rules compile to SQL for this caller (the usual
//! case; see `read_filter`), they are ANDed into the query, so pages are
//! full and aggregates exact. Otherwise rows are checked in memory while
//! paging through the query: a page may then hold fewer than `limit` rows
//! (at most `MAX_SCAN` rows are examined per request) and `next` continues
//! after the last row examined, so paging stays complete and in order;
//! aggregates are refused (`BAD_QUERY`) for such policies. Returned rows
//! are always checked in memory as well (shard rules and policies).

use serde::Serialize;

use crate::auth::token_caller;
use crate::manifest::Manifest;
use crate::policy::AuthContext;
use crate::query::budget::{json_len, PageBudget};
use crate::query::limits::MAX_RESULT_BYTES;
use crate::query::{Cursor, Filter, Query};
use crate::sql::SqlValue;
use crate::value::{Row, Value};

use super::error::StoreError;
use super::executor::D1Executor;
use super::policy_sql::read_filter;
pub use super::policy_sql::ReadFilter;
use super::schema::{DIRECTORY, SHARD};
use super::shard_access::{shard_condition, shard_filter};
use super::{Aggregate, AggregateOp, AggregateRow, D1DataStore};

/// `limit` when the request gives none.
pub const DEFAULT_LIMIT: usize = 100;
/// Rows examined per request: reached only where rows are dropped after
/// the SQL (read policies checked in memory), since a page of `limit`
/// rows fetched by a filter in SQL is taken whole.
pub const MAX_SCAN: usize = 5000;

/// The answer to a cold query.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ColdResult {
    /// Each row is the entity row plus `_shard`.
    Rows {
        rows: Vec<serde_json::Value>,
        next: Option<String>,
    },
    Aggregate {
        aggregate: Vec<AggregateRow>,
    },
}

impl ColdResult {
    /// A page without rows or `next`: the envelope of every page.
    fn empty() -> Self {
        ColdResult::Rows {
            rows: Vec::new(),
            next: None,
        }
    }
}

fn bad(reason: impl Into<String>) -> StoreError {
    StoreError::bad(reason)
}

/// Answers a `POST /v1/query` body for `auth` (see the module docs).
pub async fn cold_query<E: D1Executor>(
    executor: &E,
    manifest: &Manifest,
    request: &serde_json::Value,
    auth: &AuthContext,
) -> Result<ColdResult, StoreError> {
    answer(executor, manifest, request, auth)
        .await
        .map_err(StoreError::in_d1)
}

async fn answer<E: D1Executor>(
    executor: &E,
    manifest: &Manifest,
    request: &serde_json::Value,
    auth: &AuthContext,
) -> Result<ColdResult, StoreError> {
    let Some(body) = request.as_object() else {
        return Err(bad("a query is an object"));
    };
    for k in body.keys() {
        if !matches!(
            k.as_str(),
            "entity" | "where" | "order" | "limit" | "after" | "shard" | "aggregate"
        ) {
            return Err(bad(format!("unknown key `{k}`")));
        }
    }
    let name = body
        .get("entity")
        .and_then(|v| v.as_str())
        .ok_or_else(|| bad("`entity` is required"))?;
    let entity = manifest
        .entity(name)
        .ok_or_else(|| StoreError::UnknownEntity {
            entity: name.to_owned(),
        })?;
    let rules = manifest.auth();
    let mut store = D1DataStore::new(executor, manifest.clone());
    match body.get("shard") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::String(s)) => {
            // Refused as the shard itself refuses the caller.
            rules.admit_caller(s, auth).map_err(StoreError::Access)?;
            store = store.for_shard(s.clone());
        }
        Some(_) => return Err(bad("`shard` is a string")),
    }
    let after = match body.get("after") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(bad("`after` is a cursor string")),
    };
    let mut query = serde_json::Map::new();
    for k in ["entity", "where", "order", "limit"] {
        if let Some(v) = body.get(k) {
            query.insert(k.to_owned(), v.clone());
        }
    }
    // Only shards the caller may enter, in SQL.
    let shards = shard_filter(&rules.shard_access(token_caller(auth)), SHARD);
    let filter = read_filter(manifest, entity, auth);
    let policies = manifest.policies().for_entity(name);
    let core = store.core();

    if let Some(agg) = body.get("aggregate") {
        if body.contains_key("order") || body.contains_key("limit") || after.is_some() {
            return Err(bad("an aggregate has no order, limit or after"));
        }
        let agg = parse_aggregate(agg)?;
        let q = Query::parse(entity, &serde_json::Value::Object(query).into())?;
        let policy = match filter {
            ReadFilter::All => None,
            ReadFilter::Sql(f) => Some(f),
            ReadFilter::InMemory => {
                return Err(bad(format!(
                    "the read policies of {name} do not compile to SQL; aggregates need them to"
                )))
            }
        };
        let aggregate = core.aggregate(&q, &agg, both(shards, policy)).await?;
        let bytes = json_len(&aggregate);
        if bytes > MAX_RESULT_BYTES {
            return Err(StoreError::ResultTooLarge {
                bytes,
                limit: MAX_RESULT_BYTES,
            });
        }
        return Ok(ColdResult::Aggregate { aggregate });
    }

    let limit = match body.get("limit") {
        None | Some(serde_json::Value::Null) => {
            query.insert("limit".into(), DEFAULT_LIMIT.into());
            DEFAULT_LIMIT
        }
        Some(v) => v.as_u64().unwrap_or(0) as usize, // checked by Query::parse
    };
    let q = Query::parse(entity, &serde_json::Value::Object(query).into())?;
    let policy = match filter {
        ReadFilter::Sql(f) => Some(f),
        ReadFilter::All | ReadFilter::InMemory => None,
    };
    let mut p = core.prepare(&q, after, both(shards, policy))?;
    let mut rows = Vec::new();
    let mut budget = PageBudget::new(MAX_RESULT_BYTES, json_len(&ColdResult::empty()));
    // The position of the last row taken: `next` if the budget ends the page.
    let mut last_taken: Option<Cursor> = None;
    let mut scanned = 0;
    let next = loop {
        let batch = core.fetch(&p).await?;
        let full = batch.len() >= limit;
        let mut stop = None;
        for row in &batch {
            scanned += 1;
            if visible(manifest, &policies, auth, row) {
                let json = json_row(row);
                // The cursor is hex: its JSON is it in quotes.
                let (size, next_size) = (json_len(&json), 2 + p.cursor_len_after(row));
                if !budget.take(size, next_size) {
                    if rows.is_empty() {
                        return Err(StoreError::ResultTooLarge {
                            bytes: budget.needed(size, next_size),
                            limit: MAX_RESULT_BYTES,
                        });
                    }
                    stop = last_taken.take().map(|c| c.encode(&p.order));
                    break;
                }
                rows.push(json);
                last_taken = Some(Cursor::from_row(&p.order, row));
            }
            if rows.len() == limit || scanned >= MAX_SCAN {
                // After this row; if it was not taken, its cursor must
                // still fit the answer (else after the last row taken).
                let after = p.cursor_after(row);
                stop = if budget.fits_next(2 + after.len()) {
                    Some(after)
                } else {
                    match last_taken.take() {
                        Some(c) => Some(c.encode(&p.order)),
                        None => {
                            return Err(StoreError::ResultTooLarge {
                                bytes: budget.used() + 2 + after.len(),
                                limit: MAX_RESULT_BYTES,
                            })
                        }
                    }
                };
                break;
            }
        }
        if stop.is_some() || !full {
            break stop;
        }
        // Rows checked in memory (read policies that do not compile) can
        // leave a full batch's page short: fetch on.
        let last = batch.last().map(|r| Cursor::from_row(&p.order, r));
        p.after = last;
    };
    Ok(ColdResult::Rows { rows, next })
}

/// Whether a fetched row may go to the caller: checked again in memory,
/// although the SQL already admitted it (its shard by the shard rules, the
/// row by the read policies).
fn visible(
    manifest: &Manifest,
    policies: &crate::policy::EntityPolicies<'_>,
    auth: &AuthContext,
    row: &Row,
) -> bool {
    let shard_ok = match row.get(SHARD) {
        Some(Value::Text(s)) => manifest.auth().admit_caller(s, auth).is_ok(),
        _ => false,
    };
    shard_ok && policies.can_read(auth, &strip(row)).is_allowed()
}

/// The filters present, ANDed.
fn both(a: Option<Filter>, b: Option<Filter>) -> Option<Filter> {
    match (a, b) {
        (Some(a), Some(b)) => Some(Filter::And(vec![a, b])),
        (a, b) => a.or(b),
    }
}

/// The row without `_shard`, as policies see it.
fn strip(row: &Row) -> Row {
    let mut r = row.clone();
    r.remove(super::schema::SHARD);
    r
}

fn json_row(row: &Row) -> serde_json::Value {
    serde_json::Value::from(Value::Map(row.clone()))
}

fn parse_aggregate(v: &serde_json::Value) -> Result<Aggregate, StoreError> {
    let Some(m) = v.as_object() else {
        return Err(bad("`aggregate` is an object"));
    };
    for k in m.keys() {
        if !matches!(k.as_str(), "op" | "field" | "groupBy") {
            return Err(bad(format!("unknown key `aggregate.{k}`")));
        }
    }
    let op = m
        .get("op")
        .and_then(|o| o.as_str())
        .and_then(AggregateOp::from_name)
        .ok_or_else(|| bad("`aggregate.op` is count, sum, min or max"))?;
    let text = |k: &str| -> Result<Option<String>, StoreError> {
        match m.get(k) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad(format!("`aggregate.{k}` is a field name"))),
        }
    };
    Ok(Aggregate {
        op,
        field: text("field")?,
        group_by: text("groupBy")?,
    })
}

/// One shard of the directory.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShardInfo {
    pub shard: String,
    /// Live rows of the shard in D1, over all entities.
    pub rows: i64,
    /// The newest change applied from the shard's outbox.
    pub last_seq: i64,
    /// When that change was drained (RFC 3339), if known.
    pub last_change: Option<String>,
}

/// A page of the directory, in shard name order.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ShardPage {
    pub shards: Vec<ShardInfo>,
    /// The last shard of a full page: pass as `after`.
    pub next: Option<String>,
}

/// `GET /v1/shards?after=&limit=`: the shards `auth` may enter (by the
/// manifest's shard rules, in SQL; admins see every shard some rule fits)
/// after `after` (a shard name), `limit` of them (1..=1000, default 100
/// when 0).
pub async fn list_shards<E: D1Executor>(
    executor: &E,
    manifest: &Manifest,
    auth: &AuthContext,
    after: Option<&str>,
    limit: usize,
) -> Result<ShardPage, StoreError> {
    let (limit, cond, params) = name_page(manifest, auth, "shard", after, limit);
    let rules = manifest.auth();
    let rows = executor
        .query(
            &format!(
                "SELECT shard, \"rows\", last_seq, last_change FROM {DIRECTORY} \
                 WHERE shard > ? AND {cond} ORDER BY shard LIMIT ?"
            ),
            &params,
        )
        .await
        .map_err(|e| StoreError::from(e).in_d1())?;
    let int = |v: &SqlValue| match v {
        SqlValue::Integer(i) => *i,
        SqlValue::Real(f) => *f as i64,
        _ => 0,
    };
    let next = next_name(&rows, limit);
    let shards: Vec<ShardInfo> = rows
        .iter()
        .filter(|r| r.len() == 4)
        .map(|r| ShardInfo {
            shard: sql_text(&r[0]).unwrap_or_default(),
            rows: int(&r[1]),
            last_seq: int(&r[2]),
            last_change: sql_text(&r[3]),
        })
        .filter(|s| rules.admit_caller(&s.shard, auth).is_ok())
        .collect();
    Ok(ShardPage { shards, next })
}

/// The shared frame of a listing by name (`GET /v1/shards`, `GET
/// /v1/rooms`): the page size (1..=1000, default 100 when 0) and the SQL
/// condition on `column` for the shards `auth` may enter (the manifest's
/// shard rules), its parameters framed as `[after, ..., limit]` for
/// `WHERE column > ? AND {cond} ORDER BY column LIMIT ?`.
pub(super) fn name_page(
    manifest: &Manifest,
    auth: &AuthContext,
    column: &str,
    after: Option<&str>,
    limit: usize,
) -> (usize, String, Vec<SqlValue>) {
    let limit = if limit == 0 {
        DEFAULT_LIMIT
    } else {
        limit.min(crate::query::limits::MAX_LIMIT)
    };
    let access = manifest.auth().shard_access(token_caller(auth));
    let (cond, mut params) = shard_condition(&access, column).unwrap_or(("1".into(), Vec::new()));
    params.insert(0, SqlValue::Text(after.unwrap_or("").to_owned()));
    params.push(SqlValue::Integer(limit as i64));
    (limit, cond, params)
}

/// A listing's `next`: the name (first column) of the last row fetched
/// when the page is full. It follows the rows fetched, not those kept, so
/// paging stays complete even if the check in memory ever drops one.
pub(super) fn next_name(rows: &[Vec<SqlValue>], limit: usize) -> Option<String> {
    (rows.len() == limit)
        .then(|| rows.last().and_then(|r| r.first()).and_then(sql_text))
        .flatten()
}

pub(super) fn sql_text(v: &SqlValue) -> Option<String> {
    match v {
        SqlValue::Text(t) => Some(t.clone()),
        _ => None,
    }
}
