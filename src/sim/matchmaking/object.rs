//! A matchmaking queue as a hosted object ([`crate::host::Object`]).
//!
//! Routes (after the queue's name): `POST` (enqueue: the body is the
//! criteria), `GET` (stats), `GET tickets/{t}` (poll), `DELETE
//! tickets/{t}` (leave), `ws?ticket={t}` (an upgrade that hears the
//! ticket's changes). One durable timer (`queue`) fires when a ticket
//! expires or is forgotten, or to match again; with no ticket left there is
//! no alarm.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::store::{Status, Ticket, TicketStore};
use super::wire::{ticket_json, TicketMsg};
use super::{MatchConfig, MatchRules, Waiting};
use crate::api_error::ApiError;
use crate::host::{Action, ConnState, Method, Object, Open, OpenError, Request, Response};
use crate::policy::AuthContext;
use crate::protocol::{close, Encoding, FrameRef};
use crate::sim::seed_of;
use crate::storage::meta::Meta;
use crate::storage::SqlConn;

/// The queue's durable timer.
pub const QUEUE_TIMER: &str = "queue";
const TICKETS: &str = "mm_tickets";
const GROUPS: &str = "mm_groups";

/// A socket listening to one ticket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TicketConn {
    pub encoding: Encoding,
    pub ticket: String,
}

impl ConnState for TicketConn {
    fn encoding(&self) -> Encoding {
        self.encoding
    }
}

type Act = Action<TicketMsg, TicketConn>;

/// One queue of kind `M`.
pub struct Matchmaker<M: MatchRules, C: SqlConn> {
    name: String,
    config: MatchConfig,
    rules: M,
    store: TicketStore<C>,
    conns: BTreeMap<String, TicketConn>,
    /// What the timer is set to, as far as this wake knows.
    armed: Option<Option<i64>>,
    notes: Vec<String>,
}

fn internal(e: impl std::fmt::Display, notes: &mut Vec<String>) -> ApiError {
    notes.push(format!("matchmaker: {e}"));
    ApiError::internal("the queue could not be read or written")
}

impl<M: MatchRules, C: SqlConn> Matchmaker<M, C> {
    fn msg(&self, t: &Ticket) -> TicketMsg {
        TicketMsg {
            ticket: t.ticket.clone(),
            player: t.player.clone(),
            status: t.status,
            kind: self.config.sim_kind.into(),
            sim: t.sim.clone(),
            players: t.players.clone(),
        }
    }

    /// Tells the sockets of `t` where it stands.
    fn tell(&self, t: &Ticket, out: &mut Vec<Act>) {
        for (conn, c) in &self.conns {
            if c.ticket == t.ticket {
                self.tell_conn(conn, t, out);
            }
        }
    }

    /// Tells one socket; closes it once the ticket is settled (assigned,
    /// expired, left): it has nothing more to hear.
    fn tell_conn(&self, conn: &str, t: &Ticket, out: &mut Vec<Act>) {
        out.push(Action::To(conn.to_owned(), self.msg(t)));
        if t.status != Status::Waiting {
            out.push(Action::Close {
                conn: conn.to_owned(),
                code: close::NORMAL,
                reason: format!("ticket {}", t.status.as_str()),
            });
        }
    }

    /// May `caller` see or withdraw `t`? A verified player's ticket is
    /// theirs (and admins'); an anonymous one is anyone's who has its id.
    fn may_use(t: &Ticket, caller: &AuthContext) -> Result<(), ApiError> {
        if !t.verified || caller.is_admin || caller.user_id.as_deref() == Some(t.player.as_str()) {
            Ok(())
        } else {
            Err(ApiError::new(
                403,
                "FORBIDDEN",
                "this ticket is another player's",
            ))
        }
    }

