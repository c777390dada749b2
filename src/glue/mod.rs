//! Workers glue for the router: the fetch entry point, the bindings it
//! uses, and response helpers.
//! wasm32 only; it maps requests onto engine calls and nothing more.

mod actions;
pub(crate) mod auth;
mod auth_store;
pub(crate) mod body;
#[cfg(feature = "cache")]
mod cache;
#[cfg(feature = "channels")]
pub(crate) mod channels;
pub(crate) mod cold;
#[cfg(feature = "jobs")]
pub(crate) mod cron;
pub(crate) mod d1;
pub(crate) mod edge;
pub(crate) mod fetch;
#[cfg(feature = "files")]
mod files;
pub(crate) mod functions;
pub(crate) mod internal;
#[cfg(feature = "jobs")]
pub(crate) mod jobs;
#[cfg(feature = "openapi")]
mod openapi;
mod random;
#[cfg(feature = "files")]
mod r2;
pub(crate) mod respond;
pub(crate) mod rooms;
pub(crate) mod router;
pub(crate) mod run;
mod session_gate;
pub(crate) mod signin;
pub(crate) mod target;
pub(crate) mod verify;
mod webcrypto;
#[cfg(feature = "jobs")]
pub(crate) mod workflows;
