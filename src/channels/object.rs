//! One channel (class `Channel`, named as the channel): publishes are
//! numbered and stored, then sent to every subscriber in the same event,
//! so a subscriber sees ids in order and a resumed one misses none that
//! are kept. Retention by count happens as each message is stored;
//! retention by age is a durable timer at the oldest message's expiry,
//! set only while messages are kept (an idle, empty channel has no alarm).
//!
//! Its routes are internal (the router reaches them for
//! `/v1/channels/{name}/…`); each checks the manifest's rule for the
//! caller the router verified:
//!
//! | request | answer |
//! |---|---|
//! | `POST publish` `{data}` | `{id, at, listed}` |
//! | `GET history?after&limit` | `{channel, lastId, messages: [{id, at, data}]}` |
//! | `GET ws?after` (upgrade) | the socket: history after `after` if given, `ready`, then live messages |
//! | `POST listed` | `{ok: true}`: the directory lists it now |

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Value as Json};

use super::frame::{ChannelFrame, Subscriber};
use super::rules::{Op, Retention};
use super::store::ChannelStore;
use super::{check_data, ChannelError, MAX_KEEP_COUNT};
use crate::api_error::ApiError;
use crate::host::{Action, Method, Object, Open, OpenError, Request, Response};
use crate::manifest::Manifest;
use crate::policy::AuthContext;
use crate::protocol::{close, Encoding, FrameRef};
use crate::shard::limiter::Refusals;
use crate::storage::SqlConn;

const SWEEP_TIMER: &str = "sweep";
/// After a sweep, the next waits at least this long: messages expiring a
/// few milliseconds apart go in one sweep (reads never see them meanwhile).
const SWEEP_GAP_MS: i64 = 1_000;
/// `GET history` returns at most this many messages per call.
const MAX_HISTORY_PAGE: i64 = 1_000;
const DEFAULT_HISTORY_PAGE: i64 = 100;

type Actions = Vec<Action<ChannelFrame, Subscriber>>;

pub struct ChannelObject<C: SqlConn> {
    name: String,
    store: ChannelStore<C>,
    manifest: Arc<Manifest>,
    /// When the sweep timer is set for; `None` when it is not set.
    sweep_at: Option<i64>,
    /// Each socket's refused frames in the current window (in memory: a
    /// wake starts every count at zero).
    refused: HashMap<String, Refusals>,
}

/// Refused frames within 10 s (the shard's refusal window) that close a
/// subscriber's socket with 4400: a client that keeps sending to a socket
/// that takes nothing is broken or hostile, and each refusal is a reply.
pub const MAX_REFUSED_FRAMES: u32 = 20;

/// An integer query parameter within `range`, or `default` when absent.
fn param(
    req: &Request,
    name: &str,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
) -> Result<i64, ChannelError> {
    match req.param(name) {
        None => Ok(default),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                ChannelError::BadRequest(format!(
                    "{name}: an integer from {} to {}, not {v:?}",
                    range.start(),
                    range.end()
                ))
            }),
    }
}

impl<C: SqlConn> ChannelObject<C> {
    /// The rule's retention after checking that `caller` may `op`.
    fn check(&self, op: Op, caller: &AuthContext) -> Result<Retention, ChannelError> {
        let rules = &self.manifest.background().channels;
        Ok(rules.check(op, &self.name, caller)?.history)
    }

    /// The rule's retention (the caller was checked when it subscribed).
    fn retention(&self) -> Result<Retention, ChannelError> {
        Ok(self
            .manifest
            .background()
            .channels
            .rule(&self.name)?
            .history)
    }

    /// The timer moved to `at` if that is earlier than where it is.
    fn arm(&mut self, at: i64) -> Actions {
        if self.sweep_at.is_some_and(|s| s <= at) {
            return Vec::new();
        }
        self.sweep_at = Some(at);
        vec![Action::SetTimer {
            name: SWEEP_TIMER.into(),
            at_ms: at,
        }]
    }

