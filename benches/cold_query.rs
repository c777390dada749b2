//! Cold-path costs on native rusqlite: draining outboxes into D1, and cold
//! queries over 100,000 rows in 100 shards (p50 / p95).
//!
//! `cargo bench --bench cold_query` (release; harness = false).

use std::time::{Duration, Instant};

use pylon_workers::manifest::Manifest;
use pylon_workers::policy::AuthContext;
use pylon_workers::store::cold::cold_query;
use pylon_workers::store::{
    apply_outbox_batch, schema, OutboxBatch, OutboxChange, RusqliteExecutor,
};
use pylon_workers::value::{Row, Value};
use pylon_workers::D1Executor;
use serde_json::json;

const SHARDS: usize = 100;
const PER_SHARD: usize = 1000;
const OWNERS: usize = 1000;

fn todo(i: usize) -> Row {
    let v = json!({
        "id": format!("t{i}"), "title": format!("todo {i}"), "done": i.is_multiple_of(3),
        "createdAt": format!("2026-01-{:02}T{:02}:{:02}:{:02}Z", 1 + i % 28, (i / 3600) % 24, (i / 60) % 60, i % 60),
        "ownerId": format!("u{}", (i * 7919) % OWNERS), "order": (i % 1000) as f64 * 0.25,
    });
    match Value::from(v) {
        Value::Map(m) => m,
        _ => unreachable!(),
    }
}

fn percentiles(mut d: Vec<Duration>) -> (f64, f64) {
    d.sort();
    let ms = |x: Duration| x.as_secs_f64() * 1e3;
    (
        ms(d[d.len() / 2]),
        ms(d[(d.len() * 95 / 100).min(d.len() - 1)]),
    )
}

