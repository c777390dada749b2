//! The diff between two windows of the same query, for when changes were
//! not applied one at a time: a multi-op mutation, or a client resuming
//! from an older seq.
//!
//! ```
//! use pylon_workers::live::between;
//! use pylon_workers::value::{Row, Value};
//! let row = |id: &str, n: i64| Row::from([("id".into(), Value::from(id)), ("n".into(), Value::Int(n))]);
//! let old = vec![row("a", 1), row("b", 2), row("c", 3)];
//! let new = vec![row("c", 3), row("a", 1), row("d", 4)];
//! let diff = between(&old, &new);
//! let mut held = old.clone();
//! diff.apply_to(&mut held);
//! assert_eq!(held, new);
//! ```

use std::borrow::Borrow;
use std::collections::HashMap;

use super::diff::Diff;
use crate::value::Row;

fn id_of(row: &Row) -> &str {
    row.get("id").and_then(|v| v.as_str()).unwrap_or_default()
}

/// A diff that turns `old` into `new`. Rows that keep their relative order
/// stay (in `changed` when their content changed); rows that moved are sent
/// as a removal plus an add, as incremental diffs do. `old` may borrow rows
/// of `new`: a row that is the very same one is unchanged without looking.
pub fn between<O: Borrow<Row>>(old: &[O], new: &[Row]) -> Diff {
    let same = |o: &Row, n: &Row| std::ptr::eq(o, n) || o == n;
    if old.len() == new.len()
        && old
            .iter()
            .zip(new)
            .all(|(o, n)| id_of(o.borrow()) == id_of(n))
    {
        // The same rows in the same places (a flush that only updated rows
        // in place, the common case): what changed is where they differ,
        // found without the two maps below.
        let mut diff = Diff::default();
        for (pos, (o, n)) in old.iter().zip(new).enumerate() {
            if !same(o.borrow(), n) {
                diff.changed.push((pos, n.clone()));
            }
        }
        return diff;
    }
    let old_pos: HashMap<&str, usize> = old
        .iter()
        .enumerate()
        .map(|(i, r)| (id_of(r.borrow()), i))
        .collect();
    let new_ids: HashMap<&str, ()> = new.iter().map(|r| (id_of(r), ())).collect();
    let mut diff = Diff::default();
    for r in old {
        let id = id_of(r.borrow());
        if !new_ids.contains_key(id) {
            diff.removed.push(id.to_owned());
        }
    }
    // Survivors kept in place must be in increasing old order; a greedy
    // pass keeps as many as it can and sends the others as moves.
    let mut last_kept: Option<usize> = None;
    for (pos, r) in new.iter().enumerate() {
        match old_pos.get(id_of(r)) {
            None => diff.added.push((pos, r.clone())),
            Some(&i) if last_kept.is_none_or(|k| i > k) => {
                last_kept = Some(i);
                if !same(old[i].borrow(), r) {
                    diff.changed.push((pos, r.clone()));
                }
            }
            Some(_) => {
                diff.removed.push(id_of(r).to_owned());
                diff.added.push((pos, r.clone()));
            }
        }
    }
    diff
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    fn row(id: &str, n: i64) -> Row {
        Row::from([("id".into(), Value::from(id)), ("n".into(), Value::Int(n))])
    }

    #[test]
    fn every_permutation_of_small_windows_round_trips() {
        let ids = ["a", "b", "c", "d"];
        // All subsets-with-order of up to 4 ids, against all others.
        let mut windows: Vec<Vec<Row>> = vec![vec![]];
        for _ in 0..3 {
            let mut next = windows.clone();
            for w in &windows {
                for id in ids {
                    if !w.iter().any(|r| id_of(r) == id) {
                        let mut w2 = w.clone();
                        w2.push(row(id, w.len() as i64));
                        next.push(w2);
                    }
                }
            }
            windows = next;
        }
        for old in &windows {
            for new in &windows {
                let mut held = old.clone();
                between(old, new).apply_to(&mut held);
                assert_eq!(&held, new, "{old:?} -> {new:?}");
            }
        }
    }

    #[test]
    fn unchanged_window_is_empty() {
        let w = vec![row("a", 1), row("b", 2)];
        assert!(between(&w, &w).is_empty());
    }
}
