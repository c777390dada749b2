//! A native async client for pylon.v1 (feature `client`, not on wasm32).
//!
//! [`Client`] keeps one WebSocket to one shard alive: it reconnects with
//! jittered exponential backoff, resumes every subscription with `since`,
//! resends unanswered mutations and function calls with their op ids, and
//! re-sends the presence it set. [`Subscription`]s hold the live, ordered
//! result of a query; [`Client::call`] runs a server function and
//! [`FnWatch`] keeps a query function's result. [`RawConnection`] is the
//! bare socket, for tests. [`sim::SimClient`] joins a simulation shard
//! (`pylon.sim.v1`) the same way. [`background`] has the HTTP APIs for
//! jobs, workflows and cron ([`background::Jobs`], [`background::Workflows`],
//! [`background::Scheduler`]) over [`PlainHttp`] or an HTTP client of your
//! own.
//!
//! ```no_run
//! use pylon_workers::client::{Client, ClientConfig, Query};
//! use pylon_workers::protocol::Op;
//! use pylon_workers::value::Value;
//!
//! # async fn demo() -> Result<(), pylon_workers::client::ClientError> {
//! let client = Client::connect(ClientConfig::new("ws://127.0.0.1:8787", "team-42")).await?;
//! let mut todos = client.subscribe(Query::new("Todo").limit(20)).await?;
//! println!("{} rows at seq {:?}", todos.rows().len(), todos.seq());
//!
//! let row = [("id", Value::Text("t1".into())), ("title", Value::Text("Buy milk".into()))]
//!     .into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
//! let ack = client.mutate(vec![Op::Insert { entity: "Todo".into(), row }]).await?;
//! // Read your writes: on ack, every subscription already reflects the write.
//! assert!(todos.seq() >= Some(ack.seq));
//!
//! todos.changed().await?; // the next change made by anyone
//! # Ok(()) }
//! ```
//!
//! Design: one background task (`driver.rs`) owns the socket and all state;
//! handles talk to it over channels, and it publishes each subscription's
//! rows through a `tokio::sync::watch` it alone writes (updated in place; no
//! lock is held across an await). Needs a tokio runtime. See docs/client.md.

mod apply;
pub mod background;
mod backoff;
mod driver;
mod functions;
mod http;
mod keepalive;
mod raw;
mod reconnect;
pub mod sim;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot, watch};

pub use apply::{apply_rows, check_seq, row_id, ApplyError};
pub use backoff::{new_op_id, Backoff};
pub use functions::{FnWatch, WatchView};
pub use http::PlainHttp;
pub use raw::{RawConnection, Received};

use crate::protocol::{
    Ack, Bcast, DecodeError, Encoding, ErrorCode, ErrorMsg, Op, PresenceDiff, PresenceState,
    Welcome,
};
use crate::value::{Row, Value};

/// How to reach a shard, and how to behave when the connection drops.
/// Build it with [`ClientConfig::new`] and the builder methods, or as a
/// literal ending in `..ClientConfig::default()`.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Base URL of the Worker, e.g. `ws://127.0.0.1:8787`. The client
    /// connects to `{url}/v1/shards/{shard}/ws`.
    pub url: String,
    /// Shard name (`A-Z a-z 0-9 . _ - :`, 1 to 128 characters).
    pub shard: String,
    /// Wire encoding; offered as the subprotocol `pylon.v1.<encoding>`.
    pub encoding: Encoding,
    /// Bearer token, offered as the subprotocol entry `bearer.<token>`.
    pub token: Option<String>,
    /// Client name and version; when set, sent in a `hello` on every
    /// connection (with `token`).
    pub client_id: Option<String>,
    /// Reconnect delays.
    pub backoff: Backoff,
    /// Time allowed for the upgrade plus `welcome`. Default 10 s.
    pub connect_timeout: Duration,
    /// After this much silence from the server, send a `ping`; after twice
    /// as much, drop the connection and reconnect. `None`: never. Default 30 s.
    pub keepalive: Option<Duration>,
    /// Largest frame accepted from the server. Default 1 MiB (as the server).
    pub max_frame_bytes: usize,
    /// Capacity of the [`Client::events`] channel; a receiver that falls
    /// further behind misses events (and is told so). Default 1024.
    pub event_capacity: usize,
}

impl Default for ClientConfig {
    /// `ws://127.0.0.1:8787` (`wrangler dev`), no shard (set one).
    fn default() -> Self {
        ClientConfig::new("ws://127.0.0.1:8787", "")
    }
}

