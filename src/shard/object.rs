//! The live-query shard as a hosted object ([`crate::host::Object`]): the
//! engine ([`ShardEngine`]) does the live queries and writes; this file
//! decides when things happen around it — when coalesced diffs are
//! flushed, when and how often the outbox is drained to D1 (and the
//! backoff after a failure), when committed jobs are sent to the jobs
//! ledger, and which users are over their message rate.
//!
//! Routes (after `/v1/shards/{shard}/`): `ws` (upgrade), `POST mutate`,
//! `POST query`; the host answers `GET stats`.

use std::collections::HashMap;

use serde_json::json;

use super::engine::{outbox_backoff_ms, ConnInfo, Outbound, ShardEngine};
use super::{FlushPacer, ShardConfig};
use crate::api_error::ApiError;
use crate::edge::limits::{user_key, PERIOD_SECS, USER_MSG_BINDING};
use crate::functions::FnKind;
use crate::host::{Action, ConnState, IoCall, IoOutcome, Method, Object, Open, OpenError};
use crate::host::{Request, Response};
use crate::protocol::{self, ClientMsg, Encoding, FrameRef, ServerMsg};
use crate::storage::SqlConn;
use crate::value::Value;

/// The flush timer (held back a few ms to batch writes; not durable).
const FLUSH: &str = "flush";
/// The outbox drain timer (durable).
const OUTBOX: &str = "outbox";
/// The next scheduled function call (durable).
const SCHEDULED: &str = "scheduled";
/// Sending the job outbox (durable): set while a batch is out, in case
/// its answer is lost with the object, and for the retry after a failure.
const JOBS: &str = "jobs";
/// The next HTTP room member's expiry (durable; docs/rooms.md).
const MEMBERS: &str = "members";
/// How long a batch of jobs may go unanswered before it is sent again.
pub const JOBS_ANSWER_WAIT_MS: i64 = 30_000;
/// After a write, the drain waits this long so a burst goes in one batch.
pub const DRAIN_DELAY_MS: i64 = 100;

type ShardAction = Action<ServerMsg, ConnInfo>;

impl ConnState for ConnInfo {
    fn encoding(&self) -> Encoding {
        self.encoding
    }
}

/// What an I/O call was for.
enum Waiting {
    /// A `hello`'s token, for this connection.
    Verify { conn: String },
    /// The user-wide message limit, for this user.
    UserRate { user: String },
    /// An outbox batch, through this (seq, idx), with the room list's
    /// count at this version.
    Drain {
        through: (u64, u64),
        room: Option<i64>,
    },
    /// Whether this connection's session is still live.
    Session { conn: String, sid: String },
    /// A batch of the job outbox, through this (seq, idx).
    Jobs { through: (u64, u64) },
}

/// Where sending the job outbox stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum JobSending {
    /// Nothing out and no timer: a commit with jobs sends at once.
    Idle,
    /// The batch with this tag is out (the `jobs` timer is its deadline).
    Out(u64),
    /// The `jobs` timer sends next (a retry's backoff, or after a wake).
    Timer,
}

/// One shard, hosted.
pub struct LiveShard<C: SqlConn> {
    engine: ShardEngine<C>,
    /// Users over their message rate on this shard, until (ms): the rate
    /// binding's answer, cached; empty again after a wake (lets users
    /// through until the binding says otherwise).
    users_over: HashMap<String, i64>,
    /// When the next flush may run, by the frames the last ones sent.
    pacer: FlushPacer,
    /// A drain is scheduled or in flight.
    drain_armed: bool,
    /// Where sending the job outbox to the jobs ledger stands.
    jobs: JobSending,
    /// How often an open socket's session is checked for revocation (ms).
    revocation_every_ms: Option<i64>,
    waiting: HashMap<u64, Waiting>,
    next_tag: u64,
}

impl<C: SqlConn> LiveShard<C> {
    pub fn engine(&self) -> &ShardEngine<C> {
        &self.engine
    }

    fn tag(&mut self, w: Waiting) -> u64 {
        self.next_tag += 1;
        self.waiting.insert(self.next_tag, w);
        self.next_tag
    }

