//! An app's own Durable Object kind (the example of docs/apps.md): a named
//! tally of votes, `/v1/objects/Tally/{name}`. `GET` reads it, `POST`
//! (`{"by": n}`, default 1) adds to it, and every socket open on it
//! (`…/ws`) is sent the new total. The total lives in the object's SQLite
//! storage, so it survives eviction and restarts.

use pylon_workers::api_error::ApiError;
use pylon_workers::host::{
    Action, ConnState, Method, Object, Open, OpenError, Request, Response, Wire,
};
use pylon_workers::protocol::{Encoding, Frame};
use pylon_workers::sql::SqlValue;
use pylon_workers::storage::{SqlConn, StorageError};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The most one request may add or take away.
const MAX_STEP: i64 = 1_000;

pub struct Tally<C> {
    sql: C,
    total: i64,
}

/// A socket watching the tally: only its encoding is kept.
#[derive(Clone, Serialize, Deserialize)]
pub struct Watcher(Encoding);

impl ConnState for Watcher {
    fn encoding(&self) -> Encoding {
        self.0
    }
}

/// `{"type":"total","total":N}`, a text frame in either encoding.
pub struct Total(i64);

impl Wire for Total {
    fn encode(&self, _: Encoding) -> Frame {
        Frame::Text(json!({"type": "total", "total": self.0}).to_string())
    }
}

type Actions = Vec<Action<Total, Watcher>>;

impl<C: SqlConn> Tally<C> {
    fn add(&mut self, by: i64) -> Result<i64, StorageError> {
        let rows = self.sql.exec(
            "UPDATE tally SET total = total + ?1 WHERE id = 1 RETURNING total",
            &[SqlValue::Integer(by)],
        )?;
        self.total = total_of(&rows);
        Ok(self.total)
    }
}

fn total_of(rows: &[Vec<SqlValue>]) -> i64 {
    match rows.first().and_then(|r| r.first()) {
        Some(SqlValue::Integer(n)) => *n,
        _ => 0,
    }
}

impl<C: SqlConn> Object<C> for Tally<C> {
    type Msg = Total;
    type Conn = Watcher;

    async fn open(
        init: Open<'_, C>,
        _: Vec<(String, Watcher)>,
    ) -> Result<(Self, Actions), OpenError> {
        let sql = init.sql;
        sql.exec(
            "CREATE TABLE IF NOT EXISTS tally (id INTEGER PRIMARY KEY CHECK (id = 1), total INTEGER NOT NULL)",
            &[],
        )?;
        sql.exec("INSERT OR IGNORE INTO tally (id, total) VALUES (1, 0)", &[])?;
        let total = total_of(&sql.exec("SELECT total FROM tally WHERE id = 1", &[])?);
        Ok((Tally { sql, total }, Vec::new()))
    }

    fn max_body_bytes(&self) -> usize {
        1 << 10
    }

    fn accept(&mut self, _: &Request, encoding: Encoding, _: i64) -> Result<Watcher, Response> {
        Ok(Watcher(encoding))
    }

    async fn on_connect(&mut self, conn: &str, _: Watcher, _: i64) -> Actions {
        vec![Action::To(conn.to_owned(), Total(self.total))]
    }

    async fn on_request(&mut self, req: Request, _: i64) -> (Response, Actions) {
        if !req.rest.is_empty() {
            return (
                ApiError::not_found(format!("no route {}", req.rest)).into(),
                Vec::new(),
            );
        }
        match req.method {
            Method::Get => (Response::ok(json!({"total": self.total})), Vec::new()),
            Method::Post => {
                let by = match step(&req.body) {
                    Ok(by) => by,
                    Err(e) => return (e.into(), Vec::new()),
                };
                match self.add(by) {
                    Ok(total) => (
                        Response::ok(json!({"total": total})),
                        vec![Action::All {
                            except: None,
                            msg: Total(total),
                        }],
                    ),
                    Err(e) => (
                        ApiError::internal("the tally could not be saved").into(),
                        vec![Action::Log(format!("tally: {e}"))],
                    ),
                }
            }
            _ => (
                ApiError::method_not_allowed("use GET or POST").into(),
                Vec::new(),
            ),
        }
    }

    fn stats(&self, _: i64) -> serde_json::Value {
        json!({"total": self.total})
    }
}

/// The body's `by` (1 without a body), within ±[`MAX_STEP`].
fn step(body: &[u8]) -> Result<i64, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(1);
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        by: i64,
    }
    let b: Body = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request("BAD_REQUEST", format!("expected {{\"by\": integer}}: {e}"))
    })?;
    if b.by.abs() > MAX_STEP {
        return Err(ApiError::bad_request(
            "BAD_REQUEST",
            format!("by must be within ±{MAX_STEP}"),
        ));
    }
    Ok(b.by)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pylon_workers::host::local::LocalHost;
    use pylon_workers::storage::SqliteConn;
    use std::rc::Rc;

    type Host = LocalHost<Rc<SqliteConn>, Tally<Rc<SqliteConn>>>;

    #[test]
    fn counts_tells_watchers_and_survives_eviction() {
        let mut host = Host::open_in_memory("votes").unwrap();
        let watcher = host.connect(Encoding::Json).unwrap();
        let total = |n: i64| {
            vec![Frame::Text(
                json!({"type": "total", "total": n}).to_string(),
            )]
        };
        assert_eq!(host.take_sent(&watcher), total(0));
        let r = host.request(Method::Post, "", json!({"by": 3})).unwrap();
        assert_eq!((r.status, r.body["total"].as_i64()), (200, Some(3)));
        assert_eq!(host.take_sent(&watcher), total(3));
        for bad in [
            json!({"by": 1e9}),
            json!({"by": 5000}),
            json!({"add": 1}),
            json!("x"),
        ] {
            let r = host.request(Method::Post, "", bad.clone()).unwrap();
            assert_eq!(r.status, 400, "{bad}: {}", r.body);
        }
        assert!(
            host.take_sent(&watcher).is_empty(),
            "a refused request sends nothing"
        );
        host.evict();
        let r = host.request(Method::Get, "", json!(null)).unwrap();
        assert_eq!(r.body["total"], 3, "kept across eviction");
        assert_eq!(
            host.request(Method::Get, "other", json!(null))
                .unwrap()
                .status,
            404
        );
    }
}