impl ClientConfig {
    pub fn new(url: impl Into<String>, shard: impl Into<String>) -> ClientConfig {
        ClientConfig {
            url: url.into(),
            shard: shard.into(),
            encoding: Encoding::Json,
            token: None,
            client_id: None,
            backoff: Backoff::default(),
            connect_timeout: Duration::from_secs(10),
            keepalive: Some(Duration::from_secs(30)),
            max_frame_bytes: crate::protocol::Limits::default().max_frame_bytes,
            event_capacity: 1024,
        }
    }

    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = encoding;
        self
    }

    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    pub fn keepalive(mut self, keepalive: Option<Duration>) -> Self {
        self.keepalive = keepalive;
        self
    }

    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// `{url}/v1/shards/{shard}/ws`, after checking the shard name.
    pub fn ws_url(&self) -> Result<String, ClientError> {
        crate::route::validate_shard_name(&self.shard)
            .map_err(|e| ClientError::InvalidConfig(e.message.clone()))?;
        Ok(format!(
            "{}/v1/shards/{}/ws",
            self.url.trim_end_matches('/'),
            self.shard
        ))
    }
}

/// Everything that can go wrong for a caller.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL, shard name or token cannot be used.
    #[error("invalid client configuration: {0}")]
    InvalidConfig(String),
    /// The server refused the WebSocket upgrade with this HTTP status.
    #[error("upgrade refused with HTTP {status}")]
    Refused { status: u16 },
    /// The upgrade failed (e.g. the server did not echo the subprotocol).
    #[error("handshake failed: {0}")]
    Handshake(String),
    /// Network or WebSocket failure.
    #[error("transport: {0}")]
    Transport(String),
    /// The server did not follow pylon.v1.
    #[error("protocol violation by the server: {0}")]
    Protocol(String),
    /// A frame from the server did not decode.
    #[error("undecodable frame from the server: {0}")]
    Decode(DecodeError),
    /// The server answered with `err`.
    #[error("{code}: {message}")]
    Server { code: ErrorCode, message: String },
    /// A simulation shard answered with `sim_err` instead of its welcome
    /// (e.g. `FORBIDDEN`: the kind refused the subscriber).
    #[error("{}: {}", .0.code, .0.message)]
    Sim(crate::sim::wire::SimErr),
    /// The connection closed (with this close code, if any).
    #[error("disconnected (close code {code:?}) {reason}")]
    Disconnected { code: Option<u16>, reason: String },
    /// The request needs a live connection and there is none right now
    /// (`broadcast`, `ping`).
    #[error("not connected")]
    NotConnected,
    /// The client stopped: [`Client::close`], every handle dropped, or the
    /// server closed with a code that forbids retrying (4400, 4401, 4403;
    /// then `code` is set).
    #[error("client closed (close code {code:?})")]
    Closed { code: Option<u16> },
    /// No answer in time.
    #[error("timed out")]
    Timeout,
}

impl ClientError {
    /// The server's error code, for [`ClientError::Server`].
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Server { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether the server refused this because the connection's identity
    /// ended (`UNAUTHORIZED`, `TOKEN_EXPIRED:` / `SESSION_REVOKED:`, see
    /// [`ErrorMsg::identity_ended`]): renew with [`Client::set_token`],
    /// then retry (a mutation with [`Client::mutate_with_id`] and the same
    /// op id).
    pub fn identity_ended(&self) -> bool {
        match self {
            ClientError::Server { code, message } => ErrorMsg {
                code: *code,
                message: message.clone(),
                op: None,
                sub: None,
            }
            .identity_ended(),
            _ => false,
        }
    }

    fn from_err(e: &ErrorMsg) -> ClientError {
        ClientError::Server {
            code: e.code,
            message: e.message.clone(),
        }
    }
}

/// The connection as the client sees it (docs/protocol.md, "Connection
/// states").
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnState {
    /// Opening the WebSocket and waiting for `welcome` (attempt 0 is the
    /// first reconnect).
    Connecting { attempt: u32 },
    /// `welcome` received; subscriptions and mutations were resent.
    Live { conn: String, seq: u64 },
    /// Disconnected; the next attempt starts after `delay`.
    Waiting { attempt: u32, delay: Duration },
    /// Stopped for good; see [`ClientError::Closed`].
    Closed { code: Option<u16> },
}

/// Something that happened on the connection, for [`Client::events`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The connection state changed.
    State(ConnState),
    /// The connection dropped (close code and reason, or a transport error).
    Disconnected { code: Option<u16>, reason: String },
    /// A `welcome` (on every connection, and in answer to `hello`).
    Welcome(Welcome),
    /// Everyone's presence, right after `welcome`.
    PresenceState(PresenceState),
    /// Presence changes.
    PresenceDiff(PresenceDiff),
    /// A broadcast from another connection.
    Bcast(Bcast),
    /// An `err` that answers neither a pending mutation nor a subscription
    /// (e.g. `BAD_FRAME`, `RATE_LIMITED` for a `bcast`).
    Error(ErrorMsg),
    /// Subscription `sub` (its [`Subscription::id`]) dropped its held seq and
    /// asked for a fresh `snap`: `reset` from the server, or a diff that did
    /// not apply (`reason` says which).
    Resync { sub: u64, reason: String },
}

