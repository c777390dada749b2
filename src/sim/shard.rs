//! A simulation shard as a hosted object ([`crate::host::Object`]): the
//! driver (`driver.rs`) does the simulation; this file decides when it
//! ticks (a durable timer while active, none while idle), logs every input
//! before acknowledging it, persists the state, restores it after an
//! eviction, and speaks `pylon.sim.v1` to sockets and HTTP.
//!
//! Routes (after the shard's name): `ws` (upgrade; `?subscriber=` names
//! who the socket acts as), `GET` (stats and the kind's snapshot),
//! `POST` (one input; `?seq=`, `?subscriber=`), `GET replay` (the input
//! log). docs/sims.md has the contract in prose.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};

use super::driver::{Queued, Rejection, Sim};
use super::error::SimError;
use super::schedule::Schedule;
use super::state::SimState;
use super::store::{decode_input, encode_input, LogRow, SimStore};
use super::wire::{self, close, Ack, SimClientMsg, SimErr, SimServerMsg, SnapshotMsg, Welcome};
use super::SimConfig;
use crate::api_error::ApiError;
use crate::host::timers::Timers;
use crate::host::{Action, ConnState, Method, Object, Open, OpenError, Request, Response};
use crate::policy::AuthContext;
use crate::protocol::{self, Encoding, FrameRef};
use crate::sql::MAX_SAFE_INT;
use crate::storage::meta::{self, Meta};
use crate::storage::SqlConn;

/// The durable timer that drives the ticks.
pub const TICK_TIMER: &str = "tick";
/// The subscriber of an anonymous HTTP input that names none.
pub const HTTP_SUBSCRIBER: &str = "http";
/// The longest subscriber id a client may name.
pub const MAX_SUBSCRIBER_LEN: usize = 128;

/// What a simulation socket keeps in its attachment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimConn {
    pub encoding: Encoding,
    /// The caller the router verified.
    pub auth: AuthContext,
    /// The subscriber the client named; `None`: the connection id.
    pub subscriber: Option<String>,
}

impl ConnState for SimConn {
    fn encoding(&self) -> Encoding {
        self.encoding
    }
}

/// An open socket, as the shard uses it.
#[derive(Clone, Debug)]
struct Member {
    subscriber: String,
    auth: AuthContext,
    encoding: Encoding,
}

/// An input the shard has logged (or had logged before: `dup`).
struct Accepted {
    seq: u64,
    tick: u64,
    dup: bool,
}

type Msg<S> = SimServerMsg<<S as SimState>::Snapshot>;
type Act<S> = Action<Msg<S>, SimConn>;

/// One simulation shard of kind `S`, over storage `C`.
pub struct SimShard<S: SimState, C: SqlConn> {
    name: String,
    config: SimConfig,
    store: SimStore<C>,
    sim: Sim<S>,
    /// Open sockets by connection id.
    conns: BTreeMap<String, Member>,
    /// Set while ticking (real-time kinds only).
    schedule: Option<Schedule>,
    /// Ticks in a row with no input and no subscriber.
    idle: u32,
    finished: bool,
    /// Per subscriber, the highest seq logged: a seq at or below is a
    /// duplicate.
    taken: HashMap<String, u64>,
    persisted_tick: u64,
    /// Whether this wake has checked that the state reads back.
    state_checked: bool,
    /// Inputs refused before they were logged (this wake).
    refused: u64,
    persist_failures: u64,
    /// Lines for the Worker's log, sent with the handler's actions.
    notes: Vec<String>,
}

impl<S: SimState, C: SqlConn> SimShard<S, C> {
    pub fn state(&self) -> &S {
        self.sim.state()
    }

    pub fn sim(&self) -> &Sim<S> {
        &self.sim
    }

    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// Whether the shard is ticking (has its tick timer).
    pub fn is_ticking(&self) -> bool {
        self.schedule.is_some()
    }