fn main() {
    let m = Manifest::from_json_str(include_str!("../examples/board/schema.json")).unwrap();
    let path = std::env::temp_dir().join(format!("pylon-cold-bench-{}.sqlite", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let db = RusqliteExecutor::open(&path).unwrap();
    db.execute_script("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        .unwrap();
    for sql in schema::d1_schema(&m) {
        ready(db.execute(&sql, &[])).unwrap();
    }

    // Drain: each shard's outbox of 1,000 inserts, split into D1-sized batches.
    let start = Instant::now();
    let mut batches = 0;
    for s in 0..SHARDS {
        let shard = format!("shard-{s:03}");
        let changes = (0..PER_SHARD)
            .map(|k| {
                let i = s * PER_SHARD + k;
                OutboxChange {
                    shard: shard.clone(),
                    entity: "Todo".into(),
                    id: format!("t{i}"),
                    seq: k as i64 + 1,
                    row: Some(todo(i)),
                }
            })
            .collect();
        for b in OutboxBatch::new(Some("2026-01-01T00:00:00Z".into()), changes)
            .split(&m)
            .unwrap()
        {
            ready(apply_outbox_batch(&db, &m, &b)).unwrap();
            batches += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let total = SHARDS * PER_SHARD;
    println!(
        "outbox drain: {total} rows in {batches} batches, {secs:.2} s, {:.0} rows/s",
        total as f64 / secs
    );

    // Re-applying (a retried drain) changes nothing and measures the seq-guard path.
    let start = Instant::now();
    let changes: Vec<_> = (0..PER_SHARD)
        .map(|k| OutboxChange {
            shard: "shard-000".into(),
            entity: "Todo".into(),
            id: format!("t{k}"),
            seq: k as i64 + 1,
            row: Some(todo(k)),
        })
        .collect();
    for b in OutboxBatch::new(None, changes).split(&m).unwrap() {
        ready(apply_outbox_batch(&db, &m, &b)).unwrap();
    }
    println!(
        "outbox retry (no-op) : {:.0} rows/s",
        PER_SHARD as f64 / start.elapsed().as_secs_f64()
    );

    let admin = AuthContext::admin();
    let owner = AuthContext::user("u7");
    // Shard rules: the example's (`team:{tenantId}`, `user:{userId}`, then
    // `*`) put every `shard-NNN` under `*` minus the two prefixes, a scan;
    // with `shard-{tenantId}*` a tenant "04" has the 10 shards
    // shard-040..049, a range of the primary key.
    let moderator = AuthContext::user("mod").with_roles(["moderator"]);
    let mut tenants: serde_json::Value =
        serde_json::from_str(include_str!("../examples/board/schema.json")).unwrap();
    tenants["auth"]["shards"] = json!([{"pattern": "shard-{tenantId}*"}]);
    let by_tenant = Manifest::from_value(tenants).unwrap();
    let tenant = AuthContext::user("u7")
        .with_tenant("04")
        .with_roles(["moderator"]);
    let queries: Vec<(&str, serde_json::Value, &AuthContext, usize)> = vec![
        (
            "owner's todos across shards, by createdAt (policy in SQL, index)",
            json!({"entity": "Todo", "where": {"ownerId": "u7"}, "order": ["createdAt"], "limit": 50}),
            &owner,
            200,
        ),
        (
            "caller's own todos, no where (policy is the only filter)",
            json!({"entity": "Todo", "limit": 50}),
            &owner,
            200,
        ),
        (
            "one shard, first page by id",
            json!({"entity": "Todo", "shard": "shard-042", "limit": 50}),
            &admin,
            200,
        ),
        (
            "one shard, done=false by -order",
            json!({"entity": "Todo", "shard": "shard-042", "where": {"done": false}, "order": ["-order"], "limit": 50}),
            &admin,
            100,
        ),
        (
            "all shards, done=true by -order (scan + sort)",
            json!({"entity": "Todo", "where": {"done": true}, "order": ["-order"], "limit": 50}),
            &admin,
            20,
        ),
        (
            "all shards, title LIKE, first 50 by id",
            json!({"entity": "Todo", "where": {"title": {"$like": "todo 99%"}}, "limit": 50}),
            &admin,
            20,
        ),
        (
            "count across shards",
            json!({"entity": "Todo", "aggregate": {"op": "count"}}),
            &admin,
            20,
        ),
        (
            "count group by ownerId (1,000 groups)",
            json!({"entity": "Todo", "aggregate": {"op": "count", "groupBy": "ownerId"}}),
            &admin,
            10,
        ),
        (
            "sum(order) where done, one shard",
            json!({"entity": "Todo", "shard": "shard-007", "where": {"done": true}, "aggregate": {"op": "sum", "field": "order"}}),
            &admin,
            100,
        ),
        (
            "count across shards, shard rules `*` minus team:, user: (scan)",
            json!({"entity": "Todo", "aggregate": {"op": "count"}}),
            &moderator,
            20,
        ),
        (
            "all shards, done=true by -order, shard rules `*` minus team:, user:",
            json!({"entity": "Todo", "where": {"done": true}, "order": ["-order"], "limit": 50}),
            &moderator,
            20,
        ),
    ];
    // A tenant's shards under `shard-{tenantId}*` (another manifest).
    let tenant_queries: Vec<(&str, serde_json::Value, &AuthContext, usize)> = vec![
        (
            "a tenant's 10 of 100 shards (rule shard-{tenantId}*: key range), first 50 by id",
            json!({"entity": "Todo", "limit": 50}),
            &tenant,
            200,
        ),
        (
            "a tenant's 10 of 100 shards, done=true by -order",
            json!({"entity": "Todo", "where": {"done": true}, "order": ["-order"], "limit": 50}),
            &tenant,
            100,
        ),
        (
            "a tenant's 10 of 100 shards, count",
            json!({"entity": "Todo", "aggregate": {"op": "count"}}),
            &tenant,
            100,
        ),
    ];
    println!("\ncold queries over {total} rows in {SHARDS} shards (p50 / p95, ms):");
    let runs = queries
        .iter()
        .map(|q| (&m, q))
        .chain(tenant_queries.iter().map(|q| (&by_tenant, q)));
    for (m, (name, body, auth, n)) in runs {
        let mut times = Vec::with_capacity(*n);
        for _ in 0..*n {
            let t = Instant::now();
            let r = ready(cold_query(&db, m, body, auth)).unwrap();
            std::hint::black_box(&r);
            times.push(t.elapsed());
        }
        let (p50, p95) = percentiles(times);
        println!("  {p50:8.3} / {p95:8.3}  {name}");
    }
    // Paging: up to 20 pages of 5 through an ordered cross-shard result.
    let mut times = Vec::new();
    let mut body =
        json!({"entity": "Todo", "where": {"ownerId": "u7"}, "order": ["-createdAt"], "limit": 5});
    for _ in 0..20 {
        let t = Instant::now();
        let r = serde_json::to_value(ready(cold_query(&db, &m, &body, &owner)).unwrap()).unwrap();
        times.push(t.elapsed());
        match r["next"].as_str() {
            Some(n) => body["after"] = json!(n),
            None => break,
        }
    }
    let (p50, p95) = percentiles(times);
    println!(
        "  {p50:8.3} / {p95:8.3}  next page via cursor (owner's todos, -createdAt, 5 per page)"
    );
    let _ = std::fs::remove_file(&path);
}

/// Resolves a future that must complete without waiting (the rusqlite
/// executor's never wait); a pending poll is a bug worth a panic.
fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("a rusqlite-backed future waited"),
    }
}
