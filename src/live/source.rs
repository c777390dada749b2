//! Where a limited window gets the rows that enter it when others leave.
//!
//! ```
//! use pylon_workers::live::WindowSource;
//! use pylon_workers::query::Query;
//! use pylon_workers::value::Row;
//! /// A store with nothing in it.
//! struct Empty;
//! impl WindowSource for Empty {
//!     type Error = std::convert::Infallible;
//!     async fn rows_after(&self, _: &Query, _: Option<&Row>, _: usize) -> Result<Vec<Row>, Self::Error> {
//!         Ok(Vec::new())
//!     }
//! }
//! ```

use crate::query::Query;
use crate::value::Row;

/// Reads rows of a query from the store, as it is after the write being
/// maintained. An implementation runs `query.page(after, n).to_sql()` and
/// decodes rows with `Query::decode_row`.
///
/// No `Send` bound: it runs in a single-threaded (wasm) Durable Object.
#[allow(async_fn_in_trait)]
pub trait WindowSource {
    type Error;

    /// Up to `n` rows matching `query`'s filter that sort strictly after
    /// `after` (or after the query's own cursor, or from the start, when
    /// `None`), in order. Fewer than `n` rows means there are no more.
    async fn rows_after(
        &self,
        query: &Query,
        after: Option<&Row>,
        n: usize,
    ) -> Result<Vec<Row>, Self::Error>;
}
