//! One live query and its current result, maintained change by change.
//!
//! ```
//! use pylon_workers::live::{Change, Subscription, WindowSource};
//! use pylon_workers::manifest::Entity;
//! use pylon_workers::query::Query;
//! use pylon_workers::value::Row;
//! struct Empty;
//! impl WindowSource for Empty {
//!     type Error = ();
//!     async fn rows_after(&self, _: &Query, _: Option<&Row>, _: usize) -> Result<Vec<Row>, ()> { Ok(vec![]) }
//! }
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let e = Entity { name: "T".into(), fields: vec![], indexes: vec![] };
//! let q = Query::parse(&e, &serde_json::json!({"entity":"T","limit":10}).into()).unwrap();
//! let mut sub = Subscription::from_rows(q, vec![]);
//! let row: Row = [("id".to_string(), "a".into())].into();
//! let change = Change { entity: "T".into(), before: None, after: Some(row.clone()) };
//! let diff = sub.apply(&change, &|_| true, &Empty).await.unwrap();
//! assert_eq!(diff.added, vec![(0, row)]);
//! # }
//! ```
//!
//! The window holds the first `limit` rows (all rows without a limit) of the
//! query's result that the subscriber may read (the visibility predicate,
//! ANDed with the filter). A change is applied without re-running the query:
//! the changed row is removed from / inserted into the window in memory, and
//! only when a full window loses a row is the [`WindowSource`] asked for the
//! row(s) that now enter.

use std::cmp::Ordering;

use crate::query::Query;
use crate::value::Row;

use super::change::Change;
use super::diff::Diff;
use super::error::LiveError;
use super::source::WindowSource;

/// Rows asked of the source at a time when loading without a limit.
const PAGE: usize = 256;

/// A live query with its current window (or count).
#[derive(Clone, Debug)]
pub struct Subscription {
    query: Query,
    rows: Vec<Row>,
    count: u64,
}

fn id_of(row: &Row) -> &str {
    row.get("id").and_then(|v| v.as_str()).unwrap_or_default()
}

impl Subscription {
    /// A subscription whose current window is `rows`: the query's first
    /// rows (at most `limit`) that the subscriber may read, in order.
    pub fn from_rows(query: Query, rows: Vec<Row>) -> Self {
        Subscription {
            query,
            count: rows.len() as u64,
            rows,
        }
    }

    /// A count subscription whose current count (of readable rows) is `count`.
    pub fn from_count(query: Query, count: u64) -> Self {
        Subscription {
            query,
            rows: Vec::new(),
            count,
        }
    }

    /// Loads the current window (or count) from `source`.
    pub async fn load<S: WindowSource>(
        query: Query,
        visible: &dyn Fn(&Row) -> bool,
        source: &S,
    ) -> Result<Self, S::Error> {
        let mut sub = Subscription {
            query,
            rows: Vec::new(),
            count: 0,
        };
        if sub.query.count {
            let mut last: Option<Row> = None;
            loop {
                let batch = source.rows_after(&sub.query, last.as_ref(), PAGE).await?;
                sub.count += batch.iter().filter(|r| visible(r)).count() as u64;
                if batch.len() < PAGE {
                    break;
                }
                last = batch.into_iter().next_back();
            }
        } else {
            let target = sub.query.limit.unwrap_or(usize::MAX);
            sub.fill(target, visible, source).await?;
        }
        Ok(sub)
    }

    pub fn query(&self) -> &Query {
        &self.query
    }

    /// The current window, in order.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The current count (of a count query).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Appends rows from the source until the window has `target` rows or
    /// the source has no more.
    async fn fill<S: WindowSource>(
        &mut self,
        target: usize,
        visible: &dyn Fn(&Row) -> bool,
        source: &S,
    ) -> Result<(), S::Error> {
        let mut last: Option<Row> = self.rows.last().cloned();
        while self.rows.len() < target {
            let need = (target - self.rows.len()).min(PAGE);
            let batch = source.rows_after(&self.query, last.as_ref(), need).await?;
            let got = batch.len();
            for row in batch {
                if self.rows.len() == target {
                    break;
                }
                if visible(&row) {
                    self.rows.push(row.clone());
                }
                last = Some(row);
            }
            if got < need {
                break;
            }
        }
        Ok(())
    }

