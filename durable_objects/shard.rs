//! The Shard Durable Object: one per shard name. It owns that shard's rows
//! in its SQLite storage and its clients' WebSockets (hibernation API), and
//! hands every event to the engine (`crate::shard::ShardEngine`), then
//! sends what the engine returns. Nothing here decides anything.
//!
//! Hibernation: workerd may evict the object while sockets stay open. What
//! a connection needs (its id, identity, encoding) rides in the socket's
//! attachment; everything else is in storage. After a wake the engine is
//! rebuilt lazily on the first event, from storage plus the attachments.
//!
//! Write-behind to D1: a mutation writes its changes to the outbox table in
//! its own commit; the object's alarm drains the outbox to D1 in batches
//! (see docs/d1.md). An alarm is set only while the outbox holds entries,
//! so an idle shard can hibernate.

use std::cell::{Cell, Ref, RefCell, RefMut};
use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use worker::{
    durable_object, Date, Delay, DurableObject, Env, Method, Request, Response, Result, State,
    WebSocket, WebSocketIncomingMessage, WebSocketPair,
};

use super::do_sql::DoSql;
use crate::api_error::ApiError;
use crate::glue::d1::{D1Exec, D1_BINDING};
use crate::glue::respond;
use crate::auth::Lease;
use crate::policy::AuthContext;
use crate::protocol::{self, ClientMsg, Encoding, Frame, FrameRef, ServerMsg};
use crate::route::{self, Route};
use crate::shard::meta::{self, Meta};
use crate::shard::{outbox_backoff_ms, ConnInfo, Outbound, ShardConfig, ShardEngine};
use crate::store::apply_outbox_batch;
use crate::value::Value;

const NEXT_CONN: &str = "next_conn";
/// After a write, the drain waits this long so a burst goes in one batch.
const DRAIN_DELAY_MS: i64 = 100;
/// A pending alarm this far past its time is taken as lost and set again.
const ALARM_OVERDUE_MS: i64 = 5_000;

/// What survives hibernation with each socket (well under 16 KiB).
#[derive(Serialize, Deserialize)]
struct Attachment {
    conn: String,
    info: ConnInfo,
}

#[durable_object]
pub struct Shard {
    state: State,
    /// Times this object was constructed, including this one (from storage).
    wakes: Cell<i64>,
    /// Built on the first event after construction; see the module docs.
    /// Never borrowed across a JS await: engine futures only await Rust
    /// futures over synchronous SQL, so they finish within one poll.
    engine: RefCell<Option<ShardEngine<DoSql>>>,
    /// conn id -> socket, rebuilt with the engine.
    sockets: RefCell<HashMap<String, (WebSocket, Encoding)>>,
    env: Env,
    /// An alarm is known to be pending (set by this instance, not yet run).
    alarm_armed: Cell<bool>,
    /// A handler is waiting to flush coalesced diffs (see `flush_soon`).
    flush_due: Cell<bool>,
    /// When the last flush ran (event time, ms).
    flushed_at: Cell<i64>,
    /// Users over their message rate on this shard, until (ms): a cache of
    /// the binding's answer; empty again after a wake (lets users through).
    users_over: RefCell<HashMap<String, i64>>,
}

/// Sends one frame; a socket that fails to take it does not stop the others.
fn send_frame(ws: &WebSocket, frame: &Frame) {
    let r = match frame {
        Frame::Text(t) => ws.send_with_str(t),
        Frame::Binary(b) => ws.send_with_bytes(b),
    };
    if let Err(e) = r {
        worker::console_warn!("shard: send failed: {e}");
    }
}

/// Sends `msg` to each socket, encoded once per encoding, not once per socket.
fn send_to_each<'a>(sockets: impl Iterator<Item = &'a (WebSocket, Encoding)>, msg: &ServerMsg) {
    let mut frames: HashMap<Encoding, Frame> = HashMap::new();
    for (ws, enc) in sockets {
        let frame = frames
            .entry(*enc)
            .or_insert_with(|| protocol::encode_server(*enc, msg));
        send_frame(ws, frame);
    }
}

fn now_ms() -> i64 {
    Date::now().as_millis() as i64
}

fn fail(context: &str, e: impl std::fmt::Display) -> worker::Error {
    worker::Error::RustError(format!("{context}: {e}"))
}