    /// The engine's outbound messages as host actions.
    fn actions(&mut self, out: Vec<Outbound>) -> Vec<ShardAction> {
        out.into_iter()
            .map(|o| match o {
                Outbound::To(c, m) => Action::To(c, m),
                Outbound::Many { conns, msg } => Action::Many { conns, msg },
                Outbound::All { except, msg } => Action::All { except, msg },
                Outbound::Close { conn, code, reason } => Action::Close { conn, code, reason },
                Outbound::Attach { conn, info } => Action::SaveConn { conn, state: info },
                Outbound::Verify { conn, token } => {
                    let tag = self.tag(Waiting::Verify { conn });
                    Action::Io {
                        tag,
                        call: IoCall::VerifyToken { token },
                    }
                }
            })
            .collect()
    }

    /// Held-back diffs and acks: an idle shard (no flush within the gap)
    /// flushes right after this event, a busy one when the gap is over,
    /// and the writes that arrive meanwhile join the same flush.
    fn flush_soon(&self, now_ms: i64, out: &mut Vec<ShardAction>) {
        if self.engine.has_unflushed() {
            let at = self.pacer.next_at(now_ms);
            out.push(Action::Soon {
                name: FLUSH.into(),
                at_ms: at,
            });
        }
    }

    /// Schedules a drain when the outbox holds entries and none is due.
    fn arm_drain(&mut self, now_ms: i64, out: &mut Vec<ShardAction>) {
        // Taken on every event, armed or not: it speaks for this event's
        // commits, whose entries a drain after them may have taken.
        let filled = self.engine.take_outbox_filled();
        if self.drain_armed {
            return;
        }
        // A changed member count is due on the room list (docs/rooms.md).
        let room_due = self.engine.note_room_size().unwrap_or(false);
        // Not armed means the outbox was found empty; only a commit since
        // can have filled it.
        if !self.engine.take_outbox_added() && !room_due {
            return;
        }
        // This event recorded changes: their entries are in the outbox, a
        // statement per write less than counting them.
        let depth = if filled {
            Ok(1)
        } else {
            self.engine.outbox_depth()
        };
        match depth {
            Ok(0) if !room_due => {}
            Ok(_) => {
                self.drain_armed = true;
                out.push(Action::SetTimer {
                    name: OUTBOX.into(),
                    at_ms: now_ms + DRAIN_DELAY_MS,
                });
            }
            // Reading the depth failed: the next event tries again.
            Err(_) => self.engine.note_outbox_added(),
        }
    }

    /// What follows every event: the flush and the drain it calls for,
    /// the jobs its commits enqueued, and the timer of the next scheduled
    /// call when a commit moved it.
    fn after(&mut self, now_ms: i64, mut out: Vec<ShardAction>) -> Vec<ShardAction> {
        self.flush_soon(now_ms, &mut out);
        self.arm_drain(now_ms, &mut out);
        // Jobs committed while a batch is out, or a timer is set, wait
        // for it.
        if self.engine.take_jobs_added() && self.jobs == JobSending::Idle {
            out.extend(self.send_jobs(now_ms));
        }
        match self.engine.schedule_update() {
            Ok(Some(Some(at))) => out.push(Action::SetTimer {
                name: SCHEDULED.into(),
                at_ms: at.max(now_ms),
            }),
            Ok(Some(None)) => out.push(Action::CancelTimer {
                name: SCHEDULED.into(),
            }),
            Ok(None) => {}
            Err(e) => out.push(Action::Log(format!("shard: scheduled calls: {e}"))),
        }
        out
    }

    async fn flush(&mut self, now_ms: i64) -> Vec<ShardAction> {
        let out = self.engine.flush().await;
        self.flushed(now_ms, &out);
        self.actions(out)
    }

    /// Notes a flush at `now_ms` that sent `out`, for the pacer.
    fn flushed(&mut self, now_ms: i64, out: &[Outbound]) {
        let frames: usize = out
            .iter()
            .map(|o| match o {
                Outbound::To(..) => 1,
                Outbound::Many { conns, .. } => conns.len(),
                Outbound::All { .. } => self.engine.connections(),
                Outbound::Close { .. } | Outbound::Attach { .. } | Outbound::Verify { .. } => 0,
            })
            .sum();
        self.pacer.flushed(now_ms, frames);
    }

