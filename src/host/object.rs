//! The trait an object kind implements, and what it is opened with.

use super::action::{Action, ConnState, Wire};
use super::io::IoOutcome;
use super::request::{Request, Response};
use crate::api_error::ApiError;
use crate::app::App;
use crate::protocol::{Encoding, FrameRef};
use crate::storage::{SqlConn, StorageError};

/// What an object is opened with: on the first event after the platform
/// constructed it (a first request, or a wake after eviction).
pub struct Open<'a, C> {
    /// The object's own SQLite storage.
    pub sql: C,
    /// The object's name, as the router routed it (kept in storage, so a
    /// wake by a socket message or an alarm knows it too).
    pub name: String,
    pub app: &'a App,
    /// Deployment settings (wrangler `[vars]`), by name.
    pub vars: &'a dyn Fn(&str) -> Option<String>,
    pub now_ms: i64,
}

/// Why an object could not open. The host answers requests with a 500 and
/// tries again on the next event.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum OpenError {
    #[error("the manifest does not load: {0}")]
    Manifest(String),
    #[error("bad configuration: {0}")]
    Config(String),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Other(String),
}

impl From<ApiError> for OpenError {
    fn from(e: ApiError) -> Self {
        OpenError::Manifest(e.message)
    }
}

/// One kind of Durable Object, written against plain values: events in,
/// [`Action`]s out. Override what the kind needs; the defaults take no
/// sockets, answer requests 404 and ignore timers and I/O.
///
/// Handlers run one at a time and must not await platform I/O (there is
/// none to await: ask with [`Action::Io`]). They are `async` only so that
/// engine code written over async traits runs inside them; storage is
/// synchronous, so every handler finishes within one poll, and all its
/// writes commit together.
#[allow(async_fn_in_trait)]
pub trait Object<C: SqlConn>: Sized {
    /// What it sends to its sockets.
    type Msg: Wire;
    /// What it keeps per connection (the socket's attachment).
    type Conn: ConnState;

    /// Opens the object from storage, with the connections whose sockets
    /// survived hibernation (none on a first start).
    async fn open(
        init: Open<'_, C>,
        conns: Vec<(String, Self::Conn)>,
    ) -> Result<(Self, Vec<Action<Self::Msg, Self::Conn>>), OpenError>;

    /// The largest request body the host reads for it (413 above, refused
    /// from `Content-Length` or while streaming).
    fn max_body_bytes(&self) -> usize {
        1 << 20
    }

    /// A WebSocket upgrade: the new connection's state, or the HTTP
    /// refusal. `encoding` is what the client negotiated.
    fn accept(
        &mut self,
        req: &Request,
        encoding: Encoding,
        now_ms: i64,
    ) -> Result<Self::Conn, Response> {
        let _ = (req, encoding, now_ms);
        Err(ApiError::new(426, "NO_SOCKETS", "this object takes no WebSockets").into())
    }

    /// A socket was accepted (its state is in its attachment already).
    async fn on_connect(
        &mut self,
        conn: &str,
        state: Self::Conn,
        now_ms: i64,
    ) -> Vec<Action<Self::Msg, Self::Conn>> {
        let _ = (conn, state, now_ms);
        Vec::new()
    }

    /// A frame from a connection.
    async fn on_message(
        &mut self,
        conn: &str,
        frame: FrameRef<'_>,
        now_ms: i64,
    ) -> Vec<Action<Self::Msg, Self::Conn>> {
        let _ = (conn, frame, now_ms);
        Vec::new()
    }

    /// A receipt (`recv`, which the host reads itself) was malformed or
    /// reported more bytes than were sent: refuse it as the kind refuses
    /// any other frame, with its typed error and counted by the same limit
    /// that closes a socket that keeps sending what is refused (a valid
    /// receipt never reaches the object, so never counts). By default the
    /// socket is closed as a protocol error.
    fn bad_receipt(
        &mut self,
        conn: &str,
        why: String,
        now_ms: i64,
    ) -> Vec<Action<Self::Msg, Self::Conn>> {
        let _ = now_ms;
        vec![Action::Close {
            conn: conn.to_owned(),
            code: crate::protocol::close::PROTOCOL,
            reason: why,
        }]
    }

    /// A connection is gone (the client closed it, it failed, or the object
    /// closed it). Called once per connection.
    async fn on_close(&mut self, conn: &str, now_ms: i64) -> Vec<Action<Self::Msg, Self::Conn>> {
        let _ = (conn, now_ms);
        Vec::new()
    }

    /// An HTTP request other than an upgrade.
    async fn on_request(
        &mut self,
        req: Request,
        now_ms: i64,
    ) -> (Response, Vec<Action<Self::Msg, Self::Conn>>) {
        let _ = now_ms;
        let e = ApiError::not_found(format!("no route {}/{}", req.object, req.rest));
        (e.into(), Vec::new())
    }

    /// A timer it set ([`Action::SetTimer`] or [`Action::Soon`]) is due.
    async fn on_timer(&mut self, name: &str, now_ms: i64) -> Vec<Action<Self::Msg, Self::Conn>> {
        let _ = (name, now_ms);
        Vec::new()
    }

    /// The outcome of an [`Action::Io`] it returned.
    async fn on_io(
        &mut self,
        tag: u64,
        outcome: IoOutcome,
        now_ms: i64,
    ) -> Vec<Action<Self::Msg, Self::Conn>> {
        let _ = (tag, outcome, now_ms);
        Vec::new()
    }

    /// Its figures for `GET …/stats` (the host adds its own: wakes,
    /// connections, storage size, timers).
    fn stats(&self, now_ms: i64) -> serde_json::Value {
        let _ = now_ms;
        serde_json::json!({})
    }
}
