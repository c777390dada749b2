//! What happens at a tick and around it: the snapshots that follow, when
//! ticking starts and stops, persisting the state, finishing.

use std::collections::BTreeMap;

use super::{Act, Member, Msg, SimShard, TICK_TIMER};
use crate::host::Action;
use crate::sim::driver::Rejection;
use crate::sim::error::SimError;
use crate::sim::schedule::Schedule;
use crate::sim::wire::{self, close, SimErr, SimServerMsg, SnapshotMsg, Welcome};
use crate::sim::SimState;
use crate::storage::SqlConn;

impl<S: SimState, C: SqlConn> SimShard<S, C> {
    pub(super) fn welcome(&self, conn: &str, m: &Member) -> Msg<S> {
        SimServerMsg::Welcome(Welcome {
            protocol: wire::SIM_PROTOCOL.into(),
            sim: self.name.clone(),
            kind: self.config.kind.into(),
            conn: conn.into(),
            subscriber: m.subscriber.clone(),
            tick: self.sim.tick(),
            acked: self.sim.acked(&m.subscriber),
            tick_hz: self.config.tick_hz,
            encoding: m.encoding,
        })
    }

    pub(super) fn snapshot_for(&self, subscriber: &str, is_final: bool) -> Msg<S> {
        SimServerMsg::Snapshot(SnapshotMsg {
            tick: self.sim.tick(),
            acked: self.sim.acked(subscriber),
            is_final,
            snapshot: self.sim.state().snapshot_for(subscriber),
        })
    }

    /// Every socket's snapshot: one per subscriber, to its sockets.
    pub(super) fn snapshots(&self, is_final: bool, out: &mut Vec<Act<S>>) {
        let mut groups: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (conn, m) in &self.conns {
            groups.entry(&m.subscriber).or_default().push(conn.clone());
        }
        for (subscriber, conns) in groups {
            out.push(Action::Many {
                conns,
                msg: self.snapshot_for(subscriber, is_final),
            });
        }
    }

    /// Sends `err` to the sockets of `subscriber`.
    pub(super) fn tell(&self, subscriber: &str, err: &SimError, out: &mut Vec<Act<S>>) {
        let conns: Vec<String> = self
            .conns
            .iter()
            .filter(|(_, m)| m.subscriber == subscriber)
            .map(|(c, _)| c.clone())
            .collect();
        if !conns.is_empty() {
            out.push(Action::Many {
                conns,
                msg: SimServerMsg::Err(SimErr::of(err, None)),
            });
        }
    }

    /// Starts ticking (real-time kinds), if it is not.
    pub(super) fn start(&mut self, now_ms: i64, out: &mut Vec<Act<S>>) {
        self.idle = 0;
        if self.config.is_event_driven() || self.finished || self.schedule.is_some() {
            return;
        }
        let s = Schedule::start(self.config.tick_hz, now_ms);
        out.push(Action::SetTimer {
            name: TICK_TIMER.into(),
            at_ms: s.due_ms(),
        });
        self.schedule = Some(s);
    }

    /// Stops ticking: no timer is left, so the object has no alarm. The
    /// state is persisted, so a wake restores it without a replay.
    pub(super) fn stop(&mut self, now_ms: i64) {
        self.schedule = None;
        if self.sim.tick() > self.persisted_tick {
            self.persist(now_ms);
        }
    }

    pub(super) fn persist(&mut self, now_ms: i64) {
        let saved = self
            .store
            .save_state(self.sim.figures(), self.sim.state(), now_ms);
        if let Err(e) = saved {
            self.persist_failures += 1;
            self.notes
                .push(format!("sim {}: persisting the state: {e}", self.name));
            return;
        }
        self.persisted_tick = self.sim.tick();
        if !self.state_checked {
            // A state that does not read back would fail only at the next
            // wake; say so now, once per wake.
            self.state_checked = true;
            if let Err(e) = self.store.load_state::<S>() {
                self.persist_failures += 1;
                self.notes.push(format!(
                    "sim {}: the persisted state does not read back: {e}",
                    self.name
                ));
            }
        }
        let pruned = self
            .store
            .prune(self.persisted_tick, self.config.max_log_inputs);
        if let Err(e) = pruned {
            self.notes
                .push(format!("sim {}: pruning the input log: {e}", self.name));
        }
    }

    /// Runs `n` ticks (fewer if the simulation finishes), then sends each
    /// socket its snapshot. Returns the inputs the state refused.
    pub(super) fn run_ticks(
        &mut self,
        n: u64,
        now_ms: i64,
        out: &mut Vec<Act<S>>,
    ) -> Vec<Rejection> {
        let mut rejected = Vec::new();
        for _ in 0..n {
            let had_input = self.sim.queued() > 0;
            rejected.extend(self.sim.step());
            self.idle = if had_input || !self.conns.is_empty() {
                0
            } else {
                self.idle.saturating_add(1)
            };
            if self.sim.state().is_finished() {
                break;
            }
            if self
                .sim
                .tick()
                .is_multiple_of(u64::from(self.config.persist_every_ticks))
            {
                self.persist(now_ms);
            }
        }
        for r in &rejected {
            let e = SimError::InputRejected {
                seq: r.seq,
                reason: r.reason.clone(),
            };
            self.tell(&r.subscriber, &e, out);
        }
        let finished = self.sim.state().is_finished();
        self.snapshots(finished, out);
        if finished {
            self.finish(now_ms, out);
        }
        rejected
    }

    /// The simulation finished: everyone got the final snapshot; persist
    /// it, close every socket, tick no more.
    pub(super) fn finish(&mut self, now_ms: i64, out: &mut Vec<Act<S>>) {
        self.finished = true;
        if self.schedule.take().is_some() {
            out.push(Action::CancelTimer {
                name: TICK_TIMER.into(),
            });
        }
        self.persist(now_ms);
        for conn in self.conns.keys() {
            out.push(Action::Close {
                conn: conn.clone(),
                code: close::FINISHED,
                reason: "the simulation finished".into(),
            });
        }
    }
}
