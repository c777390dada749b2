//! The durability contract (docs/sims.md, "Durability"): every input a
//! sender saw acknowledged is reflected after any number of evictions at
//! random points (event-driven and real-time), a restore resumes from the
//! persisted tick, the replay of the input log reproduces the state, and a
//! state that panics restarts from its persisted state with nothing
//! acknowledged lost.

mod sim_support;

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;

use pylon_workers::host::Method;
use pylon_workers::protocol::Encoding;
use pylon_workers::sim::counter::{Add, Counter, Total};
use pylon_workers::sim::{replay, Now, ReplayError, ReplayLog, SimConfig, SimRng, SimState, Step};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sim_support::*;

/// A socket and the next seq it sends.
struct Sock {
    conn: String,
    encoding: Encoding,
    next: u64,
}

fn sockets<S: SimState>(h: &mut Host<S>) -> Vec<Sock> {
    [Encoding::Json, Encoding::Postcard]
        .into_iter()
        .map(|encoding| Sock {
            conn: h.connect(encoding).unwrap(),
            encoding,
            next: 1,
        })
        .collect()
}

#[test]
fn every_acknowledged_add_survives_random_evictions() {
    for round in 0..20 {
        let mut rng = SimRng::new(round);
        let (mut h, _) = host::<Counter>(&format!("evict-{round}"));
        let mut socks = sockets(&mut h);
        let (mut sum, mut count, mut evictions) = (0i64, 0u64, 0);
        for _ in 0..150 {
            let add = 1 + rng.below(1000) as i64;
            match rng.below(10) {
                0 => {
                    h.evict();
                    evictions += 1;
                }
                1..=4 => {
                    let s = &mut socks[rng.below(2) as usize];
                    received::<Counter, Total>(&mut h, &s.conn);
                    send(&mut h, &s.conn, s.encoding, s.next, Add::new(add).unwrap());
                    let got = received::<Counter, Total>(&mut h, &s.conn);
                    if acks(&got).iter().any(|a| a.seq == s.next && !a.dup) {
                        sum += add;
                        count += 1;
                    }
                    s.next += 1;
                }
                5..=7 => {
                    if post(&mut h, json!({ "add": add })).status == 200 {
                        sum += add;
                        count += 1;
                    }
                }
                8 => {
                    assert_eq!(post(&mut h, json!({ "add": add + 1000 })).status, 400);
                }
                _ => assert_eq!(stats(&mut h)["total"], sum, "round {round}"),
            }
        }
        h.evict();
        let s = stats(&mut h);
        assert_eq!(s["total"], sum, "round {round}");
        assert_eq!(
            (s["tick"].as_u64(), s["inputs_applied"].as_u64()),
            (Some(count), Some(count))
        );
        assert!(evictions > 0);
        assert_eq!(h.alarm(), None);
    }
}

/// Drives `Arena` with marks from two sockets and HTTP, advancing the
/// clock and evicting at random; returns the marks acknowledged.
fn run_arena(h: &mut Host<Arena>, rng: &mut SimRng, steps: u32) -> BTreeSet<(String, u64)> {
    let mut socks = sockets(h);
    let mut acked = BTreeSet::new();
    let mut n = 0;
    for _ in 0..steps {
        n += 1;
        match rng.below(12) {
            0 => {
                let persisted = stats(h)["persisted_tick"].as_u64().unwrap();
                h.evict();
                let tick = stats(h)["tick"].as_u64().unwrap();
                assert!(
                    tick >= persisted,
                    "restored at {tick}, persisted {persisted}"
                );
            }
            1..=5 => {
                let s = &mut socks[rng.below(2) as usize];
                received::<Arena, View>(h, &s.conn);
                send(h, &s.conn, s.encoding, s.next, Cmd::Mark(n));
                let got = received::<Arena, View>(h, &s.conn);
                if acks(&got).iter().any(|a| a.seq == s.next && !a.dup) {
                    acked.insert((s.conn.clone(), n));
                }
                s.next += 1;
            }
            6..=7 => {
                if post(h, mark(n)).status == 200 {
                    acked.insert(("http".to_owned(), n));
                }
            }
            _ => h.advance(rng.below(120) as i64).unwrap(),
        }
    }
    acked
}

fn marks(h: &Host<Arena>) -> Vec<(String, u64)> {
    let state = h.object().unwrap().state();
    state
        .marks
        .iter()
        .map(|(who, n, _)| (who.clone(), *n))
        .collect()
}

