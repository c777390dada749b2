//! The Durable Object host on Workers (wasm32 only): `host.rs` maps runtime
//! callbacks onto an object kind (`crate::host::Object`), `io.rs` performs
//! the I/O kinds ask for, `do_sql.rs` is their storage. The classes
//! themselves are written by an app's `export!` (docs/host.md).

pub(crate) mod do_sql;
pub(crate) mod host;
mod io;
mod turn;
