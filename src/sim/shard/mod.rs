//! A simulation shard as a hosted object ([`crate::host::Object`]): the
//! driver (`driver.rs`) does the simulation; this module decides when it
//! ticks (a durable timer while active, none while idle: `ticks.rs`), logs
//! every input before acknowledging it (`input.rs`), persists the state,
//! restores it after an eviction (here, in `open`), and speaks
//! `pylon.sim.v1` to sockets (here) and HTTP (`http.rs`).
//!
//! Routes (after the shard's name): `ws` (upgrade; `?subscriber=` names
//! who the socket acts as), `GET` (stats and the kind's snapshot),
//! `POST` (one input; `?seq=`, `?subscriber=`), `GET replay` (the input
//! log). docs/sims.md has the contract in prose.

mod http;
mod input;
mod ticks;

pub use input::{check_subscriber, is_connection_id};

use crate::shard::limiter::{Refusals, TokenBucket};
use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::driver::Sim;
use super::error::SimError;
use super::schedule::Schedule;
use super::state::SimState;
use super::store::{LogRow, SimStore};
use super::wire::{self, Ack, SimClientMsg, SimErr, SimServerMsg};
use super::SimConfig;
use crate::api_error::ApiError;
use crate::host::timers::Timers;
use crate::host::{Action, ConnState, Method, Object, Open, OpenError, Request, Response};
use crate::policy::AuthContext;
use crate::protocol::{self, Encoding, FrameRef};
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
    /// The socket's message rate, as the live shard's sockets have it
    /// (`protocol::Limits`: a bucket, and a close after a burst of
    /// refusals within the window).
    bucket: TokenBucket,
    refusals: Refusals,
}

impl Member {
    fn new(subscriber: String, auth: AuthContext, encoding: Encoding, now_ms: i64) -> Member {
        let limits = protocol::Limits::default();
        Member {
            subscriber,
            auth,
            encoding,
            bucket: TokenBucket::new(limits.msgs_per_sec, limits.msg_burst, now_ms),
            refusals: Refusals::default(),
        }
    }
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

    /// The handler's actions, with its log lines.
    fn done(&mut self, mut out: Vec<Act<S>>) -> Vec<Act<S>> {
        out.extend(self.notes.drain(..).map(Action::Log));
        out
    }

    /// The socket's rate, checked before a frame (or a bad receipt) is
    /// read, as on the live shard: `None` within it, else the refusal, and
    /// for a socket that keeps exceeding it the close (4429). An unknown
    /// socket is refused with nothing.
    fn over_rate(&mut self, conn: &str, now_ms: i64) -> Option<Vec<Act<S>>> {
        let Some(member) = self.conns.get_mut(conn) else {
            return Some(Vec::new());
        };
        if member.bucket.take(now_ms) {
            return None;
        }
        self.refused += 1;
        let e = SimErr::of(&SimError::RateLimited, None);
        let mut out = vec![Action::To(conn.to_owned(), SimServerMsg::Err(e))];
        let burst = protocol::Limits::default().msg_burst;
        if member.refusals.count(now_ms, burst) {
            out.push(Action::Close {
                conn: conn.to_owned(),
                code: protocol::close::RATE_LIMITED,
                reason: "kept exceeding the message rate".into(),
            });
        }
        Some(out)
    }
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
        // The kind's configuration with the deployment's settings for it
        // (docs/sims.md, "Deployment settings").
        let config = S::config()
            .with_vars(init.vars)
            .map_err(OpenError::Config)?;
        config.validate().map_err(OpenError::Config)?;
        let store = SimStore::open(init.sql)?;
        let (sim, persisted_tick) = match store.load_state::<S>().map_err(open_failed)? {
            Some((figures, state)) => {
                let tick = figures.tick;
                (Sim::resume(&init.name, state, figures), tick)
            }
            None => (Sim::new(&init.name), 0),
        };
        let mut sim = sim.at_rate(config.tick_hz);
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
            Timers::on(store.sql())
                .all()?
                .into_iter()
                .find(|(name, _)| name == TICK_TIMER)
                .map(|(_, at)| Schedule::resume(config.tick_hz, at))
        };
        let members = conns
            .into_iter()
            .map(|(conn, c)| {
                let subscriber = c.subscriber.unwrap_or_else(|| conn.clone());
                let m = Member::new(subscriber, c.auth, c.encoding, init.now_ms);
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
        let m = Member::new(
            state.subscriber.unwrap_or_else(|| conn.to_owned()),
            state.auth,
            state.encoding,
            now_ms,
        );
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

    /// A bad receipt is a bad frame: answered, the socket stays open, and
    /// it takes a token of the socket's rate like any frame (a flood of
    /// them is closed with 4429).
    fn bad_receipt(&mut self, conn: &str, why: String, now_ms: i64) -> Vec<Act<S>> {
        if let Some(refused) = self.over_rate(conn, now_ms) {
            return refused;
        }
        self.refused += 1;
        let e = SimError::BadFrame(why);
        vec![Action::To(
            conn.to_owned(),
            SimServerMsg::Err(SimErr::of(&e, None)),
        )]
    }

    async fn on_message(&mut self, conn: &str, frame: FrameRef<'_>, now_ms: i64) -> Vec<Act<S>> {
        let reply =
            |e: &SimError, seq| Action::To(conn.to_owned(), SimServerMsg::Err(SimErr::of(e, seq)));
        if let Some(refused) = self.over_rate(conn, now_ms) {
            return refused;
        }
        let Some(member) = self.conns.get(conn) else {
            return Vec::new();
        };
        let m = member.clone();
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
