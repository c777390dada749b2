//! Jobs (docs/jobs.md): Pylon's `JobOps` on Cloudflare Queues. A job is
//! asked for with a [`JobSpec`] (from a function, the Rust API or
//! `POST /v1/jobs`), recorded in the jobs ledger (one Durable Object,
//! [`ledger`]) and delivered through a queue binding to the Worker's queue
//! consumer, which runs its handler, a server function, and tells the
//! ledger how it went. The ledger keeps every job's status, attempts and
//! error durably, retries with backoff, and marks a job dead when its
//! retries are spent; a dead job can be retried by hand.

mod id;
pub mod ledger;
mod message;
mod spec;
mod status;
pub mod store;

pub use id::{job_id_for_commit, job_id_for_key};
pub use ledger::JobLedger;
pub use message::JobMessage;
pub use spec::{
    JobRequest, JobSpec, MAX_DELAY_MS, MAX_KEY_BYTES, MAX_PAYLOAD_BYTES, MAX_PRIORITY, MAX_RETRIES,
};
pub use status::JobStatus;