    fn welcome(&self, conn: &str, m: &Member) -> Msg<S> {
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

    fn snapshot_for(&self, subscriber: &str, is_final: bool) -> Msg<S> {
        SimServerMsg::Snapshot(SnapshotMsg {
            tick: self.sim.tick(),
            acked: self.sim.acked(subscriber),
            is_final,
            snapshot: self.sim.state().snapshot_for(subscriber),
        })
    }

    /// Every socket's snapshot: one per subscriber, to its sockets.
    fn snapshots(&self, is_final: bool, out: &mut Vec<Act<S>>) {
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
    fn tell(&self, subscriber: &str, err: &SimError, out: &mut Vec<Act<S>>) {
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
    fn start(&mut self, now_ms: i64, out: &mut Vec<Act<S>>) {
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
    fn stop(&mut self, now_ms: i64) {
        self.schedule = None;
        if self.sim.tick() > self.persisted_tick {
            self.persist(now_ms);
        }
    }

    fn persist(&mut self, now_ms: i64) {
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
    fn run_ticks(&mut self, n: u64, now_ms: i64, out: &mut Vec<Act<S>>) -> Vec<Rejection> {
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
    fn finish(&mut self, now_ms: i64, out: &mut Vec<Act<S>>) {
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

    /// Takes one input: checks it, logs it (durable in this handler's
    /// commit, with the acknowledgement the caller sends), queues it.
    fn take(
        &mut self,
        subscriber: &str,
        auth: &AuthContext,
        seq: Option<u64>,
        input: S::Input,
        now_ms: i64,
    ) -> Result<Accepted, SimError> {
        if self.finished {
            return Err(SimError::SimFinished);
        }
        self.sim
            .state()
            .authorize_input(subscriber, auth, &input)
            .map_err(|reason| SimError::Forbidden { reason })?;
        let last = self.taken.get(subscriber).copied().unwrap_or(0);
        let seq = match seq {
            Some(0) => return Err(SimError::BadInput("seq starts at 1".into())),
            Some(s) if s > MAX_SAFE_INT as u64 => {
                return Err(SimError::BadInput("seq is at most 2^53 - 1".into()))
            }
            Some(s) => s,
            None => last + 1,
        };
        let tick = self.sim.tick() + 1;
        if seq <= last {
            return Ok(Accepted {
                seq,
                tick,
                dup: true,
            });
        }
        if self.sim.queued() >= self.config.max_queued_inputs as usize {
            return Err(SimError::QueueFull {
                max: self.config.max_queued_inputs,
            });
        }
        let text =
            encode_input(&input).map_err(|e| self.internal(format!("encoding an input: {e}")))?;
        // The state gets what the log gives back on a restore, so a live
        // run and its replay see the same value.
        let input: S::Input = decode_input(&text).map_err(|e| {
            self.internal(format!(
                "the kind's Input does not round-trip through postcard: {e}"
            ))
        })?;
        let row = LogRow {
            log: self.sim.figures().logged + 1,
            tick,
            subscriber: subscriber.to_owned(),
            seq,
            at_ms: now_ms,
            input: text,
        };
        self.store
            .append(&row)
            .map_err(|e| self.internal(format!("logging an input: {e}")))?;
        self.taken.insert(subscriber.to_owned(), seq);
        self.sim.enqueue(Queued {
            log: row.log,
            tick,
            subscriber: row.subscriber,
            seq,
            at_ms: now_ms,
            input,
        });
        Ok(Accepted {
            seq,
            tick,
            dup: false,
        })
    }

    /// An internal failure: the detail goes to the log, not the client.
    fn internal(&mut self, detail: String) -> SimError {
        self.notes.push(format!("sim {}: {detail}", self.name));
        SimError::Internal("the input could not be taken".into())
    }

    /// After an input was logged: an event-driven kind ticks now; a
    /// real-time one makes sure it is ticking.
    fn after_input(&mut self, now_ms: i64, out: &mut Vec<Act<S>>) -> Vec<Rejection> {
        if self.config.is_event_driven() {
            self.run_ticks(1, now_ms, out)
        } else {
            self.start(now_ms, out);
            Vec::new()
        }
    }

    /// The handler's actions, with its log lines.
    fn done(&mut self, mut out: Vec<Act<S>>) -> Vec<Act<S>> {
        out.extend(self.notes.drain(..).map(Action::Log));
        out
    }

    async fn http_input(&mut self, req: &Request, now_ms: i64) -> (Response, Vec<Act<S>>) {
        let mut out = Vec::new();
        let taken = self.http_take(req, now_ms);
        let resp = match taken {
            Err(e) => {
                self.refused += 1;
                e.to_response()
            }
            Ok((subscriber, acc)) => {
                let rejected = if acc.dup {
                    Vec::new()
                } else {
                    self.after_input(now_ms, &mut out)
                };
                let refusal = rejected
                    .into_iter()
                    .find(|r| r.subscriber == subscriber && r.seq == acc.seq);
                match refusal {
                    Some(r) => SimError::InputRejected {
                        seq: r.seq,
                        reason: r.reason,
                    }
                    .to_response(),
                    None => {
                        let mut body = json!({
                            "subscriber": subscriber,
                            "seq": acc.seq,
                            "tick": acc.tick,
                            "dup": acc.dup,
                        });
                        // Event-driven: the tick ran; show what it made.
                        if self.config.is_event_driven() {
                            body["acked"] = json!(self.sim.acked(&subscriber));
                            body["snapshot"] =
                                serde_json::to_value(self.sim.state().snapshot_for(&subscriber))
                                    .unwrap_or(Json::Null);
                        }
                        Response::ok(body)
                    }
                }
            }
        };
        (resp, self.done(out))
    }

    /// The subscriber and the acceptance of an HTTP input.
    fn http_take(&mut self, req: &Request, now_ms: i64) -> Result<(String, Accepted), SimError> {
        let max = self.config.max_input_bytes;
        if req.body.len() > max {
            return Err(SimError::InputTooLarge {
                len: req.body.len(),
                max,
            });
        }
        let input: S::Input = serde_json::from_slice(&req.body)
            .map_err(|e| SimError::BadInput(format!("the body: {e}")))?;
        let seq = match req.param("seq") {
            Some(s) => Some(
                s.parse::<u64>()
                    .map_err(|_| SimError::BadInput("seq: expected a positive integer".into()))?,
            ),
            None => None,
        };
        let subscriber = match req.param("subscriber") {
            Some(s) => {
                check_subscriber(s)?;
                s.to_owned()
            }
            None => req
                .caller
                .user_id
                .clone()
                .unwrap_or_else(|| HTTP_SUBSCRIBER.into()),
        };
        self.sim
            .state()
            .authorize_subscribe(&subscriber, &req.caller)
            .map_err(|reason| SimError::Forbidden { reason })?;
        let acc = self.take(&subscriber, &req.caller, seq, input, now_ms)?;
        Ok((subscriber, acc))
    }

    /// `GET`: the engine's figures with the kind's snapshot fields beside.
    fn figures_json(&self) -> Json {
        let mut v = match serde_json::to_value(self.sim.state().snapshot()) {
            Ok(Json::Object(m)) => Json::Object(m),
            Ok(other) => json!({ "snapshot": other }),
            Err(_) => json!({}),
        };
        let f = self.sim.figures();
        let sql = self.store.sql();
        let wakes = Meta::open(sql)
            .and_then(|m| m.int(meta::WAKES))
            .unwrap_or(0);
        let alarm = Timers::open(sql)
            .and_then(|t| t.next())
            .map(|n| n.is_some())
            .unwrap_or(false);
        let figures = [
            ("kind", json!(self.config.kind)),
            ("sim", json!(self.name)),
            ("tick", json!(f.tick)),
            ("tick_hz", json!(self.config.tick_hz)),
            ("subscribers", json!(self.conns.len())),
            ("inputs_applied", json!(f.inputs_applied)),
            ("inputs_rejected", json!(f.inputs_rejected)),
            ("inputs_refused", json!(self.refused)),
            ("inputs_logged", json!(f.logged)),
            ("queued", json!(self.sim.queued())),
            ("ticks_skipped", json!(f.ticks_skipped)),
            ("persisted_tick", json!(self.persisted_tick)),
            ("persist_failures", json!(self.persist_failures)),
            ("ticking", json!(self.schedule.is_some())),
            ("finished", json!(self.finished)),
            ("wakes", json!(wakes)),
            ("alarm_pending", json!(alarm)),
        ];
        for (k, val) in figures {
            v[k] = val;
        }
        v
    }

    /// `GET replay`: the kept input log, for [`super::replay`].
    fn replay_json(&mut self) -> Response {
        let answer = (|| -> Result<Json, String> {
            let rows = self
                .store
                .last_rows(self.config.max_log_inputs)
                .map_err(|e| e.to_string())?;
            let complete = rows
                .first()
                .map_or(self.sim.figures().logged == 0, |r| r.log == 1);
            let mut inputs = Vec::with_capacity(rows.len());
            for r in rows {
                let input: S::Input =
                    decode_input(&r.input).map_err(|e| format!("log {}: {e}", r.log))?;
                inputs.push(json!({
                    "log": r.log,
                    "tick": r.tick,
                    "subscriber": r.subscriber,
                    "seq": r.seq,
                    "at_ms": r.at_ms,
                    "input": serde_json::to_value(&input).map_err(|e| e.to_string())?,
                }));
            }
            Ok(json!({
                "kind": self.config.kind,
                "sim": self.name,
                "tick": self.sim.tick(),
                "tick_hz": self.config.tick_hz,
                "complete": complete,
                "inputs": inputs,
            }))
        })();
        match answer {
            Ok(v) => Response::ok(v),
            Err(e) => {
                self.notes
                    .push(format!("sim {}: reading the input log: {e}", self.name));
                ApiError::internal("the input log could not be read").into()
            }
        }
    }
}

/// A subscriber id a client names: 1 to 128 bytes, no control characters,
/// not a connection id (those are the shard's to give).
fn check_subscriber(s: &str) -> Result<(), SimError> {
    if s.is_empty() || s.len() > MAX_SUBSCRIBER_LEN || s.chars().any(char::is_control) {
        return Err(SimError::BadInput(format!(
            "subscriber: 1 to {MAX_SUBSCRIBER_LEN} bytes, no control characters"
        )));
    }
    if is_connection_id(s) {
        return Err(SimError::BadInput(format!(
            "subscriber `{s}` has the form of a connection id (c1, c2, …), which only sockets get"
        )));
    }
    Ok(())
}

/// Whether `subscriber` is a socket's own connection id (`c` and digits):
/// no client can name one, so a kind may trust it to be that socket.
pub fn is_connection_id(subscriber: &str) -> bool {
    subscriber
        .strip_prefix('c')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn open_failed(e: impl std::fmt::Display) -> OpenError {
    OpenError::Other(e.to_string())
}

impl<S: SimState, C: SqlConn> Object<C> for SimShard<S, C> {
    type Msg = Msg<S>;
    type Conn = SimConn;

    /// Restores the last persisted state, then re-applies the inputs
    /// logged after it (docs/sims.md, "Durability").
    async fn open(
        init: Open<'_, C>,
        conns: Vec<(String, SimConn)>,
    ) -> Result<(Self, Vec<Act<S>>), OpenError> {
        let config = S::config();
        config.validate().map_err(OpenError::Config)?;
        let store = SimStore::open(init.sql)?;
        let (mut sim, persisted_tick) = match store.load_state::<S>().map_err(open_failed)? {
            Some((figures, state)) => {
                let tick = figures.tick;
                (Sim::resume(&init.name, state, figures), tick)
            }
            None => (Sim::new(&init.name), 0),
        };
        let rows = store
            .rows_after(sim.tick())?
            .into_iter()
            .map(LogRow::decode)
            .collect::<Result<Vec<_>, _>>()
            .map_err(open_failed)?;
        sim.feed_log(rows);
        if let Some((_, last)) = store.log_span()? {
            sim.figures.logged = sim.figures.logged.max(last);
        }
        let mut taken: HashMap<String, u64> = sim.figures().acked.clone().into_iter().collect();
        for (subscriber, seq) in store.last_seqs()? {
            let t = taken.entry(subscriber).or_insert(0);
            *t = (*t).max(seq);
        }
        let finished = sim.state().is_finished();
        // A ticking shard left its timer: go on from when it was due.
        let schedule = if config.is_event_driven() || finished {
            None
        } else {
            Timers::open(store.sql())?
                .all()?
                .into_iter()
                .find(|(name, _)| name == TICK_TIMER)
                .map(|(_, at)| Schedule::resume(config.tick_hz, at))
        };
        let members = conns
            .into_iter()
            .map(|(conn, c)| {
                let subscriber = c.subscriber.unwrap_or_else(|| conn.clone());
                let m = Member {
                    subscriber,
                    auth: c.auth,
                    encoding: c.encoding,
                };
                (conn, m)
            })
            .collect();
        let mut shard = SimShard {
            name: init.name,
            config,
            store,
            sim,
            conns: members,
            schedule,
            idle: 0,
            finished,
            taken,
            persisted_tick,
            state_checked: false,
            refused: 0,
            persist_failures: 0,
            notes: Vec::new(),
        };
        let mut out = Vec::new();
        // Inputs of a tick that may not have run: an event-driven kind
        // runs it now, a real-time one at its next tick.
        if shard.sim.queued() > 0 {
            shard.after_input(init.now_ms, &mut out);
        } else if !shard.conns.is_empty() {
            // Subscribers keep a real-time shard ticking; a woken one with
            // sockets but no timer lost it (a tick handler that failed).
            shard.start(init.now_ms, &mut out);
        }
        let out = shard.done(out);
        Ok((shard, out))
    }

    fn max_body_bytes(&self) -> usize {
        self.config.max_input_bytes
    }

    fn accept(
        &mut self,
        req: &Request,
        encoding: Encoding,
        _now_ms: i64,
    ) -> Result<SimConn, Response> {
        if req.rest != "ws" {
            return Err(
                ApiError::not_found(format!("no socket at {}/{}", req.object, req.rest)).into(),
            );
        }
        if let Some(only) = self.config.snapshot_encoding {
            if only != encoding {
                return Err(SimError::UnsupportedEncoding {
                    only: only.subprotocol(),
                }
                .to_response());
            }
        }
        if self.finished {
            return Err(SimError::SimFinished.to_response());
        }
        if self.conns.len() >= self.config.max_subscribers as usize {
            return Err(SimError::SimFull {
                max: self.config.max_subscribers,
            }
            .to_response());
        }
        let subscriber = match req.param("subscriber") {
            Some(s) => {
                check_subscriber(s).map_err(|e| e.to_response())?;
                self.sim
                    .state()
                    .authorize_subscribe(s, &req.caller)
                    .map_err(|reason| SimError::Forbidden { reason }.to_response())?;
                Some(s.to_owned())
            }
            None => None,
        };
        Ok(SimConn {
            encoding,
            auth: req.caller.clone(),
            subscriber,
        })
    }

    async fn on_connect(&mut self, conn: &str, state: SimConn, now_ms: i64) -> Vec<Act<S>> {
        let named = state.subscriber.is_some();
        let m = Member {
            subscriber: state.subscriber.unwrap_or_else(|| conn.to_owned()),
            auth: state.auth,
            encoding: state.encoding,
        };
        // A socket acting as its own connection is asked about now, once
        // its id exists (the upgrade could not know it).
        if !named {
            if let Err(reason) = self.sim.state().authorize_subscribe(&m.subscriber, &m.auth) {
                let e = SimError::Forbidden { reason };
                return vec![
                    Action::To(conn.to_owned(), SimServerMsg::Err(SimErr::of(&e, None))),
                    Action::Close {
                        conn: conn.to_owned(),
                        code: protocol::close::FORBIDDEN,
                        reason: "not allowed to subscribe".into(),
                    },
                ];
            }
        }
        let mut out = vec![
            Action::To(conn.to_owned(), self.welcome(conn, &m)),
            Action::To(conn.to_owned(), self.snapshot_for(&m.subscriber, false)),
        ];
        self.conns.insert(conn.to_owned(), m);
        self.start(now_ms, &mut out);
        self.done(out)
    }

    async fn on_message(&mut self, conn: &str, frame: FrameRef<'_>, now_ms: i64) -> Vec<Act<S>> {
        let Some(m) = self.conns.get(conn).cloned() else {
            return Vec::new();
        };
        let reply =
            |e: &SimError, seq| Action::To(conn.to_owned(), SimServerMsg::Err(SimErr::of(e, seq)));
        let msg = wire::decode_client::<S::Input>(m.encoding, frame, self.config.max_input_bytes);
        let SimClientMsg::Input(input) = match msg {
            Ok(msg) => msg,
            Err(e) => {
                self.refused += 1;
                return vec![reply(&e, None)];
            }
        };
        let seq = input.seq;
        let mut out = Vec::new();
        match self.take(&m.subscriber, &m.auth, Some(seq), input.input, now_ms) {
            Err(e) => {
                self.refused += 1;
                out.push(reply(&e, Some(seq)));
            }
            Ok(acc) => {
                out.push(Action::To(
                    conn.to_owned(),
                    SimServerMsg::Ack(Ack {
                        seq: acc.seq,
                        tick: acc.tick,
                        dup: acc.dup,
                    }),
                ));
                if !acc.dup {
                    self.after_input(now_ms, &mut out);
                }
            }
        }
        self.done(out)
    }

    async fn on_close(&mut self, conn: &str, _now_ms: i64) -> Vec<Act<S>> {
        self.conns.remove(conn);
        Vec::new()
    }

    async fn on_request(&mut self, req: Request, now_ms: i64) -> (Response, Vec<Act<S>>) {
        let (resp, out) = match (req.method, req.rest.as_str()) {
            (Method::Get, "") => (Response::ok(self.figures_json()), Vec::new()),
            (Method::Post, "") => return self.http_input(&req, now_ms).await,
            (Method::Get, "replay") => (self.replay_json(), Vec::new()),
            (Method::Get, "ws") => (
                ApiError::new(
                    426,
                    "UPGRADE_REQUIRED",
                    "this endpoint takes a WebSocket upgrade",
                )
                .into(),
                Vec::new(),
            ),
            (m, "" | "replay" | "ws") => (
                ApiError::method_not_allowed(format!("{m:?} is not allowed here")).into(),
                Vec::new(),
            ),
            (_, rest) => (
                ApiError::not_found(format!("no route {}/{rest}", req.object)).into(),
                Vec::new(),
            ),
        };
        (resp, self.done(out))
    }

    async fn on_timer(&mut self, name: &str, now_ms: i64) -> Vec<Act<S>> {
        if name != TICK_TIMER || self.finished {
            return Vec::new();
        }
        let Some(mut schedule) = self.schedule else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let owed = schedule.take_due(now_ms);
        self.schedule = Some(schedule);
        if owed > 0 {
            let run = owed.min(u64::from(self.config.max_ticks_per_wake));
            self.sim.figures.ticks_skipped += owed - run;
            self.run_ticks(run, now_ms, &mut out);
        }
        if !self.finished {
            if self.idle >= self.config.idle_ticks && self.sim.queued() == 0 {
                self.stop(now_ms);
            } else {
                out.push(Action::SetTimer {
                    name: TICK_TIMER.into(),
                    at_ms: schedule.due_ms(),
                });
            }
        }
        self.done(out)
    }

    fn stats(&self, _now_ms: i64) -> Json {
        self.figures_json()
    }
}
