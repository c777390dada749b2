//! One cache object (`cache-0` … `cache-7`): its keys in SQLite, read and
//! written one request at a time, so an increment is exact however many
//! callers race. Expiry is checked on every read (an expired key is
//! absent at once); a durable timer at the earliest expiry deletes the
//! expired rows, and when nothing is left to expire no timer is set, so
//! an idle cache has no alarm.
//!
//! Its routes are internal (the router reaches them for `/v1/cache` after
//! deciding who may); `{key}` is percent-encoded:
//!
//! | request | answer |
//! |---|---|
//! | `GET key/{key}` | `{value, ttlMs}` (`ttlMs` null without a TTL), or 404 `NOT_FOUND` |
//! | `PUT key/{key}` `{value, ttlMs?}` | `{ok: true}` |
//! | `DELETE key/{key}` | `{deleted}` |
//! | `POST key/{key}/incr` `{by?}` | `{value}` |
//! | `POST command` `{cmd: [name, …]}` | `{reply}` (see [`Command`]) |

use serde_json::{json, Value as Json};

use super::limits::{check_key, check_ttl, check_value, shown};
use super::store::{CacheStore, Entry};
use super::{CacheError, Command, SetOnly};
use crate::api_error::ApiError;
use crate::host::{refusal, Action, Method, Object, Open, OpenError, Request, Response};
use crate::host::{NoConn, NoMsg};
use crate::sql::MAX_SAFE_INT;
use crate::storage::SqlConn;

const SWEEP_TIMER: &str = "sweep";
/// After a sweep, the next one waits at least this long: keys expiring a
/// few milliseconds apart are deleted together, not one alarm each (a
/// read never sees them meanwhile).
const SWEEP_GAP_MS: i64 = 1_000;
/// Rows one sweep deletes, at most (the rest in the next).
const SWEEP_AT_ONCE: usize = 1_000;

type Actions = Vec<Action<NoMsg, NoConn>>;

pub struct CacheObject<C> {
    store: CacheStore<C>,
    /// When the sweep timer is set for; `None` when it is not set.
    sweep_at: Option<i64>,
}

/// The body as JSON (an empty one is `{}`), an object of only `fields`.
fn body(req: &Request, fields: &[&str]) -> Result<Json, CacheError> {
    let shape = || {
        let names: Vec<String> = fields.iter().map(|f| format!("{f:?}")).collect();
        CacheError::BadRequest(format!(
            "the body is a JSON object with {}",
            names.join(", ")
        ))
    };
    let body = match req.body.iter().all(u8::is_ascii_whitespace) {
        true => json!({}),
        false => serde_json::from_slice(&req.body).map_err(|_| shape())?,
    };
    match body.as_object() {
        Some(o) if o.keys().all(|k| fields.contains(&k.as_str())) => Ok(body),
        _ => Err(shape()),
    }
}

/// A key from the path, percent-decoded and checked.
fn path_key(encoded: &str) -> Result<String, CacheError> {
    let key = crate::http::percent_decode_path(encoded).ok_or_else(|| {
        CacheError::BadKey("the key's percent-encoding is bad or not UTF-8".into())
    })?;
    check_key(&key)?;
    Ok(key)
}

