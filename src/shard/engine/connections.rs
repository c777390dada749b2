//! A connection's life in the engine: accepted with `welcome`, answered
//! again by `hello`, closed, and restored with its subscriptions after a wake.

use std::collections::{HashMap, HashSet};

use super::errors::{err, storage_err};
use super::{ConnInfo, Outbound, ShardEngine};
use crate::auth::{AuthError, Lease};
use crate::live::SubKey;
use crate::policy::AuthContext;
use crate::protocol::{
    close, Encoding, ErrorCode, ErrorMsg, PresenceDiff, ServerMsg, Welcome, PROTOCOL,
};
use crate::query::Query;
use crate::shard::limiter::{Refusals, TokenBucket};
use crate::shard::store::StoredSub;
use crate::storage::{SqlConn, StorageError};

pub(super) struct Conn {
    pub(super) info: ConnInfo,
    pub(super) subs: HashMap<String, SubKey>,
    pub(super) bucket: TokenBucket,
    /// Messages dropped for the rate; a burst's worth within a window closes.
    refusals: Refusals,
    /// When its session was last known live (ms; the upgrade's check, a
    /// renewal, or [`ShardEngine::revocation_due`]).
    pub(super) checked_ms: i64,
}

/// The answer to a message dropped for the rate (the connection's own, or
/// the user's when `user_within` is false), sent before the frame is
/// decoded, so it names no `op` or `sub`. Enough refusals of the
/// connection's own rate within a window close it; the user's rate does
/// not count towards that (the user's other sockets may be the ones
/// sending).
pub(super) fn rate_refused(
    conn: &str,
    c: &mut Conn,
    now_ms: i64,
    user_within: bool,
    max_refusals: u32,
) -> Vec<Outbound> {
    let e = err(
        ErrorCode::RateLimited,
        if user_within {
            "over the message rate; the message was dropped"
        } else {
            "over this user's message rate (all connections); the message was dropped"
        },
    );
    let mut out = vec![Outbound::To(conn.to_owned(), ServerMsg::Err(e))];
    if user_within && c.refusals.count(now_ms, max_refusals) {
        // It keeps sending regardless of the errors: cut it off.
        out.push(Outbound::Close {
            conn: conn.to_owned(),
            code: close::RATE_LIMITED,
            reason: "kept exceeding the message rate".into(),
        });
    }
    out
}

impl<C: SqlConn> ShardEngine<C> {
    /// What the runtime knows of an open connection.
    pub fn conn_info(&self, conn: &str) -> Option<&ConnInfo> {
        self.conns.get(conn).map(|c| &c.info)
    }

    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// A frame the runtime refused before the engine saw it (a bad
    /// receipt, docs/protocol.md "recv"): it costs a token like any
    /// frame, so a flood of them is dropped with `RATE_LIMITED` and
    /// closed with 4429 like any other; within the rate it gets `e`.
    pub fn refused_frame(&mut self, conn: &str, e: ErrorMsg, now_ms: i64) -> Vec<Outbound> {
        let Some(c) = self.conns.get_mut(conn) else {
            return Vec::new();
        };
        if !c.bucket.take(now_ms) {
            return rate_refused(conn, c, now_ms, true, self.config.limits.msg_burst);
        }
        vec![Outbound::To(conn.to_owned(), ServerMsg::Err(e))]
    }

    fn new_conn(&self, info: ConnInfo, now_ms: i64) -> Conn {
        let l = &self.config.limits;
        Conn {
            info,
            subs: HashMap::new(),
            bucket: TokenBucket::new(l.msgs_per_sec, l.msg_burst, now_ms),
            refusals: Refusals::default(),
            checked_ms: now_ms,
        }
    }

    /// After the object woke (or restarted): the connections whose sockets
    /// are still open, with what their attachments kept. Their stored
    /// subscriptions are rebuilt; what belonged to connections that are gone
    /// is dropped, and their presence leaves.
    pub async fn restore(
        &mut self,
        open: Vec<(String, ConnInfo)>,
        now_ms: i64,
    ) -> Result<Vec<Outbound>, StorageError> {
        self.tick(now_ms);
        for (id, info) in open {
            let ended = info.ended.is_some();
            let mut conn = self.new_conn(info, now_ms);
            // Unknown since when: its next message checks its session.
            conn.checked_ms = i64::MIN;
            if ended {
                self.paused.insert(id.clone());
            }
            self.conns.insert(id, conn);
        }
        self.next_end_ms = self.earliest_end();
        let mut gone = HashSet::new();
        for stored in self.store.all_subs()? {
            if !self.conns.contains_key(&stored.conn) {
                gone.insert(stored.conn.clone());
                continue;
            }
            if let Err(e) = self.rebuild_sub(stored).await {
                return Err(e);
            }
        }
        self.restore_watches()?;
        let mut leaves = Vec::new();
        for (conn, _) in self.store.presence()? {
            // HTTP members belong to no socket: they stay (docs/rooms.md).
            if !self.conns.contains_key(&conn) && !crate::shard::rooms::is_member(&conn) {
                gone.insert(conn.clone());
                leaves.push(conn);
            }
        }
        for conn in &gone {
            self.store.delete_conn(conn)?;
            self.presence.set(conn, None);
        }
        let mut out = Vec::new();
        if !leaves.is_empty() {
            out.push(Outbound::All {
                except: None,
                msg: ServerMsg::PresenceDiff(PresenceDiff {
                    leaves,
                    ..Default::default()
                }),
            });
        }
        Ok(self.without_paused(out))
    }

