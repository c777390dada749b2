//! The answer to a one-shot query over HTTP (`POST /v1/shards/{s}/query`),
//! bounded like every answer (docs/protocol.md, "HTTP queries"):
//!
//! - `limit` defaults to [`DEFAULT_LIMIT`] (at most `query::limits::MAX_LIMIT`);
//! - the answer's JSON stays within `query::limits::MAX_RESULT_BYTES`: the
//!   page stops before the row that would exceed it and `next` continues
//!   from there; a single row larger than that is `RESULT_TOO_LARGE`;
//! - read policies are checked per row while paging, so a page is short
//!   only when the budget or the scan bound ([`MAX_SCAN`] rows examined)
//!   stops it, and then `next` continues after the last row examined;
//! - `count` is one SQL `COUNT(*)` when the caller reads every row of the
//!   entity (no read policy, or an admin); otherwise the matching rows are
//!   checked one by one, at most [`MAX_SCAN`] of them (`RESULT_TOO_LARGE`
//!   beyond: narrow `where`).
//!
//! Rows are read from storage in batches sized from the rows seen so far,
//! so a request holds about one budget of rows in memory, not `limit` of
//! the largest rows storage allows.

use serde_json::json;

use super::store::ShardStore;
use crate::manifest::Manifest;
use crate::policy::AuthContext;
use crate::protocol::{ErrorCode, ErrorMsg};
use crate::query::limits::MAX_RESULT_BYTES;
use crate::query::Query;
use crate::storage::{SqlConn, StorageError};
use crate::value::Row;

/// `limit` when the request gives none.
pub const DEFAULT_LIMIT: usize = 100;
/// Rows examined per request when read policies are checked row by row.
pub const MAX_SCAN: usize = 5_000;
/// Set aside from the budget for `{"seq":…,"rows":[],"next":"…"}`: a cursor
/// longer than 16 KiB is refused when it comes back (`BAD_CURSOR`).
const ENVELOPE_BYTES: usize = 16 * 1024 + 64;
/// Rows in the first batch read from storage, before sizes are known.
const FIRST_BATCH: usize = 8;
/// Rows in any later batch, at most.
const MAX_BATCH: usize = 256;

/// Why a query could not be answered.
#[derive(Debug)]
pub enum QueryFailure {
    /// The caller's fault or a bound: answer this.
    Refused(ErrorMsg),
    /// Storage failed (the caller answers a generic `INTERNAL`).
    Storage(StorageError),
}

impl From<StorageError> for QueryFailure {
    fn from(e: StorageError) -> Self {
        QueryFailure::Storage(e)
    }
}

fn too_large(message: String) -> QueryFailure {
    QueryFailure::Refused(ErrorMsg {
        code: ErrorCode::ResultTooLarge,
        message,
        op: None,
        sub: None,
    })
}

/// The rows of a query in its order, read in batches of about one answer
/// budget each.
struct Batches<'a, C: SqlConn> {
    store: &'a ShardStore<C>,
    query: &'a Query,
    /// The last row read (the next batch starts after it).
    after: Option<Row>,
    done: bool,
    read_rows: usize,
    read_bytes: usize,
}

impl<'a, C: SqlConn> Batches<'a, C> {
    fn new(store: &'a ShardStore<C>, query: &'a Query) -> Self {
        Batches {
            store,
            query,
            after: None,
            done: false,
            read_rows: 0,
            read_bytes: 0,
        }
    }

    /// The next rows (at most `want`, at least one unless none are left),
    /// each with the length of its JSON.
    fn next(&mut self, want: usize) -> Result<Vec<(Row, usize)>, StorageError> {
        if self.done {
            return Ok(Vec::new());
        }
        let by_size = match self.read_bytes.checked_div(self.read_rows) {
            Some(avg) => (MAX_RESULT_BYTES / avg.max(1)).clamp(1, MAX_BATCH),
            None => FIRST_BATCH,
        };
        let n = by_size.min(want).max(1);
        let batch = self
            .store
            .query_rows(&self.query.page(self.after.as_ref(), n))?;
        self.done = batch.len() < n;
        self.after = batch.last().cloned();
        Ok(batch
            .into_iter()
            .map(|row| {
                let size = serde_json::to_string(&row).expect("rows serialize").len();
                self.read_rows += 1;
                self.read_bytes += size;
                (row, size)
            })
            .collect())
    }
}

