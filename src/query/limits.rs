//! The documented size limits of a query. Exceeding one is a `BAD_QUERY`
//! error (`QueryError::TooLarge`).
//!
//! ```
//! use pylon_workers::query::limits;
//! assert!(limits::MAX_PARAMS <= 100);
//! ```

/// Nesting depth of `$and` / `$or` / `$not` (the top-level `where` is depth 0).
pub const MAX_DEPTH: usize = 8;
/// Leaf predicates (one per field operator) in a `where`.
pub const MAX_PREDICATES: usize = 64;
/// Values in one `$in` / `$nin` list.
pub const MAX_IN: usize = 50;
/// Keys in `order`, not counting the implicit `id` tie-break.
pub const MAX_ORDER: usize = 4;
/// Largest `limit`.
pub const MAX_LIMIT: usize = 1000;
/// Bytes of a `$like` pattern.
pub const MAX_LIKE_PATTERN: usize = 256;
/// Bound parameters of one statement, including those of the worst-case
/// `after` cursor and the `LIMIT` (a Durable Object SQLite limit is 100).
pub const MAX_PARAMS: usize = 100;
/// Bytes of JSON one HTTP answer with rows may hold, all of it counted
/// (rows, cursor, envelope): the cold path's `POST /v1/query` and a
/// shard's `POST /v1/shards/{s}/query`. A page that would grow past it
/// ends early with `next`, so the client pages on; a single row over it is
/// `RESULT_TOO_LARGE` (413). The same 1 MiB as a WebSocket frame.
pub const MAX_RESULT_BYTES: usize = 1 << 20;
