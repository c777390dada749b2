//! pylon-workers: a realtime, live-query backend on Cloudflare Workers.
//!
//! The engine modules know nothing of Workers and are tested natively. The
//! Workers glue (`glue`, and the Durable Objects in `durable_objects/`)
//! compiles for wasm32 only and only maps runtime events onto engine calls.

pub mod api_error;
pub mod app;
pub mod auth;
pub mod cache;
pub mod channels;
#[cfg(all(feature = "client", not(target_arch = "wasm32")))]
pub mod client;
pub mod edge;
pub mod export;
pub mod features;
pub mod files;
pub mod functions;
pub mod host;
pub mod http;
pub mod jobs;
pub mod live;
pub mod manifest;
pub mod openapi;
pub mod policy;
pub mod protocol;
pub mod query;
pub mod route;
pub mod shard;
pub mod signin;
pub mod sim;
pub mod sql;
pub mod storage;
pub mod store;
pub mod time;
pub mod value;
pub mod workflows;

pub use store::{D1DataStore, D1Executor, DataStore};

#[cfg(target_arch = "wasm32")]
mod glue;

/// The Workers runtime an app's `export!` wires up (wasm32 only): the
/// router's entry point and the Durable Object host with the runtime's own
/// object kinds.
#[cfg(target_arch = "wasm32")]
pub mod runtime {
    pub use crate::durable_objects::do_sql::DoSql;
    pub use crate::durable_objects::host::Host;
    pub use crate::glue::functions::BundledFunctions;
    pub use crate::glue::router::fetch;
    /// The live-query shard over Durable Object storage.
    pub type LiveShard = crate::shard::LiveShard<DoSql>;
    /// The sign-in store over Durable Object storage.
    pub type AuthStore = crate::signin::object::AuthObject<DoSql>;
    /// The jobs ledger over Durable Object storage.
    #[cfg(feature = "jobs")]
    pub type JobLedgerObject = crate::jobs::JobLedger<DoSql>;
    /// A workflow instance over Durable Object storage.
    #[cfg(feature = "jobs")]
    pub type WorkflowObject = crate::workflows::WorkflowInstance<DoSql>;
    /// A cache object over Durable Object storage.
    #[cfg(feature = "cache")]
    pub type CacheObject = crate::cache::CacheObject<DoSql>;
    /// A pub/sub channel over Durable Object storage.
    #[cfg(feature = "channels")]
    pub type ChannelObject = crate::channels::ChannelObject<DoSql>;
    /// The channel list over Durable Object storage.
    #[cfg(feature = "channels")]
    pub type ChannelDirectoryObject = crate::channels::ChannelDirectory<DoSql>;
    /// What the jobs' queues deliver.
    #[cfg(feature = "jobs")]
    pub type JobBatch = worker::MessageBatch<serde_json::Value>;
    #[cfg(feature = "jobs")]
    pub use crate::glue::cron::scheduled;

    /// The Worker's queue handler.
    #[cfg(feature = "jobs")]
    pub async fn queue(
        batch: JobBatch,
        env: worker::Env,
        app: &'static crate::app::App,
    ) -> worker::Result<()> {
        crate::glue::jobs::consume(batch, &env, app).await
    }
}

#[cfg(target_arch = "wasm32")]
#[path = "../durable_objects/mod.rs"]
mod durable_objects;