    /// A frame the socket may not send: a `BAD_REQUEST` saying why, and
    /// the [`MAX_REFUSED_FRAMES`]th within the window closes it (4400).
    fn refuse_frame(&mut self, conn: &str, why: &str, now_ms: i64) -> Actions {
        let mut out = vec![Action::To(
            conn.to_owned(),
            ChannelFrame::error("BAD_REQUEST", why),
        )];
        let refusals = self.refused.entry(conn.to_owned()).or_default();
        if refusals.count(now_ms, MAX_REFUSED_FRAMES) {
            self.refused.remove(conn);
            out.push(Action::Close {
                conn: conn.to_owned(),
                code: close::PROTOCOL,
                reason: "kept sending frames a channel socket does not take".into(),
            });
        }
        out
    }

    /// The timer for the oldest kept message, if any is kept.
    fn arm_for_oldest(&mut self, keep: Retention, now_ms: i64) -> Result<Actions, ChannelError> {
        Ok(match self.store.oldest_at()? {
            Some(at) => self.arm((at + keep.age_ms).max(now_ms + SWEEP_GAP_MS)),
            None => Vec::new(),
        })
    }

    fn publish(&mut self, req: &Request, now_ms: i64) -> Result<(Response, Actions), ChannelError> {
        let keep = self.check(Op::Publish, &req.caller)?;
        let shape = || ChannelError::BadRequest("the body is a JSON object with \"data\"".into());
        let body: Json = serde_json::from_slice(&req.body).map_err(|_| shape())?;
        let data = match body.as_object() {
            Some(o) if o.len() == 1 && o.contains_key("data") => &o["data"],
            _ => return Err(shape()),
        };
        let text = check_data(data)?;
        let id = self.store.append(now_ms, &text, keep.count)?;
        let listed = self.store.listed()?;
        let mut out = self.arm(now_ms + keep.age_ms);
        out.push(Action::All {
            except: None,
            msg: ChannelFrame::message(id, now_ms, &text),
        });
        let answer = json!({ "id": id, "at": now_ms, "listed": listed });
        Ok((Response::ok(answer), out))
    }

    fn history(&self, req: &Request, now_ms: i64) -> Result<Response, ChannelError> {
        let keep = self.check(Op::Subscribe, &req.caller)?;
        let after = param(req, "after", 0, 0..=i64::MAX)?;
        let limit = param(req, "limit", DEFAULT_HISTORY_PAGE, 1..=MAX_HISTORY_PAGE)?;
        let kept = self.store.after(after, now_ms - keep.age_ms, limit)?;
        let messages: Vec<Json> = kept
            .iter()
            .map(|m| {
                let data: Json = serde_json::from_str(&m.data).unwrap_or(Json::Null);
                json!({ "id": m.id, "at": m.at_ms, "data": data })
            })
            .collect();
        let last_id = self.store.last_id()?;
        Ok(Response::ok(
            json!({ "channel": self.name, "lastId": last_id, "messages": messages }),
        ))
    }

    fn route(&mut self, req: &Request, now_ms: i64) -> Result<(Response, Actions), ChannelError> {
        match (req.method, req.rest.as_str()) {
            (Method::Post, "publish") => self.publish(req, now_ms),
            (Method::Get, "history") => Ok((self.history(req, now_ms)?, Vec::new())),
            (Method::Post, "listed") => {
                self.store.set_listed()?;
                Ok((Response::ok(json!({ "ok": true })), Vec::new()))
            }
            (_, "publish" | "history" | "listed") => Ok((
                ApiError::method_not_allowed(format!("{:?} {}", req.method, req.rest)).into(),
                Vec::new(),
            )),
            _ => Ok((
                ApiError::not_found(format!("no channel route {:?}", req.rest)).into(),
                Vec::new(),
            )),
        }
    }

    /// A new subscriber's history after `after`, then `ready`.
    fn replay(&self, conn: &str, after: Option<i64>, now_ms: i64) -> Result<Actions, ChannelError> {
        let last_id = self.store.last_id()?;
        let mut out = Vec::new();
        let mut gap = false;
        if let Some(after) = after {
            let keep = self.retention()?;
            let kept = self
                .store
                .after(after, now_ms - keep.age_ms, MAX_KEEP_COUNT)?;
            // Something after `after` was given an id, and the first kept
            // one is not the next id: retention dropped what lay between.
            gap = last_id > after && kept.first().is_none_or(|m| m.id > after + 1);
            for m in kept {
                out.push(Action::To(
                    conn.to_owned(),
                    ChannelFrame::message(m.id, m.at_ms, &m.data),
                ));
            }
        }
        out.push(Action::To(
            conn.to_owned(),
            ChannelFrame::ready(&self.name, last_id, gap),
        ));
        Ok(out)
    }
}