    /// One drain step: the oldest batch of the outbox, for the host to
    /// apply to D1 (idempotent by seq, so a batch applied twice after a
    /// restart is harmless).
    fn drain(&mut self, now_ms: i64) -> Vec<ShardAction> {
        let at = crate::time::rfc3339_from_ms(now_ms);
        match self.engine.outbox_batch(Some(at)) {
            Ok(Some((batch, through))) => {
                self.drain_armed = true;
                let room = batch.room.as_ref().map(|r| r.version);
                let tag = self.tag(Waiting::Drain { through, room });
                vec![Action::Io {
                    tag,
                    call: IoCall::ApplyOutbox(batch),
                }]
            }
            // Empty: no timer is left, so the shard can rest.
            Ok(None) => {
                self.drain_armed = false;
                Vec::new()
            }
            Err(e) => self.drain_failed("reading the outbox", &e.to_string(), now_ms),
        }
    }

    fn drained(&mut self, through: (u64, u64), room: Option<i64>, now_ms: i64) -> Vec<ShardAction> {
        match self
            .engine
            .outbox_drained(through)
            .and_then(|()| room.map_or(Ok(()), |v| self.engine.room_listed(v)))
            .and_then(|()| self.engine.outbox_depth())
        {
            Ok(0) => {
                self.drain_armed = false;
                Vec::new()
            }
            Ok(_) => vec![Action::SetTimer {
                name: OUTBOX.into(),
                at_ms: now_ms,
            }],
            Err(e) => self.drain_failed("deleting drained entries", &e.to_string(), now_ms),
        }
    }

    /// Records the stage that failed (the stats show it; the detail, D1's
    /// or SQLite's text, goes to the log only) and tries again after a
    /// backoff (1 s doubling to 60 s).
    fn drain_failed(&mut self, stage: &str, detail: &str, now_ms: i64) -> Vec<ShardAction> {
        let record = format!("{stage} failed (the detail is in the Worker's log)");
        let attempts = self.engine.outbox_failed(&record).unwrap_or(1);
        self.drain_armed = true;
        let mut out = Vec::new();
        if !detail.is_empty() {
            out.push(Action::Log(format!(
                "shard: outbox drain failed: {stage}: {detail}"
            )));
        }
        out.push(Action::SetTimer {
            name: OUTBOX.into(),
            at_ms: now_ms + outbox_backoff_ms(attempts),
        });
        out
    }

    /// Sends the oldest jobs of the outbox to the ledger, with a deadline
    /// for its answer; cancels the timer when none wait.
    fn send_jobs(&mut self, now_ms: i64) -> Vec<ShardAction> {
        let batch = match self.engine.job_batch() {
            Ok(Some(b)) => b,
            Ok(None) => {
                self.jobs = JobSending::Idle;
                return vec![Action::CancelTimer { name: JOBS.into() }];
            }
            Err(e) => return self.jobs_failed("reading the job outbox", &e.to_string(), now_ms),
        };
        let tag = self.tag(Waiting::Jobs {
            through: batch.through,
        });
        self.jobs = JobSending::Out(tag);
        let mut out = Vec::new();
        if batch.unreadable > 0 {
            out.push(Action::Log(format!(
                "shard: {} jobs in the outbox no longer read as requests: dropped",
                batch.unreadable
            )));
        }
        out.push(Action::SetTimer {
            name: JOBS.into(),
            at_ms: now_ms + JOBS_ANSWER_WAIT_MS,
        });
        if batch.jobs.is_empty() {
            // Only unreadable rows: taken as if sent.
            return [out, self.jobs_answered(tag, batch.through, now_ms)].concat();
        }
        out.push(Action::Io {
            tag,
            call: IoCall::EnqueueJobs(batch.jobs),
        });
        out
    }

    /// The ledger took the batch `tag`, through `through`: its rows go,
    /// and the next batch (if any) is sent. An answer to a batch sent
    /// before the current one (its deadline passed) only deletes.
    fn jobs_answered(&mut self, tag: u64, through: (u64, u64), now_ms: i64) -> Vec<ShardAction> {
        if let Err(e) = self.engine.jobs_taken(through) {
            return self.jobs_failed("deleting sent jobs", &e.to_string(), now_ms);
        }
        if self.jobs != JobSending::Out(tag) {
            return Vec::new();
        }
        self.send_jobs(now_ms)
    }