    /// Forms what groups the rules find among the waiting tickets.
    fn match_now(&mut self, now_ms: i64, out: &mut Vec<Act>) -> Result<(), ApiError> {
        let waiting = self
            .store
            .waiting()
            .map_err(|e| internal(e, &mut self.notes))?;
        let mut tickets = Vec::new();
        let mut views = Vec::new();
        for t in waiting {
            match serde_json::from_str::<M::Criteria>(&t.criteria) {
                Ok(criteria) => {
                    views.push(Waiting {
                        ticket: t.ticket.clone(),
                        player: t.player.clone(),
                        criteria,
                        since_ms: t.since_ms,
                    });
                    tickets.push(t);
                }
                Err(e) => self.notes.push(format!(
                    "matchmaker {}: ticket {}: criteria: {e}",
                    self.name, t.ticket
                )),
            }
        }
        if views.is_empty() {
            return Ok(());
        }
        let mut taken = vec![false; tickets.len()];
        for group in self.rules.form_groups(&views, now_ms) {
            let mut seen = std::collections::BTreeSet::new();
            let valid = !group.is_empty()
                && group
                    .iter()
                    .all(|&i| i < tickets.len() && !taken[i] && seen.insert(i));
            if !valid {
                self.notes.push(format!(
                    "matchmaker {}: a group the rules formed was void: {group:?}",
                    self.name
                ));
                continue;
            }
            let n = Meta::open(self.store.sql())
                .and_then(|m| m.add(GROUPS, 1))
                .map_err(|e| internal(e, &mut self.notes))?;
            let sim = self.rules.shard_id(&self.name, n as u64);
            if let Err(e) = crate::route::validate_shard_name(&sim) {
                self.notes.push(format!(
                    "matchmaker {}: shard id {sim:?}: {}",
                    self.name, e.message
                ));
                continue;
            }
            let players: Vec<String> = group.iter().map(|&i| tickets[i].player.clone()).collect();
            for &i in &group {
                taken[i] = true;
                let t = &mut tickets[i];
                t.status = Status::Assigned;
                t.sim = Some(sim.clone());
                t.players = players.clone();
                t.until_ms = now_ms + self.config.keep_ms;
                self.store
                    .put(t)
                    .map_err(|e| internal(e, &mut self.notes))?;
            }
            for &i in &group {
                self.tell(&tickets[i], out);
            }
        }
        Ok(())
    }

    /// Sets the timer to when the queue next has something to do.
    fn arm(&mut self, now_ms: i64, out: &mut Vec<Act>) {
        let next = match self.store.next_due() {
            Ok(n) => n,
            Err(e) => {
                self.notes.push(format!("matchmaker {}: {e}", self.name));
                return;
            }
        };
        let rematch = (self.config.rematch_ms > 0
            && self.store.waiting().is_ok_and(|w| !w.is_empty()))
        .then_some(now_ms + self.config.rematch_ms);
        let at = match (next, rematch) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if self.armed == Some(at) {
            return;
        }
        self.armed = Some(at);
        out.push(match at {
            Some(at_ms) => Action::SetTimer {
                name: QUEUE_TIMER.into(),
                at_ms,
            },
            None => Action::CancelTimer {
                name: QUEUE_TIMER.into(),
            },
        });
    }

    fn done(&mut self, now_ms: i64, mut out: Vec<Act>) -> Vec<Act> {
        self.arm(now_ms, &mut out);
        out.extend(self.notes.drain(..).map(Action::Log));
        out
    }

