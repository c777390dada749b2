//! The shard engine: one shard's connections, live queries and writes, with
//! no Workers types. The Durable Object feeds it events (a connection
//! opened, a frame, a close, an HTTP call) and sends what it returns.
//!
//! ```
//! # #[cfg(feature = "sqlite")] {
//! use pylon_workers::manifest::Manifest;
//! use pylon_workers::policy::AuthContext;
//! use pylon_workers::protocol::{Encoding, ServerMsg};
//! use pylon_workers::shard::{ConnInfo, Outbound, ShardConfig, ShardEngine};
//! use pylon_workers::storage::SqliteConn;
//! let manifest = Manifest::from_json_str(
//!     r#"{"entities":[{"name":"Card","fields":[{"name":"title","type":"string"}]}]}"#).unwrap();
//! let db = SqliteConn::open_in_memory().unwrap();
//! let mut shard = ShardEngine::open(db, manifest.into(), "room-1", ShardConfig::default()).unwrap();
//! let info = ConnInfo { auth: AuthContext::anonymous(), encoding: Encoding::Json, client: None,
//!                       lease: Default::default(), ended: None };
//! let out = shard.connect("c1", info, 0).unwrap();
//! assert!(matches!(&out[0], Outbound::To(c, ServerMsg::Welcome(w)) if c == "c1" && w.seq == 0));
//! # }
//! ```
//!
//! Frames, mutations and subscriptions are `async` (live queries may read
//! storage to refill a window); tests/shard_engine.rs drives them.
//!
//! This file holds the engine's state and hands each frame on; every
//! concern adds its own `impl ShardEngine` in a submodule.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::config::ShardConfig;
use super::http_query::{self, QueryFailure};
use super::presence::PresenceBook;
use super::store::{SchemaError, ShardStore};
use crate::auth::Lease;
use crate::functions::Functions;
use crate::live::{SubKey, SubKeyMap, SubscriptionIndex};
use crate::manifest::{Entity, Manifest};
use crate::policy::AuthContext;
use crate::protocol::{self, close, ClientMsg, Encoding, ErrorCode, ErrorMsg, FrameRef, ServerMsg};
use crate::query::Query;
use crate::storage::SqlConn;
use crate::value::Value;

mod calls;
mod connections;
mod errors;
mod fan_out;
mod frames;
mod identity;
mod jobs;
mod ops;
mod outbox;
mod presence;
mod rooms;
mod scheduled;
mod stats;
mod subscriptions;
mod watches;
mod windows;
mod writes;

use connections::{rate_refused, Conn};
use errors::{err, query_err, storage_err};
pub use identity::Ended;
pub use jobs::{JobBatch, JOBS_PER_SEND, JOB_OUTBOX_ATTEMPTS, JOB_OUTBOX_ERROR, MAX_JOBS_PER_CALL};
pub use outbox::{outbox_backoff_ms, OUTBOX_ATTEMPTS, OUTBOX_ERROR};
use windows::{LiveSub, Window, WindowIdent};
use writes::QueuedMut;

/// What the runtime knows of a connection; small enough for a WebSocket
/// attachment, so it survives hibernation there.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ConnInfo {
    pub auth: AuthContext,
    pub encoding: Encoding,
    pub client: Option<String>,
    /// How long `auth` holds: the token's `exp`, its session (attachments
    /// written before this field existed read as no expiry).
    #[serde(default)]
    pub lease: Lease,
    /// Set once the identity ended and the connection was told
    /// (docs/auth.md, "Open sockets"); cleared by a renewing `hello`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<Ended>,
}