/// A live query: entity, filter, order, limit.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Query {
    pub entity: String,
    pub r#where: Value,
    pub order: Value,
    pub limit: Option<u32>,
    /// Ask the server to maintain `count` (matches ignoring `limit`).
    pub count: bool,
}

impl Query {
    pub fn new(entity: impl Into<String>) -> Query {
        Query {
            entity: entity.into(),
            ..Query::default()
        }
    }

    pub fn filter(mut self, r#where: Value) -> Self {
        self.r#where = r#where;
        self
    }

    pub fn order(mut self, order: Value) -> Self {
        self.order = order;
        self
    }

    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    pub fn with_count(mut self) -> Self {
        self.count = true;
        self
    }
}

/// Where a subscription stands.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubStatus {
    /// `sub` sent (or waiting for a connection); no `snap` yet.
    Pending,
    /// Holding the result at [`SubView::seq`], kept up to date.
    Live,
    /// The held seq was dropped (after `reset`, a gap or a bad diff): the
    /// rows shown are the last good ones, until the fresh `snap` replaces them.
    Resyncing,
    /// The server refused the subscription (`err` with `sub`); it is not
    /// retried.
    Failed { code: ErrorCode, message: String },
    /// The client stopped.
    Closed,
}

/// What a subscription holds at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct SubView {
    /// The result, in query order.
    pub rows: Vec<Row>,
    /// The seq the rows reflect (`None` before the first `snap`, and while
    /// resyncing).
    pub seq: Option<u64>,
    /// `count` from the server, if the query asked for it.
    pub count: Option<u64>,
    pub status: SubStatus,
    /// Incremented on every change of this view.
    pub version: u64,
}

impl SubView {
    fn new() -> SubView {
        SubView {
            rows: Vec::new(),
            seq: None,
            count: None,
            status: SubStatus::Pending,
            version: 0,
        }
    }

    /// The row with this id.
    pub fn get(&self, id: &str) -> Option<&Row> {
        self.rows.iter().find(|r| row_id(r) == Some(id))
    }
}

/// A handle on one live query. Dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    key: u64,
    view: watch::Receiver<SubView>,
    cmds: mpsc::UnboundedSender<driver::Command>,
}

impl Subscription {
    /// This subscription's number within the client (stable across
    /// reconnects; the wire id is `s<n>`, or `s<n>.<k>` after a resync).
    pub fn id(&self) -> u64 {
        self.key
    }

    /// A copy of the current rows.
    pub fn rows(&self) -> Vec<Row> {
        self.view.borrow().rows.clone()
    }

    /// The seq the rows reflect.
    pub fn seq(&self) -> Option<u64> {
        self.view.borrow().seq
    }

    pub fn status(&self) -> SubStatus {
        self.view.borrow().status.clone()
    }

    /// Calls `f` with the current view, without copying it. Do not hold on
    /// to anything across an await inside `f` (it cannot await anyway).
    pub fn with_view<R>(&self, f: impl FnOnce(&SubView) -> R) -> R {
        f(&self.view.borrow())
    }

    /// A copy of the current view.
    pub fn view(&self) -> SubView {
        self.view.borrow().clone()
    }

    /// Waits until the view changes after the last call to `changed` /
    /// `wait_for` (or since the handle was made). Fails once the
    /// subscription is failed or the client closed.
    pub async fn changed(&mut self) -> Result<(), ClientError> {
        if self.view.changed().await.is_err() {
            return Err(ClientError::Closed { code: None });
        }
        self.view.borrow_and_update().status.clone().into_result()
    }

    /// Waits until `pred` holds for the view (checked now, then on every
    /// change) and returns a copy of that view. Fails if the subscription
    /// fails or the client closes first.
    pub async fn wait_for(
        &mut self,
        pred: impl FnMut(&SubView) -> bool,
    ) -> Result<SubView, ClientError> {
        wait_view(&mut self.view, |v| &v.status, pred).await
    }

    /// Waits for the first `snap` (returns at once if there was one).
    pub async fn ready(&mut self) -> Result<(), ClientError> {
        self.wait_for(|v| v.seq.is_some()).await.map(drop)
    }