    /// Records the stage that failed (the stats show it; the detail goes
    /// to the log only) and sends again after a backoff (1 s doubling to
    /// 60 s). The rows stay until the ledger takes them.
    fn jobs_failed(&mut self, stage: &str, detail: &str, now_ms: i64) -> Vec<ShardAction> {
        let record = format!("{stage} failed (the detail is in the Worker's log)");
        let attempts = self.engine.jobs_failed(&record).unwrap_or(1);
        self.jobs = JobSending::Timer;
        let mut out = Vec::new();
        if !detail.is_empty() {
            out.push(Action::Log(format!(
                "shard: sending jobs failed: {stage}: {detail}"
            )));
        }
        out.push(Action::SetTimer {
            name: JOBS.into(),
            at_ms: now_ms + outbox_backoff_ms(attempts),
        });
        out
    }

    /// Asks whether the connection's session was revoked, when a check is
    /// due (docs/auth.md, "Open sockets"): after the message was handled,
    /// so this socket's later frames cannot overtake it.
    fn check_revocation(&mut self, conn: &str, now_ms: i64, out: &mut Vec<ShardAction>) {
        let Some(every) = self.revocation_every_ms else {
            return;
        };
        if let Some(sid) = self.engine.revocation_due(conn, now_ms, every) {
            let tag = self.tag(Waiting::Session {
                conn: conn.to_owned(),
                sid: sid.clone(),
            });
            out.push(Action::Io {
                tag,
                call: IoCall::SessionLive { sid },
            });
        }
    }

    async fn http_mutate(&mut self, req: &Request, now_ms: i64) -> (Response, Vec<ShardAction>) {
        let body = match json_body(req) {
            Ok(b) => b,
            Err(e) => return (e.into(), Vec::new()),
        };
        // The body is the `mut` message without its type: one parser for both.
        let mut framed = match body {
            Value::Map(m) => m,
            _ => {
                let e = ApiError::bad_request("BAD_MESSAGE", "the body is an object {op?, ops}");
                return (e.into(), Vec::new());
            }
        };
        framed.insert("type".into(), Value::from("mut"));
        framed
            .entry("op".to_owned())
            .or_insert_with(|| Value::from(""));
        let text = serde_json::to_string(&Value::Map(framed)).expect("values serialize");
        let m = match protocol::decode_client(Encoding::Json, text.as_bytes()) {
            Ok(ClientMsg::Mut(m)) => m,
            Ok(_) => unreachable!("the type was set to mut"),
            Err(e) => return (ApiError::from(&e.to_err()).into(), Vec::new()),
        };
        let op = (!m.op.is_empty()).then_some(m.op);
        // Writes queued before this one go first, in arrival order.
        let mut out = self.engine.flush().await;
        let result = self
            .engine
            .mutate(None, &req.caller, op, m.ops, now_ms)
            .await;
        // The answer is this response: subscribers get their diffs now.
        let resp = match result {
            Ok((ack, diffs)) => {
                out.extend(diffs);
                Response::ok(json!({ "op": ack.op, "seq": ack.seq, "dup": ack.dup }))
            }
            Err(e) => ApiError::from(&e).into(),
        };
        out.extend(self.engine.flush().await);
        self.flushed(now_ms, &out);
        (resp, self.actions(out))
    }
}