/// A stored value as an integer: a JSON integer, or a string of one (as
/// `SET` stores it).
fn integer_of(json: &str) -> Option<i64> {
    match serde_json::from_str::<Json>(json).ok()? {
        Json::Number(n) => n.as_i64(),
        Json::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A value as a command replies with it: a string as it is, any other
/// JSON value as its JSON text.
fn as_reply(e: Option<Entry>) -> Json {
    match e {
        None => Json::Null,
        Some(e) => match serde_json::from_str::<Json>(&e.json) {
            Ok(Json::String(s)) => Json::String(s),
            _ => Json::String(e.json),
        },
    }
}

impl<C: SqlConn> CacheObject<C> {
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

    fn sweep(&mut self, now_ms: i64) -> Result<Actions, CacheError> {
        // The timer that fired is gone; set again only if anything expires.
        self.sweep_at = None;
        self.store.sweep(now_ms, SWEEP_AT_ONCE)?;
        Ok(match self.store.next_expiry()? {
            Some(at) => self.arm(at.max(now_ms + SWEEP_GAP_MS)),
            None => Vec::new(),
        })
    }

    fn incr(&mut self, key: &str, by: i64, now_ms: i64) -> Result<i64, CacheError> {
        let (current, expires_ms) = match self.store.get(key, now_ms)? {
            Some(e) => match integer_of(&e.json) {
                Some(n) => (n, e.expires_ms),
                None => {
                    return Err(CacheError::NotAnInteger(format!(
                        "the value of {} is not an integer",
                        shown(key)
                    )))
                }
            },
            None => (0, None),
        };
        let next = current
            .checked_add(by)
            .filter(|n| n.unsigned_abs() <= MAX_SAFE_INT as u64)
            .ok_or_else(|| {
                CacheError::NotAnInteger(format!(
                    "{current} + {by} leaves the integers kept exactly, ±(2^53 − 1)"
                ))
            })?;
        // The key keeps its TTL, whose timer is set already.
        self.store.put(key, &next.to_string(), expires_ms)?;
        Ok(next)
    }

    /// Runs a command: its reply and the timer it needs.
    fn run(&mut self, cmd: Command, now_ms: i64) -> Result<(Json, Actions), CacheError> {
        let none = Vec::new;
        let s = &self.store;
        Ok(match cmd {
            Command::Ping(message) => (json!(message.as_deref().unwrap_or("PONG")), none()),
            Command::Get(key) => (as_reply(s.get(&key, now_ms)?), none()),
            Command::Set {
                key,
                value,
                ttl_ms,
                only,
            } => {
                if let Some(only) = only {
                    let exists = s.get(&key, now_ms)?.is_some();
                    if exists != (only == SetOnly::Present) {
                        return Ok((Json::Null, none()));
                    }
                }
                let expires_ms = ttl_ms.map(|t| now_ms + t);
                s.put(&key, &Json::String(value).to_string(), expires_ms)?;
                let timer = expires_ms.map(|at| self.arm(at)).unwrap_or_default();
                (json!("OK"), timer)
            }
            Command::Del(keys) => {
                let mut n = 0;
                for k in &keys {
                    n += i64::from(s.delete(k, now_ms)?);
                }
                (json!(n), none())
            }
            Command::Exists(keys) => {
                let mut n = 0;
                for k in &keys {
                    n += i64::from(s.get(k, now_ms)?.is_some());
                }
                (json!(n), none())
            }
            Command::IncrBy { key, by } => (json!(self.incr(&key, by, now_ms)?), none()),
            Command::Expire { key, ttl_ms } => {
                if s.get(&key, now_ms)?.is_none() {
                    return Ok((json!(0), none()));
                }
                s.set_expiry(&key, Some(now_ms + ttl_ms))?;
                (json!(1), self.arm(now_ms + ttl_ms))
            }
            Command::Ttl { key, millis } => {
                let left = match s.get(&key, now_ms)? {
                    None => -2,
                    Some(Entry {
                        expires_ms: None, ..
                    }) => -1,
                    Some(Entry {
                        expires_ms: Some(at),
                        ..
                    }) if millis => at - now_ms,
                    // Seconds, rounded to the nearest, as Redis does.
                    Some(Entry {
                        expires_ms: Some(at),
                        ..
                    }) => (at - now_ms + 500) / 1000,
                };
                (json!(left), none())
            }
            Command::Persist(key) => match s.get(&key, now_ms)? {
                Some(Entry {
                    expires_ms: Some(_),
                    ..
                }) => {
                    s.set_expiry(&key, None)?;
                    (json!(1), none())
                }
                _ => (json!(0), none()),
            },
            Command::GetDel(key) => {
                let entry = s.get(&key, now_ms)?;
                if entry.is_some() {
                    s.delete(&key, now_ms)?;
                }
                (as_reply(entry), none())
            }
        })
    }

    fn route(&mut self, req: &Request, now_ms: i64) -> Result<(Response, Actions), CacheError> {
        let parts: Vec<&str> = req.rest.split('/').collect();
        let none = Vec::new;
        match (req.method, parts.as_slice()) {
            (Method::Post, ["command"]) => {
                let cmd = Command::parse(&body(req, &["cmd"])?)?;
                let (reply, actions) = self.run(cmd, now_ms)?;
                Ok((Response::ok(json!({ "reply": reply })), actions))
            }
            (Method::Get, ["key", k]) => {
                let key = path_key(k)?;
                match self.store.get(&key, now_ms)? {
                    Some(e) => {
                        let value: Json = serde_json::from_str(&e.json).unwrap_or(Json::Null);
                        let ttl_ms = e.expires_ms.map(|at| at - now_ms);
                        let answer = json!({ "value": value, "ttlMs": ttl_ms });
                        Ok((Response::ok(answer), none()))
                    }
                    None => Err(CacheError::NotFound(shown(&key))),
                }
            }
            (Method::Put, ["key", k]) => {
                let key = path_key(k)?;
                let b = body(req, &["value", "ttlMs"])?;
                let Some(value) = b.get("value") else {
                    return Err(CacheError::BadRequest("the body has no \"value\"".into()));
                };
                let json = check_value(value)?;
                let expires_ms = match &b["ttlMs"] {
                    Json::Null => None,
                    t => match t.as_i64() {
                        Some(ms) => Some(now_ms + check_ttl(ms)?),
                        None => {
                            let m = format!("ttlMs is an integer of milliseconds, not {t}");
                            return Err(CacheError::BadTtl(m));
                        }
                    },
                };
                self.store.put(&key, &json, expires_ms)?;
                let timer = expires_ms.map(|at| self.arm(at)).unwrap_or_default();
                Ok((Response::ok(json!({ "ok": true })), timer))
            }
            (Method::Delete, ["key", k]) => {
                let deleted = self.store.delete(&path_key(k)?, now_ms)?;
                Ok((Response::ok(json!({ "deleted": deleted })), none()))
            }
            (Method::Post, ["key", k, "incr"]) => {
                let key = path_key(k)?;
                let by = match &body(req, &["by"])?["by"] {
                    Json::Null => 1,
                    n => n
                        .as_i64()
                        .filter(|n| n.unsigned_abs() <= MAX_SAFE_INT as u64)
                        .ok_or_else(|| {
                            CacheError::BadRequest(format!(
                                "by: an integer within ±(2^53 − 1), not {n}"
                            ))
                        })?,
                };
                let value = self.incr(&key, by, now_ms)?;
                Ok((Response::ok(json!({ "value": value })), none()))
            }
            (_, ["key", ..] | ["command"]) => Ok((
                ApiError::method_not_allowed(format!("{:?} {}", req.method, req.rest)).into(),
                none(),
            )),
            _ => Ok((
                ApiError::not_found(format!("no cache route {:?}", req.rest)).into(),
                none(),
            )),
        }
    }
}

impl<C: SqlConn + Clone> Object<C> for CacheObject<C> {
    type Msg = NoMsg;
    type Conn = NoConn;

    async fn open(
        init: Open<'_, C>,
        _: Vec<(String, NoConn)>,
    ) -> Result<(Self, Actions), OpenError> {
        let store = CacheStore::open(init.sql)?;
        let next = store.next_expiry()?;
        let mut object = CacheObject {
            store,
            sweep_at: None,
        };
        // The stored timer may be anywhere; set it where the rows say.
        let out = match next {
            Some(at) => object.arm(at.max(init.now_ms)),
            None => Vec::new(),
        };
        Ok((object, out))
    }

    async fn on_request(&mut self, req: Request, now_ms: i64) -> (Response, Actions) {
        match self.route(&req, now_ms) {
            Ok(answer) => answer,
            Err(e) => {
                let what = format!("cache {}", req.object);
                refusal(&what, e)
            }
        }
    }

    async fn on_timer(&mut self, name: &str, now_ms: i64) -> Actions {
        if name != SWEEP_TIMER {
            return Vec::new();
        }
        match self.sweep(now_ms) {
            Ok(actions) => actions,
            Err(e) => {
                // Tried again in a while: reads never see expired keys meanwhile.
                let mut out = self.arm(now_ms + SWEEP_GAP_MS);
                out.push(Action::Log(format!("cache: sweeping expired keys: {e}")));
                out
            }
        }
    }

    fn stats(&self, now_ms: i64) -> Json {
        match self.store.counts(now_ms) {
            Ok((keys, expiring)) => json!({ "keys": keys, "expiringKeys": expiring }),
            Err(_) => json!({ "keys": null, "expiringKeys": null }),
        }
    }
}