    async fn rebuild_sub(&mut self, stored: StoredSub) -> Result<(), StorageError> {
        let Some(entity) = stored
            .query
            .get("entity")
            .and_then(|e| e.as_str())
            .and_then(|e| self.manifest.entity(e))
        else {
            // The entity left the manifest: the subscription cannot be kept.
            return self.store.delete_sub(&stored.conn, &stored.id);
        };
        let Ok(query) = Query::parse(entity, &stored.query) else {
            return self.store.delete_sub(&stored.conn, &stored.id);
        };
        let auth = self.conns[&stored.conn].info.auth.clone();
        let window = self.window_for(&stored.query, query, &auth).await?;
        // Answered at `stored.seq`, and sent every diff of its window since
        // (a paused one none since its stored seq, see `end_identity`).
        let seq = if self.paused.contains(&stored.conn) {
            stored.seq
        } else {
            stored.seq.max(self.windows[&window].sent)
        };
        self.add_live(stored.conn, stored.id, window, seq);
        Ok(())
    }

    /// A new connection: `welcome` and the presence state, or a refusal
    /// when the shard is full.
    pub fn connect(
        &mut self,
        conn: &str,
        info: ConnInfo,
        now_ms: i64,
    ) -> Result<Vec<Outbound>, StorageError> {
        if self.conns.len() >= self.config.limits.max_conns_per_shard as usize {
            return Ok(vec![
                Outbound::To(
                    conn.to_owned(),
                    ServerMsg::Err(err(
                        ErrorCode::TooManyConnections,
                        "this shard has as many connections as it takes",
                    )),
                ),
                Outbound::Close {
                    conn: conn.to_owned(),
                    code: close::OVERLOADED,
                    reason: "shard full".into(),
                },
            ]);
        }
        self.tick(now_ms);
        let encoding = info.encoding;
        if let Some(end) = info.lease.ends_ms(self.skew_secs()) {
            self.next_end_ms = self.next_end_ms.min(end);
        }
        let c = self.new_conn(info, now_ms);
        self.conns.insert(conn.to_owned(), c);
        Ok(vec![
            Outbound::To(conn.to_owned(), self.welcome(conn, encoding)?),
            Outbound::To(conn.to_owned(), self.presence_state()?),
        ])
    }

    pub(super) fn welcome(
        &self,
        conn: &str,
        encoding: Encoding,
    ) -> Result<ServerMsg, StorageError> {
        Ok(ServerMsg::Welcome(Welcome {
            protocol: PROTOCOL.into(),
            shard: self.shard.clone(),
            seq: self.store.seq()?,
            conn: conn.to_owned(),
            encoding,
            window: Some(self.config.send_window),
        }))
    }

    /// A connection closed: its subscriptions go, its presence leaves.
    pub fn close(&mut self, conn: &str) -> Result<Vec<Outbound>, StorageError> {
        let Some(c) = self.conns.remove(conn) else {
            return Ok(Vec::new());
        };
        self.paused.remove(conn);
        for key in c.subs.values() {
            self.remove_live(*key);
        }
        self.watches.drop_conn(conn);
        let had_presence = self.presence.holds(conn);
        self.store.delete_conn(conn)?;
        self.presence.set(conn, None);
        Ok(if had_presence {
            self.without_paused(vec![Outbound::All {
                except: None,
                msg: ServerMsg::PresenceDiff(PresenceDiff {
                    leaves: vec![conn.to_owned()],
                    ..Default::default()
                }),
            }])
        } else {
            Vec::new()
        })
    }

    /// The second half of a `hello` with a token, once the runtime has
    /// verified it (at `now_ms`). The connection keeps its identity unless
    /// the token is valid, admitted to this shard, and describes exactly
    /// the caller the connection already has (same user, tenant, roles,
    /// admin flag): live windows were computed for that caller, so a
    /// different one needs a new connection. Answered with `welcome` (and
    /// the token's lease renews the connection's, see [`Self::renew`]), or
    /// an `err` (`UNAUTHORIZED`, `FORBIDDEN`, `UNAVAILABLE`); the socket
    /// stays open.
    pub async fn hello_verified(
        &mut self,
        conn: &str,
        verified: Result<(AuthContext, Lease), AuthError>,
        now_ms: i64,
    ) -> Vec<Outbound> {
        self.tick(now_ms);
        let Some(c) = self.conns.get(conn) else {
            return Vec::new();
        };
        let to = |m: ErrorMsg| vec![Outbound::To(conn.to_owned(), ServerMsg::Err(m))];
        let decided = verified.and_then(|(a, lease)| {
            let a = self.manifest.auth().decide(&self.shard, Some(a))?;
            Ok((a, lease))
        });
        let (caller, lease) = match decided {
            Ok(a) => a,
            Err(e) => {
                let code = match e.status() {
                    403 => ErrorCode::Forbidden,
                    503 => ErrorCode::Unavailable,
                    500 => ErrorCode::Internal,
                    _ => ErrorCode::Unauthorized,
                };
                return to(err(code, format!("{}: {e}", e.reason())));
            }
        };
        if caller.user_id != c.info.auth.user_id {
            return to(err(
                ErrorCode::Forbidden,
                "IDENTITY_CHANGED: the token names another user (or the connection is \
                 anonymous); open a new connection to change users",
            ));
        }
        if caller != c.info.auth {
            return to(err(
                ErrorCode::Forbidden,
                "IDENTITY_CHANGED: the token's tenant, roles or admin flag differ from \
                 the connection's; open a new connection to use them",
            ));
        }
        let enc = c.info.encoding;
        match self.welcome(conn, enc) {
            Ok(w) => self.renew(conn, lease, now_ms, w).await,
            Err(e) => to(storage_err(&e)),
        }
    }
}