impl<C: SqlConn> LiveShard<C> {
    /// `POST fn/{name}[?op=…]`: the body is the arguments (JSON; empty is
    /// null); the answer `{value, seq, dup}` or the call's error.
    async fn http_call(
        &mut self,
        req: &Request,
        name: &str,
        now_ms: i64,
    ) -> (Response, Vec<ShardAction>) {
        let args = if req.body.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            match json_body(req) {
                Ok(v) => v,
                Err(e) => return (e.into(), Vec::new()),
            }
        };
        let op = req.param("op").filter(|o| !o.is_empty()).map(str::to_owned);
        // An action's runQuery/runMutation says which it expects.
        let want = match req.param("kind") {
            Some("query") => Some(FnKind::Query),
            Some("mutation") => Some(FnKind::Mutation),
            _ => None,
        };
        // Writes queued before this one go first, in arrival order.
        let mut out = self.engine.flush().await;
        let resp = match self
            .engine
            .call(&req.caller, name, args, op, want, now_ms)
            .await
        {
            Ok((r, diffs)) => {
                out.extend(diffs);
                Response::ok(json!({ "value": r.value, "seq": r.seq, "dup": r.dup }))
            }
            Err(e) => ApiError::from(&e).into(),
        };
        out.extend(self.engine.flush().await);
        self.flushed(now_ms, &out);
        (resp, self.actions(out))
    }
}

/// The JSON body of a request.
fn json_body(req: &Request) -> Result<Value, ApiError> {
    serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request("BAD_FRAME", format!("body is not JSON: {e}")))
}

impl<C: SqlConn> Object<C> for LiveShard<C> {
    type Msg = ServerMsg;
    type Conn = ConnInfo;

    async fn open(
        init: Open<'_, C>,
        conns: Vec<(String, ConnInfo)>,
    ) -> Result<(Self, Vec<ShardAction>), OpenError> {
        let manifest = init.app.manifest()?;
        // Limits come from wrangler [vars] (docs/protocol.md, "Limits").
        let mut config =
            ShardConfig::from_vars(init.vars).map_err(|e| OpenError::Config(e.to_string()))?;
        config.send_window =
            crate::host::window::window_from_vars(init.vars).map_err(OpenError::Config)?;
        let mut engine = ShardEngine::open(init.sql, manifest, &init.name, config)
            .map_err(|e| OpenError::Other(format!("schema: {e}")))?
            .with_functions(init.app.functions().clone());
        let out = engine.restore(conns, init.now_ms).await?;
        let pacer = FlushPacer::new(engine.config());
        let mut shard = LiveShard {
            engine,
            users_over: HashMap::new(),
            // Never flushed: the first write is flushed at once.
            pacer,
            drain_armed: false,
            jobs: JobSending::Idle,
            // Only session tokens carry a session id, and only a deployment
            // with sign-in issues them; a bad value is refused by sign-in's
            // own configuration (and here checks every 10 s).
            revocation_every_ms: Some(
                crate::signin::config::revocation_cache_secs(&init.vars)
                    .unwrap_or(10)
                    .saturating_mul(1000),
            ),
            waiting: HashMap::new(),
            next_tag: 0,
        };
        let mut out = shard.actions(out);
        // Jobs committed before the wake (or a crash) whose answer never
        // came are sent again: the ledger keeps one job per key.
        if shard.engine.job_outbox_depth().unwrap_or(1) > 0 {
            shard.jobs = JobSending::Timer;
            out.push(Action::SetTimer {
                name: JOBS.into(),
                at_ms: init.now_ms,
            });
        }
        // Members whose time ran out while the shard slept leave now.
        out.extend(shard.expire_members(init.now_ms));
        // A drain owed from before the wake (or a restart) is scheduled.
        let out = shard.after(init.now_ms, out);
        Ok((shard, out))
    }

    fn max_body_bytes(&self) -> usize {
        self.engine.config().limits.max_frame_bytes
    }

    fn accept(
        &mut self,
        req: &Request,
        encoding: Encoding,
        _now_ms: i64,
    ) -> Result<ConnInfo, Response> {
        if req.rest != "ws" {
            return Err(ApiError::not_found(format!(
                "no socket at /v1/shards/{}/{}",
                req.object, req.rest
            ))
            .into());
        }
        Ok(ConnInfo {
            auth: req.caller.clone(),
            encoding,
            client: None,
            lease: req.lease.clone(),
            ended: None,
        })
    }

    async fn on_connect(&mut self, conn: &str, state: ConnInfo, now_ms: i64) -> Vec<ShardAction> {
        let out = match self.engine.connect(conn, state, now_ms) {
            Ok(out) => out,
            Err(_) => vec![Outbound::Close {
                conn: conn.to_owned(),
                code: protocol::close::INTERNAL,
                reason: "the shard failed to take the connection".into(),
            }],
        };
        let out = self.actions(out);
        self.after(now_ms, out)
    }