impl Shard {
    /// The open engine, borrowed for one event's work (see `engine`).
    fn engine_mut(&self) -> Result<RefMut<'_, ShardEngine<DoSql>>> {
        let cell = self
            .engine
            .try_borrow_mut()
            .map_err(|e| fail("engine busy", e))?;
        RefMut::filter_map(cell, Option::as_mut).map_err(|_| fail("engine", "not open"))
    }

    fn engine_ref(&self) -> Result<Ref<'_, ShardEngine<DoSql>>> {
        let cell = self
            .engine
            .try_borrow()
            .map_err(|e| fail("engine busy", e))?;
        Ref::filter_map(cell, Option::as_ref).map_err(|_| fail("engine", "not open"))
    }

    fn sql(&self) -> DoSql {
        DoSql(self.state.storage().sql())
    }

    /// Opens the engine if this instance has none yet, restoring the
    /// connections whose sockets survived.
    async fn ensure_engine(&self, shard_hint: Option<&str>) -> Result<()> {
        if self.engine.borrow().is_some() {
            return Ok(());
        }
        let manifest = crate::glue::schema::manifest().map_err(|e| fail("manifest", e.message))?;
        let sql = self.sql();
        let name = {
            let m = Meta::open(&sql).map_err(|e| fail("meta", e))?;
            match shard_hint {
                Some(n) => {
                    m.set_text(meta::SHARD_NAME, n)
                        .map_err(|e| fail("meta", e))?;
                    n.to_owned()
                }
                None => m
                    .text(meta::SHARD_NAME)
                    .map_err(|e| fail("meta", e))?
                    .unwrap_or_default(),
            }
        };
        // Limits come from wrangler [vars] (docs/protocol.md, "Limits").
        let config = ShardConfig::from_vars(|k| self.env.var(k).ok().map(|v| v.to_string()))
            .map_err(|e| fail("configuration", e))?;
        let mut engine =
            ShardEngine::open(sql, manifest, &name, config).map_err(|e| fail("schema", e))?;
        let mut open = Vec::new();
        let mut sockets = HashMap::new();
        for ws in self.state.get_websockets() {
            if let Ok(Some(a)) = ws.deserialize_attachment::<Attachment>() {
                sockets.insert(a.conn.clone(), (ws, a.info.encoding));
                open.push((a.conn, a.info));
            }
        }
        let out = engine
            .restore(open, now_ms())
            .await
            .map_err(|e| fail("restore", e))?;
        *self.sockets.borrow_mut() = sockets;
        *self.engine.borrow_mut() = Some(engine);
        self.deliver(out);
        Ok(())
    }

    /// Sends what the engine asked for. A socket that fails to take a frame
    /// does not stop the others.
    fn deliver(&self, out: Vec<Outbound>) {
        let mut closed = Vec::new();
        {
            let sockets = self.sockets.borrow();
            for o in out {
                match o {
                    Outbound::To(conn, msg) => {
                        if let Some((ws, enc)) = sockets.get(&conn) {
                            send_frame(ws, &protocol::encode_server(*enc, &msg));
                        }
                    }
                    Outbound::Many { conns, msg } => {
                        send_to_each(conns.iter().filter_map(|c| sockets.get(c)), &msg);
                    }
                    Outbound::All { except, msg } => {
                        let others = sockets
                            .iter()
                            .filter(|(conn, _)| except.as_deref() != Some(conn.as_str()))
                            .map(|(_, socket)| socket);
                        send_to_each(others, &msg);
                    }
                    Outbound::Close { conn, code, reason } => {
                        if let Some((ws, _)) = sockets.get(&conn) {
                            let _ = ws.close(Some(code), Some(reason));
                        }
                        closed.push(conn);
                    }
                    // Taken out by `on_frame` before delivery; never sent.
                    Outbound::Verify { .. } => {}
                    Outbound::Attach { conn, info } => {
                        if let Some((ws, _)) = sockets.get(&conn) {
                            if let Err(e) = ws.serialize_attachment(Attachment { conn, info }) {
                                worker::console_error!("shard: attachment: {e}");
                            }
                        }
                    }
                }
            }
        }
        for conn in closed {
            self.forget(&conn);
        }
    }

    /// Drops a connection from the engine and the socket map.
    fn forget(&self, conn: &str) {
        self.sockets.borrow_mut().remove(conn);
        let out = match self.engine.try_borrow_mut() {
            Ok(mut e) => match e.as_mut().map(|e| e.close(conn)) {
                Some(Ok(out)) => out,
                Some(Err(e)) => {
                    worker::console_error!("shard: closing {conn}: {e}");
                    Vec::new()
                }
                None => Vec::new(),
            },
            Err(_) => Vec::new(),
        };
        self.deliver(out);
    }

    async fn accept_socket(
        &self,
        req: &Request,
        shard: &str,
        auth: AuthContext,
        lease: Lease,
    ) -> Result<Response> {
        let upgrade = req.headers().get("Upgrade")?.unwrap_or_default();
        if !upgrade.eq_ignore_ascii_case("websocket") {
            return respond::error(&ApiError::new(
                426,
                "UPGRADE_REQUIRED",
                "this endpoint takes a WebSocket upgrade",
            ));
        }
        let offered = req.headers().get("Sec-WebSocket-Protocol")?;
        let Ok(negotiated) = protocol::negotiate(offered.as_deref()) else {
            return respond::error(&ApiError::bad_request(
                "BAD_PROTOCOL",
                "offer pylon.v1.json or pylon.v1.postcard in Sec-WebSocket-Protocol",
            ));
        };
        self.ensure_engine(Some(shard)).await?;
        // Connection ids come from storage so they stay unique across wakes.
        let conn = {
            let sql = self.sql();
            let m = Meta::open(&sql).map_err(|e| fail("meta", e))?;
            format!("c{}", m.add(NEXT_CONN, 1).map_err(|e| fail("meta", e))?)
        };
        let info = ConnInfo {
            auth,
            encoding: negotiated.encoding,
            client: None,
            lease,
            ended: None,
        };

        let pair = WebSocketPair::new()?;
        self.state.accept_web_socket(&pair.server);
        pair.server.serialize_attachment(Attachment {
            conn: conn.clone(),
            info: info.clone(),
        })?;
        self.sockets
            .borrow_mut()
            .insert(conn.clone(), (pair.server.clone(), negotiated.encoding));
        let out = {
            let mut engine = self.engine_mut()?;
            engine
                .connect(&conn, info, now_ms())
                .map_err(|e| fail("connect", e))?
        };
        self.deliver(out);
        let mut resp = Response::from_websocket(pair.client)?;
        if let Some(echo) = negotiated.echo {
            resp.headers_mut().set("Sec-WebSocket-Protocol", echo)?;
        }
        Ok(resp)
    }

    /// The JSON body, at most one frame's worth: refused from
    /// `Content-Length`, or once that much was read (the rest is not).
    /// The shard's own code for it is `FRAME_TOO_LARGE`.
    async fn read_body(req: &mut Request) -> std::result::Result<Value, ApiError> {
        let max = protocol::Limits::default().max_frame_bytes;
        let bytes = crate::glue::body::read_capped(req, max)
            .await
            .map_err(|e| e.to_api_error("FRAME_TOO_LARGE"))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request("BAD_FRAME", format!("body is not JSON: {e}")))
    }

    async fn http_mutate(&self, mut req: Request, auth: &AuthContext) -> Result<Response> {
        let body = match Self::read_body(&mut req).await {
            Ok(b) => b,
            Err(e) => return respond::error(&e),
        };
        // The body is the `mut` message without its type: one parser for both.
        let mut framed = match body {
            Value::Map(m) => m,
            _ => {
                return respond::error(&ApiError::bad_request(
                    "BAD_MESSAGE",
                    "the body is an object {op?, ops}",
                ))
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
            Err(e) => return respond::error(&ApiError::from(&e.to_err())),
        };
        let result = {
            let mut engine = self.engine_mut()?;
            let op = (!m.op.is_empty()).then_some(m.op);
            // Writes queued before this one go first, in arrival order.
            let mut flushed = engine.flush().await;
            let r = engine.mutate(None, auth, op, m.ops, now_ms()).await;
            // The answer is this response: subscribers get their diffs now.
            flushed.extend(engine.flush().await);
            (r, flushed)
        };
        let (result, flushed) = result;
        match result {
            Ok((ack, out)) => {
                self.deliver(out);
                self.deliver(flushed);
                respond::json(
                    200,
                    &json!({ "op": ack.op, "seq": ack.seq, "dup": ack.dup }),
                )
            }
            Err(e) => {
                self.deliver(flushed);
                respond::error(&ApiError::from(&e))
            }
        }
    }

    async fn http_query(&self, mut req: Request, auth: &AuthContext) -> Result<Response> {
        let body = match Self::read_body(&mut req).await {
            Ok(b) => b,
            Err(e) => return respond::error(&e),
        };
        let engine = self.engine_ref()?;
        match engine.query(auth, &body) {
            Ok(v) => respond::json(200, &v),
            Err(e) => respond::error(&ApiError::from(&e)),
        }
    }

    /// Sets an alarm if the outbox holds entries and none is pending.
    /// Cheap when one is known to be pending (no storage call).
    async fn arm_drain(&self) {
        if self.alarm_armed.get() {
            return;
        }
        let depth = match self.engine.try_borrow() {
            Ok(e) => e.as_ref().map(|e| e.outbox_depth()),
            Err(_) => return,
        };
        match depth {
            Some(Ok(0)) | None => return,
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                worker::console_error!("shard: outbox depth: {e}");
                return;
            }
        }
        match self.state.storage().get_alarm().await {
            Ok(Some(at)) if at > now_ms() - ALARM_OVERDUE_MS => self.alarm_armed.set(true),
            Ok(_) => self.set_alarm_in(DRAIN_DELAY_MS).await,
            Err(e) => worker::console_error!("shard: reading the alarm: {e}"),
        }
    }

    async fn set_alarm_in(&self, delay_ms: i64) {
        match self.state.storage().set_alarm(delay_ms.max(0)).await {
            Ok(()) => self.alarm_armed.set(true),
            Err(e) => worker::console_error!("shard: setting the alarm: {e}"),
        }
    }

    /// One drain step: applies the oldest batch to D1, deletes it from the
    /// outbox on success and re-arms while entries remain; on failure
    /// records the error and re-arms with backoff. The batch is idempotent
    /// (seq guard), so one applied but not deleted (kill -9 in between) is
    /// simply applied again.
    async fn drain(&self) {
        let manifest = match crate::glue::schema::manifest() {
            Ok(m) => m,
            Err(e) => {
                worker::console_error!("shard: drain: {}", e.message);
                return;
            }
        };
        let at = worker::js_sys::Date::new(&(now_ms() as f64).into())
            .to_iso_string()
            .as_string();
        let next = {
            let Ok(engine) = self.engine.try_borrow() else {
                self.set_alarm_in(DRAIN_DELAY_MS).await;
                return;
            };
            let Some(engine) = engine.as_ref() else {
                return;
            };
            engine.outbox_batch(at)
        };
        let (batch, through) = match next {
            Ok(Some(b)) => b,
            Ok(None) => return, // empty: leave no alarm, so the shard can rest
            Err(e) => return self.drain_failed("reading the outbox", &e).await,
        };
        let db = match self.env.d1(D1_BINDING) {
            Ok(db) => D1Exec(db),
            Err(e) => {
                return self
                    .drain_failed(&format!("binding {D1_BINDING}"), &e)
                    .await
            }
        };
        if let Err(e) = apply_outbox_batch(&db, &manifest, &batch).await {
            return self.drain_failed("applying to D1", &e).await;
        }
        let left = match self.engine.try_borrow() {
            Ok(engine) => match engine.as_ref() {
                Some(engine) => engine
                    .outbox_drained(through)
                    .and_then(|()| engine.outbox_depth()),
                None => Ok(0),
            },
            Err(_) => Ok(1),
        };
        match left {
            Ok(0) => {}
            Ok(_) => self.set_alarm_in(0).await,
            Err(e) => self.drain_failed("deleting drained entries", &e).await,
        }
    }

    /// Logs a failed drain with its detail and records only the stage that
    /// failed: `stats` shows the record, and D1's and SQLite's text stay in
    /// the log.
    async fn drain_failed(&self, stage: &str, detail: &dyn std::fmt::Display) {
        worker::console_error!("shard: outbox drain failed: {stage}: {detail}");
        let error = &format!("{stage} failed (the detail is in the Worker's log)");
        let attempts = match self.engine.try_borrow() {
            Ok(engine) => engine
                .as_ref()
                .map(|e| e.outbox_failed(error).unwrap_or(1))
                .unwrap_or(1),
            Err(_) => 1,
        };
        self.set_alarm_in(outbox_backoff_ms(attempts)).await;
    }

    fn stats(&self) -> Result<Response> {
        let engine = self.engine_ref()?;
        let mut v = engine.stats().map_err(|e| fail("stats", e))?;
        v["wakes"] = json!(self.wakes.get());
        v["connections"] = json!(self.state.get_websockets().len());
        v["storage_bytes"] = json!(self.sql().0.database_size());
        v["outbox"] = engine
            .outbox_stats(now_ms())
            .map_err(|e| fail("stats", e))?;
        respond::json(200, &v)
    }

    async fn on_frame(&self, ws: &WebSocket, frame: FrameRef<'_>) -> Result<()> {
        self.ensure_engine(None).await?;
        let Some(Attachment { conn, info }) = ws.deserialize_attachment::<Attachment>()? else {
            let _ = ws.close(Some(protocol::close::INTERNAL), Some("no attachment"));
            return Ok(());
        };
        // A verified user's messages also count against the user, across
        // every socket and shard (docs/edge.md). Counted after the message
        // is handled and enforced from the next one on: awaiting the
        // binding first would let this socket's later frames overtake it.
        let now = now_ms();
        let user = crate::edge::limits::user_key(&info.auth);
        let blocked = user.as_ref().is_some_and(|u| {
            self.users_over
                .borrow()
                .get(u)
                .is_some_and(|&until| now < until)
        });
        let out = {
            let mut engine = self.engine_mut()?;
            engine.message_within(&conn, frame, now, !blocked).await
        };
        let (verify, out): (Vec<_>, Vec<_>) = out
            .into_iter()
            .partition(|o| matches!(o, Outbound::Verify { .. }));
        self.deliver(out);
        // Held-back diffs and acks first: the awaits below must not delay them.
        self.flush_soon().await?;
        // A `hello` with a token: verified with the router's code (HS256 and
        // JWKS), outside any engine borrow (a JWKS fetch may await).
        for v in verify {
            let Outbound::Verify { conn, token } = v else {
                continue;
            };
            let verified =
                crate::glue::verify::verify_credential(&self.env, &token, now_ms() / 1000).await;
            let out = {
                let mut engine = self.engine_mut()?;
                engine.hello_verified(&conn, verified, now_ms()).await
            };
            self.deliver(out);
        }
        if info.lease.sid.is_some() {
            self.check_revocation(&conn, now).await?;
        }
        if let (Some(user), false) = (user, blocked) {
            let binding = crate::edge::limits::USER_MSG_BINDING;
            if !crate::glue::edge::allowed(&self.env, binding, user.clone()).await {
                let period = i64::from(crate::edge::limits::PERIOD_SECS) * 1000;
                let mut over = self.users_over.borrow_mut();
                over.retain(|_, until| *until > now);
                over.insert(user, now + period);
            }
        }
        Ok(())
    }

    /// Asks the Auth object whether the connection's session was revoked,
    /// when the engine says a check is due (docs/auth.md, "Open sockets").
    /// After the message was handled, like the user limit above: awaiting
    /// first would let this socket's later frames overtake it.
    async fn check_revocation(&self, conn: &str, now: i64) -> Result<()> {
        // Only session tokens have a session, and they need sign-in's
        // configuration, which holds the interval.
        let Ok(config) = crate::glue::signin::config(&self.env) else {
            return Ok(());
        };
        let every_ms = config.revocation_cache_secs.saturating_mul(1000);
        let Some(sid) = self.engine_mut()?.revocation_due(conn, now, every_ms) else {
            return Ok(());
        };
        match crate::glue::signin::session_live(&self.env, &sid).await {
            Ok(live) => {
                let out = self.engine_mut()?.session_checked(conn, &sid, live, now_ms());
                self.deliver(out);
            }
            // Asked again at the next check.
            Err(e) => worker::console_warn!("shard: revocation check: {e}"),
        }
        Ok(())
    }

    /// Sends the diffs and acks the engine held back. An idle shard (no
    /// flush in the last `PYLON_FLUSH_GAP_MS`) flushes at once; a busy one waits
    /// out the gap, and the writes that arrive meanwhile join the same
    /// flush: one diff per subscription per batch instead of one per write.
    async fn flush_soon(&self) -> Result<()> {
        let gap = {
            let engine = self.engine_ref()?;
            if self.flush_due.get() || !engine.has_unflushed() {
                return Ok(());
            }
            engine.flush_gap_ms()
        };
        let wait = self.flushed_at.get() + gap - now_ms();
        if wait > 0 {
            self.flush_due.set(true);
            Delay::from(Duration::from_millis(wait as u64)).await;
        }
        self.flush_due.set(false);
        let out = {
            let mut engine = self.engine_mut()?;
            engine.flush().await
        };
        self.flushed_at.set(now_ms());
        self.deliver(out);
        Ok(())
    }
}

