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
use super::raw::RawConnection;
use super::reconnect::{Flow, Session};
use super::{Backoff, ClientConfig, ClientError, ConnState, Event, Query, SubStatus, SubView};
use crate::protocol::{
    self, close, Ack, ClientMsg, DecodeError, Diff, Encoding, FrameRef, Hello, Mut, Op, Ping,
    Presence, SendBcast, ServerMsg, Snap, Sub, Unsub, Welcome,
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

struct PendingMut {
    order: u64,
    ops: Vec<Op>,
    reply: oneshot::Sender<Result<Ack, ClientError>>,
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
    muts: HashMap<String, PendingMut>,
    next_mut: u64,
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
        let mut muts: Vec<(&String, &PendingMut)> = self.muts.iter().collect();
        muts.sort_by_key(|(_, m)| m.order);
        out.extend(muts.into_iter().map(|(op, m)| {
            ClientMsg::Mut(Mut {
                op: op.clone(),
                ops: m.ops.clone(),
            })
        }));
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
                if self.muts.contains_key(&op) {
                    let _ = reply.send(Err(ClientError::InvalidConfig(format!(
                        "op id {op} is already pending"
                    ))));
                    return Flow::Continue;
                }
                let msg = conn.as_ref().map(|_| {
                    ClientMsg::Mut(Mut {
                        op: op.clone(),
                        ops: ops.clone(),
                    })
                });
                self.next_mut += 1;
                self.muts.insert(
                    op,
                    PendingMut {
                        order: self.next_mut,
                        ops,
                        reply,
                    },
                );
                if let (Some(conn), Some(msg)) = (conn, msg) {
                    return send(conn, &msg).await;
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
                if let Some(m) = self.muts.remove(&ack.op) {
                    let _ = m.reply.send(Ok(ack));
                }
            }
            ServerMsg::Err(err) => {
                if let Some(m) = err.op.as_ref().and_then(|op| self.muts.remove(op)) {
                    let _ = m.reply.send(Err(ClientError::from_err(&err)));
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
        for (_, m) in self.muts.drain() {
            let _ = m.reply.send(Err(ClientError::Closed { code }));
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
            muts: HashMap::new(),
            next_mut: 0,
            my_presence: Value::Null,
            pings: HashMap::new(),
            next_ping: 1,
            close_reply: None,
        }
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

async fn send(conn: &mut RawConnection, msg: &ClientMsg) -> Flow {
    match conn.send(msg).await {
        Ok(()) => Flow::Continue,
        Err(e) => Flow::Dropped {
            code: None,
            reason: e.to_string(),
        },
    }
}
