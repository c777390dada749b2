//! The host's own decisions, without platform types: which sockets a
//! message goes to (encoded once per encoding), which connections exist,
//! what the alarm must be set to, when a held-back timer is due. The
//! Workers host (`durable_objects/host.rs`) and [`LocalHost`] only carry
//! out the [`Effect`]s it returns.
//!
//! [`LocalHost`]: super::local::LocalHost

use std::collections::HashMap;

use serde_json::json;

use super::action::{Action, ConnState, Wire};
use super::io::{IoCall, IoOutcome};
use super::object::{Object, Open, OpenError};
use super::request::{Request, Response};
use super::timers::Timers;
use super::window::{self, Windows};
use crate::app::App;
use crate::protocol::{Encoding, Frame, FrameRef};
use crate::storage::meta::{self, Meta};
use crate::storage::{SqlConn, SqlMeter};

/// Meta key: the last connection number handed out.
const NEXT_CONN: &str = "next_conn";
/// An alarm this far past its time is taken as lost and set again.
pub const ALARM_OVERDUE_MS: i64 = 5_000;

/// Something for the platform to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect<S> {
    /// Send `frame` to each of these connections.
    Send { conns: Vec<String>, frame: Frame },
    /// Close a socket (the object has already been told).
    Close {
        conn: String,
        code: u16,
        reason: String,
    },
    /// Rewrite a socket's attachment to `{conn, info: state}`.
    Attach { conn: String, state: S },
    /// Set the object's alarm to this time (ms since the epoch).
    SetAlarm(i64),
    /// Delete the object's alarm: no timer is left.
    ClearAlarm,
    /// Call [`HostCore::soft_due`] at this time, within this wake.
    WakeAt(i64),
    /// Perform this call, then hand the outcome to [`HostCore::io_done`].
    Io { tag: u64, call: IoCall },
    /// Something went wrong that no client should see: log it.
    Log(String),
}

/// A socket's attachment: what survives hibernation with it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Attachment<S> {
    pub conn: String,
    pub info: S,
}

/// One object's host state for one wake (rebuilt after an eviction).
pub struct HostCore<C: SqlConn + Clone, K: Object<C>> {
    sql: C,
    object: Option<K>,
    /// The open connections, mirroring the sockets.
    conns: HashMap<String, K::Conn>,
    /// Bytes each connection was sent and has not receipted, and the
    /// send window ([`window::WINDOW_VAR`]).
    windows: Windows,
    /// What the alarm is set to, as far as this wake knows.
    alarm: Option<i64>,
    /// Held-back timers ([`Action::Soon`]), in memory.
    soft: HashMap<String, i64>,
    wakes: i64,
    /// This wake's bill, counted in memory (counting it in storage would
    /// add to it): when it opened, alarms fired and set, and the SQL meter
    /// when it began.
    opened_ms: Option<i64>,
    alarms_fired: u64,
    alarms_set: u64,
    meter_at_wake: Option<SqlMeter>,
    /// While an alarm's handlers run: the timers they set or cancelled,
    /// which the alarm must not disarm after them.
    touched_timers: Option<Vec<String>>,
}

type Effects<K, C> = Vec<Effect<<K as Object<C>>::Conn>>;

impl<C: SqlConn + Clone, K: Object<C>> HostCore<C, K> {
    /// A fresh wake. Counts it in storage first (synchronously, before any
    /// event), so `wakes` tells how often the platform rebuilt the object.
    pub fn new(sql: C) -> (Self, Option<String>) {
        let meter_at_wake = sql.meter();
        // The table exists after the first wake: no DDL on later ones,
        // and the first one's missing table is not logged as a failure.
        let counted = Meta::existing(&sql)
            .try_add(meta::WAKES, 1)
            .or_else(|_| Meta::open(&sql).and_then(|m| m.add(meta::WAKES, 1)));
        let (wakes, warning) = match counted {
            Ok(n) => (n, None),
            Err(e) => (0, Some(format!("counting the wake failed: {e}"))),
        };
        let core = HostCore {
            sql,
            object: None,
            conns: HashMap::new(),
            windows: Windows::new(window::DEFAULT_WINDOW),
            alarm: None,
            soft: HashMap::new(),
            wakes,
            opened_ms: None,
            alarms_fired: 0,
            alarms_set: 0,
            meter_at_wake,
            touched_timers: None,
        };
        (core, warning)
    }

