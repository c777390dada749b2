//! Platform I/O an object asks its host for, and what came of it.
//!
//! An object never awaits the platform itself: a handler that awaited a
//! `fetch()` would let other events run against its half-changed state.
//! It returns [`Action::Io`](super::Action::Io) instead; the host performs
//! the call after the event and delivers the outcome as a new event,
//! `on_io(tag, outcome)`, with the tag the object chose.

use crate::auth::AuthError;
use crate::policy::AuthContext;
use crate::store::OutboxBatch;

/// A call the host performs on an object's behalf.
#[derive(Clone, Debug, PartialEq)]
pub enum IoCall {
    /// Verify a bearer token exactly as the router does (HS256, JWKS keys,
    /// our own session tokens).
    VerifyToken { token: String },
    /// Count one hit against a Rate Limiting binding under `key`.
    RateLimit { binding: &'static str, key: String },
    /// Apply a batch of the object's outbox to D1 (idempotent by shard and
    /// seq; see docs/d1.md).
    ApplyOutbox(OutboxBatch),
}

/// The outcome of an [`IoCall`], by call.
#[derive(Clone, Debug, PartialEq)]
pub enum IoOutcome {
    Verified(Result<AuthContext, AuthError>),
    RateLimited {
        allowed: bool,
    },
    /// `Err` carries what failed, for the object's records and the log.
    Applied(Result<(), String>),
}
