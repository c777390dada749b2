//! The shard's write-behind outbox on real SQLite: written in the mutation's
//! commit, exactly the committed changes, drained to a rusqlite "D1" until
//! D1 holds exactly the shard's rows.

mod store_support;

use std::collections::BTreeMap;
use std::sync::Arc;

use pylon_workers::manifest::Manifest;
use pylon_workers::policy::AuthContext;
use pylon_workers::protocol::{ErrorCode, Op};
use pylon_workers::shard::{outbox_backoff_ms, OutboxEntry, ShardConfig, ShardEngine};
use pylon_workers::storage::SqliteConn;
use pylon_workers::store::{apply_outbox_batch, cold_query, list_shards, RusqliteExecutor};
use pylon_workers::value::{Row, Value};
use serde_json::json;
use store_support::{d1, ready, row};

type Engine = ShardEngine<SqliteConn>;

fn manifest() -> Arc<Manifest> {
    Arc::new(store_support::manifest())
}

fn open(shard: &str) -> Engine {
    ShardEngine::open(
        SqliteConn::open_in_memory().unwrap(),
        manifest(),
        shard,
        ShardConfig::default(),
    )
    .unwrap()
}

fn card(id: &str, title: &str, position: f64) -> Row {
    row(
        json!({"id": id, "title": title, "done": false, "position": position,
               "createdAt": "2026-11-23T00:00:00Z"}),
    )
}

fn insert(id: &str, title: &str) -> Op {
    Op::Insert {
        entity: "Card".into(),
        row: card(id, title, 1.0),
    }
}

fn update(id: &str, title: &str) -> Op {
    Op::Update {
        entity: "Card".into(),
        id: id.into(),
        set: row(json!({"title": title})),
    }
}

fn delete(id: &str) -> Op {
    Op::Delete {
        entity: "Card".into(),
        id: id.into(),
    }
}

async fn mutate(e: &mut Engine, op: &str, ops: Vec<Op>) -> Result<u64, ErrorCode> {
    e.mutate(None, &AuthContext::anonymous(), Some(op.into()), ops, 1_000)
        .await
        .map(|(ack, _)| ack.seq)
        .map_err(|e| e.code)
}

/// (seq, entity, id, title or None for a delete) of every waiting entry.
fn outbox(e: &Engine) -> Vec<(u64, String, String, Option<String>)> {
    e.store()
        .outbox_oldest(10_000)
        .unwrap()
        .into_iter()
        .map(
            |OutboxEntry {
                 seq,
                 entity,
                 id,
                 row,
                 ..
             }| {
                let title = row.map(|r| r["title"].as_str().unwrap_or_default().to_owned());
                (seq, entity, id, title)
            },
        )
        .collect()
}

fn entry(seq: u64, id: &str, title: Option<&str>) -> (u64, String, String, Option<String>) {
    (seq, "Card".into(), id.into(), title.map(str::to_owned))
}

#[tokio::test]
async fn the_outbox_gets_exactly_the_committed_changes() {
    let mut e = open("s1");
    assert_eq!(
        mutate(&mut e, "o1", vec![insert("a", "A"), insert("b", "B")]).await,
        Ok(1)
    );
    assert_eq!(mutate(&mut e, "o2", vec![update("a", "A2")]).await, Ok(2));
    assert_eq!(mutate(&mut e, "o3", vec![delete("b")]).await, Ok(3));
    // A row written twice in one mutation: only its final state.
    assert_eq!(
        mutate(
            &mut e,
            "o4",
            vec![insert("c", "C"), update("c", "C2"), update("a", "A3")]
        )
        .await,
        Ok(4)
    );
    assert_eq!(
        mutate(&mut e, "o5", vec![insert("d", "D"), delete("d")]).await,
        Ok(5)
    );
    // Failed (undone) mutations add nothing.
    assert_eq!(
        mutate(&mut e, "o6", vec![insert("e", "E"), insert("a", "dup")]).await,
        Err(ErrorCode::AlreadyExists)
    );
    assert_eq!(
        mutate(&mut e, "o7", vec![update("e", "x")]).await,
        Err(ErrorCode::NotFound)
    );
    // A retried op id is deduplicated and adds nothing.
    assert_eq!(
        mutate(&mut e, "o2", vec![update("a", "again")]).await,
        Ok(2)
    );
    assert_eq!(
        outbox(&e),
        vec![
            entry(1, "a", Some("A")),
            entry(1, "b", Some("B")),
            entry(2, "a", Some("A2")),
            entry(3, "b", None),
            entry(4, "c", Some("C2")),
            entry(4, "a", Some("A3")),
            entry(5, "d", None),
        ]
    );
    let stats = e.outbox_stats(3_500).unwrap();
    assert_eq!(stats, json!({"depth": 7, "lag_ms": 2_500, "attempts": 0}));
}

