//! A shard's input log, replayed natively: `GET …/replay` answers a
//! [`ReplayLog`], and [`replay`] runs it onto an initial state with the
//! same driver the shard runs, so a deterministic `SimState` ends where
//! the shard is.
//!
//! ```
//! use pylon_workers::sim::counter::Counter;
//! use pylon_workers::sim::{replay, ReplayLog, SimState};
//! let log: ReplayLog<_> = serde_json::from_value(serde_json::json!({
//!     "kind": "counter", "sim": "c-1", "tick": 2, "tick_hz": 0, "complete": true,
//!     "inputs": [
//!         {"log": 1, "tick": 1, "subscriber": "c1", "seq": 1, "at_ms": 10, "input": {"add": 5}},
//!         {"log": 2, "tick": 2, "subscriber": "c1", "seq": 2, "at_ms": 20, "input": {"add": 7}},
//!     ],
//! })).unwrap();
//! let sim = replay(Counter::new("c-1"), log).unwrap();
//! assert_eq!((sim.state().total(), sim.tick(), sim.acked("c1")), (12, 2, 2));
//! ```

use serde::{Deserialize, Serialize};

use super::driver::{Queued, Sim};
use super::state::SimState;

/// The answer of `GET …/replay`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplayLog<I> {
    pub kind: String,
    /// The shard's name (it seeds the generators).
    pub sim: String,
    /// The last tick the shard ran.
    pub tick: u64,
    pub tick_hz: u32,
    /// Whether the log reaches back to the first input (older inputs are
    /// dropped beyond `max_log_inputs`).
    pub complete: bool,
    /// In log order. Inputs for the tick after `tick` are waiting for it.
    pub inputs: Vec<LoggedInput<I>>,
}

/// One logged input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoggedInput<I> {
    pub log: u64,
    /// The tick it is applied before.
    pub tick: u64,
    pub subscriber: String,
    pub seq: u64,
    pub at_ms: i64,
    pub input: I,
}

/// Why a log cannot be replayed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("the log does not reach back to the first input (it was bounded); replay it onto the state it starts from")]
    Incomplete,
    #[error("input {log} is for tick {tick}, after the log's last tick {last} + 1")]
    BeyondTick { log: u64, tick: u64, last: u64 },
}

/// Replays a complete log onto `initial` (the kind's `S::new(name)`, or
/// the state the log starts from): the driver at `log.tick`, with the
/// inputs for the tick after it still queued. Ticks cover `1 / tick_hz`
/// of the log (the rate the shard ran at, which a deployment may set).
pub fn replay<S: SimState>(initial: S, log: ReplayLog<S::Input>) -> Result<Sim<S>, ReplayError> {
    if !log.complete {
        return Err(ReplayError::Incomplete);
    }
    let sim = Sim::resume(&log.sim, initial, Default::default()).at_rate(log.tick_hz);
    replay_onto(sim, log)
}

/// Feeds `log` to `sim` (whose tick is where the log starts) and runs
/// through the log's last tick.
pub fn replay_onto<S: SimState>(
    mut sim: Sim<S>,
    log: ReplayLog<S::Input>,
) -> Result<Sim<S>, ReplayError> {
    if let Some(q) = log.inputs.iter().find(|q| q.tick > log.tick + 1) {
        return Err(ReplayError::BeyondTick {
            log: q.log,
            tick: q.tick,
            last: log.tick,
        });
    }
    sim.feed_log(log.inputs.into_iter().map(|q| Queued {
        log: q.log,
        tick: q.tick,
        subscriber: q.subscriber,
        seq: q.seq,
        at_ms: q.at_ms,
        input: q.input,
    }));
    while sim.tick() < log.tick {
        sim.step();
    }
    Ok(sim)
}