    async fn on_message(
        &mut self,
        conn: &str,
        frame: FrameRef<'_>,
        now_ms: i64,
    ) -> Vec<ShardAction> {
        // A verified user's messages also count against the user, across
        // every socket and shard (docs/edge.md): counted after the message
        // is handled and enforced from the next one on.
        let user = self.engine.conn_info(conn).and_then(|i| user_key(&i.auth));
        let blocked = user
            .as_ref()
            .is_some_and(|u| self.users_over.get(u).is_some_and(|&until| now_ms < until));
        let out = self
            .engine
            .message_within(conn, frame, now_ms, !blocked)
            .await;
        let mut out = self.actions(out);
        self.check_revocation(conn, now_ms, &mut out);
        if let (Some(user), false) = (user, blocked) {
            let tag = self.tag(Waiting::UserRate { user: user.clone() });
            out.push(Action::Io {
                tag,
                call: IoCall::RateLimit {
                    binding: USER_MSG_BINDING,
                    key: user,
                },
            });
        }
        self.after(now_ms, out)
    }

    /// A bad receipt is a bad message: answered, the socket stays open,
    /// and it takes a token of the connection's rate like any frame (a
    /// flood of them is closed with 4429).
    fn bad_receipt(&mut self, conn: &str, why: String, now_ms: i64) -> Vec<ShardAction> {
        let err = crate::protocol::ErrorMsg {
            code: crate::protocol::ErrorCode::BadMessage,
            message: why,
            op: None,
            sub: None,
        };
        let out = self.engine.refused_frame(conn, err, now_ms);
        self.actions(out)
    }

    async fn on_close(&mut self, conn: &str, now_ms: i64) -> Vec<ShardAction> {
        let out = self.engine.close(conn).unwrap_or_default();
        let out = self.actions(out);
        self.after(now_ms, out)
    }

    async fn on_request(&mut self, req: Request, now_ms: i64) -> (Response, Vec<ShardAction>) {
        let (resp, out) = match (req.method, req.rest.as_str()) {
            (Method::Post, "mutate") => self.http_mutate(&req, now_ms).await,
            (Method::Post, rest) if rest.starts_with("fn/") => {
                self.http_call(&req, &rest[3..], now_ms).await
            }
            (Method::Post, "query") => {
                let r = match json_body(&req).and_then(|b| {
                    self.engine
                        .query(&req.caller, &b)
                        .map_err(|e| ApiError::from(&e))
                }) {
                    Ok(v) => Response::ok(v),
                    Err(e) => e.into(),
                };
                (r, Vec::new())
            }
            (_, rest) if rest == "rooms" || rest.starts_with("rooms/") => {
                self.http_room(&req, now_ms)
            }
            (Method::Get, "scheduled") => (self.scheduled_list(&req), Vec::new()),
            (Method::Post, rest) if rest.starts_with("scheduled/") && rest.ends_with("/cancel") => {
                let id = &rest["scheduled/".len()..rest.len() - "/cancel".len()];
                (self.scheduled_cancel(&req, id), Vec::new())
            }
            (Method::Get, "ws") => (
                ApiError::new(
                    426,
                    "UPGRADE_REQUIRED",
                    "this endpoint takes a WebSocket upgrade",
                )
                .into(),
                Vec::new(),
            ),
            (m, "ws" | "stats" | "mutate" | "query") => (
                ApiError::method_not_allowed(format!("{m:?} is not allowed on {}", req.rest))
                    .into(),
                Vec::new(),
            ),
            (_, rest) => (
                ApiError::not_found(format!("no route /v1/shards/{}/{rest}", req.object)).into(),
                Vec::new(),
            ),
        };
        (resp, self.after(now_ms, out))
    }

