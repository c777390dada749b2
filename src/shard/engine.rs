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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use super::config::ShardConfig;
use super::http_query::{self, QueryFailure};
use super::presence::PresenceBook;
use super::store::{LogEntry, SchemaError, ShardStore, StoredSub};
use crate::auth::Lease;
use crate::live::{self, Change, SubKey, Subscription, SubscriptionIndex};
use crate::manifest::{Entity, Manifest};
use crate::policy::AuthContext;
use crate::protocol::{
    self, close, reset_reason, ClientMsg, Encoding, ErrorCode, ErrorMsg, FrameRef, ServerMsg,
};
use crate::query::Query;
use crate::storage::{SqlConn, StorageError};
use crate::value::{Row, Value};

mod connections;
mod errors;
mod frames;
mod identity;
mod ops;
mod outbox;
mod presence;
mod stats;
mod writes;

use connections::{rate_refused, Conn};
use errors::{err, query_err, storage_err};
use frames::{reset_then, snap, to_wire};
pub use identity::Ended;
use ops::id_of;
pub use outbox::{outbox_backoff_ms, OUTBOX_ATTEMPTS, OUTBOX_ERROR};
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

struct LiveSub {
    conn: String,
    id: String,
    /// The shared window this subscription reads.
    window: SubKey,
    /// The last seq sent for this subscription (the next diff's `from`).
    seq: u64,
}

/// What makes two subscriptions see the same rows: the same query (its
/// JSON) under the same visibility (`*` when the entity has no policy,
/// else the caller itself), joined by a unit separator.
type WindowIdent = String;

/// One maintained result window, shared by every subscription with the
/// same [`WindowIdent`]: a write is applied to it once, and its diff is
/// built once, however many connections hold it.
struct Window {
    ident: WindowIdent,
    sub: Subscription,
    /// Whose read policies decide which rows it holds.
    auth: AuthContext,
    members: Vec<SubKey>,
    /// The last seq this window sent a diff at (kept in storage, so that
    /// subscriptions rebuilt after a wake know their next `from`).
    sent: u64,
    /// While writes are being coalesced: the rows (and count) its members
    /// hold, as of its last diff. The next flush diffs against these.
    held: Option<(Vec<Row>, u64)>,
    /// It could not be maintained since the last flush: the flush sends
    /// its members a reset and a fresh snapshot.
    resync: bool,
}

/// Applies `changes` (all of one seq) to a window's rows; the diff its
/// members need, or why the window must be reloaded.
async fn update_window<C: SqlConn>(
    sub: &mut Subscription,
    changes: &[Change],
    visible: &dyn Fn(&Row) -> bool,
    store: &ShardStore<C>,
) -> Result<live::Diff, String> {
    if let [change] = changes {
        return sub
            .apply(change, visible, store)
            .await
            .map_err(|e| e.to_string());
    }
    let old_count = sub.count();
    let new = Subscription::load(sub.query().clone(), visible, store)
        .await
        .map_err(|e| e.to_string())?;
    let mut d = live::between(sub.rows(), new.rows());
    if new.query().count && new.count() != old_count {
        d.count = Some(new.count());
    }
    *sub = new;
    Ok(d)
}

/// Sends `d` (the window's change up to `seq`) to each member of `w`: one
/// message per distinct (subscription id, from seq), since members that
/// share both (the same app code on every client) get identical frames.
/// Members of `paused` connections are skipped and keep their seq.
fn send_diff(
    w: &Window,
    subs: &mut HashMap<SubKey, LiveSub>,
    paused: &HashSet<String>,
    d: live::Diff,
    seq: u64,
    out: &mut Vec<Outbound>,
) {
    let mut groups: Vec<((String, u64), Vec<String>)> = Vec::new();
    for m in &w.members {
        let Some(live) = subs.get_mut(m) else {
            continue;
        };
        if live.seq >= seq {
            continue; // answered after these changes: it holds them already
        }
        if !paused.is_empty() && paused.contains(&live.conn) {
            continue; // its identity ended: caught up when renewed
        }
        let at = (live.id.as_str(), live.seq);
        match groups
            .iter_mut()
            .find(|((id, from), _)| (id.as_str(), *from) == at)
        {
            Some((_, conns)) => conns.push(live.conn.clone()),
            None => groups.push(((live.id.clone(), live.seq), vec![live.conn.clone()])),
        }
        live.seq = seq;
    }
    let mut d = Some(d);
    let last = groups.len();
    for (i, ((id, from), conns)) in groups.into_iter().enumerate() {
        let diff = if i + 1 == last {
            d.take().expect("taken once, last")
        } else {
            d.clone().expect("not taken yet")
        };
        out.push(Outbound::Many {
            conns,
            msg: to_wire(&id, from, seq, diff),
        });
    }
}

