//! The background task: owns the socket and every piece of client state.
//!
//! Handles send [`Command`]s; the task answers over oneshot channels and
//! publishes subscription views, connection state and presence through
//! `watch` channels it alone writes (`send_modify`, never across an await).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, oneshot, watch};

use super::apply::{apply_rows, check_seq};
use super::functions::{watch_key, watch_wire_id, WatchView};
use super::raw::RawConnection;
use super::reconnect::{Flow, Session};
use super::{Backoff, ClientConfig, ClientError, ConnState, Event, Query, SubStatus, SubView};
use crate::protocol::{
    self, close, Ack, Call, ClientMsg, DecodeError, Diff, Encoding, FnValue, FrameRef, Hello, Mut,
    Op, Ping, Presence, Returned, SendBcast, ServerMsg, Snap, Sub, Unsub, Watch, Welcome,
};
use crate::value::Value;

pub(super) enum Command {
    Subscribe {
        key: u64,
        query: Query,
        view: watch::Sender<SubView>,
    },
    Unsubscribe {
        key: u64,
    },
    Mutate {
        op: String,
        ops: Vec<Op>,
        reply: oneshot::Sender<Result<Ack, ClientError>>,
    },
    Call {
        op: String,
        name: String,
        args: Value,
        reply: oneshot::Sender<Result<Returned, ClientError>>,
    },
    Watch {
        key: u64,
        name: String,
        args: Value,
        view: watch::Sender<WatchView>,
    },
    Unwatch {
        key: u64,
    },
    Presence {
        state: Value,
    },
    Bcast {
        topic: String,
        data: Value,
        reply: oneshot::Sender<Result<(), ClientError>>,
    },
    Ping {
        reply: oneshot::Sender<Result<Duration, ClientError>>,
    },
    SetToken {
        token: Option<String>,
    },
    Close {
        reply: oneshot::Sender<()>,
    },
}

/// Opens a connection and waits for its `welcome`, within the connect
/// timeout; then sends `hello` if the config names the client.
pub(super) async fn open(config: &ClientConfig) -> Result<(RawConnection, Welcome), ClientError> {
    let attempt = async {
        let mut conn = RawConnection::connect(config).await?;
        let welcome = conn.recv_welcome().await?;
        if config.client_id.is_some() {
            let hello = Hello {
                client: config.client_id.clone(),
                token: config.token.clone(),
            };
            conn.send(&ClientMsg::Hello(hello)).await?;
        }
        Ok((conn, welcome))
    };
    tokio::time::timeout(config.connect_timeout, attempt)
        .await
        .unwrap_or(Err(ClientError::Timeout))
}

struct SubEntry {
    query: Query,
    /// The id on the wire: `s<key>`, then `s<key>.<n>` after the n-th
    /// resync, so late messages for a dropped id are ignored.
    wire_id: String,
    resyncs: u32,
    /// The seq the rows reflect; `None` until a `snap` (again) arrives.
    held: Option<u64>,
    failed: bool,
    view: watch::Sender<SubView>,
}

/// A `mut` or `call` not answered yet: sent again, unchanged and in the
/// order first made, on every new connection.
struct PendingOp {
    order: u64,
    msg: ClientMsg,
    reply: Reply,
}

/// Who waits for a pending op's answer.
enum Reply {
    Mut(oneshot::Sender<Result<Ack, ClientError>>),
    Call(oneshot::Sender<Result<Returned, ClientError>>),
}

impl Reply {
    fn fail(self, e: ClientError) {
        match self {
            Reply::Mut(tx) => drop(tx.send(Err(e))),
            Reply::Call(tx) => drop(tx.send(Err(e))),
        }
    }

    fn ack(self, ack: Ack) {
        match self {
            Reply::Mut(tx) => drop(tx.send(Ok(ack))),
            Reply::Call(tx) => drop(tx.send(Err(ClientError::Protocol(format!(
                "`ack` answered call {}",
                ack.op
            ))))),
        }
    }

    fn returned(self, r: Returned) {
        match self {
            Reply::Call(tx) => drop(tx.send(Ok(r))),
            Reply::Mut(tx) => drop(tx.send(Err(ClientError::Protocol(format!(
                "`result` answered mut {}",
                r.op
            ))))),
        }
    }
}