    pub fn is_open(&self) -> bool {
        self.object.is_some()
    }

    pub fn wakes(&self) -> i64 {
        self.wakes
    }

    pub fn object(&self) -> Option<&K> {
        self.object.as_ref()
    }

    /// The state of an open connection.
    pub fn conn(&self, conn: &str) -> Option<&K::Conn> {
        self.conns.get(conn)
    }

    /// Opens the object if this wake has not: its name (`name`, stored for
    /// later wakes, or the stored one), and the sockets that survived.
    pub async fn open(
        &mut self,
        name: Option<&str>,
        sockets: Vec<(String, K::Conn)>,
        app: &App,
        vars: &dyn Fn(&str) -> Option<String>,
        now_ms: i64,
    ) -> Result<Effects<K, C>, OpenError> {
        if self.object.is_some() {
            return Ok(Vec::new());
        }
        // `new` made the table when it counted the wake.
        let m = Meta::existing(&self.sql);
        let name = match name {
            Some(n) => {
                m.set_text(meta::SHARD_NAME, n)?;
                n.to_owned()
            }
            None => m.text(meta::SHARD_NAME)?.unwrap_or_default(),
        };
        let timers = Timers::open(&self.sql)?;
        self.windows = Windows::new(window::window_from_vars(vars).map_err(OpenError::Config)?);
        let init = Open {
            sql: self.sql.clone(),
            name,
            app,
            vars,
            now_ms,
        };
        let (object, actions) = K::open(init, sockets.clone()).await?;
        self.object = Some(object);
        self.opened_ms = Some(now_ms);
        for (c, _) in &sockets {
            self.windows.resume(c);
        }
        self.conns = sockets.into_iter().collect();
        let mut out = Vec::new();
        // An alarm set before the eviction is still pending; setting it
        // again to the same time costs nothing and heals a lost one.
        if let Some(at) = timers.next()? {
            self.alarm = Some(at);
            self.alarms_set += 1;
            out.push(Effect::SetAlarm(at));
        }
        self.carry_out(actions, now_ms, &mut out).await;
        Ok(out)
    }

    /// A WebSocket upgrade: the new connection's id and state, or the
    /// object's refusal.
    pub fn accept(
        &mut self,
        req: &Request,
        encoding: Encoding,
        now_ms: i64,
    ) -> Result<(String, K::Conn), Response> {
        let Some(object) = self.object.as_mut() else {
            return Err(not_open());
        };
        let state = object.accept(req, encoding, now_ms)?;
        // Ids come from storage so they stay unique across wakes.
        let n = Meta::open(&self.sql)
            .and_then(|m| m.add(NEXT_CONN, 1))
            .map_err(|e| {
                Response::from(crate::api_error::ApiError::internal(format!(
                    "numbering the connection: {e}"
                )))
            })?;
        let conn = format!("c{n}");
        self.conns.insert(conn.clone(), state.clone());
        self.windows.open(&conn);
        Ok((conn, state))
    }

    /// The socket for `conn` is accepted and carries its attachment.
    pub async fn connected(&mut self, conn: &str, state: K::Conn, now_ms: i64) -> Effects<K, C> {
        let actions = match self.object.as_mut() {
            Some(o) => o.on_connect(conn, state, now_ms).await,
            None => return Vec::new(),
        };
        self.finish(actions, now_ms).await
    }

    /// A frame from `conn`. Receipts are the host's: a valid one never
    /// reaches the object (nor its rate limit); a bad one goes to
    /// [`Object::bad_receipt`], which refuses it like any refused frame.
    pub async fn message(&mut self, conn: &str, frame: FrameRef<'_>, now_ms: i64) -> Effects<K, C> {
        let Some(state) = self.conns.get(conn) else {
            return vec![Effect::Close {
                conn: conn.to_owned(),
                code: crate::protocol::close::INTERNAL,
                reason: "unknown connection".into(),
            }];
        };
        let receipt = self.windows.receipt(conn, frame, state.encoding());
        let actions = match (self.object.as_mut(), receipt) {
            (None, _) => return Vec::new(),
            (Some(_), Some(Ok(()))) => return Vec::new(),
            (Some(o), Some(Err(why))) => o.bad_receipt(conn, why, now_ms),
            (Some(o), None) => o.on_message(conn, frame, now_ms).await,
        };
        self.finish(actions, now_ms).await
    }

