//! When an open connection's identity ends, and what it is told.
//!
//! A socket keeps the caller of its upgrade, but only while the token it
//! was opened (or last renewed) with holds: past the token's `exp` (with
//! the router's clock skew, see [`Lease::expired`]) or once its session is
//! known to be revoked, the connection's identity has **ended**. Its live
//! queries are paused (no diffs; each keeps the seq it was last sent) and
//! its messages other than `hello` and `ping` are refused with `err
//! UNAUTHORIZED`, until a `hello` with a valid token for the same caller
//! renews it; the paused queries then get what they missed. See
//! docs/auth.md, "Open sockets".
//!
//! ```
//! use pylon_workers::protocol::ErrorCode;
//! use pylon_workers::shard::Ended;
//! let e = Ended::Expired.notice();
//! assert_eq!(e.code, ErrorCode::Unauthorized);
//! assert!(e.message.starts_with("TOKEN_EXPIRED: ") && e.identity_ended());
//! assert!(Ended::Revoked.notice().message.starts_with("SESSION_REVOKED: "));
//! assert!(Ended::Revoked.notice().identity_ended());
//! ```

use serde::{Deserialize, Serialize};

use super::errors::storage_err;
use super::frames::{reset_then, snap, to_wire};
use super::windows::readable;
use super::{Outbound, ShardEngine};
use crate::auth::Lease;
use crate::live::SubKey;
use crate::protocol::{reset_reason, ClientMsg, ErrorCode, ErrorMsg, ServerMsg};
use crate::storage::SqlConn;

/// Why a connection's identity ended. Kept in the socket attachment (with
/// the lease), so an ended connection stays ended across a wake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ended {
    /// The token's `exp` (plus the allowed clock skew) has passed.
    Expired,
    /// The session of the connection's session token was revoked.
    Revoked,
}

impl Ended {
    /// The stable reason that starts every message about it.
    pub fn reason(self) -> &'static str {
        match self {
            Ended::Expired => "TOKEN_EXPIRED",
            Ended::Revoked => "SESSION_REVOKED",
        }
    }

    /// The `err` sent when the end is noticed: once, pushed (no `op` or
    /// `sub`) or as the answer to the connection's next message.
    pub fn notice(self) -> ErrorMsg {
        let what = match self {
            Ended::Expired => "the connection's token expired",
            Ended::Revoked => "the connection's session was revoked",
        };
        ErrorMsg {
            code: ErrorCode::Unauthorized,
            message: format!(
                "{}: {what}; its live queries are paused and its messages refused until a \
                 hello with a valid token for the same caller renews it",
                self.reason()
            ),
            op: None,
            sub: None,
        }
    }
}

/// Whether a revocation check of a connection last checked at
/// `checked_ms` is due at `now_ms`, checking at most every `every_ms`
/// (`PYLON_REVOCATION_CACHE_SECS`; 0 checks on every message).
fn check_due(checked_ms: i64, now_ms: i64, every_ms: i64) -> bool {
    now_ms.saturating_sub(checked_ms) >= every_ms
}

/// The engine's side: its clock, the sweep before a fan-out, the refusal
/// of messages, revocation checks and renewal.
impl<C: SqlConn> ShardEngine<C> {
    pub(super) fn tick(&mut self, now_ms: i64) {
        self.clock_ms = self.clock_ms.max(now_ms);
    }

    /// The clock skew the router allows outside tokens.
    pub(super) fn skew_secs(&self) -> u64 {
        self.manifest.auth().validation.clock_skew_secs
    }

    /// The earliest end of a lease among connections not yet ended.
    pub(super) fn earliest_end(&self) -> i64 {
        let skew = self.skew_secs();
        self.conns
            .values()
            .filter(|c| c.info.ended.is_none())
            .filter_map(|c| c.info.lease.ends_ms(skew))
            .min()
            .unwrap_or(i64::MAX)
    }