/// Reloads a window that could not be maintained and sends each member a
/// reset and the fresh snapshot. `false` if even the reload failed.
async fn resync_window<C: SqlConn>(
    w: &mut Window,
    manifest: &Manifest,
    subs: &mut HashMap<SubKey, LiveSub>,
    paused: &HashSet<String>,
    store: &ShardStore<C>,
    seq: u64,
    out: &mut Vec<Outbound>,
) -> bool {
    let entity = w.sub.query().entity.clone();
    let visible = readable(manifest, &entity, &w.auth);
    let Ok(new) = Subscription::load(w.sub.query().clone(), &visible, store).await else {
        return false;
    };
    w.sub = new;
    for m in &w.members {
        let Some(live) = subs.get_mut(m) else {
            continue;
        };
        if paused.contains(&live.conn) {
            continue;
        }
        let fresh = snap(&live.id, seq, &w.sub);
        out.extend(reset_then(
            &live.conn,
            &live.id,
            reset_reason::RESYNC,
            fresh,
        ));
        live.seq = seq;
    }
    true
}

pub struct ShardEngine<C: SqlConn> {
    store: ShardStore<C>,
    manifest: Arc<Manifest>,
    shard: String,
    config: ShardConfig,
    conns: HashMap<String, Conn>,
    subs: HashMap<SubKey, LiveSub>,
    /// Keyed like `subs` (one key space); the index maps changes to these.
    windows: HashMap<SubKey, Window>,
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
}

/// The query JSON of a `sub`, in the query language's shape.
fn sub_query_json(s: &protocol::Sub) -> Value {
    let mut q = BTreeMap::new();
    q.insert("entity".to_owned(), Value::from(s.entity.as_str()));
    if !s.r#where.is_null() {
        q.insert("where".to_owned(), s.r#where.clone());
    }
    if !s.order.is_null() {
        q.insert("order".to_owned(), s.order.clone());
    }
    if let Some(l) = s.limit {
        q.insert("limit".to_owned(), Value::Int(l as i64));
    }
    if s.count {
        q.insert("count".to_owned(), Value::Bool(true));
    }
    Value::Map(q)
}