    /// Waits until the rows reflect at least `seq`.
    pub async fn wait_seq(&mut self, seq: u64) -> Result<SubView, ClientError> {
        self.wait_for(|v| v.seq.is_some_and(|s| s >= seq)).await
    }

    /// Stops the live query (same as dropping the handle).
    pub fn unsubscribe(self) {}
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let _ = self
            .cmds
            .send(driver::Command::Unsubscribe { key: self.key });
    }
}

/// Waits until `pred` holds for a view (checked now, then on every change)
/// and returns a copy of it; fails once the view's status is failed or
/// closed first.
async fn wait_view<V: Clone>(
    view: &mut watch::Receiver<V>,
    status: fn(&V) -> &SubStatus,
    mut pred: impl FnMut(&V) -> bool,
) -> Result<V, ClientError> {
    let mut failure = None;
    let res = view
        .wait_for(|v| {
            if pred(v) {
                return true;
            }
            failure = status(v).clone().into_result().err();
            failure.is_some()
        })
        .await;
    match (res, failure) {
        (_, Some(e)) => Err(e),
        (Ok(v), None) => Ok(v.clone()),
        (Err(_), None) => Err(ClientError::Closed { code: None }),
    }
}

impl SubStatus {
    fn into_result(self) -> Result<(), ClientError> {
        match self {
            SubStatus::Failed { code, message } => Err(ClientError::Server { code, message }),
            SubStatus::Closed => Err(ClientError::Closed { code: None }),
            _ => Ok(()),
        }
    }
}

/// A connection to one shard that stays up. Cheap to clone; the connection
/// closes when the last clone and the last [`Subscription`] are dropped, or
/// on [`Client::close`].
#[derive(Clone, Debug)]
pub struct Client {
    cmds: mpsc::UnboundedSender<driver::Command>,
    state: watch::Receiver<ConnState>,
    welcome: watch::Receiver<Welcome>,
    presence: watch::Receiver<BTreeMap<String, Value>>,
    events: broadcast::Sender<Event>,
    next_sub: Arc<AtomicU64>,
}

