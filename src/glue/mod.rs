//! Workers glue for the router: the fetch entry point, the bindings it
//! uses, and response helpers.
//! wasm32 only; it maps requests onto engine calls and nothing more.

mod actions;
pub(crate) mod auth;
mod auth_store;
pub(crate) mod body;
mod cache;
pub(crate) mod channels;
pub(crate) mod cold;
pub(crate) mod cron;
pub(crate) mod d1;
pub(crate) mod edge;
pub(crate) mod fetch;
mod files;
pub(crate) mod functions;
pub(crate) mod internal;
pub(crate) mod jobs;
mod openapi;
mod random;
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
pub(crate) mod workflows;