    /// The socket of `conn` closed or failed.
    pub async fn closed(&mut self, conn: &str, now_ms: i64) -> Effects<K, C> {
        let mut out = Vec::new();
        self.drop_conn(conn, now_ms, &mut out).await;
        self.check_alarm(now_ms, &mut out);
        out
    }

    /// An HTTP request that is not an upgrade.
    pub async fn request(&mut self, req: Request, now_ms: i64) -> (Response, Effects<K, C>) {
        let Some(o) = self.object.as_mut() else {
            return (not_open(), Vec::new());
        };
        let (resp, actions) = o.on_request(req, now_ms).await;
        (resp, self.finish(actions, now_ms).await)
    }

    /// The alarm went off: every durable timer due fires, earliest first.
    pub async fn alarm(&mut self, now_ms: i64) -> Effects<K, C> {
        // The alarm that was pending is this one.
        self.alarm = None;
        self.alarms_fired += 1;
        let mut out = Vec::new();
        let due = match Timers::on(&self.sql).due(now_ms) {
            Ok(d) => d,
            Err(e) => {
                out.push(Effect::Log(format!("reading the timers: {e}")));
                // Try again shortly rather than lose them.
                self.alarm = Some(now_ms + 1000);
                self.alarms_set += 1;
                out.push(Effect::SetAlarm(now_ms + 1000));
                return out;
            }
        };
        self.touched_timers = Some(Vec::new());
        for (name, _) in &due {
            if let Some(o) = self.object.as_mut() {
                let actions = o.on_timer(name, now_ms).await;
                self.carry_out(actions, now_ms, &mut out).await;
            }
        }
        // Disarmed after the handlers, in the same event as their writes,
        // so a timer a handler set again (a tick) is one row written, not
        // a delete and an insert. The handlers here await no I/O, so the
        // disarm commits with what they wrote.
        let touched = self.touched_timers.take().unwrap_or_default();
        let fired: Vec<(String, i64)> = due
            .into_iter()
            .filter(|(name, _)| !touched.contains(name))
            .collect();
        if let Err(e) = Timers::on(&self.sql).disarm(&fired) {
            out.push(Effect::Log(format!("disarming the timers: {e}")));
        }
        self.sync_alarm(&mut out);
        out
    }

    /// Held-back timers due by `now_ms` fire; `WakeAt` asks for the next.
    pub async fn soft_due(&mut self, now_ms: i64) -> Effects<K, C> {
        let mut out = Vec::new();
        let due: Vec<String> = self
            .soft
            .iter()
            .filter(|(_, at)| **at <= now_ms)
            .map(|(n, _)| n.clone())
            .collect();
        for name in due {
            self.soft.remove(&name);
            if let Some(o) = self.object.as_mut() {
                let actions = o.on_timer(&name, now_ms).await;
                self.carry_out(actions, now_ms, &mut out).await;
            }
        }
        self.check_alarm(now_ms, &mut out);
        out
    }

    /// The earliest held-back timer, if any.
    pub fn next_soft(&self) -> Option<i64> {
        self.soft.values().min().copied()
    }

    /// The outcome of an [`Effect::Io`].
    pub async fn io_done(&mut self, tag: u64, outcome: IoOutcome, now_ms: i64) -> Effects<K, C> {
        let actions = match self.object.as_mut() {
            Some(o) => o.on_io(tag, outcome, now_ms).await,
            None => return Vec::new(),
        };
        self.finish(actions, now_ms).await
    }