impl DurableObject for Shard {
    fn new(state: State, env: Env) -> Self {
        // SQL storage is synchronous, so the wake is counted before any event.
        let wakes = Meta::open(&DoSql(state.storage().sql()))
            .and_then(|m| m.add(meta::WAKES, 1))
            .unwrap_or_else(|e| {
                worker::console_error!("shard: counting the wake failed: {e}");
                0
            });
        Self {
            state,
            wakes: Cell::new(wakes),
            engine: RefCell::new(None),
            sockets: RefCell::new(HashMap::new()),
            env,
            alarm_armed: Cell::new(false),
            flush_due: Cell::new(false),
            flushed_at: Cell::new(0),
            users_over: RefCell::new(HashMap::new()),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let (shard, rest) = match route::parse(&req.path()) {
            Ok(Route::Shard { shard, rest }) => (shard, rest),
            Ok(_) => return respond::error(&ApiError::not_found("not a shard route")),
            Err(e) => return respond::error(&e),
        };
        // The router authenticated the caller and put it here; requests
        // reach this object only through the router.
        let caller = match req.headers().get(crate::auth::AUTH_HEADER)? {
            Some(h) => crate::auth::decode_caller(&h),
            None => None,
        };
        let Some((auth, lease)) = caller else {
            worker::console_error!(
                "shard: a request without the router's {} header",
                crate::auth::AUTH_HEADER
            );
            return respond::error(&ApiError::internal(
                "the request did not come through the router",
            ));
        };
        if let Err(e) = self.ensure_engine(Some(&shard)).await {
            return respond::internal("opening the shard", &e);
        }
        let method = req.method();
        let result = match (method.clone(), rest.as_str()) {
            (Method::Get, "ws") => self.accept_socket(&req, &shard, auth, lease).await,
            (Method::Get, "stats") => self.stats(),
            (Method::Post, "mutate") => self.http_mutate(req, &auth).await,
            (Method::Post, "query") => self.http_query(req, &auth).await,
            (_, "ws" | "stats" | "mutate" | "query") => respond::error(
                &ApiError::method_not_allowed(format!("{method:?} is not allowed on {rest}")),
            ),
            _ => respond::error(&ApiError::not_found(format!(
                "no route /v1/shards/{shard}/{rest}"
            ))),
        };
        // Any event re-arms a drain that is owed (e.g. after a restart).
        self.arm_drain().await;
        result.or_else(|e| respond::internal(&format!("shard {shard}"), &e))
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        // Once the shard has closed a socket (a flood gets 4429), the
        // runtime still hands over what the client had sent before it saw
        // the close: drop it unread. 1 is the WebSocket readyState OPEN.
        if ws.as_ref().ready_state() != 1 {
            return Ok(());
        }
        let r = match &message {
            WebSocketIncomingMessage::String(t) => self.on_frame(&ws, FrameRef::Text(t)).await,
            WebSocketIncomingMessage::Binary(b) => self.on_frame(&ws, FrameRef::Binary(b)).await,
        };
        self.arm_drain().await;
        if let Err(e) = &r {
            worker::console_error!("shard: message failed: {e}");
            let err = ServerMsg::Err(protocol::ErrorMsg {
                code: protocol::ErrorCode::Internal,
                message: "the shard failed to handle this message".into(),
                op: None,
                sub: None,
            });
            let enc = ws
                .deserialize_attachment::<Attachment>()
                .ok()
                .flatten()
                .map(|a| a.info.encoding)
                .unwrap_or_default();
            send_frame(&ws, &protocol::encode_server(enc, &err));
        }
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        code: usize,
        _reason: String,
        _clean: bool,
    ) -> Result<()> {
        if self.ensure_engine(None).await.is_ok() {
            if let Ok(Some(a)) = ws.deserialize_attachment::<Attachment>() {
                self.forget(&a.conn);
            }
        }
        // Reply to the client's close; 1005/1006 are reserved and cannot be sent.
        let code = if code == 1005 || code == 1006 {
            1000
        } else {
            code as u16
        };
        let _ = ws.close(Some(code), Some("closing"));
        Ok(())
    }

    async fn websocket_error(&self, ws: WebSocket, error: worker::Error) -> Result<()> {
        worker::console_warn!("shard: socket error: {error}");
        if let Ok(Some(a)) = ws.deserialize_attachment::<Attachment>() {
            self.forget(&a.conn);
        }
        Ok(())
    }

    async fn alarm(&self) -> Result<Response> {
        // The alarm that was pending is this one.
        self.alarm_armed.set(false);
        if let Err(e) = self.ensure_engine(None).await {
            worker::console_error!("shard: alarm: opening the shard: {e}");
            self.set_alarm_in(outbox_backoff_ms(1)).await;
            return Response::ok("");
        }
        self.drain().await;
        Response::ok("")
    }
}
