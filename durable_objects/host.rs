//! The Workers host: one Durable Object class per object kind is a thin
//! wrapper around [`Host`] (the app's `pylon_workers::export!` writes it),
//! and the host maps every runtime callback onto the kind's
//! [`Object`](crate::host::Object) through the platform-free
//! [`HostCore`], then carries out the effects. Nothing here decides
//! anything a kind would want to decide; the contract is docs/host.md.
//!
//! Hibernation: workerd may evict the object while its sockets stay open.
//! Each socket's attachment holds `{conn, info}`; everything else is in
//! storage. After a wake the object is opened again on the first event,
//! from storage and the attachments.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use worker::{
    Delay, Env, Method as WMethod, Request as WRequest, Response as WResponse, Result,
    ScheduledTime, State, WebSocket, WebSocketIncomingMessage, WebSocketPair,
    WebSocketRequestResponsePair,
};

use super::do_sql::DoSql;
use super::io::perform;
use super::turn::Turns;
use crate::api_error::ApiError;
use crate::app::App;
use crate::glue::respond;
use crate::host::{
    Attachment, Effect, ErasedCore, HostCore, IoCall, Method, Object, Request, Response,
};
use crate::protocol::{self, Frame, FrameRef};
use crate::time::now_ms;

fn send_frame(ws: &WebSocket, frame: &Frame) {
    let r = match frame {
        Frame::Text(t) => ws.send_with_str(t),
        Frame::Binary(b) => ws.send_with_bytes(b),
    };
    if let Err(e) = r {
        worker::console_warn!("host: send failed: {e}");
    }
}

/// Hosts one object in a Durable Object. Its kind is erased behind
/// [`ErasedCore`], so this code is in the bundle once for every class.
pub struct Host {
    state: State,
    env: Env,
    app: &'static App,
    core: Turns<Box<dyn ErasedCore>>,
    /// conn id -> socket, rebuilt when the object opens.
    sockets: RefCell<HashMap<String, WebSocket>>,
    /// A handler is already waiting for the next held-back timer.
    soft_waiting: Cell<bool>,
}