/// A watched query function (wire id `w<key>`).
struct WatchEntry {
    name: String,
    args: Value,
    /// Refused by the server (`err` with its id): not sent again.
    failed: bool,
    view: watch::Sender<WatchView>,
}

pub(super) struct Driver {
    config: ClientConfig,
    state: watch::Sender<ConnState>,
    welcome: watch::Sender<Welcome>,
    presence: watch::Sender<BTreeMap<String, Value>>,
    events: broadcast::Sender<Event>,
    subs: BTreeMap<u64, SubEntry>,
    /// Wire id → subscription key, for subscriptions sent on this connection.
    wire: HashMap<String, u64>,
    /// Pending `mut`s and `call`s by op id.
    pending: HashMap<String, PendingOp>,
    next_op: u64,
    watches: BTreeMap<u64, WatchEntry>,
    my_presence: Value,
    pings: HashMap<u64, (Instant, oneshot::Sender<Result<Duration, ClientError>>)>,
    next_ping: u64,
    /// Answered once the client has stopped.
    close_reply: Option<oneshot::Sender<()>>,
}

impl Session for Driver {
    type Command = Command;
    type Welcome = Welcome;
    type Msg = ServerMsg;

    fn backoff(&self) -> &Backoff {
        &self.config.backoff
    }

    fn keepalive(&self) -> Option<Duration> {
        self.config.keepalive
    }