    /// Applies one change (already written to the store `source` reads)
    /// and returns what changed in this subscription's result.
    pub async fn apply<S: WindowSource>(
        &mut self,
        change: &Change,
        visible: &dyn Fn(&Row) -> bool,
        source: &S,
    ) -> Result<Diff, LiveError<S::Error>> {
        if change.entity != self.query.entity {
            return Ok(Diff::default());
        }
        if let (Some(b), Some(a)) = (&change.before, &change.after) {
            if id_of(b) != id_of(a) {
                return Err(LiveError::IdMismatch {
                    before: id_of(b).into(),
                    after: id_of(a).into(),
                });
            }
        }
        let admitted = |r: &Option<Row>| {
            r.as_ref()
                .is_some_and(|r| self.query.admits(r) && visible(r))
        };
        if self.query.count {
            let (was, is) = (admitted(&change.before), admitted(&change.after));
            if was == is {
                return Ok(Diff::default());
            }
            self.count = if is {
                self.count + 1
            } else {
                self.count.saturating_sub(1)
            };
            return Ok(Diff {
                count: Some(self.count),
                ..Diff::default()
            });
        }
        let after = change.after.as_ref().filter(|_| admitted(&change.after));
        self.apply_window(change.before.as_ref(), after, visible, source)
            .await
            .map_err(LiveError::Source)
    }

    /// Where `before` is in the window, found by its sort key (so `before`
    /// must be the row as the window holds it).
    fn position(&self, before: &Row) -> Option<usize> {
        let q = &self.query;
        let pos = self.rows.binary_search_by(|r| q.compare(r, before)).ok()?;
        (id_of(&self.rows[pos]) == id_of(before)).then_some(pos)
    }

    async fn apply_window<S: WindowSource>(
        &mut self,
        before: Option<&Row>,
        after: Option<&Row>,
        visible: &dyn Fn(&Row) -> bool,
        source: &S,
    ) -> Result<Diff, S::Error> {
        let limit = self.query.limit;
        let full_before = limit.is_some_and(|l| self.rows.len() >= l);
        let old_pos = before.and_then(|b| self.position(b));
        let old_row = old_pos.map(|p| self.rows.remove(p));
        let mut new_pos = None;
        let mut popped = None;
        if let Some(a) = after {
            // Without a full window, every readable matching row is here;
            // with one, a row after the last one may belong to rows unseen.
            let belongs = !full_before
                || self
                    .rows
                    .last()
                    .is_some_and(|last| self.query.compare(a, last) == Ordering::Less);
            if belongs {
                let pos = self
                    .rows
                    .partition_point(|r| self.query.compare(r, a) == Ordering::Less);
                self.rows.insert(pos, a.clone());
                new_pos = Some(pos);
                if limit.is_some_and(|l| self.rows.len() > l) {
                    popped = self.rows.pop();
                }
            }
        }
        let fetched_from = self.rows.len();
        if let Some(l) = limit.filter(|&l| full_before && self.rows.len() < l) {
            self.fill(l, visible, source).await?;
        }
        let id = before.or(after).map(id_of).unwrap_or_default();
        if new_pos.is_none() {
            new_pos = (fetched_from..self.rows.len()).find(|&i| id_of(&self.rows[i]) == id);
        }
        debug_assert!(self.rows.iter().filter(|r| id_of(r) == id).count() <= 1);

        let mut diff = Diff::default();
        if let Some(p) = popped {
            diff.removed.push(id_of(&p).to_owned());
        }
        match (old_pos, new_pos) {
            (Some(p), Some(q)) if p == q => {
                if old_row.as_ref() != Some(&self.rows[q]) {
                    diff.changed.push((q, self.rows[q].clone()));
                }
            }
            (Some(_), Some(q)) => {
                diff.removed.push(id.to_owned());
                diff.added.push((q, self.rows[q].clone()));
            }
            (Some(_), None) => diff.removed.push(id.to_owned()),
            (None, Some(q)) => diff.added.push((q, self.rows[q].clone())),
            (None, None) => {}
        }
        for i in fetched_from..self.rows.len() {
            if Some(i) != new_pos {
                diff.added.push((i, self.rows[i].clone()));
            }
        }
        diff.added.sort_by_key(|(p, _)| *p);
        Ok(diff)
    }
}