    /// The object's figures and the host's: wakes, connections, timers.
    pub fn stats(&self, now_ms: i64) -> serde_json::Value {
        let mut v = match &self.object {
            Some(o) => o.stats(now_ms),
            None => json!({}),
        };
        if !v.is_object() {
            v = json!({ "object": v });
        }
        let timers = Timers::on(&self.sql).all().unwrap_or_default();
        v["wakes"] = json!(self.wakes);
        v["connections"] = json!(self.conns.len());
        v["send_window"] = self.windows.stats();
        v["timers"] = timers
            .iter()
            .map(|(name, at)| json!({ "name": name, "at_ms": at }))
            .collect();
        v["alarm_pending"] = json!(!timers.is_empty());
        let sql = match (self.sql.meter(), self.meter_at_wake) {
            (Some(now), Some(then)) => json!(now.since(then)),
            _ => json!(null),
        };
        v["this_wake"] = json!({
            "opened_ms": self.opened_ms,
            "alarms_fired": self.alarms_fired,
            "alarms_set": self.alarms_set,
            "sql": sql,
        });
        v
    }

    async fn finish(
        &mut self,
        actions: Vec<Action<K::Msg, K::Conn>>,
        now_ms: i64,
    ) -> Effects<K, C> {
        let mut out = Vec::new();
        self.carry_out(actions, now_ms, &mut out).await;
        self.check_alarm(now_ms, &mut out);
        out
    }

    /// Forgets a connection and tells the object, once.
    async fn drop_conn(&mut self, conn: &str, now_ms: i64, out: &mut Effects<K, C>) {
        self.windows.close(conn);
        if self.conns.remove(conn).is_none() {
            return;
        }
        if let Some(o) = self.object.as_mut() {
            let actions = o.on_close(conn, now_ms).await;
            self.carry_out(actions, now_ms, out).await;
        }
    }

    /// Turns actions into effects, in order. A close is followed by the
    /// object's `on_close` for that connection, whose actions follow.
    async fn carry_out(
        &mut self,
        actions: Vec<Action<K::Msg, K::Conn>>,
        now_ms: i64,
        out: &mut Effects<K, C>,
    ) {
        let mut queue: std::collections::VecDeque<_> = actions.into();
        let mut timers_changed = false;
        while let Some(a) = queue.pop_front() {
            match a {
                Action::To(conn, msg) => {
                    if let Some(s) = self.conns.get(&conn) {
                        let frame = msg.encode(s.encoding());
                        self.meter(vec![conn], frame, out, &mut queue);
                    }
                }
                Action::Many { conns, msg } => {
                    let targets = conns
                        .into_iter()
                        .filter_map(|c| self.conns.get(&c).map(|s| (c, s.encoding())));
                    for (conns, frame) in grouped(targets, &msg) {
                        self.meter(conns, frame, out, &mut queue);
                    }
                }
                Action::All { except, msg } => {
                    let targets = self
                        .conns
                        .iter()
                        .filter(|(c, _)| except.as_deref() != Some(c.as_str()))
                        .map(|(c, s)| (c.clone(), s.encoding()));
                    for (conns, frame) in grouped(targets, &msg) {
                        self.meter(conns, frame, out, &mut queue);
                    }
                }
                Action::Close { conn, code, reason } => {
                    if !self.conns.contains_key(&conn) {
                        continue;
                    }
                    out.push(Effect::Close {
                        conn: conn.clone(),
                        code,
                        reason,
                    });
                    self.conns.remove(&conn);
                    self.windows.close(&conn);
                    if let Some(o) = self.object.as_mut() {
                        let more = o.on_close(&conn, now_ms).await;
                        for (i, m) in more.into_iter().enumerate() {
                            queue.insert(i, m);
                        }
                    }
                }
                Action::SaveConn { conn, state } => {
                    if let Some(s) = self.conns.get_mut(&conn) {
                        *s = state.clone();
                        out.push(Effect::Attach { conn, state });
                    }
                }
                Action::SetTimer { name, at_ms } => {
                    if let Some(t) = self.touched_timers.as_mut() {
                        t.push(name.clone());
                    }
                    match Timers::on(&self.sql).set(&name, at_ms) {
                        Ok(()) => timers_changed = true,
                        Err(e) => out.push(Effect::Log(format!("setting timer {name}: {e}"))),
                    }
                }
                Action::CancelTimer { name } => {
                    if let Some(t) = self.touched_timers.as_mut() {
                        t.push(name.clone());
                    }
                    // Cancelling a timer that is not armed moves no alarm.
                    match Timers::on(&self.sql).cancel(&name) {
                        Ok(was_armed) => timers_changed |= was_armed,
                        Err(e) => out.push(Effect::Log(format!("cancelling timer {name}: {e}"))),
                    }
                }
                Action::Soon { name, at_ms } => {
                    let at = self.soft.entry(name).or_insert(at_ms);
                    *at = (*at).min(at_ms);
                }
                Action::Io { tag, call } => out.push(Effect::Io { tag, call }),
                Action::Log(line) => out.push(Effect::Log(line)),
            }
        }
        if timers_changed {
            self.sync_alarm(out);
        }
        if let Some(at) = self.next_soft() {
            out.push(Effect::WakeAt(at));
        }
    }

