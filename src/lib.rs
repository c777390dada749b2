//! pylon-workers: a realtime, live-query backend on Cloudflare Workers.
//!
//! The engine modules (everything but `glue`) know nothing of Workers and are
//! tested natively. The Workers glue compiles for wasm32 only.

pub mod live;
pub mod manifest;
pub mod query;
pub mod sql;
pub mod value;