fn refusal(e: ChannelError) -> Response {
    ApiError::from(e).into()
}

impl<C: SqlConn + Clone> Object<C> for ChannelObject<C> {
    type Msg = ChannelFrame;
    type Conn = Subscriber;

    async fn open(
        init: Open<'_, C>,
        _: Vec<(String, Subscriber)>,
    ) -> Result<(Self, Actions), OpenError> {
        let manifest = init.app.manifest()?;
        let store = ChannelStore::open(init.sql)?;
        let mut object = ChannelObject {
            name: init.name,
            store,
            manifest,
            sweep_at: None,
            refused: HashMap::new(),
        };
        // The stored timer may be anywhere; set it where the rows say.
        let out = match object.retention() {
            Ok(keep) => object
                .arm_for_oldest(keep, init.now_ms)
                .map_err(|e| OpenError::Other(e.to_string()))?,
            Err(_) => Vec::new(),
        };
        Ok((object, out))
    }

    fn max_body_bytes(&self) -> usize {
        // The data's limit, and room for the `{"data": …}` around it.
        super::MAX_MESSAGE_BYTES + 1024
    }

    fn accept(
        &mut self,
        req: &Request,
        encoding: Encoding,
        _: i64,
    ) -> Result<Subscriber, Response> {
        if encoding != Encoding::Json {
            let m = "channel sockets speak pylon.v1.json only";
            return Err(ApiError::bad_request("BAD_PROTOCOL", m).into());
        }
        self.check(Op::Subscribe, &req.caller).map_err(refusal)?;
        let after = match req.param("after") {
            None => None,
            Some(_) => Some(param(req, "after", 0, 0..=i64::MAX).map_err(refusal)?),
        };
        Ok(Subscriber { after })
    }

    async fn on_connect(&mut self, conn: &str, state: Subscriber, now_ms: i64) -> Actions {
        match self.replay(conn, state.after, now_ms) {
            Ok(out) => out,
            Err(e) => vec![
                Action::Log(format!("channel {}: replay: {e}", self.name)),
                Action::To(
                    conn.to_owned(),
                    ChannelFrame::error(e.code(), &e.public_message()),
                ),
                Action::Close {
                    conn: conn.to_owned(),
                    code: 1011,
                    reason: "the history could not be read".into(),
                },
            ],
        }
    }

    async fn on_message(&mut self, conn: &str, _: FrameRef<'_>, now_ms: i64) -> Actions {
        let m = "a channel socket takes no frames but the keepalive: publish over HTTP";
        self.refuse_frame(conn, m, now_ms)
    }

    /// A bad receipt is refused like any other frame (and counted).
    fn bad_receipt(&mut self, conn: &str, why: String, now_ms: i64) -> Actions {
        self.refuse_frame(conn, &why, now_ms)
    }

    async fn on_close(&mut self, conn: &str, _: i64) -> Actions {
        self.refused.remove(conn);
        Vec::new()
    }

    async fn on_request(&mut self, req: Request, now_ms: i64) -> (Response, Actions) {
        match self.route(&req, now_ms) {
            Ok(answer) => answer,
            Err(e) => {
                let what = format!("channel {}", self.name);
                crate::host::refusal(&what, e)
            }
        }
    }

    async fn on_timer(&mut self, name: &str, now_ms: i64) -> Actions {
        if name != SWEEP_TIMER {
            return Vec::new();
        }
        // The timer that fired is gone; set again only if anything is kept.
        self.sweep_at = None;
        let Ok(keep) = self.retention() else {
            return Vec::new();
        };
        let swept = self
            .store
            .drop_until(now_ms - keep.age_ms)
            .map_err(ChannelError::from)
            .and_then(|()| self.arm_for_oldest(keep, now_ms));
        match swept {
            Ok(out) => out,
            Err(e) => {
                // Tried again in a while: reads never see old messages meanwhile.
                let mut out = self.arm(now_ms + SWEEP_GAP_MS);
                out.push(Action::Log(format!("channel {}: sweeping: {e}", self.name)));
                out
            }
        }
    }

    fn stats(&self, _: i64) -> Json {
        json!({
            "kept": self.store.kept().ok(),
            "lastId": self.store.last_id().ok(),
        })
    }
}