impl Client {
    /// Connects and waits for `welcome` (and, with `client_id`, the answer
    /// to `hello`). This first attempt is not retried: an unreachable
    /// server or a refused upgrade is an error here. Once connected, drops
    /// are healed in the background.
    pub async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        let (conn, welcome) = driver::open(&config).await?;
        let (cmds, cmd_rx) = mpsc::unbounded_channel();
        let (state_tx, state) = watch::channel(ConnState::Live {
            conn: welcome.conn.clone(),
            seq: welcome.seq,
        });
        let (welcome_tx, welcome_rx) = watch::channel(welcome);
        let (presence_tx, presence) = watch::channel(BTreeMap::new());
        let (events, _) = broadcast::channel(config.event_capacity.max(1));
        let driver = driver::Driver::new(config, state_tx, welcome_tx, presence_tx, events.clone());
        tokio::spawn(reconnect::run(driver, conn, cmd_rx));
        Ok(Client {
            cmds,
            state,
            welcome: welcome_rx,
            presence,
            events,
            next_sub: Arc::new(AtomicU64::new(1)),
        })
    }

    /// The last `welcome`: connection id, shard, seq at connect time.
    pub fn welcome(&self) -> Welcome {
        self.welcome.borrow().clone()
    }

    /// This connection's id (changes on reconnect).
    pub fn conn_id(&self) -> String {
        self.welcome.borrow().conn.clone()
    }

    pub fn state(&self) -> ConnState {
        self.state.borrow().clone()
    }

    /// A watch on the connection state (the latest state, and changes).
    pub fn state_watch(&self) -> watch::Receiver<ConnState> {
        self.state.clone()
    }

    /// Waits until the connection is LIVE (at once if it is).
    pub async fn wait_live(&self) -> Result<(), ClientError> {
        wait_live(self.state.clone()).await
    }

    /// Events from now on: state changes, presence, broadcasts, unmatched
    /// errors, resyncs. Each receiver sees every event unless it falls more
    /// than `event_capacity` behind (then `recv` reports `Lagged`).
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Everyone's presence (connection id → state), kept from
    /// `presence_state` / `presence_diff`.
    pub fn presence_members(&self) -> BTreeMap<String, Value> {
        self.presence.borrow().clone()
    }

    /// Starts a live query and waits for its first `snap`. An `err` for it
    /// (e.g. `UNKNOWN_ENTITY`, `BAD_QUERY`) is returned as
    /// [`ClientError::Server`]. While disconnected, it waits for the
    /// connection.
    pub async fn subscribe(&self, query: Query) -> Result<Subscription, ClientError> {
        let mut sub = self.subscribe_lazy(query)?;
        sub.ready().await?;
        Ok(sub)
    }

    /// Starts a live query without waiting for its `snap`.
    pub fn subscribe_lazy(&self, query: Query) -> Result<Subscription, ClientError> {
        let key = self.next_sub.fetch_add(1, Ordering::Relaxed);
        let (view_tx, view) = watch::channel(SubView::new());
        self.send(driver::Command::Subscribe {
            key,
            query,
            view: view_tx,
        })?;
        Ok(Subscription {
            key,
            view,
            cmds: self.cmds.clone(),
        })
    }

    /// Applies `ops` all or nothing, with a fresh op id. Waits for `ack`
    /// (returned, with `dup` when the server had applied the op before) or
    /// `err` ([`ClientError::Server`]). Across reconnects the same `mut`
    /// (same op id) is resent until answered. A retryable code
    /// (`ErrorCode::is_retryable`) is returned, not retried.
    pub async fn mutate(&self, ops: Vec<Op>) -> Result<Ack, ClientError> {
        self.mutate_with_id(new_op_id(), ops).await
    }

    /// [`Client::mutate`] with a caller-chosen op id, e.g. to retry on a
    /// new `Client` a mutation whose outcome is unknown.
    pub async fn mutate_with_id(&self, op: String, ops: Vec<Op>) -> Result<Ack, ClientError> {
        let (reply, rx) = oneshot::channel();
        self.send(driver::Command::Mutate { op, ops, reply })?;
        rx.await.unwrap_or(Err(ClientError::Closed { code: None }))
    }

    /// Sets this connection's presence (`Value::Null` clears it). Kept and
    /// sent again after every reconnect.
    pub fn presence(&self, state: Value) -> Result<(), ClientError> {
        self.send(driver::Command::Presence { state })
    }

    /// Sends a broadcast to the other connections of the shard, at most
    /// once: fails with [`ClientError::NotConnected`] when not LIVE.
    pub async fn broadcast(
        &self,
        topic: impl Into<String>,
        data: Value,
    ) -> Result<(), ClientError> {
        let (reply, rx) = oneshot::channel();
        self.send(driver::Command::Bcast {
            topic: topic.into(),
            data,
            reply,
        })?;
        rx.await.unwrap_or(Err(ClientError::Closed { code: None }))
    }

    /// Round trip of a `ping` / `pong`. Fails with
    /// [`ClientError::NotConnected`] when not LIVE, or
    /// [`ClientError::Disconnected`] if the connection drops first.
    pub async fn ping(&self) -> Result<Duration, ClientError> {
        let (reply, rx) = oneshot::channel();
        self.send(driver::Command::Ping { reply })?;
        rx.await.unwrap_or(Err(ClientError::Closed { code: None }))
    }

    /// Replaces the token: sends `hello` with it now (if LIVE) and uses it
    /// for every later connection.
    pub fn set_token(&self, token: Option<String>) -> Result<(), ClientError> {
        self.send(driver::Command::SetToken { token })
    }

    /// Closes the connection (1000) and stops reconnecting. Pending
    /// mutations fail with [`ClientError::Closed`].
    pub async fn close(&self) {
        let (reply, rx) = oneshot::channel();
        if self.send(driver::Command::Close { reply }).is_ok() {
            let _ = rx.await;
        }
    }

    fn send(&self, cmd: driver::Command) -> Result<(), ClientError> {
        self.cmds.send(cmd).map_err(|_| ClientError::Closed {
            code: self.closed_code(),
        })
    }

    fn closed_code(&self) -> Option<u16> {
        self.state.borrow().closed_code()
    }
}

impl ConnState {
    /// The close code the client stopped with, once `Closed`.
    fn closed_code(&self) -> Option<u16> {
        match self {
            ConnState::Closed { code } => *code,
            _ => None,
        }
    }
}

/// Waits until `state` is LIVE (at once if it is); fails once closed.
async fn wait_live(mut state: watch::Receiver<ConnState>) -> Result<(), ClientError> {
    let res = state
        .wait_for(|s| matches!(s, ConnState::Live { .. } | ConnState::Closed { .. }))
        .await;
    match res.as_deref() {
        Ok(ConnState::Live { .. }) => Ok(()),
        Ok(ConnState::Closed { code }) => Err(ClientError::Closed { code: *code }),
        _ => Err(ClientError::Closed { code: None }),
    }
}

/// The Rust examples of docs/client.md, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/client.md")]
pub struct ClientGuide;
