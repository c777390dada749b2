//! The deterministic core of a simulation shard: the state, its tick
//! number, the queue of inputs for the next tick and what each subscriber
//! had applied. No storage, no sockets, no clock: the shard (`shard.rs`)
//! feeds it, and a restore or a replay feeds it the input log the same way.
//!
//! A tick applies the queued inputs in arrival order, then calls
//! `SimState::tick`. An input logged while tick `t` was the last one run
//! carries `tick = t + 1`: it is applied right before that tick.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::config::dt_of;
use super::rng::{seed_of, SimRng};
use super::state::{Now, SimState, Step};

/// An input waiting for its tick, as logged.
#[derive(Clone, Debug, PartialEq)]
pub struct Queued<I> {
    /// Its position in the shard's input log (1, 2, …; never reused).
    pub log: u64,
    /// The tick it is applied before.
    pub tick: u64,
    pub subscriber: String,
    /// The sender's sequence number (per subscriber, increasing).
    pub seq: u64,
    pub at_ms: i64,
    pub input: I,
}

/// What the engine keeps beside the state (persisted with it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// The last tick run (0 before the first).
    pub tick: u64,
    /// Per subscriber, the last seq the state processed (applied, or
    /// refused with `Err`): what client-side prediction reconciles to.
    pub acked: BTreeMap<String, u64>,
    pub inputs_applied: u64,
    /// Inputs the state answered with `Err`.
    pub inputs_rejected: u64,
    /// Ticks a late wake did not run.
    pub ticks_skipped: u64,
    /// The last log position handed out.
    pub logged: u64,
}

/// An input the state refused while ticking.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    pub subscriber: String,
    pub seq: u64,
    pub reason: String,
}

/// A simulation in memory.
pub struct Sim<S: SimState> {
    pub(crate) state: S,
    pub(crate) figures: Figures,
    queue: VecDeque<Queued<S::Input>>,
    seed: u64,
    dt: f64,
}

impl<S: SimState> Sim<S> {
    /// A new shard named `name`, at tick 0.
    pub fn new(name: &str) -> Self {
        Self::resume(name, S::new(name), Figures::default())
    }

    /// The shard named `name` from a persisted state.
    pub fn resume(name: &str, state: S, figures: Figures) -> Self {
        Sim {
            state,
            figures,
            queue: VecDeque::new(),
            seed: seed_of(name),
            dt: S::config().dt(),
        }
    }

    /// The same simulation ticking at `tick_hz` (`dt = 1 / tick_hz`; 0:
    /// event-driven) instead of its kind's configured rate: a deployment's
    /// setting ([`SimConfig::with_vars`](super::SimConfig::with_vars)) or
    /// the rate a replayed log ran at.
    pub fn at_rate(mut self, tick_hz: u32) -> Self {
        self.dt = dt_of(tick_hz);
        self
    }

    pub fn state(&self) -> &S {
        &self.state
    }

    pub fn figures(&self) -> &Figures {
        &self.figures
    }

    pub fn tick(&self) -> u64 {
        self.figures.tick
    }

    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The last seq of `subscriber` the state processed (0: none).
    pub fn acked(&self, subscriber: &str) -> u64 {
        self.figures.acked.get(subscriber).copied().unwrap_or(0)
    }

    /// Queues a logged input for its tick.
    pub fn enqueue(&mut self, q: Queued<S::Input>) {
        self.figures.logged = self.figures.logged.max(q.log);
        self.queue.push_back(q);
    }

    /// Runs the next tick: the queued inputs in order, then `tick`.
    /// Returns the inputs the state refused.
    pub fn step(&mut self) -> Vec<Rejection> {
        let number = self.figures.tick + 1;
        let mut refused = Vec::new();
        while let Some(q) = self.queue.pop_front() {
            let now = Now {
                tick: number,
                ms: q.at_ms,
                rng: SimRng::for_input(self.seed, q.log),
            };
            match self.state.apply_input(&q.subscriber, q.input, now) {
                Ok(()) => self.figures.inputs_applied += 1,
                Err(e) => {
                    self.figures.inputs_rejected += 1;
                    refused.push(Rejection {
                        subscriber: q.subscriber.clone(),
                        seq: q.seq,
                        reason: e.to_string(),
                    });
                }
            }
            let acked = self.figures.acked.entry(q.subscriber).or_insert(0);
            *acked = (*acked).max(q.seq);
        }
        let step = Step {
            number,
            rng: SimRng::for_tick(self.seed, number),
        };
        self.state.tick(self.dt, step);
        self.figures.tick = number;
        refused
    }

    /// Feeds logged inputs (log order, each with `tick` after the current
    /// one): the ticks before each input's tick run as they ran first; the
    /// inputs of the last tick stay queued, since that tick may not have
    /// run yet.
    pub fn feed_log(&mut self, rows: impl IntoIterator<Item = Queued<S::Input>>) {
        for q in rows {
            if q.tick <= self.figures.tick {
                continue; // already in the state
            }
            while self.figures.tick + 1 < q.tick {
                self.step();
            }
            self.enqueue(q);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::SimConfig;
    use serde::{Deserialize, Serialize};

    /// Records every call, so the order is visible.
    #[derive(Serialize, Deserialize, Default)]
    struct Trace(Vec<String>);

    impl SimState for Trace {
        type Input = String;
        type Snapshot = usize;
        type Error = String;
        fn config() -> SimConfig {
            SimConfig::new("trace")
        }
        fn new(_: &str) -> Self {
            Trace::default()
        }
        fn apply_input(&mut self, who: &str, input: String, now: Now) -> Result<(), String> {
            if input == "bad" {
                return Err("bad input".into());
            }
            self.0.push(format!("{who}:{input}@{}", now.tick));
            Ok(())
        }
        fn tick(&mut self, _: f64, step: Step) {
            self.0.push(format!("t{}", step.number));
        }
        fn snapshot(&self) -> usize {
            self.0.len()
        }
    }

    fn q(log: u64, tick: u64, who: &str, seq: u64, input: &str) -> Queued<String> {
        Queued {
            log,
            tick,
            subscriber: who.into(),
            seq,
            at_ms: 0,
            input: input.into(),
        }
    }

    #[test]
    fn inputs_go_first_in_order_and_refusals_are_counted() {
        let mut sim = Sim::<Trace>::new("s");
        sim.enqueue(q(1, 1, "a", 1, "x"));
        sim.enqueue(q(2, 1, "b", 4, "bad"));
        sim.enqueue(q(3, 1, "a", 2, "y"));
        let refused = sim.step();
        assert_eq!(sim.state.0, ["a:x@1", "a:y@1", "t1"]);
        assert_eq!(refused.len(), 1);
        assert_eq!((sim.acked("a"), sim.acked("b")), (2, 4));
        assert_eq!(sim.figures.inputs_rejected, 1);
    }

    #[test]
    fn a_fed_log_runs_the_ticks_between_and_keeps_the_last_queued() {
        let mut sim = Sim::<Trace>::new("s");
        sim.feed_log([
            q(1, 1, "a", 1, "x"),
            q(2, 3, "a", 2, "y"),
            q(3, 3, "b", 1, "z"),
        ]);
        assert_eq!(sim.state.0, ["a:x@1", "t1", "t2"]);
        assert_eq!((sim.tick(), sim.queued()), (2, 2));
        sim.step();
        assert_eq!(sim.state.0[3..], ["a:y@3", "b:z@3", "t3"]);
    }
}
