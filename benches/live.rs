//! Live-query maintenance cost per write.
//!
//! `cargo bench --bench live`
//!
//! Rows live in an in-memory rusqlite database; 1,000 subscriptions have
//! their windows loaded before measuring. Each write is applied to SQLite
//! and its before/after rows are read outside the measurement; what is
//! measured is the maintenance: `SubscriptionIndex::affected_into` plus
//! `Subscription::apply` on every affected subscription. The window
//! source's own time (running SQL when a full window loses a row) is timed
//! separately and subtracted, and reported on its own line.

use std::cell::Cell;
use std::time::{Duration, Instant};

use pylon_workers::live::{Change, SubKey, Subscription, SubscriptionIndex, WindowSource};
use pylon_workers::manifest::{Entity, Field, FieldType};
use pylon_workers::query::Query;
use pylon_workers::sql::SqlValue;
use pylon_workers::value::Row;
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use serde_json::json;

#[path = "../tests/gen_support/mod.rs"]
mod gen_support;
use gen_support::{ready, Rng};

fn entity() -> Entity {
    let f = |name: &str, ty| Field {
        name: name.into(),
        ty,
        optional: false,
        unique: false,
    };
    Entity {
        name: "Todo".into(),
        fields: vec![
            f("list", FieldType::String),
            f("owner", FieldType::String),
            f("title", FieldType::String),
            f("done", FieldType::Bool),
            f("priority", FieldType::Int),
        ],
        indexes: vec![],
    }
}

fn bind(v: &SqlValue) -> rusqlite::types::Value {
    match v {
        SqlValue::Null => rusqlite::types::Value::Null,
        SqlValue::Integer(i) => rusqlite::types::Value::Integer(*i),
        SqlValue::Real(f) => rusqlite::types::Value::Real(*f),
        SqlValue::Text(t) => rusqlite::types::Value::Text(t.clone()),
    }
}

fn read(v: ValueRef) -> SqlValue {
    match v {
        ValueRef::Integer(i) => SqlValue::Integer(i),
        ValueRef::Real(f) => SqlValue::Real(f),
        ValueRef::Text(t) => SqlValue::Text(String::from_utf8_lossy(t).into_owned()),
        _ => SqlValue::Null,
    }
}

struct Store {
    conn: Connection,
    /// Time spent inside `rows_after`, and how many calls.
    spent: Cell<Duration>,
    calls: Cell<usize>,
}

impl Store {
    fn rows(&self, q: &Query) -> Vec<Row> {
        let (sql, params) = q.to_sql();
        let mut stmt = self.conn.prepare_cached(&sql).unwrap();
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params.iter().map(bind)))
            .unwrap();
        let mut out = Vec::new();
        while let Some(r) = rows.next().unwrap() {
            out.push(q.decode_row((0..q.columns.len()).map(|i| read(r.get_ref(i).unwrap()))));
        }
        out
    }
}

impl WindowSource for Store {
    type Error = ();
    async fn rows_after(&self, q: &Query, after: Option<&Row>, n: usize) -> Result<Vec<Row>, ()> {
        let t = Instant::now();
        let rows = self.rows(&q.page(after, n));
        self.spent.set(self.spent.get() + t.elapsed());
        self.calls.set(self.calls.get() + 1);
        Ok(rows)
    }
}

fn setup(rows: usize) -> Store {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE TABLE \"Todo\" (\"id\" TEXT PRIMARY KEY, \"list\" TEXT, \"owner\" TEXT, \"title\" TEXT, \"done\" INTEGER, \"priority\" INTEGER);
         CREATE INDEX todo_list ON \"Todo\" (\"list\", \"priority\", \"id\");
         CREATE INDEX todo_owner ON \"Todo\" (\"owner\", \"priority\", \"id\");",
    )
    .unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    {
        let mut ins = tx
            .prepare("INSERT INTO \"Todo\" VALUES (?, ?, ?, ?, ?, ?)")
            .unwrap();
        for i in 0..rows {
            ins.execute(rusqlite::params![
                format!("t{i:07}"),
                format!("L{}", i % 100),
                format!("u{}", i % 50),
                format!("todo {i}"),
                (i % 3 == 0) as i64,
                ((i * 7919) % 1000) as i64
            ])
            .unwrap();
        }
    }
    tx.commit().unwrap();
    Store {
        conn,
        spent: Cell::new(Duration::ZERO),
        calls: Cell::new(0),
    }
}