/// Something for the runtime to do on the engine's behalf.
#[derive(Clone, Debug, PartialEq)]
pub enum Outbound {
    /// Send `msg` to one connection.
    To(String, ServerMsg),
    /// Send the same `msg` to each of these connections (encode it once
    /// per encoding, not once per socket).
    Many { conns: Vec<String>, msg: ServerMsg },
    /// Send `msg` to every connection but `except`.
    All {
        except: Option<String>,
        msg: ServerMsg,
    },
    /// Close a connection.
    Close {
        conn: String,
        code: u16,
        reason: String,
    },
    /// A `hello` carried a token: verify it (the runtime holds the keys and
    /// may need the network) and hand the result to
    /// [`ShardEngine::hello_verified`]. Never carries a token to a socket.
    Verify { conn: String, token: String },
    /// The connection's info changed (a renewed lease, an ended identity):
    /// keep it in the socket's attachment so a wake restores it.
    Attach { conn: String, info: ConnInfo },
}

/// What became of a `mut` or `call` ([`ShardEngine::take_write`]).
enum Taken {
    /// Queued (what a full batch's flush sent, or nothing yet).
    Queued(Vec<Outbound>),
    /// Applied at once: its diffs and answer.
    Applied(Vec<Outbound>),
}

pub struct ShardEngine<C: SqlConn> {
    store: ShardStore<C>,
    manifest: Arc<Manifest>,
    shard: String,
    config: ShardConfig,
    conns: HashMap<String, Conn>,
    subs: SubKeyMap<LiveSub>,
    /// Keyed like `subs` (one key space); the index maps changes to these.
    windows: SubKeyMap<Window>,
    window_of: HashMap<WindowIdent, SubKey>,
    index: SubscriptionIndex,
    next_key: u64,
    /// Coalescing (`config.max_batch` > 1): the writes received since the
    /// last flush (applied by it, together, in one storage commit), windows
    /// changed since the last flush, and the acks and errors not sent yet.
    queued: Vec<QueuedMut>,
    dirty: Vec<SubKey>,
    pending: Vec<Outbound>,
    /// Connections whose identity ended (docs/auth.md, "Open sockets"):
    /// their subscriptions get no diffs until renewed.
    paused: HashSet<String>,
    /// The latest event time seen (ms): the clock of a flush.
    clock_ms: i64,
    /// The earliest time a lease of a connection not yet ended runs out.
    next_end_ms: i64,
    /// Sizes of the stored presence, for its bounds.
    presence: PresenceBook,
    /// The app's server functions (docs/functions.md).
    functions: Functions,
    /// Live query functions (`watch`).
    watches: watches::Watches,
    /// A commit scheduled or cancelled a call: the alarm may need moving.
    schedule_changed: bool,
    /// A commit added jobs to the job outbox: they are to be sent.
    jobs_added: bool,
    /// Whether a commit added to the D1 outbox since the object last
    /// looked (an empty outbox found stays empty until one does).
    outbox_added: bool,
    /// A commit of this event recorded changes, so the outbox holds
    /// entries now: the object arms its drain without counting them.
    outbox_filled: bool,
    /// The member count last noted for the room list (docs/rooms.md), and
    /// whether the list is due a newer one.
    room_noted: Option<(i64, bool)>,
}

impl<C: SqlConn> ShardEngine<C> {
    /// Opens the shard over its storage: creates or migrates its tables.
    pub fn open(
        conn: C,
        manifest: Arc<Manifest>,
        shard: &str,
        config: ShardConfig,
    ) -> Result<Self, SchemaError> {
        let store = ShardStore::new(conn);
        store.ensure_schema(&manifest)?;
        let presence = PresenceBook::load(&store)?;
        Ok(ShardEngine {
            store,
            manifest,
            shard: shard.to_owned(),
            config,
            conns: HashMap::new(),
            subs: SubKeyMap::default(),
            windows: SubKeyMap::default(),
            window_of: HashMap::new(),
            index: SubscriptionIndex::new(),
            next_key: 0,
            queued: Vec::new(),
            dirty: Vec::new(),
            pending: Vec::new(),
            paused: HashSet::new(),
            clock_ms: i64::MIN,
            next_end_ms: i64::MAX,
            presence,
            functions: Functions::new(),
            watches: Default::default(),
            // Whatever a previous wake scheduled needs its alarm checked.
            schedule_changed: true,
            // Jobs left from a previous wake: the object sends them.
            jobs_added: false,
            // A drain owed from before the wake is found by a first look.
            outbox_added: true,
            outbox_filled: false,
            room_noted: None,
        })
    }