    fn enqueue(
        &mut self,
        req: &Request,
        now_ms: i64,
        out: &mut Vec<Act>,
    ) -> Result<Response, ApiError> {
        let max = self.config.max_criteria_bytes;
        if req.body.len() > max {
            return Err(ApiError::new(
                413,
                "CRITERIA_TOO_LARGE",
                format!(
                    "criteria of {} bytes exceed the limit of {max}",
                    req.body.len()
                ),
            ));
        }
        let criteria: M::Criteria = serde_json::from_slice(&req.body)
            .map_err(|e| ApiError::bad_request("BAD_CRITERIA", format!("the body: {e}")))?;
        let notes = &mut self.notes;
        if let Some(user) = &req.caller.user_id {
            if let Some(t) = self
                .store
                .waiting_for(user)
                .map_err(|e| internal(e, notes))?
            {
                let mut v = ticket_json(&self.msg(&t), t.since_ms, t.until_ms);
                v["dup"] = json!(true);
                return Ok(Response::ok(v));
            }
        }
        let waiting = self
            .store
            .waiting()
            .map_err(|e| internal(e, &mut self.notes))?;
        if waiting.len() >= self.config.max_waiting as usize {
            return Err(ApiError::new(
                503,
                "QUEUE_FULL",
                format!("{} players are waiting; try again", waiting.len()),
            ));
        }
        let n = Meta::open(self.store.sql())
            .and_then(|m| m.add(TICKETS, 1))
            .map_err(|e| internal(e, &mut self.notes))? as u64;
        let text = serde_json::to_string(&criteria).unwrap_or_else(|_| "null".into());
        // An identifier, not a secret: a verified player's ticket is
        // theirs alone (see `may_use`).
        let salt = format!("{}/{n}/{now_ms}/{:?}/{text}", self.name, req.caller.user_id);
        let ticket = format!("t{n}-{:012x}", seed_of(&salt) >> 16);
        let t = Ticket {
            player: req.caller.user_id.clone().unwrap_or_else(|| ticket.clone()),
            verified: req.caller.user_id.is_some(),
            ticket: ticket.clone(),
            n,
            criteria: text,
            since_ms: now_ms,
            status: Status::Waiting,
            sim: None,
            players: Vec::new(),
            until_ms: now_ms + self.config.ticket_ttl_ms,
        };
        self.store
            .put(&t)
            .map_err(|e| internal(e, &mut self.notes))?;
        self.match_now(now_ms, out)?;
        let t = self
            .store
            .get(&ticket)
            .map_err(|e| internal(e, &mut self.notes))?
            .unwrap_or(t);
        Ok(Response::ok(ticket_json(
            &self.msg(&t),
            t.since_ms,
            t.until_ms,
        )))
    }

    fn ticket(&mut self, id: &str, caller: &AuthContext) -> Result<Ticket, ApiError> {
        let t = self
            .store
            .get(id)
            .map_err(|e| internal(e, &mut self.notes))?
            .ok_or_else(|| {
                ApiError::not_found(format!("no ticket {id} (it may have been forgotten)"))
            })?;
        Self::may_use(&t, caller)?;
        Ok(t)
    }

    fn leave(
        &mut self,
        id: &str,
        caller: &AuthContext,
        now_ms: i64,
        out: &mut Vec<Act>,
    ) -> Result<Response, ApiError> {
        let mut t = self.ticket(id, caller)?;
        if t.status != Status::Waiting {
            return Err(ApiError::new(
                409,
                "NOT_WAITING",
                format!("ticket {id} is {}", t.status.as_str()),
            ));
        }
        t.status = Status::Left;
        t.until_ms = now_ms + self.config.keep_ms;
        self.store
            .put(&t)
            .map_err(|e| internal(e, &mut self.notes))?;
        self.tell(&t, out);
        Ok(Response::ok(ticket_json(
            &self.msg(&t),
            t.since_ms,
            t.until_ms,
        )))
    }

    fn stats_json(&self) -> serde_json::Value {
        let mut v = json!({
            "kind": self.config.kind,
            "queue": self.name,
            "sim_kind": self.config.sim_kind,
            "sockets": self.conns.len(),
            "waiting": 0, "assigned": 0, "expired": 0, "left": 0,
        });
        for (status, n) in self.store.counts().unwrap_or_default() {
            v[status] = json!(n);
        }
        let meta = Meta::open(self.store.sql());
        v["groups"] = json!(meta.as_ref().map_or(0, |m| m.int(GROUPS).unwrap_or(0)));
        v["tickets"] = json!(meta.map_or(0, |m| m.int(TICKETS).unwrap_or(0)));
        v
    }
}

impl<M: MatchRules, C: SqlConn> Object<C> for Matchmaker<M, C> {
    type Msg = TicketMsg;
    type Conn = TicketConn;

    async fn open(
        init: Open<'_, C>,
        conns: Vec<(String, TicketConn)>,
    ) -> Result<(Self, Vec<Act>), OpenError> {
        let store = TicketStore::open(init.sql)?;
        let mm = Matchmaker {
            rules: M::new(&init.name),
            name: init.name,
            config: M::config(),
            store,
            conns: conns.into_iter().collect(),
            armed: None,
            notes: Vec::new(),
        };
        Ok((mm, Vec::new()))
    }

    fn max_body_bytes(&self) -> usize {
        self.config.max_criteria_bytes
    }