fn get(store: &Store, by_id: &Query, id: &str) -> Option<Row> {
    let mut q = by_id.clone();
    if let pylon_workers::query::Filter::Cmp { value, .. } = &mut q.filter {
        *value = SqlValue::Text(id.to_owned());
    }
    store.rows(&q).pop()
}

struct Sample {
    per_write: Vec<f64>,
    per_affected: Vec<f64>,
    store: Vec<f64>,
    affected: Vec<usize>,
    nonempty: usize,
    fetching_writes: usize,
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// 1,000 subscriptions (10 per list, several orders and limits) over
/// `rows` rows; `writes` random updates/inserts/deletes.
fn run(rows: usize, writes: usize, seed: u64) -> Sample {
    let e = entity();
    let store = setup(rows);
    let by_id = Query::parse(&e, &json!({"entity":"Todo","where":{"id":"?"}}).into()).unwrap();
    let mut index = SubscriptionIndex::new();
    let mut subs = Vec::new();
    for k in 0..1000u64 {
        let list = format!("L{}", k % 100);
        let json = match k / 100 % 5 {
            0 => json!({"entity":"Todo","where":{"list":list},"order":["-priority"],"limit":20}),
            1 => {
                json!({"entity":"Todo","where":{"list":list,"done":false},"order":["-priority"],"limit":20})
            }
            2 => {
                json!({"entity":"Todo","where":{"list":list},"order":["priority","title"],"limit":50})
            }
            3 => {
                json!({"entity":"Todo","where":{"list":list,"priority":{"$gte":500}},"order":["-priority"],"limit":10})
            }
            _ => json!({"entity":"Todo","where":{"list":list},"count":true}),
        };
        let q = Query::parse(&e, &json.into()).unwrap();
        let sub = ready(Subscription::load(q.clone(), &|_| true, &store)).unwrap();
        index.insert(SubKey(k), &q);
        subs.push(sub);
    }
    let mut rng = Rng(seed);
    let mut next = rows;
    let mut s = Sample {
        per_write: vec![],
        per_affected: vec![],
        store: vec![],
        affected: vec![],
        nonempty: 0,
        fetching_writes: 0,
    };
    let mut affected = Vec::new();
    let visible = |_: &Row| true;
    for _ in 0..writes {
        let op = rng.below(100);
        let id = if op < 10 {
            next += 1;
            format!("t{next:07}")
        } else {
            format!("t{:07}", rng.below(rows))
        };
        let before = get(&store, &by_id, &id);
        if op < 10 {
            store
                .conn
                .execute(
                    "INSERT INTO \"Todo\" VALUES (?, ?, 'u0', 'new', 0, ?)",
                    rusqlite::params![id, format!("L{}", rng.below(100)), rng.below(1000) as i64],
                )
                .unwrap();
        } else if op < 15 {
            store
                .conn
                .execute("DELETE FROM \"Todo\" WHERE \"id\" = ?", [&id])
                .unwrap();
        } else if op < 30 {
            store
                .conn
                .execute(
                    "UPDATE \"Todo\" SET \"done\" = 1 - \"done\" WHERE \"id\" = ?",
                    [&id],
                )
                .unwrap();
        } else {
            store
                .conn
                .execute(
                    "UPDATE \"Todo\" SET \"priority\" = ? WHERE \"id\" = ?",
                    rusqlite::params![rng.below(1000) as i64, id],
                )
                .unwrap();
        }
        let change = Change {
            entity: "Todo".into(),
            before,
            after: get(&store, &by_id, &id),
        };
        if change.before.is_none() && change.after.is_none() {
            continue;
        }
        store.spent.set(Duration::ZERO);
        let calls = store.calls.get();
        let t = Instant::now();
        index.affected_into(&change, &mut affected);
        for key in &affected {
            let diff = ready(subs[key.0 as usize].apply(&change, &visible, &store)).unwrap();
            s.nonempty += !diff.is_empty() as usize;
            std::hint::black_box(diff);
        }
        let total = t.elapsed();
        let spent = store.spent.get();
        let maintenance = (total - spent).as_secs_f64() * 1e6;
        s.per_write.push(maintenance);
        if !affected.is_empty() {
            s.per_affected.push(maintenance / affected.len() as f64);
        }
        s.store.push(spent.as_secs_f64() * 1e6);
        s.affected.push(affected.len());
        s.fetching_writes += (store.calls.get() > calls) as usize;
    }
    s
}

/// 10,000 subscriptions filtered by owner; a write whose rows match none.
fn run_no_match(writes: usize) -> Vec<f64> {
    let e = entity();
    let store = setup(10_000);
    let mut index = SubscriptionIndex::new();
    let mut subs = Vec::new();
    for k in 0..10_000u64 {
        let json = json!({"entity":"Todo","where":{"owner":format!("o{k}")},"order":["-priority"],"limit":20});
        let q = Query::parse(&e, &json.into()).unwrap();
        subs.push(ready(Subscription::load(q.clone(), &|_| true, &store)).unwrap());
        index.insert(SubKey(k), &q);
    }
    let row = |p: i64| -> Row {
        let v = serde_json::json!({"id":"t0000001","list":"L1","owner":"nobody","title":"x","done":false,"priority":p});
        match pylon_workers::value::Value::from(v) {
            pylon_workers::value::Value::Map(m) => m,
            _ => unreachable!(),
        }
    };
    let mut out = Vec::with_capacity(writes);
    let mut affected = Vec::new();
    for i in 0..writes {
        let change = Change {
            entity: "Todo".into(),
            before: Some(row(i as i64)),
            after: Some(row(i as i64 + 1)),
        };
        let t = Instant::now();
        index.affected_into(&change, &mut affected);
        for key in &affected {
            let _ = ready(subs[key.0 as usize].apply(&change, &|_| true, &store));
        }
        out.push(t.elapsed().as_secs_f64() * 1e6);
        assert!(affected.is_empty());
    }
    out
}

fn main() {
    let writes = 5000;
    println!("live-query maintenance, release build; times in microseconds");
    println!("(maintenance excludes the window source's SQL time, shown as `store`)\n");
    // Interleaved, twice, to show the noise.
    for round in 0..2 {
        for rows in [10_000, 100_000] {
            let mut s = run(rows, writes, 7 + round);
            let n_aff: f64 = s.affected.iter().sum::<usize>() as f64 / s.affected.len() as f64;
            let n_diff = s.nonempty as f64 / s.affected.len() as f64;
            println!(
                "round {round} rows {rows:>6}: per write median {:>6.2} p99 {:>7.2} | per affected sub median {:>5.2} p99 {:>6.2} | affected/write {n_aff:.1} ({n_diff:.1} with a diff) | store median {:.2} p99 {:.2}, {:.1}% of writes fetch",
                pct(&mut s.per_write, 0.5),
                pct(&mut s.per_write, 0.99),
                pct(&mut s.per_affected, 0.5),
                pct(&mut s.per_affected, 0.99),
                pct(&mut s.store, 0.5),
                pct(&mut s.store, 0.99),
                100.0 * s.fetching_writes as f64 / s.per_write.len() as f64,
            );
        }
    }
    for round in 0..2 {
        let mut v = run_no_match(100_000);
        println!(
            "round {round} write matching none of 10,000 equality subscriptions: median {:.3} p99 {:.3}",
            pct(&mut v, 0.5),
            pct(&mut v, 0.99)
        );
    }
}
