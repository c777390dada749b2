//! Platform I/O an object asks its host for, and what came of it.
//!
//! An object never awaits the platform itself: a handler that awaited a
//! `fetch()` would let other events run against its half-changed state.
//! It returns [`Action::Io`](super::Action::Io) instead; the host performs
//! the call after the event and delivers the outcome as a new event,
//! `on_io(tag, outcome)`, with the tag the object chose.

use crate::auth::{AuthError, Lease};
use crate::functions::{FnError, FunctionRun};
use crate::jobs::{JobMessage, JobRequest};
use crate::policy::AuthContext;
use crate::store::OutboxBatch;
use crate::value::Value;
use crate::workflows::WorkflowSummary;

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
    /// Hand jobs to the jobs ledger (a committed mutation's, by its shard);
    /// the ledger keeps the first job of each idempotency key, so sending
    /// the same batch again after a failure enqueues nothing twice.
    EnqueueJobs(Vec<JobRequest>),
    /// Send a job's message to the queue `queue` (the ledger's), delivered
    /// no sooner than `delay_secs` from now.
    SendJob {
        queue: String,
        message: JobMessage,
        delay_secs: u32,
    },
    /// Run a server function on someone's behalf (a workflow step).
    RunFunction(FunctionRun),
    /// Tell the jobs ledger where a workflow instance is (for listing).
    ReportWorkflow(WorkflowSummary),
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
    /// Also the outcome of `EnqueueJobs`, `SendJob` and `ReportWorkflow`.
    Applied(Result<(), String>),
    /// What the function returned, or how it failed (`UNAVAILABLE` when it
    /// could not be reached: worth another try).
    Ran(Result<Value, FnError>),
}
