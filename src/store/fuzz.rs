//! Entry point for fuzzing the cold path's input: request bodies of
//! `POST /v1/query` (and the directory's `after`/`limit`) from several
//! callers, against an in-memory SQLite D1 holding the example schema's
//! rows in tenant, user and open shards. The cargo-fuzz target is one line:
//!
//! ```ignore
//! libfuzzer_sys::fuzz_target!(|data: &[u8]| pylon_workers::store::fuzz::fuzz_cold_query(data));
//! ```
//!
//! `tests/store_cold_fuzz_inputs.rs` runs it on generated inputs.
//!
//! The first byte picks the caller and how the rest is read: as a JSON
//! body (high bit set), or as choices that build a body from the query
//! language's own pieces (entities, fields, operators, values, cursors),
//! which reaches deep into the compiler far sooner than random JSON.
//! Panics only on a bug: a panic inside, a returned row (or listed shard)
//! the caller may not enter or read, an answer over the byte budget, or a
//! statement SQLite refused (`StoreError::Storage`).

use std::future::Future;

use serde_json::{json, Value as Json};

use crate::manifest::Manifest;
use crate::policy::AuthContext;
use crate::query::budget::json_len;
use crate::query::limits::MAX_RESULT_BYTES;
use crate::value::Row;

use super::cold::{cold_query, list_shards, ColdResult};
use super::{schema, D1DataStore, D1Executor, DataStore, RusqliteExecutor, StoreError};

const SHARDS: [&str; 7] = [
    "team:acme",
    "team:evil",
    "team:acme-2",
    "user:u1",
    "user:u2",
    "lobby",
    "room-1",
];

fn callers() -> Vec<AuthContext> {
    vec![
        AuthContext::anonymous(),
        AuthContext::user("eve").with_tenant("evil"),
        AuthContext::user("ann").with_tenant("acme"),
        AuthContext::user("u1"),
        AuthContext::admin(),
        AuthContext::user("?*").with_tenant("*"),
        AuthContext::user("u2")
            .with_tenant("[a]cme")
            .with_roles(["moderator"]),
    ]
}

/// Drives a future that never waits (the rusqlite executor's): a pending
/// poll is a bug. Fuzzing only; the library is async all the way.
fn now<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("a rusqlite-backed future waited"),
    }
}

fn row(v: Json) -> Row {
    serde_json::from_value(v).expect("a row")
}

/// The example schema's rows in every shard of [`SHARDS`].
fn database() -> (Manifest, RusqliteExecutor) {
    let m = Manifest::from_json_str(include_str!("../../examples/board/schema.json"))
        .expect("the example manifest");
    let db = RusqliteExecutor::open_in_memory().expect("an in-memory SQLite");
    for sql in schema::d1_schema(&m) {
        now(db.execute(&sql, &[])).expect("the D1 schema");
    }
    let store = D1DataStore::new(&db, m.clone());
    let at = "2026-11-23T00:00:00Z";
    for (k, s) in SHARDS.iter().enumerate() {
        let shard = store.shard(*s);
        for i in 0..4i64 {
            let n = k as i64 * 10 + i;
            let owner = ["ann", "eve", "u1", "u2"][i as usize];
            let tenant = ["acme", "evil"][i as usize % 2];
            let rows = [
                (
                    "Card",
                    json!({"id": format!("c{i}"), "title": format!("{s} {i}"),
                    "done": i % 2 == 0, "position": n as f64 / 4.0, "createdAt": at}),
                ),
                (
                    "Todo",
                    json!({"id": format!("t{i}"), "title": format!("todo {n}"),
                    "done": i % 3 == 0, "createdAt": at, "ownerId": owner, "order": i as f64,
                    "tags": ["a", n]}),
                ),
                (
                    "Message",
                    json!({"id": format!("m{i}"), "channelId": "ch1", "authorId": owner,
                    "body": format!("{s} says {i}"), "sentAt": at, "seq": n}),
                ),
                (
                    "Channel",
                    json!({"id": format!("ch{i}"), "title": "general",
                    "slug": format!("general-{i}"), "tenantId": tenant,
                    "createdAt": at}),
                ),
            ];
            for (entity, r) in rows {
                now(shard.insert(entity, row(r))).expect("a fixture row");
            }
        }
    }
    (m, db)
}

thread_local! {
    static DB: (Manifest, RusqliteExecutor) = database();
}

/// Reads choices from the input, one byte at a time (zeros once it ends).
struct Choices<'a>(&'a [u8]);

impl Choices<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn below(&mut self, n: usize) -> usize {
        self.byte() as usize % n
    }
    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
}

const ENTITIES: [&str; 6] = ["Card", "Todo", "Message", "Channel", "User", "Nope"];
const FIELDS: [&str; 12] = [
    "id", "title", "done", "position", "ownerId", "order", "tags", "authorId", "seq", "tenantId",
    "_shard", "nope",
];
const OPS: [&str; 12] = [
    "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$like", "$exists", "$regex", "$and",
];

fn value(c: &mut Choices) -> Json {
    match c.below(9) {
        0 => Json::Null,
        1 => json!(c.byte().is_multiple_of(2)),
        2 => json!(c.byte() as i64 - 128),
        3 => json!(c.byte() as f64 / 7.0),
        4 => json!(c.pick(&SHARDS)),
        5 => json!(c.pick(&["ann", "eve", "u1", "acme", "general", "%a%", "*", "[a]", ""])),
        6 => json!(format!("{} {}", c.pick(&SHARDS), c.below(5))),
        7 => json!([c.byte(), "x"]),
        _ => json!({"k": c.byte()}),
    }
}