    async fn on_timer(&mut self, name: &str, now_ms: i64) -> Vec<ShardAction> {
        let out = match name {
            FLUSH => self.flush(now_ms).await,
            OUTBOX => self.drain(now_ms),
            // A retry's backoff is over, or the batch out got no answer.
            JOBS => self.send_jobs(now_ms),
            MEMBERS => self.expire_members(now_ms),
            SCHEDULED => {
                let (out, failed) = self.engine.run_scheduled(now_ms).await;
                self.flushed(now_ms, &out);
                let mut out = self.actions(out);
                out.extend(
                    failed
                        .into_iter()
                        .map(|f| Action::Log(format!("shard: a scheduled call failed: {f}"))),
                );
                out
            }
            _ => Vec::new(),
        };
        self.after(now_ms, out)
    }

    async fn on_io(&mut self, tag: u64, outcome: IoOutcome, now_ms: i64) -> Vec<ShardAction> {
        let out = match (self.waiting.remove(&tag), outcome) {
            (Some(Waiting::Verify { conn }), IoOutcome::Verified(result)) => {
                let out = self.engine.hello_verified(&conn, result, now_ms).await;
                self.actions(out)
            }
            (Some(Waiting::UserRate { user }), IoOutcome::RateLimited { allowed }) => {
                if !allowed {
                    let period = i64::from(PERIOD_SECS) * 1000;
                    self.users_over.retain(|_, until| *until > now_ms);
                    self.users_over.insert(user, now_ms + period);
                }
                Vec::new()
            }
            (Some(Waiting::Drain { through, room }), IoOutcome::Applied(Ok(()))) => {
                self.drained(through, room, now_ms)
            }
            (Some(Waiting::Drain { .. }), IoOutcome::Applied(Err(stage))) => {
                self.drain_failed(&stage, "", now_ms)
            }
            (Some(Waiting::Jobs { through }), IoOutcome::Applied(Ok(()))) => {
                self.jobs_answered(tag, through, now_ms)
            }
            (Some(Waiting::Jobs { .. }), IoOutcome::Applied(Err(stage))) => {
                if self.jobs == JobSending::Out(tag) {
                    self.jobs_failed(&stage, "", now_ms)
                } else {
                    Vec::new()
                }
            }
            (Some(Waiting::Session { conn, sid }), IoOutcome::SessionLive(Ok(live))) => {
                let out = self.engine.session_checked(&conn, &sid, live, now_ms);
                self.actions(out)
            }
            // Asked again at the next check.
            (Some(Waiting::Session { .. }), IoOutcome::SessionLive(Err(e))) => {
                vec![Action::Log(format!("shard: revocation check: {e}"))]
            }
            _ => Vec::new(),
        };
        self.after(now_ms, out)
    }

    fn stats(&self, now_ms: i64) -> serde_json::Value {
        let mut v = self
            .engine
            .stats()
            .unwrap_or_else(|e| json!({ "error": e.to_string() }));
        v["outbox"] = self
            .engine
            .outbox_stats(now_ms)
            .unwrap_or_else(|e| json!({ "error": e.to_string() }));
        v["scheduled"] = json!(self.engine.scheduled_count().ok());
        v["job_outbox"] = self
            .engine
            .job_outbox_stats(now_ms)
            .unwrap_or_else(|e| json!({ "error": e.to_string() }));
        v
    }
}

/// Scheduled calls over HTTP (docs/functions.md, "Scheduled functions"):
/// an admin sees and cancels every one; anyone else only their own.
impl<C: SqlConn> LiveShard<C> {
    fn may_see(
        caller: &crate::policy::AuthContext,
        call: &crate::shard::store::ScheduledCall,
    ) -> bool {
        caller.is_admin || (caller.user_id.is_some() && call.auth.user_id == caller.user_id)
    }

