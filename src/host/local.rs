//! A host on this machine, for tests: the same [`HostCore`] the Worker
//! uses, with in-memory sockets, a virtual clock, and I/O answered by the
//! test. Evicting it drops everything but storage and the sockets'
//! attachments, as the platform does.

use std::collections::BTreeMap;

use super::core::{Attachment, Effect, HostCore};
use super::erased::ErasedCore;
use super::io::{IoCall, IoOutcome};
use super::object::{Object, OpenError};
use super::request::{Method, Request, Response};
use crate::app::App;
use crate::auth::Lease;
use crate::policy::AuthContext;
use crate::protocol::{Encoding, Frame, FrameRef};
use crate::storage::SqlConn;

/// What a socket received, and whether it was closed.
#[derive(Clone, Debug, Default)]
pub struct LocalSocket {
    pub received: Vec<Frame>,
    /// `(code, reason)` once the object closed it.
    pub closed: Option<(u16, String)>,
    /// The attachment, as JSON (what survives an eviction).
    attachment: serde_json::Value,
}

type IoHandler = Box<dyn FnMut(&IoCall) -> IoOutcome>;

/// One object, hosted in memory.
pub struct LocalHost<C: SqlConn + Clone, K: Object<C>> {
    sql: C,
    name: String,
    app: &'static App,
    vars: BTreeMap<String, String>,
    core: HostCore<C, K>,
    sockets: BTreeMap<String, LocalSocket>,
    now_ms: i64,
    /// The alarm, as the platform would hold it.
    alarm: Option<i64>,
    io: IoHandler,
    /// Every I/O call made, in order.
    pub io_log: Vec<IoCall>,
    /// Every `Effect::Log` line.
    pub log: Vec<String>,
}

