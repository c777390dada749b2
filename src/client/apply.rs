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
        return Err(ApplyError::Gap {
            from: diff.from,
            held,
        });
    }
    if diff.seq < diff.from {
        return Err(ApplyError::Backwards {
            from: diff.from,
            seq: diff.seq,
        });
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
    for id in diff
        .removed
        .iter()
        .map(String::as_str)
        .chain(diff.changed.iter().filter_map(|p| row_id(&p.row)))
    {
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
    if let Some(id) = diff
        .added
        .iter()
        .filter_map(|p| row_id(&p.row))
        .find(|id| held.contains(id) && !gone.contains(id))
    {
        return Err(ApplyError::DuplicateRow(id.to_owned()));
    }

    let mut inserts: Vec<&Positioned> = diff.changed.iter().chain(&diff.added).collect();
    inserts.sort_by_key(|p| p.pos);
    let untouched_len = rows
        .iter()
        .filter(|r| !row_id(r).is_some_and(|id| gone.contains(id)))
        .count();
    let new_len = untouched_len + inserts.len();
    for (i, p) in inserts.iter().enumerate() {
        if (i > 0 && inserts[i - 1].pos == p.pos) || p.pos as usize >= new_len {
            return Err(ApplyError::BadPosition {
                pos: p.pos,
                len: new_len,
            });
        }
    }

    // Merge: walk the new positions, taking the inserted row that claims
    // each one, else the next untouched row.
    let old = std::mem::take(rows);
    let mut untouched = old
        .into_iter()
        .filter(|r| !row_id(r).is_some_and(|id| gone.contains(id)));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, v: i64) -> Row {
        [
            ("id".to_owned(), Value::Text(id.into())),
            ("v".to_owned(), Value::Int(v)),
        ]
        .into_iter()
        .collect()
    }

    fn at(pos: u32, id: &str, v: i64) -> Positioned {
        Positioned {
            pos,
            row: row(id, v),
        }
    }

    fn ids(rows: &[Row]) -> Vec<&str> {
        rows.iter().filter_map(row_id).collect()
    }

    fn diff(added: Vec<Positioned>, changed: Vec<Positioned>, removed: &[&str]) -> Diff {
        Diff {
            id: "s".into(),
            from: 1,
            seq: 2,
            added,
            changed,
            removed: removed.iter().map(|s| s.to_string()).collect(),
            count: None,
        }
    }

    #[test]
    fn the_protocol_example() {
        // docs/protocol.md: [t1, t2] + diff{added t9@0, changed t2@1, removed t1}.
        let mut rows = vec![row("t1", 0), row("t2", 0)];
        apply_rows(
            &mut rows,
            &diff(vec![at(0, "t9", 0)], vec![at(1, "t2", 5)], &["t1"]),
        )
        .unwrap();
        assert_eq!(rows, vec![row("t9", 0), row("t2", 5)]);
    }

    #[test]
    fn moves_inserts_and_appends() {
        let mut rows: Vec<Row> = ["a", "b", "c", "d"].iter().map(|id| row(id, 0)).collect();
        // d moves to the front, x is appended, b leaves.
        apply_rows(
            &mut rows,
            &diff(vec![at(3, "x", 1)], vec![at(0, "d", 0)], &["b"]),
        )
        .unwrap();
        assert_eq!(ids(&rows), ["d", "a", "c", "x"]);
        // Empty diff: nothing changes.
        apply_rows(&mut rows, &diff(vec![], vec![], &[])).unwrap();
        assert_eq!(ids(&rows), ["d", "a", "c", "x"]);
    }

    #[test]
    fn refuses_inconsistent_diffs_and_leaves_rows_alone() {
        let start: Vec<Row> = ["a", "b"].iter().map(|id| row(id, 0)).collect();
        let cases = [
            (
                diff(vec![], vec![], &["zz"]),
                ApplyError::UnknownRow("zz".into()),
            ),
            (
                diff(vec![], vec![at(0, "zz", 1)], &[]),
                ApplyError::UnknownRow("zz".into()),
            ),
            (
                diff(vec![at(0, "a", 1)], vec![], &[]),
                ApplyError::DuplicateRow("a".into()),
            ),
            (
                diff(vec![], vec![at(0, "a", 1)], &["a"]),
                ApplyError::DuplicateRow("a".into()),
            ),
            (
                diff(vec![at(0, "x", 1), at(0, "y", 1)], vec![], &[]),
                ApplyError::BadPosition { pos: 0, len: 4 },
            ),
            (
                diff(vec![at(3, "x", 1)], vec![], &[]),
                ApplyError::BadPosition { pos: 3, len: 3 },
            ),
        ];
        for (d, want) in cases {
            let mut rows = start.clone();
            assert_eq!(apply_rows(&mut rows, &d), Err(want));
            assert_eq!(rows, start);
        }
    }

    #[test]
    fn seq_checks() {
        let d = diff(vec![], vec![], &[]);
        assert_eq!(check_seq(Some(1), &d), Ok(()));
        assert_eq!(
            check_seq(Some(0), &d),
            Err(ApplyError::Gap {
                from: 1,
                held: Some(0)
            })
        );
        assert_eq!(
            check_seq(None, &d),
            Err(ApplyError::Gap {
                from: 1,
                held: None
            })
        );
        let back = Diff {
            seq: 0,
            ..d.clone()
        };
        assert_eq!(
            check_seq(Some(1), &back),
            Err(ApplyError::Backwards { from: 1, seq: 0 })
        );
        let resume_confirm = Diff { seq: 1, ..d };
        assert_eq!(check_seq(Some(1), &resume_confirm), Ok(()));
    }

    /// xorshift64*, seeded.
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
        }
    }

    /// Builds the diff a server would send from `old` to `new` (rows whose
    /// content or index changed are `changed`, plus a few untouched ones
    /// for good measure), and checks that applying it yields `new`.
    #[test]
    fn random_results_round_trip() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        for _ in 0..2000 {
            let old: Vec<Row> = (0..rng.below(12))
                .map(|i| row(&format!("r{i}"), 0))
                .collect();
            let mut new: Vec<Row> = old.iter().filter(|_| rng.below(4) != 0).cloned().collect();
            for r in new.iter_mut() {
                if rng.below(3) == 0 {
                    r.insert("v".into(), Value::Int(1));
                }
            }
            for i in 0..rng.below(4) {
                let pos = rng.below(new.len() + 1);
                new.insert(pos, row(&format!("n{i}"), 2));
            }
            if new.len() > 1 && rng.below(2) == 0 {
                let (a, b) = (rng.below(new.len()), rng.below(new.len()));
                let r = new.remove(a);
                new.insert(b, r);
            }
            let old_index = |id: &str| old.iter().position(|r| row_id(r) == Some(id));
            let mut d = diff(vec![], vec![], &[]);
            for r in &old {
                let id = row_id(r).unwrap();
                if !new.iter().any(|n| row_id(n) == Some(id)) {
                    d.removed.push(id.to_owned());
                }
            }
            for (pos, r) in new.iter().enumerate() {
                let p = Positioned {
                    pos: pos as u32,
                    row: r.clone(),
                };
                match old_index(row_id(r).unwrap()) {
                    None => d.added.push(p),
                    Some(i) if i != pos || &old[i] != r || rng.below(8) == 0 => d.changed.push(p),
                    Some(_) => {}
                }
            }
            let mut rows = old.clone();
            apply_rows(&mut rows, &d)
                .unwrap_or_else(|e| panic!("{e}: {old:?} -> {new:?} via {d:?}"));
            assert_eq!(rows, new);
        }
    }
}
