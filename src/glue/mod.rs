//! Workers glue for the router: the fetch entry point and response helpers.
//! wasm32 only; it maps requests onto engine calls and nothing more.

pub(crate) mod auth;
mod auth_store;
pub(crate) mod body;
mod cold;
pub(crate) mod d1;
pub(crate) mod edge;
pub(crate) mod fetch;
mod random;
pub(crate) mod respond;
mod router;
pub(crate) mod schema;
mod session_gate;
mod signin;
pub(crate) mod verify;
