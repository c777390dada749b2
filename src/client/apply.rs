//! Applying `snap` / `diff` to a held result, exactly as docs/protocol.md
//! ("diff") says. Pure functions, no I/O.

use std::collections::HashSet;

use crate::protocol::{Diff, Positioned};
use crate::value::{Row, Value};

/// Why a diff could not be applied to the rows held. Every case is a server
/// bug (or a lost message); the client recovers by subscribing anew.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// `diff.from` is not the seq held for the subscription.
    #[error("gap: diff from seq {from} but the subscription holds {held:?}")]
    Gap { from: u64, held: Option<u64> },
    /// `diff.seq` is before `diff.from`.
    #[error("diff goes backwards: from {from} to {seq}")]
    Backwards { from: u64, seq: u64 },
    /// A `removed` or `changed` id is not in the result held.
    #[error("diff names row `{0}` which is not in the result")]
    UnknownRow(String),
    /// An `added` row is already in the result, or an id appears twice.
    #[error("diff adds row `{0}` which is already in the result")]
    DuplicateRow(String),
    /// Two rows claim one position, or a position is past the new end.
    #[error("diff position {pos} is taken twice or out of range (new length {len})")]
    BadPosition { pos: u32, len: usize },
}

/// The `id` of a row (a text field `id`), if it has one.
pub fn row_id(row: &Row) -> Option<&str> {
    row.get("id").and_then(Value::as_str)
}

/// Checks `diff` against the held seq (see [`ApplyError::Gap`]).
pub fn check_seq(held: Option<u64>, diff: &Diff) -> Result<(), ApplyError> {
    if held != Some(diff.from) {
        return Err(ApplyError::Gap { from: diff.from, held });
    }
    if diff.seq < diff.from {
        return Err(ApplyError::Backwards { from: diff.from, seq: diff.seq });
    }
    Ok(())
}

/// Applies the row changes of `diff` to `rows` (the seq is checked
/// separately with [`check_seq`]): drop every row whose id is in `removed`
/// or `changed`, then put every `changed` and `added` row at its `pos` in
/// the new result; untouched rows keep their relative order.
///
/// On error `rows` is left unchanged. Runs in O(rows + diff).
pub fn apply_rows(rows: &mut Vec<Row>, diff: &Diff) -> Result<(), ApplyError> {
    let held: HashSet<&str> = rows.iter().filter_map(row_id).collect();
    let mut gone: HashSet<&str> = HashSet::with_capacity(diff.removed.len() + diff.changed.len());
    for id in diff.removed.iter().map(String::as_str).chain(diff.changed.iter().filter_map(|p| row_id(&p.row))) {
        if !held.contains(id) {
            return Err(ApplyError::UnknownRow(id.to_owned()));
        }
        if !gone.insert(id) {
            return Err(ApplyError::DuplicateRow(id.to_owned()));
        }
    }
    let mut placed: HashSet<&str> = HashSet::with_capacity(diff.changed.len() + diff.added.len());
    for p in diff.changed.iter().chain(&diff.added) {
        if let Some(id) = row_id(&p.row) {
            if !placed.insert(id) {
                return Err(ApplyError::DuplicateRow(id.to_owned()));
            }
        }
    }
    if let Some(id) = diff.added.iter().filter_map(|p| row_id(&p.row)).find(|id| held.contains(id) && !gone.contains(id)) {
        return Err(ApplyError::DuplicateRow(id.to_owned()));
    }

    let mut inserts: Vec<&Positioned> = diff.changed.iter().chain(&diff.added).collect();
    inserts.sort_by_key(|p| p.pos);
    let untouched_len = rows.iter().filter(|r| !row_id(r).is_some_and(|id| gone.contains(id))).count();
    let new_len = untouched_len + inserts.len();
    for (i, p) in inserts.iter().enumerate() {
        if (i > 0 && inserts[i - 1].pos == p.pos) || p.pos as usize >= new_len {
            return Err(ApplyError::BadPosition { pos: p.pos, len: new_len });
        }
    }

    // Merge: walk the new positions, taking the inserted row that claims
    // each one, else the next untouched row.
    let old = std::mem::take(rows);
    let mut untouched = old.into_iter().filter(|r| !row_id(r).is_some_and(|id| gone.contains(id)));
    let mut inserts = inserts.into_iter().peekable();
    rows.reserve(new_len);
    for i in 0..new_len {
        match inserts.next_if(|p| p.pos as usize == i) {
            Some(p) => rows.push(p.row.clone()),
            None => rows.extend(untouched.next()),
        }
    }
    Ok(())
}
