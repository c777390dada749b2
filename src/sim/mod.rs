//! Simulation shards: Pylon's `Shard<S: SimState>` as a hosted object. A
//! user type implementing [`SimState`] (a match, a zone, an auction lot)
//! gets an input queue, a fixed-rate tick loop on the object's alarm,
//! per-subscriber snapshots, an input log that makes every acknowledged
//! input durable, and a restore after eviction. The engine here knows no
//! Workers types; docs/sims.md is the guide.
//!
//! ```
//! # #[cfg(feature = "sqlite")] {
//! use pylon_workers::host::{local::LocalHost, Method};
//! use pylon_workers::protocol::Encoding;
//! use pylon_workers::sim::counter::Counter;
//! use pylon_workers::sim::SimShard;
//! use pylon_workers::storage::SqliteConn;
//! use serde_json::json;
//! use std::rc::Rc;
//!
//! type Db = Rc<SqliteConn>;
//! let mut host = LocalHost::<Db, SimShard<Counter, Db>>::open_in_memory("c-1").unwrap();
//! let r = host.request(Method::Post, "", json!({"add": 5})).unwrap();
//! assert_eq!(r.body["snapshot"]["total"], 5);
//! host.evict(); // memory is gone; the input log is not
//! let r = host.request(Method::Get, "", json!(null)).unwrap();
//! assert_eq!((r.body["total"].as_i64(), r.body["tick"].as_i64()), (Some(5), Some(1)));
//! # }
//! ```

pub mod aoi;
mod config;
pub mod counter;
mod driver;
mod error;
pub mod matchmaking;
pub mod plane;
mod replay;
mod rng;
mod schedule;
mod shard;
mod state;
mod store;
pub mod wire;

pub use config::{var_suffix, SimConfig};
pub use driver::{Figures, Queued, Rejection, Sim};
pub use error::{SimError, SimErrorCode};
pub use replay::{replay, replay_onto, LoggedInput, ReplayError, ReplayLog};
pub use rng::{seed_of, SimRng};
pub use schedule::Schedule;
pub use shard::{
    check_subscriber, is_connection_id, SimConn, SimShard, HTTP_SUBSCRIBER, MAX_SUBSCRIBER_LEN,
    TICK_TIMER,
};
pub use state::{default_authorize_subscribe, Now, SimState, Step};

/// The Rust examples of docs/sims.md, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/sims.md")]
pub struct SimsGuide;

// The classes a Worker exports for these kinds are objects over Durable
// Object storage (checked here, where the wasm32 build sees them).
#[cfg(target_arch = "wasm32")]
const _: () = {
    use crate::runtime::DoSql;
    fn object<K: crate::host::Object<DoSql>>() {}
    let _ = object::<SimShard<counter::Counter, DoSql>>;
    let _ = object::<SimShard<plane::Plane, DoSql>>;
    let _ = object::<matchmaking::Matchmaker<matchmaking::Pairs, DoSql>>;
};