    /// Ends `conn`'s identity: its subscriptions pause at the seq each was
    /// last sent (written to storage, since their windows go on without
    /// them and a wake must resume them from there) and its attachment
    /// says so. The caller tells the connection.
    pub(super) fn end_identity(&mut self, conn: &str, why: Ended) -> Vec<Outbound> {
        let Some(c) = self.conns.get_mut(conn) else {
            return Vec::new();
        };
        if c.info.ended.is_some() {
            return Vec::new();
        }
        c.info.ended = Some(why);
        self.paused.insert(conn.to_owned());
        for (id, key) in &c.subs {
            if let Some(live) = self.subs.get(key) {
                // If this fails, a wake resumes it from an older seq: the
                // client sees a gap and resubscribes, still exact.
                let _ = self.store.set_sub_seq(conn, id, live.seq);
            }
        }
        vec![Outbound::Attach {
            conn: conn.to_owned(),
            info: c.info.clone(),
        }]
    }

    /// Before a fan-out: ends every connection whose lease ran out by the
    /// engine's clock, each told once with a pushed `err`. Free until the
    /// earliest lease ends.
    pub(super) fn sweep_ended(&mut self) -> Vec<Outbound> {
        if self.clock_ms < self.next_end_ms {
            return Vec::new();
        }
        let (now, skew) = (self.clock_ms, self.skew_secs());
        let due: Vec<String> = self
            .conns
            .iter()
            .filter(|(_, c)| c.info.ended.is_none() && c.info.lease.expired(now, skew))
            .map(|(id, _)| id.clone())
            .collect();
        let mut out = Vec::new();
        for conn in due {
            out.extend(self.end_identity(&conn, Ended::Expired));
            out.push(Outbound::To(conn, ServerMsg::Err(Ended::Expired.notice())));
        }
        self.next_end_ms = self.earliest_end();
        out
    }

    /// The answer to a message of a connection whose identity ended, or
    /// `None` to handle it: `hello` with a token (which may renew it),
    /// `ping` and `unsub` (which only gives up access) are handled;
    /// anything else is refused with the end's `err`, carrying the
    /// message's `op` or `sub`. The first refusal of an end noticed here is
    /// also its notice.
    pub(super) fn refuse_if_ended(
        &mut self,
        conn: &str,
        msg: &ClientMsg,
        now_ms: i64,
    ) -> Option<Vec<Outbound>> {
        self.tick(now_ms);
        let renewing = matches!(msg, ClientMsg::Hello(h) if h.token.is_some());
        if renewing || matches!(msg, ClientMsg::Ping(_) | ClientMsg::Unsub(_)) {
            return None;
        }
        let c = self.conns.get(conn)?;
        let mut out = Vec::new();
        let why = match c.info.ended {
            Some(why) => why,
            None if c.info.lease.expired(now_ms, self.skew_secs()) => {
                out = self.end_identity(conn, Ended::Expired);
                Ended::Expired
            }
            None => return None,
        };
        let mut e = why.notice();
        match msg {
            ClientMsg::Mut(m) => e.op = Some(m.op.clone()),
            ClientMsg::Sub(s) => e.sub = Some(s.id.clone()),
            _ => {}
        }
        out.push(Outbound::To(conn.to_owned(), ServerMsg::Err(e)));
        Some(out)
    }

    /// Whether `conn`'s session is due a revocation check at `now_ms`,
    /// checking at most every `every_ms` (`PYLON_REVOCATION_CACHE_SECS`):
    /// the session id to ask about, or `None` (no session, not due, or
    /// already ended). The check counts as made now, so one is asked at a
    /// time; hand the answer to [`Self::session_checked`].
    pub fn revocation_due(&mut self, conn: &str, now_ms: i64, every_ms: i64) -> Option<String> {
        let c = self.conns.get_mut(conn)?;
        if c.info.ended.is_some() || !check_due(c.checked_ms, now_ms, every_ms) {
            return None;
        }
        let sid = c.info.lease.sid.clone()?;
        c.checked_ms = now_ms;
        Some(sid)
    }

