//! What the router adds around every request, decided without Workers
//! types: CORS for configured origins ([`cors`]), security headers
//! ([`headers`]), and the per-client / per-user rate-limit keys and answers
//! ([`limits`]). `glue::edge` applies them. See docs/edge.md.

pub mod cors;
pub mod headers;
pub mod limits;