fn readable<'a>(
    manifest: &'a Manifest,
    entity: &'a str,
    auth: &'a AuthContext,
) -> impl Fn(&Row) -> bool + 'a {
    move |r: &Row| manifest.policies().can_read(entity, auth, r).is_allowed()
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
            subs: HashMap::new(),
            windows: HashMap::new(),
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
        })
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

    fn take_key(&mut self) -> SubKey {
        let key = SubKey(self.next_key);
        self.next_key += 1;
        key
    }

    /// The shared window for `query` as `auth` sees it: the open one, or a
    /// new one loaded from storage (current as of the stored seq).
    async fn window_for(
        &mut self,
        query_json: &Value,
        query: Query,
        auth: &AuthContext,
    ) -> Result<SubKey, StorageError> {
        let visibility = if self.manifest.policies().for_entity(&query.entity).is_open() {
            "*".to_owned()
        } else {
            serde_json::to_string(auth).expect("an AuthContext serializes")
        };
        let ident = format!(
            "{}\u{1f}{visibility}",
            serde_json::to_string(query_json).expect("a Value serializes")
        );
        if let Some(&key) = self.window_of.get(&ident) {
            return Ok(key);
        }
        let sent = self.store.window_seq(&ident)?;
        let entity = query.entity.clone();
        let sub = Subscription::load(query, &readable(&self.manifest, &entity, auth), &self.store)
            .await?;
        let key = self.take_key();
        self.index.insert(key, sub.query());
        self.window_of.insert(ident.clone(), key);
        self.windows.insert(
            key,
            Window {
                ident,
                sub,
                auth: auth.clone(),
                members: Vec::new(),
                sent,
                held: None,
                resync: false,
            },
        );
        Ok(key)
    }

    fn add_live(&mut self, conn: String, id: String, window: SubKey, seq: u64) {
        let key = self.take_key();
        if let Some(c) = self.conns.get_mut(&conn) {
            c.subs.insert(id.clone(), key);
        }
        if let Some(w) = self.windows.get_mut(&window) {
            w.members.push(key);
        }
        self.subs.insert(
            key,
            LiveSub {
                conn,
                id,
                window,
                seq,
            },
        );
    }

    /// Drops a subscription, and its window when nobody else reads it.
    fn remove_live(&mut self, key: SubKey) {
        let Some(live) = self.subs.remove(&key) else {
            return;
        };
        self.release_window(live.window, Some(key));
    }

    /// Takes `member` out of the window and drops the window once empty.
    fn release_window(&mut self, window: SubKey, member: Option<SubKey>) {
        let Some(w) = self.windows.get_mut(&window) else {
            return;
        };
        if let Some(m) = member {
            w.members.retain(|k| *k != m);
        }
        if w.members.is_empty() {
            let w = self.windows.remove(&window).expect("just seen");
            self.window_of.remove(&w.ident);
            self.index.remove(window);
            if w.sent > 0 {
                // Only tidiness: a stale row is never larger than a new
                // member's own seq.
                let _ = self.store.forget_window(&w.ident);
            }
        }
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
                let mut out = self.flush().await;
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
            ClientMsg::Unsub(u) => self.unsubscribe(conn, &u.id),
            ClientMsg::Mut(m) => {
                let queued = QueuedMut {
                    conn: conn.to_owned(),
                    auth: c.info.auth.clone(),
                    op: m.op,
                    ops: m.ops,
                    now_ms,
                };
                if self.coalescing() {
                    // Applied by the next flush, with the others queued.
                    self.queued.push(queued);
                    if self.queued.len() >= self.config.max_batch as usize {
                        return self.flush().await;
                    }
                    return Vec::new();
                }
                let mut out = Vec::new();
                let answer = self.apply_queued(queued, &mut out).await;
                out.push(answer);
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

    async fn subscribe(&mut self, conn: &str, s: protocol::Sub) -> Result<Vec<Outbound>, ErrorMsg> {
        let c = &self.conns[conn];
        if c.subs.contains_key(&s.id) {
            return Err(err(
                ErrorCode::DuplicateSubscription,
                format!("subscription {:?} is already open", s.id),
            ));
        }
        if c.subs.len() >= self.config.limits.max_subs_per_conn as usize {
            return Err(err(
                ErrorCode::TooManySubscriptions,
                format!(
                    "at most {} subscriptions per connection",
                    self.config.limits.max_subs_per_conn
                ),
            ));
        }
        let entity = self.entity(&s.entity)?;
        let query_json = sub_query_json(&s);
        let query = Query::parse(entity, &query_json).map_err(|e| query_err(&e))?;
        let auth = c.info.auth.clone();
        let encoding = c.info.encoding;
        let seq = self.store.seq().map_err(|e| storage_err(&e))?;
        let window = self
            .window_for(&query_json, query, &auth)
            .await
            .map_err(|e| storage_err(&e))?;
        let result = self.answer_sub(conn, &s, encoding, window, seq).await;
        match result {
            Ok(out) => {
                self.store
                    .put_sub(&StoredSub {
                        conn: conn.to_owned(),
                        id: s.id.clone(),
                        query: query_json,
                        seq,
                    })
                    .map_err(|e| storage_err(&e))?;
                self.add_live(conn.to_owned(), s.id, window, seq);
                Ok(out)
            }
            Err(e) => {
                self.release_window(window, None);
                Err(e)
            }
        }
    }

    /// The first answer to a `sub` over `window`: a snapshot, or what was
    /// missed since the client's `since`.
    async fn answer_sub(
        &self,
        conn: &str,
        s: &protocol::Sub,
        encoding: Encoding,
        window: SubKey,
        seq: u64,
    ) -> Result<Vec<Outbound>, ErrorMsg> {
        let w = &self.windows[&window];
        let sub = &w.sub;
        let visible = readable(&self.manifest, &sub.query().entity, &w.auth);
        // Built once: measured against the frame limit, then sent if it is
        // the answer.
        let snap_msg = snap(&s.id, seq, sub);
        let size = protocol::encode_server(encoding, &snap_msg).len();
        if size > self.config.limits.max_frame_bytes {
            return Err(err(
                ErrorCode::ResultTooLarge,
                format!("the result is {size} bytes, over the {} byte frame limit: narrow it or lower limit", self.config.limits.max_frame_bytes),
            ));
        }
        let mut out = Vec::new();
        match s.since {
            Some(since) if since <= seq => match self.missed(sub, &visible, since, seq).await {
                Ok(Some(diff)) => out.push(Outbound::To(
                    conn.to_owned(),
                    to_wire(&s.id, since, seq, diff),
                )),
                Ok(None) => out.extend(reset_then(conn, &s.id, reset_reason::TOO_OLD, snap_msg)),
                Err(e) => return Err(storage_err(&e)),
            },
            // A seq this shard never reached: the client's state is from
            // elsewhere (another deployment, wiped storage).
            Some(_) => out.extend(reset_then(conn, &s.id, reset_reason::RESYNC, snap_msg)),
            None => out.push(Outbound::To(conn.to_owned(), snap_msg)),
        }
        Ok(out)
    }

    /// The one diff that takes a client from its window at `since` to the
    /// current window, or `None` when the log does not reach back or too much
    /// changed (then the client gets a reset and a fresh snapshot).
    async fn missed(
        &self,
        now: &Subscription,
        visible: &dyn Fn(&Row) -> bool,
        since: u64,
        seq: u64,
    ) -> Result<Option<live::Diff>, StorageError> {
        if since == seq {
            return Ok(Some(live::Diff::default()));
        }
        match self.store.log_range()? {
            Some((oldest, _)) if oldest <= since + 1 => {}
            _ => return Ok(None),
        }
        let q = now.query();
        // The earliest before-image of each row touched since `since`.
        let mut touched: HashMap<String, Option<Row>> = HashMap::new();
        for LogEntry {
            entity, id, before, ..
        } in self.store.log_since(since)?
        {
            if entity == q.entity {
                touched.entry(id).or_insert(before);
            }
        }
        if touched.len() > self.config.max_resume_rows {
            return Ok(None);
        }
        let admitted = |r: &Row| q.admits(r) && visible(r);
        if q.count {
            let mut then = now.count() as i64;
            let entity = self
                .manifest
                .entity(&q.entity)
                .expect("subscribed entities exist");
            for (id, before) in &touched {
                if self
                    .store
                    .get_row(entity, id)?
                    .as_ref()
                    .is_some_and(admitted)
                {
                    then -= 1;
                }
                if before.as_ref().is_some_and(admitted) {
                    then += 1;
                }
            }
            return Ok(Some(if then == now.count() as i64 {
                live::Diff::default()
            } else {
                live::Diff {
                    count: Some(now.count()),
                    ..Default::default()
                }
            }));
        }
        // The window at `since`: untouched rows as they are now, plus the
        // touched rows as they were, in order, cut to the limit.
        let limit = q.limit.unwrap_or(usize::MAX);
        let mut then: Vec<Row> = Vec::new();
        let mut after: Option<Row> = None;
        let page = 256.min(limit.saturating_add(touched.len())).max(1);
        loop {
            let batch = self.store.query_rows(&q.page(after.as_ref(), page))?;
            let n = batch.len();
            for r in &batch {
                if !touched.contains_key(id_of(r)) && visible(r) {
                    then.push(r.clone());
                }
            }
            if n < page || then.len() >= limit {
                break;
            }
            after = batch.into_iter().next_back();
        }
        then.extend(touched.into_values().flatten().filter(|r| admitted(r)));
        then.sort_by(|a, b| q.compare(a, b));
        then.truncate(limit);
        Ok(Some(live::between(&then, now.rows())))
    }

    fn unsubscribe(&mut self, conn: &str, id: &str) -> Result<Vec<Outbound>, ErrorMsg> {
        let c = self
            .conns
            .get_mut(conn)
            .expect("caller checked the connection");
        let Some(key) = c.subs.remove(id) else {
            return Err(ErrorMsg {
                sub: Some(id.to_owned()),
                ..err(
                    ErrorCode::UnknownSubscription,
                    format!("no open subscription {id:?}"),
                )
            });
        };
        self.remove_live(key);
        self.store
            .delete_sub(conn, id)
            .map_err(|e| storage_err(&e))?;
        Ok(Vec::new())
    }

    /// Applies the changes of `seq` to every window they can affect. Sends
    /// the diffs now, or, when coalescing, leaves them for the next flush.
    async fn fan_out(&mut self, changes: &[Change], seq: u64) -> Vec<Outbound> {
        let mut out = self.sweep_ended();
        let mut keys: Vec<SubKey> = Vec::new();
        for ch in changes {
            self.index.affected_into(ch, &mut keys);
        }
        keys.sort_unstable_by_key(|k| k.0);
        keys.dedup();
        let coalescing = self.coalescing();
        let Self {
            store,
            manifest,
            subs,
            windows,
            dirty,
            paused,
            ..
        } = self;
        let mut advanced: Vec<SubKey> = Vec::new();
        for key in keys {
            let Some(w) = windows.get_mut(&key) else {
                continue;
            };
            let entity = w.sub.query().entity.clone();
            let visible = readable(manifest, &entity, &w.auth);
            if coalescing {
                if w.held.is_none() {
                    w.held = Some((w.sub.rows().to_vec(), w.sub.count()));
                    dirty.push(key);
                }
                if !w.resync
                    && update_window(&mut w.sub, changes, &visible, store)
                        .await
                        .is_err()
                {
                    w.resync = true;
                }
                continue;
            }
            let diff = update_window(&mut w.sub, changes, &visible, store).await;
            drop(visible);
            match diff {
                Ok(d) if d.is_empty() => {}
                Ok(d) => {
                    send_diff(w, subs, paused, d, seq, &mut out);
                    advanced.push(key);
                }
                Err(_) => {
                    if resync_window(w, manifest, subs, paused, store, seq, &mut out).await {
                        advanced.push(key);
                    }
                }
            }
        }
        self.advance_windows(&advanced, seq);
        out
    }

    /// Records that `keys` sent at `seq`, in memory and in storage.
    fn advance_windows(&mut self, keys: &[SubKey], seq: u64) {
        for k in keys {
            if let Some(w) = self.windows.get_mut(k) {
                w.sent = seq;
            }
        }
        let idents: Vec<&str> = keys
            .iter()
            .filter_map(|k| self.windows.get(k))
            .map(|w| w.ident.as_str())
            .collect();
        if let Err(e) = self.store.advance_windows(&idents, seq) {
            // The diffs are still right; a later resume may just send a
            // fresh snapshot for these subscriptions.
            let _ = e;
        }
    }

    /// Sends what coalescing held back: one diff per changed window
    /// covering every write since the last flush, then the acks (and
    /// errors) of those writes, in order. Nothing when nothing is held.
    pub async fn flush(&mut self) -> Vec<Outbound> {
        if !self.has_unflushed() {
            return Vec::new();
        }
        let mut out = self.sweep_ended();
        // The queued writes first, in arrival order: their diffs are only
        // marked on the windows, their answers wait in `pending`.
        let queued = std::mem::take(&mut self.queued);
        self.apply_batch(queued, &mut out).await;
        let seq = match self.store.seq() {
            Ok(s) => s,
            Err(_) => {
                // Without the seq no diff can be labelled; the acks still
                // go (the writes are durable), the windows stay dirty.
                out.append(&mut self.pending);
                return out;
            }
        };
        let dirty = std::mem::take(&mut self.dirty);
        let mut advanced = Vec::new();
        {
            let Self {
                store,
                manifest,
                subs,
                windows,
                paused,
                ..
            } = self;
            for key in dirty {
                let Some(w) = windows.get_mut(&key) else {
                    continue; // every member left
                };
                let Some((old, old_count)) = w.held.take() else {
                    continue;
                };
                if std::mem::take(&mut w.resync) {
                    if resync_window(w, manifest, subs, paused, store, seq, &mut out).await {
                        advanced.push(key);
                    }
                    continue;
                }
                let mut d = live::between(&old, w.sub.rows());
                if w.sub.query().count && w.sub.count() != old_count {
                    d.count = Some(w.sub.count());
                }
                if !d.is_empty() {
                    send_diff(w, subs, paused, d, seq, &mut out);
                    advanced.push(key);
                }
            }
        }
        self.advance_windows(&advanced, seq);
        out.append(&mut self.pending);
        out
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
