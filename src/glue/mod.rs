//! Workers glue for the router: the fetch entry point and response helpers.
//! wasm32 only; it maps requests onto engine calls and nothing more.

pub(crate) mod auth;
#[allow(dead_code)] // used by the cold-path routes and the outbox alarm
pub(crate) mod d1;
pub(crate) mod respond;
mod router;
