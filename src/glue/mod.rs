//! Workers glue for the router: the fetch entry point and response helpers.
//! wasm32 only; it maps requests onto engine calls and nothing more.

pub(crate) mod auth;
mod cold;
pub(crate) mod d1;
pub(crate) mod edge;
#[allow(dead_code)] // also for sign-in
pub(crate) mod fetch;
pub(crate) mod respond;
mod router;
pub(crate) mod schema;
pub(crate) mod verify;