    /// The answer to a revocation check of session `sid` on `conn`: a
    /// revoked session ends the identity, told once with a pushed `err`.
    /// An answer about a session the connection no longer holds (renewed
    /// meanwhile) changes nothing.
    pub fn session_checked(
        &mut self,
        conn: &str,
        sid: &str,
        live: bool,
        now_ms: i64,
    ) -> Vec<Outbound> {
        self.tick(now_ms);
        let Some(c) = self.conns.get(conn) else {
            return Vec::new();
        };
        if live || c.info.ended.is_some() || c.info.lease.sid.as_deref() != Some(sid) {
            return Vec::new();
        }
        let mut out = self.end_identity(conn, Ended::Revoked);
        out.push(Outbound::To(
            conn.to_owned(),
            ServerMsg::Err(Ended::Revoked.notice()),
        ));
        out
    }

    /// A renewing `hello` was accepted: the connection takes the token's
    /// lease (kept in its attachment) and the `welcome`. If its identity
    /// had ended, a fresh `presence_state` follows, and each paused
    /// subscription gets what it missed since the seq it was last sent:
    /// one diff, or a `reset` and a fresh `snap` when the change log does
    /// not reach back (as for a resume with `since`).
    pub(super) async fn renew(
        &mut self,
        conn: &str,
        lease: Lease,
        now_ms: i64,
        welcome: ServerMsg,
    ) -> Vec<Outbound> {
        let skew = self.skew_secs();
        let Some(c) = self.conns.get_mut(conn) else {
            return Vec::new();
        };
        c.checked_ms = now_ms;
        c.info.lease = lease;
        let was = c.info.ended.take();
        if let Some(end) = c.info.lease.ends_ms(skew) {
            self.next_end_ms = self.next_end_ms.min(end);
        }
        let mut out = vec![
            Outbound::Attach {
                conn: conn.to_owned(),
                info: c.info.clone(),
            },
            Outbound::To(conn.to_owned(), welcome),
        ];
        if was.is_none() {
            return out;
        }
        let paused: Vec<(String, SubKey)> = c.subs.iter().map(|(id, k)| (id.clone(), *k)).collect();
        self.paused.remove(conn);
        let seq = self.presence_state().and_then(|p| {
            out.push(Outbound::To(conn.to_owned(), p));
            self.store.seq()
        });
        let seq = match seq {
            Ok(s) => s,
            Err(e) => {
                out.push(Outbound::To(
                    conn.to_owned(),
                    ServerMsg::Err(storage_err(&e)),
                ));
                return out;
            }
        };
        for (id, key) in paused {
            let Some(live) = self.subs.get(&key) else {
                continue;
            };
            let from = live.seq;
            if from >= seq {
                continue;
            }
            let w = &self.windows[&live.window];
            let visible = readable(&self.manifest, &w.sub.query().entity, &w.auth);
            match self.missed(&w.sub, &visible, from, seq).await {
                Ok(Some(d)) => out.push(Outbound::To(conn.to_owned(), to_wire(&id, from, seq, d))),
                Ok(None) => out.extend(reset_then(
                    conn,
                    &id,
                    reset_reason::TOO_OLD,
                    snap(&id, seq, &w.sub),
                )),
                Err(_) => out.extend(reset_then(
                    conn,
                    &id,
                    reset_reason::RESYNC,
                    snap(&id, seq, &w.sub),
                )),
            }
            if let Some(live) = self.subs.get_mut(&key) {
                live.seq = seq;
            }
            let _ = self.store.set_sub_seq(conn, &id, seq);
        }
        out
    }

    /// `out` with shard-wide messages (presence, broadcasts) kept from
    /// connections whose identity ended.
    pub(super) fn without_paused(&self, out: Vec<Outbound>) -> Vec<Outbound> {
        if self.paused.is_empty() {
            return out;
        }
        out.into_iter()
            .map(|o| match o {
                Outbound::All { except, msg } => Outbound::Many {
                    conns: self
                        .conns
                        .keys()
                        .filter(|c| except.as_deref() != Some(c.as_str()))
                        .filter(|c| !self.paused.contains(*c))
                        .cloned()
                        .collect(),
                    msg,
                },
                o => o,
            })
            .collect()
    }
}
