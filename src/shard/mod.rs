//! The shard engine: what one Durable Object does with its storage and its
//! connections, with no Workers types (see `durable_objects/` for the glue).

mod config;
mod engine;
pub mod http_query;
pub(crate) mod limiter;
mod object;
mod pacer;
mod presence;
mod refusal;
pub mod rooms;
pub mod store;

pub use config::{ConfigError, ShardConfig, VARS as CONFIG_VARS};
pub use engine::{
    outbox_backoff_ms, ConnInfo, Ended, JobBatch, Outbound, ShardEngine, JOBS_PER_SEND,
    JOB_OUTBOX_ATTEMPTS, JOB_OUTBOX_ERROR, MAX_JOBS_PER_CALL, OUTBOX_ATTEMPTS, OUTBOX_ERROR,
};
pub use limiter::REFUSAL_WINDOW_MS;
pub use object::{LiveShard, DRAIN_DELAY_MS, JOBS_ANSWER_WAIT_MS};
pub use pacer::FlushPacer;
pub use presence::PresenceBook;
pub use store::{OutboxEntry, OutboxJob, SchemaError, ShardStore};