#[test]
fn every_acknowledged_input_of_a_ticking_shard_survives_random_evictions() {
    for round in 0..20 {
        let mut rng = SimRng::new(1_000 + round);
        let (mut h, _) = host::<Arena>(&format!("arena-{round}"));
        let acked = run_arena(&mut h, &mut rng, 150);
        assert!(
            acked.len() > 20,
            "round {round}: {} acknowledged",
            acked.len()
        );
        h.evict();
        h.advance(100).unwrap(); // the inputs of the next tick
        let applied = marks(&h);
        let set: BTreeSet<_> = applied.iter().cloned().collect();
        assert_eq!(set.len(), applied.len(), "round {round}: applied once each");
        assert_eq!(set, acked, "round {round}");
        // Each sender's marks in the order it sent them.
        let senders: BTreeSet<&String> = applied.iter().map(|(w, _)| w).collect();
        for who in senders {
            let mine: Vec<u64> = applied
                .iter()
                .filter(|(w, _)| w == who)
                .map(|(_, n)| *n)
                .collect();
            assert!(
                mine.windows(2).all(|w| w[0] < w[1]),
                "round {round}: {who}: {mine:?}"
            );
        }
    }
}

#[test]
fn the_replay_of_the_log_reproduces_the_state() {
    for round in 0..5 {
        let mut rng = SimRng::new(2_000 + round);
        let name = format!("replay-{round}");
        let (mut h, _) = host::<Arena>(&name);
        run_arena(&mut h, &mut rng, 120);
        let r = h.request(Method::Get, "replay", json!(null)).unwrap();
        assert_eq!(r.status, 200);
        let log: ReplayLog<Cmd> = serde_json::from_value(r.body).unwrap();
        assert!(log.complete);
        let log_again = log.clone();
        let shard = h.object().unwrap();
        let replayed = replay(Arena::new(&name), log).unwrap();
        assert_eq!(replayed.tick(), shard.sim().tick());
        assert_eq!(replayed.state(), shard.state(), "round {round}");
        assert_eq!(replayed.figures().acked, shard.sim().figures().acked);
        assert_eq!(
            replayed.figures().inputs_applied,
            shard.sim().figures().inputs_applied
        );
        // Another name seeds other generators: the same inputs, another noise.
        let mut renamed = log_again.clone();
        renamed.sim.push('!');
        let other = replay(Arena::new(&name), renamed).unwrap();
        assert_ne!(other.state().noise, shard.state().noise);
        assert_eq!(other.state().marks, shard.state().marks);
    }
}

/// An event-driven kind that keeps little of its log.
#[derive(Default, Serialize, Deserialize)]
struct Short(u64);

impl SimState for Short {
    type Input = u64;
    type Snapshot = u64;
    type Error = String;
    fn config() -> SimConfig {
        SimConfig {
            max_log_inputs: 5,
            persist_every_ticks: 4,
            ..SimConfig::new("short")
        }
    }
    fn new(_: &str) -> Self {
        Short(0)
    }
    fn apply_input(&mut self, _: &str, n: u64, _: Now) -> Result<(), String> {
        self.0 += n;
        Ok(())
    }
    fn tick(&mut self, _: f64, _: Step) {}
    fn snapshot(&self) -> u64 {
        self.0
    }
    fn authorize_subscribe(
        &self,
        _: &str,
        _: &pylon_workers::policy::AuthContext,
    ) -> Result<(), String> {
        Ok(())
    }
}

#[test]
fn the_log_is_bounded_but_keeps_what_the_persisted_state_lacks() {
    let (mut h, _) = host::<Short>("short");
    for n in 1..=22 {
        assert_eq!(post(&mut h, json!(n)).status, 200);
    }
    let r = h.request(Method::Get, "replay", json!(null)).unwrap();
    let log: ReplayLog<u64> = serde_json::from_value(r.body).unwrap();
    assert!(!log.complete);
    // Persisted at tick 20; the 5 newest kept (the two after it among them).
    let kept: Vec<u64> = log.inputs.iter().map(|i| i.log).collect();
    assert_eq!(kept, [18, 19, 20, 21, 22]);
    assert_eq!(replay(Short(0), log).err(), Some(ReplayError::Incomplete));
    h.evict();
    assert_eq!(stats(&mut h)["snapshot"], (1..=22).sum::<u64>());
}

#[test]
fn a_state_that_panics_restarts_from_its_persisted_state_losing_nothing_acknowledged() {
    let (mut h, _) = host::<Arena>("boom");
    let a = h.connect(Encoding::Json).unwrap();
    let mut acked = BTreeSet::new();
    for seq in 1..=30u64 {
        send(
            &mut h,
            &a,
            Encoding::Json,
            seq,
            if seq == 20 { Cmd::Boom } else { Cmd::Mark(seq) },
        );
        if seq != 20 {
            acked.insert((a.clone(), seq));
        }
        if seq == 20 {
            ARMED.store(true, Ordering::SeqCst);
            let crashed = catch_unwind(AssertUnwindSafe(|| h.advance(50)));
            assert!(crashed.is_err(), "the tick panicked");
            // The platform resets the object after a panic.
            h.evict();
        } else {
            h.advance(50).unwrap();
        }
    }
    h.advance(100).unwrap();
    let got: BTreeSet<_> = marks(&h).into_iter().collect();
    assert_eq!(got, acked);
    assert!(!ARMED.load(Ordering::SeqCst));
    assert!(
        stats(&mut h)["ticking"].as_bool().unwrap(),
        "ticking again for its subscriber"
    );
}