    /// A `mut` or `call`: when coalescing, queued for the next flush (which
    /// runs now if the batch is full), else applied at once with its answer.
    async fn take_write(&mut self, queued: QueuedMut) -> Taken {
        if self.coalescing() {
            // Applied by the next flush, with the others queued.
            self.queued.push(queued);
            if self.queued.len() >= self.config.max_batch as usize {
                return Taken::Queued(self.flush_boxed().await);
            }
            return Taken::Queued(Vec::new());
        }
        let mut out = Vec::new();
        let answer = self.apply_queued(queued, &mut out).await;
        out.push(answer);
        Taken::Applied(out)
    }

    /// [`Self::flush`] behind one allocation: `message_within` awaits it
    /// from four branches, and each inline await would be a copy of the
    /// whole flush (with the batch, calls and fan-out) in the Worker's code.
    fn flush_boxed(&mut self) -> crate::host::Pending<'_, Vec<Outbound>> {
        Box::pin(self.flush())
    }

    /// The server functions `call` and `watch` run.
    pub fn with_functions(mut self, functions: Functions) -> Self {
        self.functions = functions;
        self
    }

    pub fn store(&self) -> &ShardStore<C> {
        &self.store
    }

    pub fn shard(&self) -> &str {
        &self.shard
    }

    pub fn config(&self) -> &ShardConfig {
        &self.config
    }

    /// One frame from a connection. Bad input gets an `err` (and, when the
    /// frame itself is the problem, a close); nothing else is affected.
    pub async fn message(&mut self, conn: &str, frame: FrameRef<'_>, now_ms: i64) -> Vec<Outbound> {
        self.message_within(conn, frame, now_ms, true).await
    }

    /// [`ShardEngine::message`] when the runtime has also counted the frame
    /// against a limit of its own (the caller's per-user message rate,
    /// docs/edge.md): `user_within` false drops it with `err RATE_LIMITED`
    /// like the connection's own limit does, without counting towards the
    /// close for persistent excess (other sockets of the user may be the
    /// ones sending).
    pub async fn message_within(
        &mut self,
        conn: &str,
        frame: FrameRef<'_>,
        now_ms: i64,
        user_within: bool,
    ) -> Vec<Outbound> {
        let Some(c) = self.conns.get_mut(conn) else {
            return vec![Outbound::Close {
                conn: conn.to_owned(),
                code: close::INTERNAL,
                reason: "unknown connection".into(),
            }];
        };
        let to = |m: ErrorMsg| Outbound::To(conn.to_owned(), ServerMsg::Err(m));
        // The rate first: a dropped frame costs no decoding.
        if !user_within || !c.bucket.take(now_ms) {
            return rate_refused(conn, c, now_ms, user_within, self.config.limits.msg_burst);
        }
        let msg = match protocol::decode_client_frame(
            c.info.encoding,
            frame,
            self.config.limits.max_frame_bytes,
        ) {
            Ok(m) => m,
            Err(e) => {
                let mut out = vec![to(e.to_err())];
                if let Some(code) = e.close_code() {
                    out.push(Outbound::Close {
                        conn: conn.to_owned(),
                        code,
                        reason: e.code().as_str().into(),
                    });
                }
                return out;
            }
        };
        // An ended identity: refused until a `hello` renews it.
        if let Some(refused) = self.refuse_if_ended(conn, &msg, now_ms) {
            return refused;
        }
        let c = self.conns.get_mut(conn).expect("looked up above");
        let result = match msg {
            ClientMsg::Hello(h) => {
                if let Some(client) = h.client {
                    c.info.client = Some(client);
                }
                if let Some(token) = h.token {
                    return vec![Outbound::Verify {
                        conn: conn.to_owned(),
                        token,
                    }];
                }
                let enc = c.info.encoding;
                self.welcome(conn, enc)
                    .map(|w| vec![Outbound::To(conn.to_owned(), w)])
                    .map_err(|e| storage_err(&e))
            }
            ClientMsg::Ping(p) => Ok(vec![Outbound::To(
                conn.to_owned(),
                ServerMsg::Pong(protocol::Pong { t: p.t }),
            )]),
            ClientMsg::Sub(s) => {
                // A new member must join a window with nothing unsent.
                let mut out = self.flush_boxed().await;
                let id = s.id.clone();
                match self.subscribe(conn, s).await {
                    Ok(o) => out.extend(o),
                    Err(mut e) => {
                        e.sub = Some(id);
                        out.push(to(e));
                    }
                }
                Ok(out)
            }
            ClientMsg::Unsub(u) => match self.unwatch(conn, &u.id) {
                Some(r) => r,
                None => self.unsubscribe(conn, &u.id),
            },
            ClientMsg::Mut(m) => {
                let queued = QueuedMut {
                    conn: conn.to_owned(),
                    auth: c.info.auth.clone(),
                    op: m.op,
                    ops: m.ops,
                    now_ms,
                    call: None,
                };
                match self.take_write(queued).await {
                    Taken::Queued(out) => return out,
                    Taken::Applied(out) => Ok(out),
                }
            }
            ClientMsg::Call(call) => {
                let queued = QueuedMut {
                    conn: conn.to_owned(),
                    auth: c.info.auth.clone(),
                    op: call.op,
                    ops: Vec::new(),
                    now_ms,
                    call: Some((call.name, call.args)),
                };
                // Like a `mut`: answered after the diffs of its flush.
                match self.take_write(queued).await {
                    Taken::Queued(out) => return out,
                    Taken::Applied(out) => Ok(out),
                }
            }
            ClientMsg::Watch(w) => {
                // Its first value reflects every write before it.
                let mut out = self.flush_boxed().await;
                let id = w.id.clone();
                match self.watch(conn, w).await {
                    Ok(o) => out.extend(o),
                    Err(mut e) => {
                        e.sub = Some(id);
                        out.push(to(e));
                    }
                }
                Ok(out)
            }
            ClientMsg::Presence(p) => self.set_presence(conn, p.state),
            ClientMsg::Bcast(b) => Ok(vec![Outbound::All {
                except: Some(conn.to_owned()),
                msg: ServerMsg::Bcast(protocol::Bcast {
                    topic: b.topic,
                    data: b.data,
                    from: conn.to_owned(),
                }),
            }]),
        };
        self.without_paused(result.unwrap_or_else(|e| vec![to(e)]))
    }

    fn entity(&self, name: &str) -> Result<&Entity, ErrorMsg> {
        self.manifest.entity(name).ok_or_else(|| {
            err(
                ErrorCode::UnknownEntity,
                format!("no entity {name:?} in this shard's manifest"),
            )
        })
    }

    /// A one-shot query (HTTP), with read policies applied and the answer
    /// bounded (see [`http_query`]).
    pub fn query(&self, auth: &AuthContext, json: &Value) -> Result<serde_json::Value, ErrorMsg> {
        let name = Query::entity_name(json)
            .ok_or_else(|| err(ErrorCode::BadQuery, "a query names its entity"))?;
        let entity = self.entity(name)?;
        let query = Query::parse(entity, json).map_err(|e| query_err(&e))?;
        let seq = self.store.seq().map_err(|e| storage_err(&e))?;
        http_query::answer(&self.store, &self.manifest, auth, query, seq).map_err(|f| match f {
            QueryFailure::Refused(e) => e,
            QueryFailure::Storage(e) => storage_err(&e),
        })
    }
}