/// Answers a parsed query for `auth` at `seq`: `{seq, rows, next}` or
/// `{seq, count}`.
pub fn answer<C: SqlConn>(
    store: &ShardStore<C>,
    manifest: &Manifest,
    auth: &AuthContext,
    mut query: Query,
    seq: u64,
) -> Result<serde_json::Value, QueryFailure> {
    let policies = manifest.policies().for_entity(&query.entity);
    let reads_all = auth.is_admin || policies.is_open();
    let visible = |r: &Row| reads_all || policies.can_read(auth, r).is_allowed();
    if query.count {
        // Like a subscription's count: every matching row, whatever the
        // limit or cursor.
        query.limit = None;
        query.after = None;
        let n = if reads_all {
            store.count_matching(&query)?
        } else {
            count_visible(store, &query, &visible)?
        };
        return Ok(json!({ "seq": seq, "count": n }));
    }
    let (rows, next) = page(store, manifest, auth, query)?;
    Ok(json!({ "seq": seq, "rows": rows, "next": next }))
}

/// The rows of a (non-count) query for `auth` in its order, bounded as
/// above, and the cursor of the page after them (`None`: no more rows).
pub fn page<C: SqlConn>(
    store: &ShardStore<C>,
    manifest: &Manifest,
    auth: &AuthContext,
    mut query: Query,
) -> Result<(Vec<Row>, Option<String>), QueryFailure> {
    let policies = manifest.policies().for_entity(&query.entity);
    let reads_all = auth.is_admin || policies.is_open();
    let visible = |r: &Row| reads_all || policies.can_read(auth, r).is_allowed();
    let limit = *query.limit.get_or_insert(DEFAULT_LIMIT);
    let budget = MAX_RESULT_BYTES - ENVELOPE_BYTES;
    let mut rows: Vec<Row> = Vec::new();
    let mut used = 0;
    let mut scanned = 0;
    let mut batches = Batches::new(store, &query);
    let next = 'page: loop {
        let batch = batches.next(limit - rows.len())?;
        if batch.is_empty() {
            break None;
        }
        for (row, size) in batch {
            scanned += 1;
            let examined_last = scanned >= MAX_SCAN;
            if visible(&row) {
                // One byte for the comma between rows.
                if used + size + 1 > budget {
                    let Some(last) = rows.last() else {
                        return Err(too_large(format!(
                            "row {:?} is {size} bytes as JSON, over the {MAX_RESULT_BYTES} byte \
                             answer limit: read it over a WebSocket or in parts",
                            id_of(&row)
                        )));
                    };
                    break 'page Some(query.cursor_after(last));
                }
                used += size + 1;
                rows.push(row);
                if rows.len() == limit || examined_last {
                    break 'page rows.last().map(|r| query.cursor_after(r));
                }
            } else if examined_last {
                break 'page Some(query.cursor_after(&row));
            }
        }
    };
    Ok((rows, next))
}

/// The matching rows `visible` admits, examining at most [`MAX_SCAN`].
fn count_visible<C: SqlConn>(
    store: &ShardStore<C>,
    query: &Query,
    visible: &dyn Fn(&Row) -> bool,
) -> Result<u64, QueryFailure> {
    let mut batches = Batches::new(store, query);
    let (mut scanned, mut n) = (0usize, 0u64);
    loop {
        // One more than the bound: to know whether rows remain past it.
        let batch = batches.next(MAX_SCAN + 1 - scanned)?;
        if batch.is_empty() {
            return Ok(n);
        }
        for (row, _) in batch {
            scanned += 1;
            if scanned > MAX_SCAN {
                return Err(too_large(format!(
                    "a count through read policies examines at most {MAX_SCAN} rows; \
                     narrow `where`"
                )));
            }
            n += u64::from(visible(&row));
        }
    }
}

fn id_of(row: &Row) -> &str {
    row.get("id").and_then(|v| v.as_str()).unwrap_or_default()
}