fn condition(c: &mut Choices, depth: usize) -> Json {
    if depth < 3 && c.below(4) == 0 {
        let key = c.pick(&["$and", "$or", "$not"]);
        let parts: Vec<Json> = (0..=c.below(3)).map(|_| condition(c, depth + 1)).collect();
        return match key {
            "$not" => json!({"$not": parts[0]}),
            k => json!({ k: parts }),
        };
    }
    let field = c.pick(&FIELDS);
    match c.below(3) {
        0 => json!({ field: value(c) }),
        1 => {
            let op = c.pick(&OPS);
            let v = match op {
                "$in" | "$nin" => Json::Array((0..c.below(5)).map(|_| value(c)).collect()),
                _ => value(c),
            };
            json!({ field: { op: v } })
        }
        _ => {
            let mut m = serde_json::Map::new();
            for _ in 0..=c.below(3) {
                m.insert(c.pick(&FIELDS).to_owned(), value(c));
            }
            Json::Object(m)
        }
    }
}

/// A body built from `c`'s choices.
fn body(c: &mut Choices) -> Json {
    let mut b = serde_json::Map::new();
    b.insert("entity".into(), json!(c.pick(&ENTITIES)));
    if c.below(2) == 0 {
        b.insert("where".into(), condition(c, 0));
    }
    if c.below(3) == 0 {
        let keys: Vec<Json> = (0..=c.below(3))
            .map(|_| {
                let f = c.pick(&FIELDS);
                json!(if c.below(2) == 0 {
                    format!("-{f}")
                } else {
                    f.to_owned()
                })
            })
            .collect();
        b.insert("order".into(), Json::Array(keys));
    }
    if c.below(3) == 0 {
        b.insert("limit".into(), json!(c.pick(&[0, 1, 2, 3, 7, 1000, 1001])));
    }
    if c.below(4) == 0 {
        b.insert("shard".into(), json!(c.pick(&SHARDS)));
    }
    if c.below(8) == 0 {
        b.insert("after".into(), json!(c.pick(&["", "00", "5b5d", "zz"])));
    }
    if c.below(4) == 0 {
        let mut a = serde_json::Map::new();
        a.insert(
            "op".into(),
            json!(c.pick(&["count", "sum", "min", "max", "avg"])),
        );
        if c.below(2) == 0 {
            a.insert("field".into(), json!(c.pick(&FIELDS)));
        }
        if c.below(2) == 0 {
            a.insert("groupBy".into(), json!(c.pick(&FIELDS)));
        }
        b.insert("aggregate".into(), Json::Object(a));
    }
    Json::Object(b)
}

/// Checks one answer for `caller`; the cursor to follow, if any.
fn check(
    m: &Manifest,
    caller: &AuthContext,
    request: &Json,
    got: Result<ColdResult, StoreError>,
) -> Option<String> {
    let answer = match got {
        Err(StoreError::Storage(e)) => panic!("SQLite refused a statement for {request}: {e}"),
        Err(_) => return None,
        Ok(a) => a,
    };
    let size = json_len(&answer);
    assert!(size <= MAX_RESULT_BYTES, "{size} bytes for {request}");
    let ColdResult::Rows { rows, next } = answer else {
        return None;
    };
    let entity = request["entity"].as_str().unwrap_or_default();
    for r in &rows {
        let shard = r["_shard"].as_str().expect("every row has its shard");
        assert!(
            m.auth().admit_caller(shard, caller).is_ok(),
            "{caller:?} got a row of {shard} for {request}"
        );
        let mut plain: Row = serde_json::from_value(r.clone()).expect("a row");
        plain.remove(schema::SHARD);
        assert!(
            m.policies().can_read(entity, caller, &plain).is_allowed(),
            "{caller:?} got an unreadable row {r} for {request}"
        );
    }
    next
}

/// Runs one input (see the module docs).
pub fn fuzz_cold_query(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let callers = callers();
    let caller = &callers[(first & 0x7f) as usize % callers.len()];
    DB.with(|(m, db)| {
        let request = if first & 0x80 != 0 {
            match serde_json::from_slice::<Json>(rest) {
                Ok(v) => v,
                Err(_) => return,
            }
        } else {
            body(&mut Choices(rest))
        };
        let got = now(cold_query(db, m, &request, caller));
        if let Some(next) = check(m, caller, &request, got) {
            // The next page, through the cursor the previous one gave.
            let mut again = request.clone();
            again["after"] = json!(next);
            let got = now(cold_query(db, m, &again, caller));
            check(m, caller, &again, got);
        }
        // The directory, paged from a name taken from the input.
        let mut c = Choices(rest);
        let after = c.pick(&["", "lobby", "team:", "team:acme", "user:u1", "zz"]);
        let limit = c.pick(&[0, 1, 2, 5, 1000]);
        match now(list_shards(db, m, caller, Some(after), limit)) {
            Ok(page) => {
                for s in &page.shards {
                    assert!(
                        m.auth().admit_caller(&s.shard, caller).is_ok(),
                        "{caller:?} listed {}",
                        s.shard
                    );
                }
            }
            Err(StoreError::Storage(e)) => panic!("SQLite refused the directory query: {e}"),
            Err(_) => {}
        }
    });
}
