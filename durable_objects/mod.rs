//! Durable Object classes (wasm32 only). Each maps runtime callbacks onto
//! the engine in `src/shard` and `src/signin`; platform details stay here.

mod auth;
mod do_sql;
mod shard;
