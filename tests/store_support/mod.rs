//! Shared helpers of the store tests.
#![allow(dead_code)]

use pylon_workers::manifest::Manifest;
use pylon_workers::store::{schema, RusqliteExecutor};
use pylon_workers::value::{Row, Value};
use pylon_workers::D1Executor;

pub fn manifest() -> Manifest {
    Manifest::from_json_str(include_str!("../../examples/board/schema.json")).unwrap()
}

/// A fresh in-memory D1 with the schema of `m`.
pub fn d1(m: &Manifest) -> RusqliteExecutor {
    let db = RusqliteExecutor::open_in_memory().unwrap();
    for sql in schema::d1_schema(m) {
        ready(db.execute(&sql, &[])).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    db
}

pub fn row(v: serde_json::Value) -> Row {
    match Value::from(v) {
        Value::Map(m) => m,
        _ => panic!("not an object"),
    }
}

pub fn todo(id: &str, owner: &str, n: i64) -> Row {
    row(serde_json::json!({
        "id": id, "title": format!("todo {n}"), "done": n % 3 == 0,
        "createdAt": format!("2026-01-01T00:{:02}:{:02}Z", (n / 60) % 60, n % 60),
        "ownerId": owner, "order": (n % 7) as f64 * 0.5,
    }))
}

/// A small deterministic generator (xorshift).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Resolves a future that must complete without waiting: the rusqlite
/// executor's futures never wait, so a pending poll is a bug worth a panic.
/// Test support only; the library itself is async all the way.
pub fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("a rusqlite-backed future waited"),
    }
}