    fn open(
        &self,
    ) -> impl Future<Output = Result<(RawConnection, Welcome), ClientError>> + Send + 'static {
        let config = self.config.clone();
        async move { open(&config).await }
    }

    fn decode(
        encoding: Encoding,
        max_bytes: usize,
        frame: FrameRef<'_>,
    ) -> Result<Option<ServerMsg>, String> {
        match protocol::decode_server_frame(encoding, frame, max_bytes) {
            Ok(m) => Ok(Some(m)),
            Err(DecodeError::UnknownType { .. }) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// docs/protocol.md, "Close codes".
    fn is_final(code: Option<u16>) -> bool {
        matches!(
            code,
            Some(close::PROTOCOL | close::UNAUTHORIZED | close::FORBIDDEN)
        )
    }

    fn on_welcome(&mut self, w: Welcome) {
        self.set_state(ConnState::Live {
            conn: w.conn.clone(),
            seq: w.seq,
        });
        self.welcome.send_replace(w.clone());
        self.emit(Event::Welcome(w));
    }

    /// On entering LIVE: resubscribe (with `since` where a seq is held),
    /// resend unacknowledged mutations in their order, resend presence.
    async fn resume(&mut self, conn: &mut RawConnection) -> Flow {
        self.wire.clear();
        let mut out = Vec::new();
        for (&key, entry) in &self.subs {
            if !entry.failed {
                self.wire.insert(entry.wire_id.clone(), key);
                out.push(sub_msg(entry, entry.held));
            }
        }
        out.extend(
            self.watches
                .iter()
                .filter(|(_, w)| !w.failed)
                .map(|(&key, w)| watch_msg(key, w)),
        );
        let mut pending: Vec<&PendingOp> = self.pending.values().collect();
        pending.sort_by_key(|p| p.order);
        out.extend(pending.into_iter().map(|p| p.msg.clone()));
        if !self.my_presence.is_null() {
            out.push(ClientMsg::Presence(Presence {
                state: self.my_presence.clone(),
            }));
        }
        for msg in &out {
            if let Err(e) = conn.send(msg).await {
                return Flow::Dropped {
                    code: None,
                    reason: e.to_string(),
                };
            }
        }
        Flow::Continue
    }

    async fn command(&mut self, cmd: Option<Command>, conn: Option<&mut RawConnection>) -> Flow {
        let Some(cmd) = cmd else {
            return Flow::Stop { code: None };
        };
        match cmd {
            Command::Subscribe { key, query, view } => {
                let entry = SubEntry {
                    query,
                    wire_id: format!("s{key}"),
                    resyncs: 0,
                    held: None,
                    failed: false,
                    view,
                };
                let msg = sub_msg(&entry, None);
                self.subs.insert(key, entry);
                if let Some(conn) = conn {
                    self.wire.insert(format!("s{key}"), key);
                    return send(conn, &msg).await;
                }
            }
            Command::Unsubscribe { key } => {
                if let Some(entry) = self.subs.remove(&key) {
                    if let (Some(conn), Some(_)) = (conn, self.wire.remove(&entry.wire_id)) {
                        return send(conn, &ClientMsg::Unsub(Unsub { id: entry.wire_id })).await;
                    }
                }
            }
            Command::Mutate { op, ops, reply } => {
                let msg = ClientMsg::Mut(Mut {
                    op: op.clone(),
                    ops,
                });
                return self.send_op(op, msg, Reply::Mut(reply), conn).await;
            }
            Command::Call {
                op,
                name,
                args,
                reply,
            } => {
                let msg = ClientMsg::Call(Call {
                    op: op.clone(),
                    name,
                    args,
                });
                return self.send_op(op, msg, Reply::Call(reply), conn).await;
            }
            Command::Watch {
                key,
                name,
                args,
                view,
            } => {
                let entry = WatchEntry {
                    name,
                    args,
                    failed: false,
                    view,
                };
                let msg = watch_msg(key, &entry);
                self.watches.insert(key, entry);
                if let Some(conn) = conn {
                    return send(conn, &msg).await;
                }
            }
            Command::Unwatch { key } => {
                // Sent on this connection (by `resume` or above) unless refused.
                if let (Some(entry), Some(conn)) = (self.watches.remove(&key), conn) {
                    if !entry.failed {
                        let id = watch_wire_id(key);
                        return send(conn, &ClientMsg::Unsub(Unsub { id })).await;
                    }
                }
            }
            Command::Presence { state } => {
                self.my_presence = state.clone();
                if let Some(conn) = conn {
                    return send(conn, &ClientMsg::Presence(Presence { state })).await;
                }
            }
            Command::Bcast { topic, data, reply } => match conn {
                None => {
                    let _ = reply.send(Err(ClientError::NotConnected));
                }
                Some(conn) => {
                    let flow = send(conn, &ClientMsg::Bcast(SendBcast { topic, data })).await;
                    let _ = reply.send(match &flow {
                        Flow::Continue => Ok(()),
                        _ => Err(ClientError::NotConnected),
                    });
                    return flow;
                }
            },
            Command::Ping { reply } => match conn {
                None => {
                    let _ = reply.send(Err(ClientError::NotConnected));
                }
                Some(conn) => {
                    let t = self.next_ping;
                    self.next_ping += 1;
                    self.pings.insert(t, (Instant::now(), reply));
                    return send(conn, &ClientMsg::Ping(Ping { t: Some(t) })).await;
                }
            },
            Command::SetToken { token } => {
                self.config.token = token.clone();
                if let Some(conn) = conn {
                    let hello = Hello {
                        client: self.config.client_id.clone(),
                        token,
                    };
                    return send(conn, &ClientMsg::Hello(hello)).await;
                }
            }
            Command::Close { reply } => {
                self.close_reply = Some(reply);
                return Flow::Stop { code: None };
            }
        }
        Flow::Continue
    }

    async fn on_msg(&mut self, msg: ServerMsg, conn: &mut RawConnection) -> Flow {
        match msg {
            ServerMsg::Welcome(w) => self.on_welcome(w),
            ServerMsg::Snap(snap) => self.on_snap(snap),
            ServerMsg::Diff(diff) => return self.on_diff(diff, conn).await,
            ServerMsg::Reset(reset) => {
                if let Some(&key) = self.wire.get(&reset.id) {
                    self.mark_resyncing(key, format!("reset: {}", reset.reason));
                }
            }
            ServerMsg::Ack(ack) => {
                if let Some(p) = self.pending.remove(&ack.op) {
                    p.reply.ack(ack);
                }
            }
            ServerMsg::Returned(r) => {
                if let Some(p) = self.pending.remove(&r.op) {
                    p.reply.returned(r);
                }
            }
            ServerMsg::FnValue(v) => self.on_fn_value(v),
            ServerMsg::Err(err) => {
                if let Some(p) = err.op.as_ref().and_then(|op| self.pending.remove(op)) {
                    p.reply.fail(ClientError::from_err(&err));
                } else if let Some(entry) = err
                    .sub
                    .as_deref()
                    .and_then(watch_key)
                    .and_then(|key| self.watches.get_mut(&key))
                    .filter(|w| !w.failed)
                {
                    entry.failed = true;
                    let status = SubStatus::Failed {
                        code: err.code,
                        message: err.message,
                    };
                    entry.view.send_modify(|v| {
                        v.status = status;
                        v.version += 1;
                    });
                } else if let Some(key) = err.sub.as_ref().and_then(|id| self.wire.remove(id)) {
                    if let Some(entry) = self.subs.get_mut(&key) {
                        entry.failed = true;
                        entry.held = None;
                        let status = SubStatus::Failed {
                            code: err.code,
                            message: err.message,
                        };
                        entry.view.send_modify(|v| {
                            v.status = status;
                            v.version += 1;
                        });
                    }
                } else {
                    self.emit(Event::Error(err));
                }
            }
            ServerMsg::PresenceState(state) => {
                self.presence.send_modify(|members| {
                    members.clear();
                    members.extend(
                        state
                            .members
                            .iter()
                            .map(|m| (m.conn.clone(), m.state.clone())),
                    );
                });
                self.emit(Event::PresenceState(state));
            }
            ServerMsg::PresenceDiff(diff) => {
                self.presence.send_modify(|members| {
                    for m in diff.joins.iter().chain(&diff.updates) {
                        members.insert(m.conn.clone(), m.state.clone());
                    }
                    for conn in &diff.leaves {
                        members.remove(conn);
                    }
                });
                self.emit(Event::PresenceDiff(diff));
            }
            ServerMsg::Bcast(b) => self.emit(Event::Bcast(b)),
            ServerMsg::Pong(pong) => {
                if let Some((sent, reply)) = pong.t.and_then(|t| self.pings.remove(&t)) {
                    let _ = reply.send(Ok(sent.elapsed()));
                }
            }
        }
        Flow::Continue
    }

    fn on_dropped(&mut self, code: Option<u16>, reason: String) {
        self.wire.clear();
        for (_, (_, reply)) in self.pings.drain() {
            let _ = reply.send(Err(ClientError::Disconnected {
                code,
                reason: reason.clone(),
            }));
        }
        self.emit(Event::Disconnected { code, reason });
    }

    fn disconnected(&mut self, code: Option<u16>, reason: String) {
        self.emit(Event::Disconnected { code, reason });
    }

    fn set_state(&mut self, state: ConnState) {
        self.state.send_replace(state.clone());
        self.emit(Event::State(state));
    }

    fn shutdown(&mut self, code: Option<u16>) {
        for entry in self.subs.values() {
            entry.view.send_modify(|v| {
                v.status = SubStatus::Closed;
                v.version += 1;
            });
        }
        for w in self.watches.values() {
            w.view.send_modify(|v| {
                v.status = SubStatus::Closed;
                v.version += 1;
            });
        }
        for (_, p) in self.pending.drain() {
            p.reply.fail(ClientError::Closed { code });
        }
        for (_, (_, reply)) in self.pings.drain() {
            let _ = reply.send(Err(ClientError::Closed { code }));
        }
        self.set_state(ConnState::Closed { code });
        if let Some(reply) = self.close_reply.take() {
            let _ = reply.send(());
        }
    }
}

impl Driver {
    pub(super) fn new(
        config: ClientConfig,
        state: watch::Sender<ConnState>,
        welcome: watch::Sender<Welcome>,
        presence: watch::Sender<BTreeMap<String, Value>>,
        events: broadcast::Sender<Event>,
    ) -> Driver {
        Driver {
            config,
            state,
            welcome,
            presence,
            events,
            subs: BTreeMap::new(),
            wire: HashMap::new(),
            pending: HashMap::new(),
            next_op: 0,
            watches: BTreeMap::new(),
            my_presence: Value::Null,
            pings: HashMap::new(),
            next_ping: 1,
            close_reply: None,
        }
    }

    /// Keeps a `mut` or `call` until answered, and sends it if LIVE.
    async fn send_op(
        &mut self,
        op: String,
        msg: ClientMsg,
        reply: Reply,
        conn: Option<&mut RawConnection>,
    ) -> Flow {
        if self.pending.contains_key(&op) {
            reply.fail(ClientError::InvalidConfig(format!(
                "op id {op} is already pending"
            )));
            return Flow::Continue;
        }
        self.next_op += 1;
        let pending = PendingOp {
            order: self.next_op,
            msg,
            reply,
        };
        let flow = match conn {
            Some(conn) => send(conn, &pending.msg).await,
            None => Flow::Continue,
        };
        self.pending.insert(op, pending);
        flow
    }

    /// A watch's new value (one for a watch dropped or refused is ignored).
    fn on_fn_value(&mut self, v: FnValue) {
        let Some(entry) = watch_key(&v.id).and_then(|key| self.watches.get(&key)) else {
            return;
        };
        if entry.failed {
            return;
        }
        entry.view.send_modify(|view| {
            view.value = v.value;
            view.seq = Some(v.seq);
            view.status = SubStatus::Live;
            view.version += 1;
        });
    }

    fn on_snap(&mut self, snap: Snap) {
        let Some(entry) = self
            .wire
            .get(&snap.id)
            .and_then(|key| self.subs.get_mut(key))
        else {
            return;
        };
        entry.held = Some(snap.seq);
        entry.view.send_modify(|v| {
            v.rows = snap.rows;
            v.seq = Some(snap.seq);
            v.count = snap.count;
            v.status = SubStatus::Live;
            v.version += 1;
        });
    }

    async fn on_diff(&mut self, diff: Diff, conn: &mut RawConnection) -> Flow {
        let Some(&key) = self.wire.get(&diff.id) else {
            return Flow::Continue;
        };
        let Some(entry) = self.subs.get_mut(&key) else {
            return Flow::Continue;
        };
        let mut result = check_seq(entry.held, &diff);
        if result.is_ok() {
            entry.view.send_if_modified(|v| {
                result = apply_rows(&mut v.rows, &diff);
                if result.is_err() {
                    return false;
                }
                v.seq = Some(diff.seq);
                if diff.count.is_some() {
                    v.count = diff.count;
                }
                v.version += 1;
                true
            });
        }
        match result {
            Ok(()) => {
                entry.held = Some(diff.seq);
                Flow::Continue
            }
            Err(e) => self.resubscribe(key, e.to_string(), conn).await,
        }
    }

    /// After `reset`: drop the held seq; the server's `snap` follows on the
    /// same id.
    fn mark_resyncing(&mut self, key: u64, reason: String) {
        let Some(entry) = self.subs.get_mut(&key) else {
            return;
        };
        entry.held = None;
        entry.view.send_modify(|v| {
            v.seq = None;
            v.status = SubStatus::Resyncing;
            v.version += 1;
        });
        self.emit(Event::Resync { sub: key, reason });
    }

    /// After a diff that cannot be applied (a gap, or rows that do not
    /// match): drop the held seq, `unsub` the old id and `sub` again under
    /// a new id without `since`, so a fresh `snap` replaces the rows and
    /// stale messages for the old id are ignored.
    async fn resubscribe(&mut self, key: u64, reason: String, conn: &mut RawConnection) -> Flow {
        self.mark_resyncing(key, reason);
        let Some(entry) = self.subs.get_mut(&key) else {
            return Flow::Continue;
        };
        let old = std::mem::take(&mut entry.wire_id);
        self.wire.remove(&old);
        entry.resyncs += 1;
        entry.wire_id = format!("s{key}.{}", entry.resyncs);
        self.wire.insert(entry.wire_id.clone(), key);
        let sub = sub_msg(entry, None);
        match send(conn, &ClientMsg::Unsub(Unsub { id: old })).await {
            Flow::Continue => send(conn, &sub).await,
            flow => flow,
        }
    }

    fn emit(&self, event: Event) {
        // No receiver is fine: events are for whoever listens.
        let _ = self.events.send(event);
    }
}

fn sub_msg(entry: &SubEntry, since: Option<u64>) -> ClientMsg {
    let q = &entry.query;
    ClientMsg::Sub(Sub {
        id: entry.wire_id.clone(),
        entity: q.entity.clone(),
        r#where: q.r#where.clone(),
        order: q.order.clone(),
        limit: q.limit,
        since,
        count: q.count,
    })
}

fn watch_msg(key: u64, w: &WatchEntry) -> ClientMsg {
    ClientMsg::Watch(Watch {
        id: watch_wire_id(key),
        name: w.name.clone(),
        args: w.args.clone(),
    })
}

async fn send(conn: &mut RawConnection, msg: &ClientMsg) -> Flow {
    match conn.send(msg).await {
        Ok(()) => Flow::Continue,
        Err(e) => Flow::Dropped {
            code: None,
            reason: e.to_string(),
        },
    }
}