    /// Sends `frame` to those of `conns` within their window, counting it;
    /// each one already over its window is closed instead (next, before
    /// the actions that follow).
    fn meter(
        &mut self,
        mut conns: Vec<String>,
        frame: Frame,
        out: &mut Effects<K, C>,
        queue: &mut std::collections::VecDeque<Action<K::Msg, K::Conn>>,
    ) {
        for conn in self.windows.admit(&mut conns, frame.len() as u64) {
            queue.push_front(Action::Close {
                conn,
                code: crate::protocol::close::BEHIND,
                reason: "too far behind".into(),
            });
        }
        if !conns.is_empty() {
            out.push(Effect::Send { conns, frame });
        }
    }

    /// Sets the alarm to the earliest timer, or clears it when none is left.
    fn sync_alarm(&mut self, out: &mut Effects<K, C>) {
        let next = match Timers::on(&self.sql).next() {
            Ok(n) => n,
            Err(e) => {
                out.push(Effect::Log(format!("reading the timers: {e}")));
                return;
            }
        };
        if next == self.alarm {
            return;
        }
        self.alarm = next;
        self.alarms_set += u64::from(next.is_some());
        out.push(match next {
            Some(at) => Effect::SetAlarm(at),
            None => Effect::ClearAlarm,
        });
    }

    /// An alarm long overdue was lost (it happens to local workerd across a
    /// restart): set it again.
    fn check_alarm(&mut self, now_ms: i64, out: &mut Effects<K, C>) {
        if let Some(at) = self.alarm {
            if now_ms - at > ALARM_OVERDUE_MS {
                out.push(Effect::SetAlarm(now_ms));
                self.alarm = Some(now_ms);
                self.alarms_set += 1;
            }
        }
    }
}

fn not_open() -> Response {
    crate::api_error::ApiError::internal("the object is not open").into()
}

/// The targets grouped by encoding, with `msg` encoded once per group.
fn grouped<M: Wire>(
    targets: impl Iterator<Item = (String, Encoding)>,
    msg: &M,
) -> Vec<(Vec<String>, Frame)> {
    let mut groups: Vec<(Encoding, Vec<String>)> = Vec::new();
    for (conn, enc) in targets {
        match groups.iter_mut().find(|(e, _)| *e == enc) {
            Some((_, conns)) => conns.push(conn),
            None => groups.push((enc, vec![conn])),
        }
    }
    groups
        .into_iter()
        .map(|(enc, conns)| (conns, msg.encode(enc)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_are_grouped_by_encoding() {
        struct M;
        impl Wire for M {
            fn encode(&self, e: Encoding) -> Frame {
                Frame::Text(e.name().into())
            }
        }
        let targets = [
            ("a", Encoding::Json),
            ("b", Encoding::Postcard),
            ("c", Encoding::Json),
        ]
        .into_iter()
        .map(|(c, e)| (c.to_string(), e));
        assert_eq!(
            grouped(targets, &M),
            vec![
                (vec!["a".into(), "c".into()], Frame::Text("json".into())),
                (vec!["b".into()], Frame::Text("postcard".into())),
            ]
        );
    }
}
