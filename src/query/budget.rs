//! Keeping a page of rows within a byte budget
//! ([`limits::MAX_RESULT_BYTES`](super::limits::MAX_RESULT_BYTES)): rows are
//! taken while the whole answer — envelope, rows and the `next` cursor it
//! would end with — still fits.
//!
//! ```
//! use pylon_workers::query::budget::{json_len, PageBudget};
//! let row = serde_json::json!({"id": "a", "title": "x".repeat(150)});
//! let envelope = json_len(&serde_json::json!({"rows": [], "next": null}));
//! let mut page = PageBudget::new(300, envelope);
//! assert!(page.take(json_len(&row), 10));
//! assert!(!page.take(json_len(&row), 10)); // a second one would pass 300 bytes
//! assert!(page.used() <= 300);
//! ```

use serde::Serialize;

/// Bytes of `value` as compact JSON (`serde_json::to_vec(value).len()`),
/// counted without building the text.
pub fn json_len(value: &impl Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut n = Count(0);
    // Writing to a counter fails only if serializing does: count nothing.
    match serde_json::to_writer(&mut n, value) {
        Ok(()) => n.0,
        Err(_) => 0,
    }
}

/// The bytes of one answer being filled with rows.
#[derive(Clone, Debug)]
pub struct PageBudget {
    limit: usize,
    /// The answer with no rows and a null `next`, plus the rows taken and
    /// their separators.
    used: usize,
    rows: usize,
}

impl PageBudget {
    /// `envelope`: the JSON bytes of the answer with no rows and `next`
    /// null.
    pub fn new(limit: usize, envelope: usize) -> Self {
        PageBudget {
            limit,
            used: envelope,
            rows: 0,
        }
    }

    /// Takes a row of `row` bytes if the answer, ending after it with a
    /// `next` of `next` bytes (its JSON, quotes included), stays within the
    /// limit; `false` leaves the budget as it was.
    pub fn take(&mut self, row: usize, next: usize) -> bool {
        let sep = usize::from(self.rows > 0);
        let total = self.used + sep + row + next;
        if total > self.limit {
            return false;
        }
        self.used += sep + row;
        self.rows += 1;
        true
    }

    /// Whether the answer, ending now with a `next` of `next` bytes, stays
    /// within the limit.
    pub fn fits_next(&self, next: usize) -> bool {
        self.used + next <= self.limit
    }

    /// What the answer needs for one more row: the bytes it would have.
    pub fn needed(&self, row: usize, next: usize) -> usize {
        self.used + usize::from(self.rows > 0) + row + next
    }

    /// The bytes of the rows taken and the envelope, without `next`.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Rows taken.
    pub fn rows(&self) -> usize {
        self.rows
    }
}