#[test]
fn backoff_doubles_from_one_second_to_a_minute() {
    let got: Vec<i64> = (1..=9).map(outbox_backoff_ms).collect();
    assert_eq!(
        got,
        vec![1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]
    );
}

/// Live rows of `shard` in D1, by id.
fn d1_rows(db: &RusqliteExecutor, m: &Manifest, shard: &str) -> BTreeMap<String, Row> {
    let q = json!({"entity": "Card", "shard": shard, "limit": 1000});
    let r = ready(cold_query(db, m, &q, &AuthContext::anonymous())).unwrap();
    let v = serde_json::to_value(&r).unwrap();
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut r = match Value::from(r.clone()) {
                Value::Map(m) => m,
                _ => unreachable!(),
            };
            r.remove("_shard");
            (r["id"].as_str().unwrap().to_owned(), r)
        })
        .collect()
}

fn shard_rows(e: &Engine) -> BTreeMap<String, Row> {
    let v = e
        .query(
            &AuthContext::anonymous(),
            &json!({"entity": "Card", "limit": 1000}).into(),
        )
        .unwrap();
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| match Value::from(r.clone()) {
            Value::Map(m) => (m["id"].as_str().unwrap().to_owned(), m),
            _ => unreachable!(),
        })
        .collect()
}

#[tokio::test]
async fn drains_in_batches_until_d1_equals_the_shard_and_retries_are_harmless() {
    let m = manifest();
    let db = d1(&m);
    let mut e = open("s2");
    // 700 changes: more than one D1 batch holds.
    for i in 0..300 {
        mutate(
            &mut e,
            &format!("i{i}"),
            vec![insert(&format!("k{i:03}"), "t")],
        )
        .await
        .unwrap();
    }
    for i in (0..300).step_by(2) {
        mutate(
            &mut e,
            &format!("u{i}"),
            vec![update(&format!("k{i:03}"), "u")],
        )
        .await
        .unwrap();
    }
    for i in (0..300).step_by(3) {
        mutate(&mut e, &format!("d{i}"), vec![delete(&format!("k{i:03}"))])
            .await
            .unwrap();
    }
    let mut batches = 0;
    let mut previous: Option<pylon_workers::store::OutboxBatch> = None;
    while let Some((batch, through)) = e.outbox_batch(Some("2026-11-23T00:00:00Z".into())).unwrap()
    {
        assert!(batch.statements(&m).unwrap().len() <= 50);
        ready(apply_outbox_batch(&db, &m, &batch)).unwrap();
        // A drain killed before its delete applies the same batch again,
        // possibly after later ones: nothing moves backwards.
        if let Some(p) = &previous {
            ready(apply_outbox_batch(&db, &m, p)).unwrap();
        }
        ready(apply_outbox_batch(&db, &m, &batch)).unwrap();
        e.outbox_drained(through).unwrap();
        previous = Some(batch);
        batches += 1;
        assert!(batches < 100, "the drain does not end");
    }
    assert!(batches > 1, "{batches}");
    assert_eq!(e.outbox_depth().unwrap(), 0);
    assert_eq!(d1_rows(&db, &m, "s2"), shard_rows(&e));
    let dir = ready(list_shards(&db, &m, &AuthContext::admin(), None, 10)).unwrap();
    assert_eq!(dir.shards.len(), 1);
    assert_eq!(dir.shards[0].rows, 200);
    assert_eq!(dir.shards[0].last_seq, e.store().seq().unwrap() as i64);
}

#[tokio::test]
async fn a_failed_drain_is_recorded_and_cleared_by_the_next_success() {
    let m = manifest();
    let db = d1(&m);
    let mut e = open("s3");
    mutate(&mut e, "o1", vec![insert("a", "A")]).await.unwrap();
    assert_eq!(e.outbox_failed("D1 unavailable").unwrap(), 1);
    assert_eq!(e.outbox_failed("D1 unavailable").unwrap(), 2);
    let s = e.outbox_stats(1_000).unwrap();
    assert_eq!(s["attempts"], 2);
    assert_eq!(s["last_error"], "D1 unavailable");
    let (batch, through) = e.outbox_batch(None).unwrap().unwrap();
    ready(apply_outbox_batch(&db, &m, &batch)).unwrap();
    e.outbox_drained(through).unwrap();
    assert_eq!(
        e.outbox_stats(1_000).unwrap(),
        json!({"depth": 0, "lag_ms": 0, "attempts": 0})
    );
    assert!(e.outbox_batch(None).unwrap().is_none());
    assert_eq!(d1_rows(&db, &m, "s3"), shard_rows(&e));
}
