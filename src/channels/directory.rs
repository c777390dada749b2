//! The channel list (class `ChannelDirectory`, one object named
//! [`DIRECTORY_NAME`]): every channel that ever had a message, by name.
//! The router adds a channel after its first publish (the channel answers
//! `listed: false` until told it is listed, so a failed addition is tried
//! again on the next publish). A list shows a caller only the channels it
//! may subscribe to.
//!
//! | request | answer |
//! |---|---|
//! | `PUT channel/{name}` | `{added}` (false when it was listed already) |
//! | `GET list?after&limit` | `{channels: [{name, createdAt}], next}` (`next`: the `after` of the next page, or null) |

use std::sync::Arc;

use serde_json::{json, Value as Json};

use super::rules::Op;
use super::{check_name, ChannelError};
use crate::api_error::ApiError;
use crate::host::{
    refusal, Action, Method, NoConn, NoMsg, Object, Open, OpenError, Request, Response,
};
use crate::manifest::Manifest;
use crate::sql::SqlValue;
use crate::storage::SqlConn;

/// The one directory object's name.
pub const DIRECTORY_NAME: &str = "directory";
/// Rows one list call reads at most, whatever it keeps of them.
const SCAN: i64 = 1_000;
const MAX_PAGE: i64 = 1_000;
const DEFAULT_PAGE: i64 = 100;

pub struct ChannelDirectory<C> {
    sql: C,
    manifest: Arc<Manifest>,
}

type Actions = Vec<Action<NoMsg, NoConn>>;

impl<C: SqlConn> ChannelDirectory<C> {
    fn add(&self, name: &str, now_ms: i64) -> Result<bool, ChannelError> {
        check_name(name)?;
        let rows = self.sql.exec(
            "INSERT INTO channels (name, created_ms) VALUES (?1, ?2) \
             ON CONFLICT(name) DO NOTHING RETURNING name",
            &[SqlValue::Text(name.into()), SqlValue::Integer(now_ms)],
        )?;
        Ok(!rows.is_empty())
    }

    fn list(&self, req: &Request) -> Result<Json, ChannelError> {
        let after = req.param("after").unwrap_or("");
        let limit = match req.param("limit") {
            None => DEFAULT_PAGE,
            Some(v) => v
                .parse()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| {
                    ChannelError::BadRequest(format!(
                        "limit: an integer from 1 to {MAX_PAGE}, not {v:?}"
                    ))
                })?,
        };
        let rows = self.sql.exec(
            "SELECT name, created_ms FROM channels WHERE name > ?1 ORDER BY name LIMIT ?2",
            &[SqlValue::Text(after.into()), SqlValue::Integer(SCAN)],
        )?;
        let rules = &self.manifest.background().channels;
        let (mut shown, mut last) = (Vec::new(), None);
        for r in &rows {
            let (Some(SqlValue::Text(name)), Some(SqlValue::Integer(at))) = (r.first(), r.get(1))
            else {
                continue;
            };
            last = Some(name.as_str());
            if rules.check(Op::Subscribe, name, &req.caller).is_ok() {
                shown.push(json!({ "name": name, "createdAt": at }));
                if shown.len() as i64 == limit {
                    break;
                }
            }
        }
        // More may follow when the page filled up or the scan did.
        let more = shown.len() as i64 == limit || rows.len() as i64 == SCAN;
        let next = if more { last } else { None };
        Ok(json!({ "channels": shown, "next": next }))
    }
}

impl<C: SqlConn + Clone> Object<C> for ChannelDirectory<C> {
    type Msg = NoMsg;
    type Conn = NoConn;

    async fn open(
        init: Open<'_, C>,
        _: Vec<(String, NoConn)>,
    ) -> Result<(Self, Actions), OpenError> {
        init.sql.exec(
            "CREATE TABLE IF NOT EXISTS channels (name TEXT PRIMARY KEY, created_ms INTEGER NOT NULL) STRICT",
            &[],
        )?;
        let manifest = init.app.manifest()?;
        Ok((
            ChannelDirectory {
                sql: init.sql,
                manifest,
            },
            Vec::new(),
        ))
    }

    async fn on_request(&mut self, req: Request, now_ms: i64) -> (Response, Actions) {
        let answer = match (req.method, req.rest.split_once('/')) {
            (Method::Put, Some(("channel", name))) => self
                .add(name, now_ms)
                .map(|added| json!({ "added": added })),
            (Method::Get, None) if req.rest == "list" => self.list(&req),
            _ => {
                let e = ApiError::not_found(format!("no directory route {:?}", req.rest));
                return (e.into(), Vec::new());
            }
        };
        match answer {
            Ok(body) => (Response::ok(body), Vec::new()),
            Err(e) => refusal("channel directory", e),
        }
    }

    fn stats(&self, _: i64) -> Json {
        let rows = self.sql.exec("SELECT COUNT(*) FROM channels", &[]);
        let n = rows
            .ok()
            .and_then(|r| match r.first().and_then(|r| r.first()) {
                Some(SqlValue::Integer(n)) => Some(*n),
                _ => None,
            });
        json!({ "channels": n })
    }
}
