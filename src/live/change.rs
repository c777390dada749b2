//! One write to one row, as seen by live queries.
//!
//! ```
//! use pylon_workers::live::Change;
//! use pylon_workers::value::Row;
//! let row: Row = [("id".to_string(), "t1".into())].into();
//! let insert = Change { entity: "Todo".into(), before: None, after: Some(row) };
//! assert_eq!(insert.id(), Some("t1"));
//! ```

use crate::value::Row;

/// A write: insert (`before: None`), update (both), delete (`after: None`).
///
/// `before` must be the row as it was stored (and as live windows hold it);
/// `after` as it is stored now. Both have the same `id`.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub entity: String,
    pub before: Option<Row>,
    pub after: Option<Row>,
}

impl Change {
    /// The id of the written row.
    pub fn id(&self) -> Option<&str> {
        let row = self.after.as_ref().or(self.before.as_ref())?;
        row.get("id").and_then(|v| v.as_str())
    }
}