    fn scheduled_list(&self, req: &Request) -> Response {
        let limit = req
            .param("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .unwrap_or(100)
            .clamp(1, 1000);
        match self.engine.store().list_scheduled(limit) {
            Ok(calls) => {
                let list: Vec<serde_json::Value> = calls
                    .iter()
                    .filter(|c| Self::may_see(&req.caller, c))
                    .map(|c| {
                        serde_json::json!({
                            "id": c.id,
                            "name": c.name,
                            "args": c.args,
                            "atMs": c.at_ms,
                            "scheduledBy": c.auth.user_id,
                        })
                    })
                    .collect();
                Response::ok(serde_json::json!({ "scheduled": list }))
            }
            Err(e) => ApiError::internal(format!("reading the scheduled calls: {e}")).into(),
        }
    }

    fn scheduled_cancel(&mut self, req: &Request, id: &str) -> Response {
        let store = self.engine.store();
        let found = store
            .list_scheduled(usize::MAX >> 1)
            .map(|calls| calls.into_iter().find(|c| c.id == id));
        match found {
            Ok(Some(c)) if Self::may_see(&req.caller, &c) => {
                match store.delete_scheduled(std::slice::from_ref(&c.id)) {
                    Ok(()) => {
                        self.engine.schedule_changed();
                        Response::ok(serde_json::json!({ "cancelled": c.id }))
                    }
                    Err(e) => ApiError::internal(format!("cancelling {id}: {e}")).into(),
                }
            }
            Ok(_) => ApiError::new(
                404,
                "NOT_FOUND",
                format!("no scheduled call {id:?} of yours"),
            )
            .into(),
            Err(e) => ApiError::internal(format!("reading the scheduled calls: {e}")).into(),
        }
    }
}

/// The rooms API (docs/rooms.md), after `/v1/rooms/{room}` (forwarded as
/// `rooms[/…]`): `GET` the size and members; `POST join`, `presence`,
/// `leave`, `broadcast`.
impl<C: SqlConn> LiveShard<C> {
    fn http_room(&mut self, req: &Request, now_ms: i64) -> (Response, Vec<ShardAction>) {
        use super::rooms::{Broadcast, Join, Leave};
        // Members whose time ran out leave before anything is answered.
        let mut out = self.expire_members(now_ms);
        let caller = &req.caller;
        let op = req.rest.strip_prefix("rooms").unwrap_or("");
        let result = match (req.method, op) {
            (Method::Get, "") => self
                .engine
                .room_info()
                .map(|v| (Response::ok(v), Vec::new()))
                .map_err(|e| ApiError::internal(format!("reading the room: {e}"))),
            (Method::Post, "/join" | "/presence") => Join::parse(&req.body).and_then(|j| {
                let member = j.member.clone();
                let o = self
                    .engine
                    .room_join(caller, j, op == "/presence", now_ms)?;
                Ok((Response::ok(json!({ "member": member })), o))
            }),
            (Method::Post, "/leave") => Leave::parse(&req.body).and_then(|l| {
                let member = l.member.clone();
                let (left, o) = self.engine.room_leave(caller, l, now_ms)?;
                Ok((Response::ok(json!({ "member": member, "left": left })), o))
            }),
            (Method::Post, "/broadcast") => Broadcast::parse(&req.body).map(|b| {
                (
                    Response::ok(json!({})),
                    self.engine.room_broadcast(caller, b),
                )
            }),
            (_, "" | "/join" | "/presence" | "/leave" | "/broadcast") => {
                Err(ApiError::method_not_allowed(format!(
                    "{:?} is not allowed on {}",
                    req.method, req.rest
                )))
            }
            _ => Err(ApiError::not_found(format!(
                "no route /v1/rooms/{}{op}",
                req.object
            ))),
        };
        let resp = match result {
            Ok((resp, o)) => {
                out.extend(self.actions(o));
                resp
            }
            Err(e) => e.into(),
        };
        self.member_timer(&mut out);
        (resp, out)
    }

    /// Members expired at `now_ms` leave (sockets see it), and the timer
    /// moves to the next expiry.
    fn expire_members(&mut self, now_ms: i64) -> Vec<ShardAction> {
        let mut out = match self.engine.expire_members(now_ms) {
            Ok(o) => self.actions(o),
            Err(e) => vec![Action::Log(format!("shard: expiring room members: {e}"))],
        };
        self.member_timer(&mut out);
        out
    }

    /// The members timer at the next expiry, or none.
    fn member_timer(&self, out: &mut Vec<ShardAction>) {
        match self.engine.next_member_expiry() {
            Ok(Some(at)) => out.push(Action::SetTimer {
                name: MEMBERS.into(),
                at_ms: at,
            }),
            Ok(None) => out.push(Action::CancelTimer {
                name: MEMBERS.into(),
            }),
            Err(e) => out.push(Action::Log(format!("shard: room member expiry: {e}"))),
        }
    }
}