/// The app a local host serves when the test gives none.
#[cfg(feature = "sqlite")]
fn empty_app() -> &'static App {
    static APP: std::sync::OnceLock<App> = std::sync::OnceLock::new();
    APP.get_or_init(|| App::new(r#"{"entities":[]}"#))
}

/// What the default I/O handler answers: tokens are refused, limits, D1,
/// the jobs ledger and queues succeed, and a function run finds no
/// function (a test that runs functions answers them itself).
fn default_io(call: &IoCall) -> IoOutcome {
    match call {
        IoCall::VerifyToken { .. } => IoOutcome::Verified(Err(crate::auth::AuthError::BadToken(
            "no verifier in this test".into(),
        ))),
        IoCall::SessionLive { .. } => IoOutcome::SessionLive(Ok(true)),
        IoCall::RateLimit { .. } => IoOutcome::RateLimited { allowed: true },
        IoCall::ApplyOutbox(_)
        | IoCall::EnqueueJobs(_)
        | IoCall::SendJob { .. }
        | IoCall::ReportWorkflow(_) => IoOutcome::Applied(Ok(())),
        IoCall::RunFunction(run) => {
            IoOutcome::Ran(Err(crate::functions::FnError::unknown(&run.name)))
        }
    }
}

#[cfg(feature = "sqlite")]
impl<K: Object<std::rc::Rc<crate::storage::SqliteConn>> + 'static>
    LocalHost<std::rc::Rc<crate::storage::SqliteConn>, K>
{
    /// A host over a fresh in-memory SQLite database.
    pub fn open_in_memory(name: &str) -> Result<Self, OpenError> {
        let db = crate::storage::SqliteConn::open_in_memory()
            .map_err(|e| OpenError::Other(e.to_string()))?;
        Self::open(std::rc::Rc::new(db), name, empty_app())
    }
}

// Events go through `ErasedCore`, as in the Worker's host.
impl<C: SqlConn + Clone + 'static, K: Object<C> + 'static> LocalHost<C, K> {
    /// Hosts object `name` over `sql` for `app`, opened at time 0.
    pub fn open(sql: C, name: &str, app: &'static App) -> Result<Self, OpenError> {
        let (core, _) = HostCore::new(sql.clone());
        let mut host = LocalHost {
            sql,
            name: name.to_owned(),
            app,
            vars: BTreeMap::new(),
            core,
            sockets: BTreeMap::new(),
            now_ms: 0,
            alarm: None,
            io: Box::new(default_io),
            io_log: Vec::new(),
            log: Vec::new(),
        };
        host.ensure_open()?;
        Ok(host)
    }

    /// Sets a deployment variable (takes effect at the next open).
    pub fn var(&mut self, name: &str, value: &str) -> &mut Self {
        self.vars.insert(name.into(), value.into());
        self
    }

    /// Answers I/O calls with `f` from now on.
    pub fn on_io(&mut self, f: impl FnMut(&IoCall) -> IoOutcome + 'static) -> &mut Self {
        self.io = Box::new(f);
        self
    }

    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    pub fn object(&self) -> Option<&K> {
        self.core.object()
    }

    /// The pending alarm, as the platform holds it.
    pub fn alarm(&self) -> Option<i64> {
        self.alarm
    }

    pub fn wakes(&self) -> i64 {
        self.core.wakes()
    }

    pub fn socket(&self, conn: &str) -> Option<&LocalSocket> {
        self.sockets.get(conn)
    }

    /// Takes the frames `conn` received so far.
    pub fn take_sent(&mut self, conn: &str) -> Vec<Frame> {
        self.sockets
            .get_mut(conn)
            .map(|s| std::mem::take(&mut s.received))
            .unwrap_or_default()
    }

    /// The platform evicts the object: memory is gone, storage, the alarm
    /// and the open sockets (with their attachments) remain. The next event
    /// rebuilds it.
    pub fn evict(&mut self) {
        let (core, _) = HostCore::new(self.sql.clone());
        self.core = core;
    }

    fn ensure_open(&mut self) -> Result<(), OpenError> {
        if self.core.is_open() {
            return Ok(());
        }
        let sockets: Vec<(String, serde_json::Value)> = self
            .sockets
            .iter()
            .filter(|(_, s)| s.closed.is_none())
            .filter_map(|(c, s)| {
                serde_json::from_value::<Attachment<serde_json::Value>>(s.attachment.clone())
                    .ok()
                    .map(|a| (c.clone(), a.info))
            })
            .collect();
        let vars = self.vars.clone();
        let get = move |k: &str| vars.get(k).cloned();
        let fx = ready_now(ErasedCore::open(
            &mut self.core,
            Some(&self.name.clone()),
            sockets,
            self.app,
            &get,
            self.now_ms,
        ))?;
        self.carry_out(fx);
        Ok(())
    }

    /// A request as the router would send it, from `caller`.
    pub fn request_as(
        &mut self,
        method: Method,
        rest: &str,
        body: serde_json::Value,
        caller: AuthContext,
    ) -> Result<Response, OpenError> {
        let req = Request {
            method,
            object: self.name.clone(),
            rest: rest.to_owned(),
            query: Vec::new(),
            caller,
            lease: Default::default(),
            body: serde_json::to_vec(&body).unwrap_or_default(),
        };
        self.request_raw(req)
    }

    /// A request exactly as given: its query-string pairs and body bytes
    /// (which need not be JSON) reach the object as they are.
    pub fn request_raw(&mut self, req: Request) -> Result<Response, OpenError> {
        self.ensure_open()?;
        let (resp, fx) = ready_now(ErasedCore::request(&mut self.core, req, self.now_ms));
        self.carry_out(fx);
        Ok(resp)
    }

    /// An anonymous request.
    pub fn request(
        &mut self,
        method: Method,
        rest: &str,
        body: serde_json::Value,
    ) -> Result<Response, OpenError> {
        self.request_as(method, rest, body, AuthContext::anonymous())
    }

    /// Opens a socket as an anonymous caller.
    pub fn connect(&mut self, encoding: Encoding) -> Result<String, Response> {
        self.connect_as(encoding, AuthContext::anonymous())
    }

    /// Opens a socket as `caller`: its id, or the object's refusal.
    pub fn connect_as(
        &mut self,
        encoding: Encoding,
        caller: AuthContext,
    ) -> Result<String, Response> {
        self.connect_with(encoding, caller, Lease::default())
    }

    /// Opens a socket as `caller` whose identity lasts as `lease` says.
    pub fn connect_with(
        &mut self,
        encoding: Encoding,
        caller: AuthContext,
        lease: Lease,
    ) -> Result<String, Response> {
        self.connect_query(encoding, caller, lease, &[])
    }

    /// Opens a socket as `caller` with query-string pairs on its upgrade
    /// request (`?after=…`).
    pub fn connect_query(
        &mut self,
        encoding: Encoding,
        caller: AuthContext,
        lease: Lease,
        query: &[(&str, &str)],
    ) -> Result<String, Response> {
        self.ensure_open()
            .map_err(|e| Response::from(crate::api_error::ApiError::internal(e.to_string())))?;
        let req = Request {
            method: Method::Get,
            object: self.name.clone(),
            rest: "ws".into(),
            query: query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            caller,
            lease,
            body: Vec::new(),
        };
        let (conn, state) = ErasedCore::accept(&mut self.core, &req, encoding, self.now_ms)?;
        let attachment = serde_json::to_value(Attachment {
            conn: conn.clone(),
            info: state.clone(),
        })
        .unwrap_or_default();
        self.sockets.insert(
            conn.clone(),
            LocalSocket {
                attachment,
                ..Default::default()
            },
        );
        let fx = ready_now(ErasedCore::connected(
            &mut self.core,
            &conn,
            state,
            self.now_ms,
        ));
        self.carry_out(fx);
        Ok(conn)
    }

    /// A frame from `conn`.
    pub fn message(&mut self, conn: &str, frame: FrameRef<'_>) -> Result<(), OpenError> {
        self.ensure_open()?;
        let fx = ready_now(ErasedCore::message(
            &mut self.core,
            conn,
            frame,
            self.now_ms,
        ));
        self.carry_out(fx);
        Ok(())
    }

    /// The client closes `conn`.
    pub fn close(&mut self, conn: &str) -> Result<(), OpenError> {
        self.ensure_open()?;
        if let Some(s) = self.sockets.get_mut(conn) {
            s.closed
                .get_or_insert((1000, "closed by the client".into()));
        }
        let fx = ready_now(ErasedCore::closed(&mut self.core, conn, self.now_ms));
        self.carry_out(fx);
        Ok(())
    }

    /// The clock moves on by `ms`; held-back timers and the alarm fire when
    /// due, in time order.
    pub fn advance(&mut self, ms: i64) -> Result<(), OpenError> {
        let end = self.now_ms + ms;
        loop {
            let soft = self.core.next_soft().filter(|at| *at <= end);
            let alarm = self.alarm.filter(|at| *at <= end);
            match (soft, alarm) {
                (Some(s), a) if a.is_none_or(|a| s <= a) => {
                    self.now_ms = self.now_ms.max(s);
                    let fx = ready_now(ErasedCore::soft_due(&mut self.core, self.now_ms));
                    self.carry_out(fx);
                }
                (_, Some(a)) => {
                    self.now_ms = self.now_ms.max(a);
                    self.alarm = None;
                    self.ensure_open()?;
                    let fx = ready_now(ErasedCore::alarm(&mut self.core, self.now_ms));
                    self.carry_out(fx);
                }
                _ => break,
            }
        }
        self.now_ms = end;
        Ok(())
    }

    /// Host and object figures, as `GET …/stats` shows them.
    pub fn stats(&self) -> serde_json::Value {
        self.core.stats(self.now_ms)
    }

    fn carry_out(&mut self, effects: Vec<Effect<serde_json::Value>>) {
        let mut queue: std::collections::VecDeque<_> = effects.into();
        while let Some(e) = queue.pop_front() {
            match e {
                Effect::Send { conns, frame } => {
                    for c in conns {
                        if let Some(s) = self.sockets.get_mut(&c) {
                            if s.closed.is_none() {
                                s.received.push(frame.clone());
                            }
                        }
                    }
                }
                Effect::Close { conn, code, reason } => {
                    if let Some(s) = self.sockets.get_mut(&conn) {
                        s.closed.get_or_insert((code, reason));
                    }
                }
                Effect::Attach { conn, state } => {
                    if let Some(s) = self.sockets.get_mut(&conn) {
                        s.attachment = serde_json::to_value(Attachment {
                            conn: conn.clone(),
                            info: state,
                        })
                        .unwrap_or_default();
                    }
                }
                Effect::SetAlarm(at) => self.alarm = Some(at),
                Effect::ClearAlarm => self.alarm = None,
                // `advance` looks at the core's held-back timers itself;
                // one due now fires before the next event, as in the Worker.
                Effect::WakeAt(at) => {
                    if at <= self.now_ms {
                        let fx = ready_now(ErasedCore::soft_due(&mut self.core, self.now_ms));
                        queue.extend(fx);
                    }
                }
                Effect::Io { tag, call } => {
                    self.io_log.push(call.clone());
                    let outcome = (self.io)(&call);
                    let fx = ready_now(ErasedCore::io_done(
                        &mut self.core,
                        tag,
                        outcome,
                        self.now_ms,
                    ));
                    queue.extend(fx);
                }
                Effect::Log(line) => self.log.push(line),
            }
        }
    }
}

/// Drives a host future that never waits: objects do no I/O of their own
/// and storage is synchronous, so it is ready on its first poll. A future
/// that is not is a bug in the object, reported as a panic in the test.
fn ready_now<F: std::future::Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("an object handler awaited something that was not ready"),
    }
}
