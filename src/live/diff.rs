//! The change to one subscription's result, and how a client applies it.
//!
//! ```
//! use pylon_workers::live::Diff;
//! use pylon_workers::value::Row;
//! let row = |id: &str| -> Row { [("id".to_string(), id.into())].into() };
//! let mut window = vec![row("a"), row("b"), row("c")];
//! let diff = Diff { removed: vec!["b".into()], added: vec![(0, row("z"))], ..Diff::default() };
//! diff.apply_to(&mut window);
//! assert_eq!(window, vec![row("z"), row("a"), row("c")]);
//! ```
//!
//! To apply a diff to the window (the ordered rows a client holds):
//!
//! 1. remove every row whose id is in `removed`;
//! 2. insert each `(position, row)` of `added`, in the given order (ascending
//!    positions); positions are indices in the final window;
//! 3. replace the row at each `(position, row)` of `changed` (final indices);
//! 4. if `count` is set, it is the new count of a count query.
//!
//! A row whose content changed without moving relative to the other rows is
//! in `changed`; a row that moved is removed and added again.

use serde::{Deserialize, Serialize};

use crate::value::Row;

/// What changed in a subscription's result. Empty when nothing did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Diff {
    /// Ids of rows that left the window (or moved inside it).
    pub removed: Vec<String>,
    /// Rows that entered (or moved), at their final positions, ascending.
    pub added: Vec<(usize, Row)>,
    /// Rows whose content changed in place, at their final positions.
    pub changed: Vec<(usize, Row)>,
    /// The new count of a count query, when it changed.
    pub count: Option<u64>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty()
            && self.added.is_empty()
            && self.changed.is_empty()
            && self.count.is_none()
    }

    /// Applies this diff to a client's copy of the window.
    pub fn apply_to(&self, rows: &mut Vec<Row>) {
        if !self.removed.is_empty() {
            rows.retain(|r| {
                let id = r.get("id").and_then(|v| v.as_str()).unwrap_or_default();
                !self.removed.iter().any(|x| x == id)
            });
        }
        for (pos, row) in &self.added {
            rows.insert((*pos).min(rows.len()), row.clone());
        }
        for (pos, row) in &self.changed {
            if let Some(slot) = rows.get_mut(*pos) {
                *slot = row.clone();
            }
        }
    }
}
