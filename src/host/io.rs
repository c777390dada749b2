//! Platform I/O an object asks its host for, and what came of it.
//!
//! An object never awaits the platform itself: a handler that awaited a
//! `fetch()` would let other events run against its half-changed state.
//! It returns [`Action::Io`](super::Action::Io) instead; the host performs
//! the call after the event and delivers the outcome as a new event,
//! `on_io(tag, outcome)`, with the tag the object chose.

use crate::auth::{AuthError, Lease};
use crate::policy::AuthContext;
use crate::store::OutboxBatch;

/// A call the host performs on an object's behalf.
#[derive(Clone, Debug, PartialEq)]
pub enum IoCall {
    /// Verify a bearer token exactly as the router does (HS256, JWKS keys,
    /// our own session tokens).
    VerifyToken { token: String },
    /// Whether the session `sid` (one of our session tokens') is still live,
    /// asked of the Auth object (not of a cache).
    SessionLive { sid: String },
    /// Count one hit against a Rate Limiting binding under `key`.
    RateLimit { binding: &'static str, key: String },
    /// Apply a batch of the object's outbox to D1 (idempotent by shard and
    /// seq; see docs/d1.md).
    ApplyOutbox(OutboxBatch),
}

/// The outcome of an [`IoCall`], by call.
#[derive(Clone, Debug, PartialEq)]
pub enum IoOutcome {
    /// The caller and how long its identity lasts.
    Verified(Result<(AuthContext, Lease), AuthError>),
    /// `Err` when the Auth object could not tell (ask again later).
    SessionLive(Result<bool, String>),
    RateLimited {
        allowed: bool,
    },
    /// `Err` names the stage that failed; the detail (D1's text) went to
    /// the Worker's log, never into an answer or the object's records.
    Applied(Result<(), String>),
}
