//! The bytes of presence each connection holds and their total, so both
//! bounds (per connection, per shard; docs/protocol.md, "Limits") are
//! checked without reading anyone's presence. Storage holds the presence
//! itself; this is a cache of its sizes, rebuilt from storage whenever the
//! engine opens (one `length()` per stored presence, no state read).
//!
//! ```
//! use pylon_workers::protocol::{ErrorCode, Limits};
//! use pylon_workers::shard::PresenceBook;
//! let limits = Limits { max_presence_bytes: 10, max_presence_total_bytes: 15, ..Limits::default() };
//! let mut book = PresenceBook::default();
//! book.admit("a", 10, &limits).unwrap();
//! book.set("a", Some(10));
//! assert_eq!(book.admit("b", 11, &limits).unwrap_err().code, ErrorCode::PresenceTooLarge);
//! assert_eq!(book.admit("b", 6, &limits).unwrap_err().code, ErrorCode::PresenceTooLarge);
//! book.admit("a", 4, &limits).unwrap(); // replacing its own counts once
//! ```

use std::collections::HashMap;

use super::store::ShardStore;
use crate::protocol::{ErrorCode, ErrorMsg, Limits};
use crate::storage::{SqlConn, StorageError};

/// Presence sizes by connection (bytes of the stored JSON).
#[derive(Clone, Debug, Default)]
pub struct PresenceBook {
    sizes: HashMap<String, usize>,
    total: usize,
}

impl PresenceBook {
    /// The sizes of what `store` holds.
    pub fn load<C: SqlConn>(store: &ShardStore<C>) -> Result<Self, StorageError> {
        let mut book = PresenceBook::default();
        for (conn, size) in store.presence_sizes()? {
            book.set(&conn, Some(size));
        }
        Ok(book)
    }

    /// Whether `conn` holds a presence.
    pub fn holds(&self, conn: &str) -> bool {
        self.sizes.contains_key(conn)
    }

    /// How many hold a presence (sockets and HTTP members).
    pub fn len(&self) -> usize {
        self.sizes.len()
    }

    /// Whether none does.
    pub fn is_empty(&self) -> bool {
        self.sizes.is_empty()
    }

    /// Bytes of presence the shard holds.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Whether `conn` may hold `size` bytes of presence instead of what it
    /// holds now; `PRESENCE_TOO_LARGE` if not.
    pub fn admit(&self, conn: &str, size: usize, limits: &Limits) -> Result<(), ErrorMsg> {
        let refuse = |message: String| ErrorMsg {
            code: ErrorCode::PresenceTooLarge,
            message,
            op: None,
            sub: None,
        };
        if size > limits.max_presence_bytes {
            return Err(refuse(format!(
                "a presence of {size} bytes is over the {} byte limit per connection",
                limits.max_presence_bytes
            )));
        }
        let others = self.total - self.sizes.get(conn).copied().unwrap_or(0);
        if others + size > limits.max_presence_total_bytes {
            return Err(refuse(format!(
                "this shard's presence would exceed its {} byte total; keep it smaller \
                 or try again later",
                limits.max_presence_total_bytes
            )));
        }
        Ok(())
    }

    /// `conn` now holds `size` bytes of presence (`None`: none).
    pub fn set(&mut self, conn: &str, size: Option<usize>) {
        let old = match size {
            Some(s) => self.sizes.insert(conn.to_owned(), s),
            None => self.sizes.remove(conn),
        };
        self.total = self.total - old.unwrap_or(0) + size.unwrap_or(0);
    }
}
