//! Durable Object classes (wasm32 only). Each maps runtime callbacks onto
//! the engine in `src/shard`; platform details stay here.

mod do_sql;
mod shard;
