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

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::HashSet;

use crate::query::Query;
use crate::value::Row;

use super::between::between;
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
    /// Since [`Subscription::mark`]: what the window was at the mark.
    mark: Option<Mark>,
}

/// The window as it was at a mark, kept as what changed since rather than
/// a copy: a copy of every row at every mark was most of what a coalesced
/// write cost a window.
#[derive(Clone, Debug)]
struct Mark {
    count: u64,
    rows: Marked,
}

#[derive(Clone, Debug)]
enum Marked {
    /// Rows no change has touched since the mark are in the window as they
    /// were; `left` holds the touched ones that were in it then, as they
    /// were, and `touched` the ids of every row that left or entered.
    Since {
        left: Vec<Row>,
        touched: HashSet<String>,
    },
    /// The whole window at the mark (a reload replaced every row since).
    Whole(Vec<Row>),
}

/// The window at a mark, from the rows it holds now (in order) and the
/// touched rows that were in it then (`left`): the untouched rows keep
/// their order among themselves (no change reached them), and each of
/// `left` goes back to its place. By reference or by value.
fn at_mark<R: Borrow<Row>>(
    query: &Query,
    rows: impl IntoIterator<Item = R>,
    left: impl IntoIterator<Item = R>,
    touched: &HashSet<String>,
) -> Vec<R> {
    let mut old: Vec<R> = rows
        .into_iter()
        .filter(|r| !touched.contains(id_of(r.borrow())))
        .collect();
    for r in left {
        let at = old.partition_point(|o| query.compare(o.borrow(), r.borrow()) == Ordering::Less);
        old.insert(at, r);
    }
    old
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
            mark: None,
        }
    }

    /// A count subscription whose current count (of readable rows) is `count`.
    pub fn from_count(query: Query, count: u64) -> Self {
        Subscription {
            query,
            rows: Vec::new(),
            count,
            mark: None,
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
            mark: None,
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
        self.apply_change(change, visible, source, true).await
    }

    /// [`Self::apply`] for a marked window whose members will get
    /// [`Self::take_diff`]: the change is applied and noted, without a
    /// diff of its own (that would be built, cloned and dropped).
    pub async fn absorb<S: WindowSource>(
        &mut self,
        change: &Change,
        visible: &dyn Fn(&Row) -> bool,
        source: &S,
    ) -> Result<(), LiveError<S::Error>> {
        self.apply_change(change, visible, source, false)
            .await
            .map(drop)
    }

    async fn apply_change<S: WindowSource>(
        &mut self,
        change: &Change,
        visible: &dyn Fn(&Row) -> bool,
        source: &S,
        diff_wanted: bool,
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
        self.apply_window(change.before.as_ref(), after, visible, source, diff_wanted)
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
        diff_wanted: bool,
    ) -> Result<Diff, S::Error> {
        let limit = self.query.limit;
        let full_before = limit.is_some_and(|l| self.rows.len() >= l);
        let old_pos = before.and_then(|b| self.position(b));
        let old_row = old_pos.map(|p| self.rows.remove(p));
        let mut new_pos = None;
        let mut popped = None;
        // The row that was last of a full window: every row unseen comes
        // after it, so a row that does not come after it belongs.
        let was_last = old_row
            .as_ref()
            .filter(|_| full_before && old_pos == Some(self.rows.len()));
        if let Some(a) = after {
            // Without a full window, every readable matching row is here;
            // with one, a row after the last one may belong to rows unseen.
            let belongs = !full_before
                || self
                    .rows
                    .last()
                    .is_some_and(|last| self.query.compare(a, last) == Ordering::Less)
                || was_last.is_some_and(|b| self.query.compare(a, b) != Ordering::Greater);
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

        let diff = if diff_wanted {
            let old = old_pos.zip(old_row.as_ref());
            self.diff_of(id, old, new_pos, popped.as_ref(), fetched_from)
        } else {
            Diff::default()
        };
        // What left first: a row that moves leaves, then enters.
        let entered = new_pos.into_iter().chain(fetched_from..self.rows.len());
        self.note(old_row.into_iter().chain(popped), entered);
        Ok(diff)
    }

    /// The diff of one applied change: row `id` was at `old` (position,
    /// row) and is at `new_pos`; `popped` fell off the end, and the rows
    /// from `fetched_from` on were fetched to fill the window.
    fn diff_of(
        &self,
        id: &str,
        old: Option<(usize, &Row)>,
        new_pos: Option<usize>,
        popped: Option<&Row>,
        fetched_from: usize,
    ) -> Diff {
        let mut diff = Diff::default();
        if let Some(p) = popped {
            diff.removed.push(id_of(p).to_owned());
        }
        match (old, new_pos) {
            (Some((p, row)), Some(q)) if p == q => {
                if *row != self.rows[q] {
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
        diff
    }

    /// While marked: `left`, rows that left the window (as they were in
    /// it), and the positions of rows that `entered`, each noted the first
    /// time its id is touched since the mark.
    fn note(&mut self, left: impl Iterator<Item = Row>, entered: impl Iterator<Item = usize>) {
        let Some(Mark {
            rows: Marked::Since {
                left: kept,
                touched,
            },
            ..
        }) = &mut self.mark
        else {
            return;
        };
        for r in left {
            if !touched.contains(id_of(&r)) {
                touched.insert(id_of(&r).to_owned());
                kept.push(r);
            }
        }
        for i in entered {
            let id = id_of(&self.rows[i]);
            if !touched.contains(id) {
                touched.insert(id.to_owned());
            }
        }
    }

    /// Starts keeping (unless already kept) what [`Self::take_diff`] needs
    /// to tell everything that changes from now on as one diff: the rows
    /// that leave or change, not a copy of the window.
    pub fn mark(&mut self) {
        if self.mark.is_none() {
            self.mark = Some(Mark {
                count: self.count,
                rows: Marked::Since {
                    left: Vec::new(),
                    touched: HashSet::new(),
                },
            });
        }
    }

    /// Ends a mark without a diff (what changed is sent some other way).
    pub fn unmark(&mut self) {
        self.mark = None;
    }

    /// Whether a [`Self::mark`] is kept.
    pub fn is_marked(&self) -> bool {
        self.mark.is_some()
    }

    /// The change since [`Self::mark`] as one diff (rows that moved are a
    /// removal and an add), and the end of the mark. Empty when unmarked.
    pub fn take_diff(&mut self) -> Diff {
        let Some(mark) = self.mark.take() else {
            return Diff::default();
        };
        let mut diff = match &mark.rows {
            Marked::Whole(old) => between(old, &self.rows),
            Marked::Since { touched, .. } if touched.is_empty() => Diff::default(),
            Marked::Since { left, touched } => {
                // By reference: the rows are not copied.
                between(&at_mark(&self.query, &self.rows, left, touched), &self.rows)
            }
        };
        if self.query.count && self.count != mark.count {
            diff.count = Some(self.count);
        }
        diff
    }

    /// Loads the window again from `source` in place of the rows it holds
    /// (a mark is kept); the diff from those rows to the new ones.
    pub async fn reload<S: WindowSource>(
        &mut self,
        visible: &dyn Fn(&Row) -> bool,
        source: &S,
    ) -> Result<Diff, S::Error> {
        let new = Subscription::load(self.query.clone(), visible, source).await?;
        let mut diff = between(&self.rows, &new.rows);
        if self.query.count && new.count != self.count {
            diff.count = Some(new.count);
        }
        self.replace_rows(new);
        Ok(diff)
    }

    /// [`Self::reload`] without its diff, for a marked window (its change
    /// is taken whole at the flush, as [`Self::absorb`] leaves it).
    pub async fn absorb_reload<S: WindowSource>(
        &mut self,
        visible: &dyn Fn(&Row) -> bool,
        source: &S,
    ) -> Result<(), S::Error> {
        let new = Subscription::load(self.query.clone(), visible, source).await?;
        self.replace_rows(new);
        Ok(())
    }

    /// Takes `new`'s rows and count; a mark keeps the window as it was at
    /// the mark, rebuilt whole from the rows held and those that left.
    fn replace_rows(&mut self, new: Subscription) {
        let held = std::mem::replace(&mut self.rows, new.rows);
        self.count = new.count;
        if let Some(mark) = &mut self.mark {
            let whole = match std::mem::replace(&mut mark.rows, Marked::Whole(Vec::new())) {
                Marked::Whole(old) => old,
                Marked::Since { left, touched } => at_mark(&self.query, held, left, &touched),
            };
            mark.rows = Marked::Whole(whole);
        }
    }
}