    fn accept(
        &mut self,
        req: &Request,
        encoding: Encoding,
        _now_ms: i64,
    ) -> Result<TicketConn, Response> {
        if req.rest != "ws" {
            return Err(
                ApiError::not_found(format!("no socket at {}/{}", req.object, req.rest)).into(),
            );
        }
        let id = req
            .param("ticket")
            .ok_or_else(|| ApiError::bad_request("BAD_REQUEST", "name the ticket: ws?ticket=…"))?;
        let t = self.ticket(id, &req.caller)?;
        Ok(TicketConn {
            encoding,
            ticket: t.ticket,
        })
    }

    async fn on_connect(&mut self, conn: &str, state: TicketConn, now_ms: i64) -> Vec<Act> {
        self.conns.insert(conn.to_owned(), state.clone());
        let mut out = Vec::new();
        match self.store.get(&state.ticket) {
            Ok(Some(t)) => self.tell_conn(conn, &t, &mut out),
            Ok(None) => out.push(Action::Close {
                conn: conn.to_owned(),
                code: close::NORMAL,
                reason: "the ticket was forgotten".into(),
            }),
            Err(e) => self.notes.push(format!("matchmaker {}: {e}", self.name)),
        }
        self.done(now_ms, out)
    }

    async fn on_message(&mut self, _conn: &str, _frame: FrameRef<'_>, _now_ms: i64) -> Vec<Act> {
        // The socket only listens; the queue is changed over HTTP.
        Vec::new()
    }

    async fn on_close(&mut self, conn: &str, _now_ms: i64) -> Vec<Act> {
        self.conns.remove(conn);
        Vec::new()
    }

    async fn on_request(&mut self, req: Request, now_ms: i64) -> (Response, Vec<Act>) {
        let mut out = Vec::new();
        let ticket = req.rest.strip_prefix("tickets/").map(str::to_owned);
        let result = match (req.method, req.rest.as_str(), ticket) {
            (Method::Post, "", _) => self.enqueue(&req, now_ms, &mut out),
            (Method::Get, "", _) => Ok(Response::ok(self.stats_json())),
            (Method::Get, _, Some(id)) => self
                .ticket(&id, &req.caller)
                .map(|t| Response::ok(ticket_json(&self.msg(&t), t.since_ms, t.until_ms))),
            (Method::Delete, _, Some(id)) => self.leave(&id, &req.caller, now_ms, &mut out),
            (Method::Get, "ws", _) => Err(ApiError::new(
                426,
                "UPGRADE_REQUIRED",
                "this endpoint takes a WebSocket upgrade",
            )),
            (m, "" | "ws", _) | (m, _, Some(_)) => Err(ApiError::method_not_allowed(format!(
                "{m:?} is not allowed here"
            ))),
            (_, rest, None) => Err(ApiError::not_found(format!(
                "no route {}/{rest}",
                req.object
            ))),
        };
        let resp = result.unwrap_or_else(Response::from);
        (resp, self.done(now_ms, out))
    }

    async fn on_timer(&mut self, name: &str, now_ms: i64) -> Vec<Act> {
        let mut out = Vec::new();
        if name != QUEUE_TIMER {
            return out;
        }
        // The timer that fired is gone: whatever comes next is set anew.
        self.armed = Some(None);
        match self.store.due(now_ms) {
            Ok(due) => {
                for mut t in due {
                    let done = if t.status == Status::Waiting {
                        t.status = Status::Expired;
                        t.until_ms = now_ms + self.config.keep_ms;
                        self.store.put(&t).map(|()| Some(t))
                    } else {
                        self.store.delete(&t.ticket).map(|()| None)
                    };
                    match done {
                        Ok(Some(t)) => self.tell(&t, &mut out),
                        Ok(None) => {}
                        Err(e) => self.notes.push(format!("matchmaker {}: {e}", self.name)),
                    }
                }
            }
            Err(e) => self.notes.push(format!("matchmaker {}: {e}", self.name)),
        }
        if self.config.rematch_ms > 0 {
            if let Err(e) = self.match_now(now_ms, &mut out) {
                self.notes
                    .push(format!("matchmaker {}: matching: {}", self.name, e.message));
            }
        }
        self.done(now_ms, out)
    }

    fn stats(&self, _now_ms: i64) -> serde_json::Value {
        self.stats_json()
    }
}