impl Host {
    /// The constructor of the Durable Object class of kind `K`. Storage is
    /// synchronous, so the wake is counted here, before any event.
    pub fn new<K: Object<DoSql> + 'static>(state: State, env: Env, app: &'static App) -> Self {
        let (core, warning) = HostCore::<DoSql, K>::new(DoSql::new(state.storage().sql()));
        Host::with_core(state, env, app, Box::new(core), warning)
    }

    fn with_core(
        state: State,
        env: Env,
        app: &'static App,
        core: Box<dyn ErasedCore>,
        warning: Option<String>,
    ) -> Self {
        if let Some(w) = warning {
            worker::console_error!("host: {w}");
        }
        // The clients' keepalive is answered by the runtime without running
        // (or waking) this object: an idle socket costs nothing.
        match WebSocketRequestResponsePair::new(protocol::KEEPALIVE, protocol::KEEPALIVE_ACK) {
            Ok(pair) => state.set_websocket_auto_response(&pair),
            Err(e) => worker::console_error!("host: keepalive auto-response: {e:?}"),
        }
        Host {
            state,
            env,
            app,
            core: Turns::new(core),
            sockets: RefCell::new(HashMap::new()),
            soft_waiting: Cell::new(false),
        }
    }

    /// Opens the object if this wake has not yet, with the sockets that
    /// survived hibernation.
    async fn ensure_open(&self, name: Option<&str>) -> std::result::Result<(), String> {
        if self.core.take().await.is_open() {
            return Ok(());
        }
        let mut sockets = HashMap::new();
        let mut open = Vec::new();
        for ws in self.state.get_websockets() {
            if let Ok(Some(a)) = ws.deserialize_attachment::<Attachment<serde_json::Value>>() {
                sockets.insert(a.conn.clone(), ws);
                open.push((a.conn, a.info));
            }
        }
        let env = &self.env;
        let vars = |k: &str| env.var(k).ok().map(|v| v.to_string());
        let effects = {
            let mut core = self.core.take().await;
            core.open(name, open, self.app, &vars, now_ms())
                .await
                .map_err(|e| e.to_string())?
        };
        *self.sockets.borrow_mut() = sockets;
        self.carry_out(effects).await;
        Ok(())
    }

    /// The Durable Object's `fetch`: a WebSocket upgrade, `GET stats`, or a
    /// request for the object. The router has parsed the path and verified
    /// the caller; both arrive in internal headers.
    pub async fn fetch(&self, req: WRequest) -> Result<WResponse> {
        let target = match crate::glue::target::Target::read(&req)? {
            Ok(t) => t,
            Err(e) => return respond::error(&e),
        };
        // Reachability, answered before the object opens: what a request
        // costs the platform alone (the benches' floor for a first answer
        // after an eviction, docs/host.md).
        if req.method() == WMethod::Get && target.rest == "alive" {
            return WResponse::empty().map(|r| r.with_status(204));
        }
        if let Err(e) = self.ensure_open(Some(&target.object)).await {
            worker::console_error!("host: opening {}: {e}", target.object);
            return respond::error(&ApiError::internal("the object failed to open"));
        }
        let upgrade = req
            .headers()
            .get("Upgrade")?
            .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
        let method = match req.method() {
            WMethod::Get => Method::Get,
            WMethod::Post => Method::Post,
            WMethod::Put => Method::Put,
            WMethod::Delete => Method::Delete,
            _ => Method::Other,
        };
        let query = req
            .url()?
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let mut request = Request {
            method,
            object: target.object,
            rest: target.rest,
            query,
            caller: target.caller,
            lease: target.lease,
            body: Vec::new(),
        };
        if upgrade {
            return self.accept(&req, &request).await;
        }
        if method == Method::Get && request.rest == "stats" {
            let mut v = self.core.take().await.stats(now_ms());
            v["storage_bytes"] = serde_json::json!(self.state.storage().sql().database_size());
            return respond::json(200, &v);
        }
        let max = self.core.take().await.max_body_bytes();
        let mut req = req;
        request.body = match crate::glue::body::read_capped(&mut req, max).await {
            Ok(b) => b,
            // The size limit of a body is the object's frame limit.
            Err(e) => return respond::error(&e.to_api_error("FRAME_TOO_LARGE")),
        };
        let (resp, effects) = {
            let mut core = self.core.take().await;
            core.request(request, now_ms()).await
        };
        self.carry_out(effects).await;
        respond::json(resp.status, &resp.body)
    }

    async fn accept(&self, req: &WRequest, request: &Request) -> Result<WResponse> {
        let offered = req.headers().get("Sec-WebSocket-Protocol")?;
        let Ok(negotiated) = protocol::negotiate(offered.as_deref()) else {
            return respond::error(&ApiError::bad_request(
                "BAD_PROTOCOL",
                "offer pylon.v1.json or pylon.v1.postcard in Sec-WebSocket-Protocol",
            ));
        };
        let accepted = {
            let mut core = self.core.take().await;
            core.accept(request, negotiated.encoding, now_ms())
        };
        let (conn, state) = match accepted {
            Ok(a) => a,
            Err(Response { status, body }) => return respond::json(status, &body),
        };
        let pair = WebSocketPair::new()?;
        self.state.accept_web_socket(&pair.server);
        pair.server.serialize_attachment(Attachment {
            conn: conn.clone(),
            info: state.clone(),
        })?;
        self.sockets
            .borrow_mut()
            .insert(conn.clone(), pair.server.clone());
        let effects = {
            let mut core = self.core.take().await;
            core.connected(&conn, state, now_ms()).await
        };
        self.carry_out(effects).await;
        let mut resp = WResponse::from_websocket(pair.client)?;
        if let Some(echo) = negotiated.echo {
            resp.headers_mut().set("Sec-WebSocket-Protocol", echo)?;
        }
        Ok(resp)
    }

    /// The connection id a socket's attachment names (only that is read).
    fn conn_of(ws: &WebSocket) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct ConnId {
            conn: String,
        }
        ws.deserialize_attachment::<ConnId>()
            .ok()
            .flatten()
            .map(|a| a.conn)
    }

    pub async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        // Once the object has closed a socket (a flood gets 4429), the
        // runtime still hands over what the client had sent before it saw
        // the close: drop it unread. 1 is the WebSocket readyState OPEN.
        if ws.as_ref().ready_state() != 1 {
            return Ok(());
        }
        if let Err(e) = self.ensure_open(None).await {
            worker::console_error!("host: opening for a message: {e}");
            // The client reconnects with backoff; the next event retries.
            let _ = ws.close(
                Some(protocol::close::INTERNAL),
                Some("the object failed to open"),
            );
            return Ok(());
        }
        let Some(conn) = Self::conn_of(&ws) else {
            let _ = ws.close(Some(protocol::close::INTERNAL), Some("no attachment"));
            return Ok(());
        };
        let frame = match &message {
            // Normally answered by the runtime before it reaches us; the
            // same answer here keeps the protocol whole if it ever does.
            WebSocketIncomingMessage::String(t) if t == protocol::KEEPALIVE => {
                let _ = ws.send_with_str(protocol::KEEPALIVE_ACK);
                return Ok(());
            }
            WebSocketIncomingMessage::String(t) => FrameRef::Text(t),
            WebSocketIncomingMessage::Binary(b) => FrameRef::Binary(b),
        };
        let effects = {
            let mut core = self.core.take().await;
            core.message(&conn, frame, now_ms()).await
        };
        self.carry_out(effects).await;
        Ok(())
    }

    pub async fn websocket_close(
        &self,
        ws: WebSocket,
        code: usize,
        _reason: String,
        _clean: bool,
    ) -> Result<()> {
        self.gone(&ws).await;
        // Reply to the client's close; 1005/1006 are reserved and cannot be sent.
        let code = if code == 1005 || code == 1006 {
            1000
        } else {
            code as u16
        };
        let _ = ws.close(Some(code), Some("closing"));
        Ok(())
    }

    pub async fn websocket_error(&self, ws: WebSocket, error: worker::Error) -> Result<()> {
        worker::console_warn!("host: socket error: {error}");
        self.gone(&ws).await;
        Ok(())
    }

    async fn gone(&self, ws: &WebSocket) {
        if self.ensure_open(None).await.is_err() {
            return;
        }
        let Some(conn) = Self::conn_of(ws) else {
            return;
        };
        self.sockets.borrow_mut().remove(&conn);
        let effects = {
            let mut core = self.core.take().await;
            core.closed(&conn, now_ms()).await
        };
        self.carry_out(effects).await;
    }

    pub async fn alarm(&self) -> Result<WResponse> {
        if let Err(e) = self.ensure_open(None).await {
            worker::console_error!("host: alarm: opening: {e}");
            self.set_alarm(now_ms() + 1000).await;
            return WResponse::ok("");
        }
        let effects = {
            let mut core = self.core.take().await;
            core.alarm(now_ms()).await
        };
        self.carry_out(effects).await;
        WResponse::ok("")
    }

    async fn set_alarm(&self, at_ms: i64) {
        let at = ScheduledTime::new(worker::js_sys::Date::new(&(at_ms as f64).into()));
        if let Err(e) = self.state.storage().set_alarm(at).await {
            worker::console_error!("host: setting the alarm: {e}");
        }
    }

    /// Carries out effects in order: sends, closes and attachments at
    /// once; then the held-back timers (a flush must not wait for I/O);
    /// then each I/O call, whose outcome is carried out the same way.
    async fn carry_out(&self, effects: Vec<Effect<serde_json::Value>>) {
        let mut io: VecDeque<(u64, IoCall)> = VecDeque::new();
        let mut pending = effects;
        loop {
            let mut wake = false;
            self.apply(pending, &mut io, &mut wake).await;
            if wake && !self.soft_waiting.get() {
                self.soft_waiting.set(true);
                loop {
                    // Not `while let`: its borrow would live through the body.
                    let next = self.core.take().await.next_soft();
                    let Some(at) = next else { break };
                    let wait = at - now_ms();
                    if wait > 0 {
                        Delay::from(Duration::from_millis(wait as u64)).await;
                    }
                    let effects = {
                        let mut core = self.core.take().await;
                        core.soft_due(now_ms()).await
                    };
                    self.apply(effects, &mut io, &mut wake).await;
                }
                self.soft_waiting.set(false);
            }
            let Some((tag, call)) = io.pop_front() else {
                return;
            };
            let outcome = perform(&self.env, self.app, call).await;
            pending = {
                let mut core = self.core.take().await;
                core.io_done(tag, outcome, now_ms()).await
            };
        }
    }

    /// The effects that need no waiting; I/O is collected, `wake` set when
    /// a held-back timer is pending.
    async fn apply(
        &self,
        effects: Vec<Effect<serde_json::Value>>,
        io: &mut VecDeque<(u64, IoCall)>,
        wake: &mut bool,
    ) {
        for e in effects {
            match e {
                Effect::Send { conns, frame } => {
                    let sockets = self.sockets.borrow();
                    for c in &conns {
                        if let Some(ws) = sockets.get(c) {
                            send_frame(ws, &frame);
                        }
                    }
                }
                Effect::Close { conn, code, reason } => {
                    if let Some(ws) = self.sockets.borrow_mut().remove(&conn) {
                        let _ = ws.close(Some(code), Some(reason));
                    }
                }
                Effect::Attach { conn, state } => {
                    if let Some(ws) = self.sockets.borrow().get(&conn) {
                        if let Err(e) = ws.serialize_attachment(Attachment {
                            conn: conn.clone(),
                            info: state,
                        }) {
                            worker::console_error!("host: saving {conn}'s attachment: {e}");
                        }
                    }
                }
                Effect::SetAlarm(at) => self.set_alarm(at).await,
                Effect::ClearAlarm => {
                    if let Err(e) = self.state.storage().delete_alarm().await {
                        worker::console_error!("host: deleting the alarm: {e}");
                    }
                }
                Effect::WakeAt(_) => *wake = true,
                Effect::Io { tag, call } => io.push_back((tag, call)),
                Effect::Log(line) => worker::console_error!("host: {line}"),
            }
        }
    }
}
