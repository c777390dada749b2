//! [`HostCore`] with its kind erased: the one interface the Workers host
//! drives. The glue (fetch, sockets, alarms, I/O) is then compiled once
//! for every class an app exports, not once per kind: each class costs
//! only its kind's own code (about 20 KiB of bundle per class before).
//!
//! A connection's state crosses as JSON (it is stored as the socket's
//! attachment either way); futures are boxed (one allocation per event).

use std::future::Future;
use std::pin::Pin;

use serde_json::Value as Json;

use super::core::{Effect, HostCore};
use super::io::IoOutcome;
use super::object::{Object, OpenError};
use super::request::{Request, Response};
use crate::app::App;
use crate::protocol::{Encoding, FrameRef};
use crate::storage::SqlConn;

/// A future of this thread (a Durable Object runs on one).
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Effects whose connection state is JSON.
pub type JsonEffects = Vec<Effect<Json>>;

/// What the Workers host asks of an object's core, whatever its kind.
/// Each method is [`HostCore`]'s of the same name.
pub trait ErasedCore {
    fn is_open(&self) -> bool;
    fn open<'a>(
        &'a mut self,
        name: Option<&'a str>,
        sockets: Vec<(String, Json)>,
        app: &'a App,
        vars: &'a dyn Fn(&str) -> Option<String>,
        now_ms: i64,
    ) -> Pending<'a, Result<JsonEffects, OpenError>>;
    fn accept(
        &mut self,
        req: &Request,
        encoding: Encoding,
        now_ms: i64,
    ) -> Result<(String, Json), Response>;
    fn connected<'a>(
        &'a mut self,
        conn: &'a str,
        state: Json,
        now_ms: i64,
    ) -> Pending<'a, JsonEffects>;
    fn message<'a>(
        &'a mut self,
        conn: &'a str,
        frame: FrameRef<'a>,
        now_ms: i64,
    ) -> Pending<'a, JsonEffects>;
    fn closed<'a>(&'a mut self, conn: &'a str, now_ms: i64) -> Pending<'a, JsonEffects>;
    fn request(&mut self, req: Request, now_ms: i64) -> Pending<'_, (Response, JsonEffects)>;
    fn alarm(&mut self, now_ms: i64) -> Pending<'_, JsonEffects>;
    fn soft_due(&mut self, now_ms: i64) -> Pending<'_, JsonEffects>;
    fn next_soft(&self) -> Option<i64>;
    fn io_done(&mut self, tag: u64, outcome: IoOutcome, now_ms: i64) -> Pending<'_, JsonEffects>;
    fn stats(&self, now_ms: i64) -> Json;
    /// The open object's largest request body (0 while it is not open).
    fn max_body_bytes(&self) -> usize;
}

/// A connection's state as JSON. Serializing a derived `Serialize` to a
/// JSON value only fails for maps with non-string keys, which a
/// connection state (a few fields) does not have.
fn to_json<S: serde::Serialize>(state: &S) -> Json {
    serde_json::to_value(state).unwrap_or(Json::Null)
}

fn erase<S: serde::Serialize>(effects: Vec<Effect<S>>) -> JsonEffects {
    effects
        .into_iter()
        .map(|e| match e {
            Effect::Send { conns, frame } => Effect::Send { conns, frame },
            Effect::Close { conn, code, reason } => Effect::Close { conn, code, reason },
            Effect::Attach { conn, state } => Effect::Attach {
                state: to_json(&state),
                conn,
            },
            Effect::SetAlarm(at) => Effect::SetAlarm(at),
            Effect::ClearAlarm => Effect::ClearAlarm,
            Effect::WakeAt(at) => Effect::WakeAt(at),
            Effect::Io { tag, call } => Effect::Io { tag, call },
            Effect::Log(line) => Effect::Log(line),
        })
        .collect()
}

impl<C: SqlConn + Clone + 'static, K: Object<C> + 'static> ErasedCore for HostCore<C, K> {
    fn is_open(&self) -> bool {
        HostCore::is_open(self)
    }

    fn open<'a>(
        &'a mut self,
        name: Option<&'a str>,
        sockets: Vec<(String, Json)>,
        app: &'a App,
        vars: &'a dyn Fn(&str) -> Option<String>,
        now_ms: i64,
    ) -> Pending<'a, Result<JsonEffects, OpenError>> {
        Box::pin(async move {
            // A socket whose attachment no longer reads as this kind's
            // state (written by another version) is left out, as before.
            let mut out = Vec::new();
            let sockets = sockets
                .into_iter()
                .filter_map(|(conn, info)| match serde_json::from_value(info) {
                    Ok(state) => Some((conn, state)),
                    Err(e) => {
                        out.push(Effect::Log(format!(
                            "socket {conn}: unreadable attachment: {e}"
                        )));
                        None
                    }
                })
                .collect();
            let effects = HostCore::open(self, name, sockets, app, vars, now_ms).await?;
            out.extend(erase(effects));
            Ok(out)
        })
    }

    fn accept(
        &mut self,
        req: &Request,
        encoding: Encoding,
        now_ms: i64,
    ) -> Result<(String, Json), Response> {
        HostCore::accept(self, req, encoding, now_ms).map(|(conn, state)| (conn, to_json(&state)))
    }

    fn connected<'a>(
        &'a mut self,
        conn: &'a str,
        state: Json,
        now_ms: i64,
    ) -> Pending<'a, JsonEffects> {
        Box::pin(async move {
            match serde_json::from_value(state) {
                Ok(state) => erase(HostCore::connected(self, conn, state, now_ms).await),
                // Only what `accept` made comes back here.
                Err(e) => vec![Effect::Log(format!(
                    "socket {conn}: state does not read back: {e}"
                ))],
            }
        })
    }

    fn message<'a>(
        &'a mut self,
        conn: &'a str,
        frame: FrameRef<'a>,
        now_ms: i64,
    ) -> Pending<'a, JsonEffects> {
        Box::pin(async move { erase(HostCore::message(self, conn, frame, now_ms).await) })
    }

    fn closed<'a>(&'a mut self, conn: &'a str, now_ms: i64) -> Pending<'a, JsonEffects> {
        Box::pin(async move { erase(HostCore::closed(self, conn, now_ms).await) })
    }

    fn request(&mut self, req: Request, now_ms: i64) -> Pending<'_, (Response, JsonEffects)> {
        Box::pin(async move {
            let (resp, effects) = HostCore::request(self, req, now_ms).await;
            (resp, erase(effects))
        })
    }

    fn alarm(&mut self, now_ms: i64) -> Pending<'_, JsonEffects> {
        Box::pin(async move { erase(HostCore::alarm(self, now_ms).await) })
    }

    fn soft_due(&mut self, now_ms: i64) -> Pending<'_, JsonEffects> {
        Box::pin(async move { erase(HostCore::soft_due(self, now_ms).await) })
    }

    fn next_soft(&self) -> Option<i64> {
        HostCore::next_soft(self)
    }

    fn io_done(&mut self, tag: u64, outcome: IoOutcome, now_ms: i64) -> Pending<'_, JsonEffects> {
        Box::pin(async move { erase(HostCore::io_done(self, tag, outcome, now_ms).await) })
    }

    fn stats(&self, now_ms: i64) -> Json {
        HostCore::stats(self, now_ms)
    }

    fn max_body_bytes(&self) -> usize {
        self.object().map(|o| o.max_body_bytes()).unwrap_or(0)
    }
}
