//! The write-behind outbox against real SQLite: order, retries,
//! out-of-order batches, deletes against late upserts, and random faults.

mod store_support;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use pylon_workers::manifest::Manifest;
use pylon_workers::policy::AuthContext;
use pylon_workers::sql::SqlValue;
use pylon_workers::storage::StorageError;
use pylon_workers::store::{
    apply_outbox_batch, limits, list_shards, OutboxBatch, OutboxChange, RusqliteExecutor, Statement,
};
use pylon_workers::value::{Row, Value};
use pylon_workers::{D1DataStore, D1Executor, DataStore};
use store_support::*;

fn change(shard: &str, id: &str, seq: i64, row: Option<Row>) -> OutboxChange {
    OutboxChange {
        shard: shard.into(),
        entity: "Todo".into(),
        id: id.into(),
        seq,
        row,
    }
}

fn batch(changes: Vec<OutboxChange>) -> OutboxBatch {
    OutboxBatch::new(Some("2026-01-01T00:00:00Z".into()), changes)
}

/// Every row of `entity` in D1, live ones with their fields, as
/// (shard, id) -> row; and tombstones separately.
fn dump(db: &RusqliteExecutor, m: &Manifest) -> BTreeMap<(String, String), Row> {
    let store = D1DataStore::new(db, m.clone());
    let mut out = BTreeMap::new();
    let mut page = ready(store.list("Todo", &[], 1000)).unwrap();
    loop {
        for (r, s) in page.rows.iter().zip(&page.shards) {
            out.insert((s.clone(), r["id"].as_str().unwrap().to_owned()), r.clone());
        }
        let Some(next) = page.next else { break };
        page = ready(store.list_after("Todo", &[], 1000, &next)).unwrap();
    }
    out
}

fn seq_of(db: &RusqliteExecutor, shard: &str, id: &str) -> (i64, i64) {
    let rows = ready(db.query(
        "SELECT _seq, _deleted FROM Todo WHERE _shard = ? AND id = ?",
        &[SqlValue::Text(shard.into()), SqlValue::Text(id.into())],
    ))
    .unwrap();
    match rows.first().map(|r| r.as_slice()) {
        Some([SqlValue::Integer(s), SqlValue::Integer(d)]) => (*s, *d),
        _ => (0, -1),
    }
}

#[test]
fn in_order_retried_and_out_of_order() {
    let m = manifest();
    let db = d1(&m);
    let v1 = todo("t1", "u1", 1);
    let v2 = todo("t1", "u1", 2);
    let b1 = batch(vec![change("s1", "t1", 1, Some(v1.clone()))]);
    let b2 = batch(vec![change("s1", "t1", 2, Some(v2.clone()))]);
    let r = ready(apply_outbox_batch(&db, &m, &b1)).unwrap();
    assert_eq!(r.rows_changed, 1);
    ready(apply_outbox_batch(&db, &m, &b2)).unwrap();
    // A retried batch changes nothing.
    let r = ready(apply_outbox_batch(&db, &m, &b2)).unwrap();
    assert_eq!(r.rows_changed, 0);
    // An older batch arriving late never moves the row back.
    ready(apply_outbox_batch(&db, &m, &b1)).unwrap();
    let rows = dump(&db, &m);
    assert_eq!(rows[&("s1".into(), "t1".into())]["title"], v2["title"]);
    assert_eq!(seq_of(&db, "s1", "t1"), (2, 0));
    let dir = ready(list_shards(&db, &m, &AuthContext::admin(), None, 10)).unwrap();
    assert_eq!((dir.shards[0].rows, dir.shards[0].last_seq), (1, 2));
    // Several changes of one row in one batch: the newest wins, whatever the order.
    ready(apply_outbox_batch(
        &db,
        &m,
        &batch(vec![
            change("s1", "t1", 5, Some(todo("t1", "u1", 5))),
            change("s1", "t1", 4, Some(todo("t1", "u1", 4))),
        ]),
    ))
    .unwrap();
    assert_eq!(
        dump(&db, &m)[&("s1".into(), "t1".into())]["title"],
        Value::from("todo 5")
    );
}

#[test]
fn deletes_against_late_upserts() {
    let m = manifest();
    let db = d1(&m);
    let up = |seq| batch(vec![change("s1", "t1", seq, Some(todo("t1", "u1", seq)))]);
    let del = |seq| batch(vec![change("s1", "t1", seq, None)]);
    ready(apply_outbox_batch(&db, &m, &up(1))).unwrap();
    ready(apply_outbox_batch(&db, &m, &del(3))).unwrap();
    // The upsert of seq 2 arrives after the delete of seq 3: it stays deleted.
    ready(apply_outbox_batch(&db, &m, &up(2))).unwrap();
    assert!(dump(&db, &m).is_empty());
    assert_eq!(seq_of(&db, "s1", "t1"), (3, 1));
    // The tombstone keeps no data.
    let title = ready(db.query("SELECT title FROM Todo WHERE id = 't1'", &[])).unwrap();
    assert_eq!(title, vec![vec![SqlValue::Null]]);
    // A delete arriving before the row was ever seen.
    ready(apply_outbox_batch(
        &db,
        &m,
        &batch(vec![change("s1", "t2", 7, None)]),
    ))
    .unwrap();
    ready(apply_outbox_batch(
        &db,
        &m,
        &batch(vec![change("s1", "t2", 6, Some(todo("t2", "u1", 6)))]),
    ))
    .unwrap();
    assert!(dump(&db, &m).is_empty());
    // A re-insert (newer seq) revives.
    ready(apply_outbox_batch(&db, &m, &up(4))).unwrap();
    assert_eq!(dump(&db, &m).len(), 1);
    let dir = ready(list_shards(&db, &m, &AuthContext::admin(), None, 10)).unwrap();
    assert_eq!((dir.shards[0].rows, dir.shards[0].last_seq), (1, 7));
}

#[test]
fn bad_changes_apply_nothing() {
    let m = manifest();
    let db = d1(&m);
    let mut bad = todo("t2", "u1", 2);
    bad.insert("done".into(), Value::Int(3));
    let b = batch(vec![
        change("s1", "t1", 1, Some(todo("t1", "u1", 1))),
        change("s1", "t2", 2, Some(bad)),
    ]);
    assert_eq!(
        ready(apply_outbox_batch(&db, &m, &b)).unwrap_err().code(),
        "TYPE_MISMATCH"
    );
    let mut unknown = change("s1", "t1", 1, None);
    unknown.entity = "Nope".into();
    assert_eq!(
        ready(apply_outbox_batch(&db, &m, &batch(vec![unknown])))
            .unwrap_err()
            .code(),
        "UNKNOWN_ENTITY"
    );
    assert!(dump(&db, &m).is_empty());
}

#[test]
fn batches_stay_within_d1_limits() {
    let m = manifest();
    let db = d1(&m);
    let changes: Vec<_> = (0..2000)
        .map(|i| {
            change(
                &format!("s{}", i % 30),
                &format!("t{i}"),
                i + 1,
                Some(todo(&format!("t{i}"), "u", i)),
            )
        })
        .collect();
    let big = batch(changes);
    assert_eq!(
        ready(apply_outbox_batch(&db, &m, &big)).unwrap_err().code(),
        "TOO_LARGE"
    );
    let parts = big.split(&m).unwrap();
    assert!(parts.len() > 1);
    assert_eq!(parts.iter().map(|p| p.changes.len()).sum::<usize>(), 2000);
    for p in &parts {
        let st = p.statements(&m).unwrap();
        assert!(st.len() <= limits::MAX_BATCH_STATEMENTS, "{}", st.len());
        assert!(st.iter().all(|s| s.params.len() <= limits::MAX_PARAMS));
        ready(apply_outbox_batch(&db, &m, p)).unwrap();
    }
    assert_eq!(dump(&db, &m).len(), 2000);
}

/// Fails some batches, before or after committing them (a lost answer: the
/// caller cannot tell, and retries).
struct FaultyExecutor<'a> {
    inner: &'a RusqliteExecutor,
    rng: RefCell<Rng>,
    failures: Cell<usize>,
}

impl D1Executor for FaultyExecutor<'_> {
    async fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<u64, StorageError> {
        self.inner.execute(sql, params).await
    }
    async fn query(
        &self,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<Vec<Vec<SqlValue>>, StorageError> {
        self.inner.query(sql, params).await
    }
    async fn batch(&self, statements: Vec<Statement>) -> Result<Vec<u64>, StorageError> {
        let roll = self.rng.borrow_mut().below(10);
        if roll < 2 {
            self.failures.set(self.failures.get() + 1);
            return Err(StorageError::new("injected: network error", "batch"));
        }
        let r = self.inner.batch(statements).await?;
        if roll < 3 {
            self.failures.set(self.failures.get() + 1);
            return Err(StorageError::new("injected: answer lost", "batch"));
        }
        Ok(r)
    }
}

#[test]
fn random_faults_converge_to_the_source_of_truth() {
    let m = manifest();
    let db = d1(&m);
    let faulty = FaultyExecutor {
        inner: &db,
        rng: RefCell::new(Rng(0x9E37_79B9_7F4A_7C15)),
        failures: Cell::new(0),
    };
    let mut rng = Rng(42);
    // The shards: their rows (the source of truth), seq counters and outboxes.
    let shards: Vec<String> = (0..20).map(|i| format!("shard-{i:02}")).collect();
    let mut truth: BTreeMap<(String, String), Row> = BTreeMap::new();
    let mut seq: BTreeMap<String, i64> = BTreeMap::new();
    let mut outboxes: BTreeMap<String, Vec<OutboxChange>> = BTreeMap::new();
    // Batches that failed: some are retried later, out of order.
    let mut pending: Vec<OutboxBatch> = Vec::new();
    for step in 0..6000 {
        let shard = shards[rng.below(shards.len())].clone();
        let id = format!("t{}", rng.below(40));
        let key = (shard.clone(), id.clone());
        let s = seq.entry(shard.clone()).or_insert(0);
        *s += 1;
        let row = if truth.contains_key(&key) && rng.below(4) == 0 {
            truth.remove(&key);
            None
        } else {
            let r = todo(&id, &format!("u{}", rng.below(5)), step);
            truth.insert(key, r.clone());
            Some(r)
        };
        outboxes
            .entry(shard.clone())
            .or_default()
            .push(change(&shard, &id, *s, row));
        // Now and then a shard's alarm drains its outbox.
        if rng.below(8) == 0 {
            let b = batch(std::mem::take(outboxes.get_mut(&shard).unwrap()));
            for part in b.split(&m).unwrap() {
                if ready(apply_outbox_batch(&faulty, &m, &part)).is_err() {
                    pending.push(part);
                }
            }
        }
        // Now and then retry a failed batch, picked at random (out of order).
        if !pending.is_empty() && rng.below(5) == 0 {
            let b = pending.swap_remove(rng.below(pending.len()));
            if ready(apply_outbox_batch(&faulty, &m, &b)).is_err() {
                pending.push(b);
            }
        }
    }
    // Final drain, retrying until everything has landed.
    for (_, changes) in std::mem::take(&mut outboxes) {
        pending.extend(batch(changes).split(&m).unwrap());
    }
    while let Some(b) = pending.pop() {
        if ready(apply_outbox_batch(&faulty, &m, &b)).is_err() {
            pending.insert(0, b);
        }
    }
    assert!(faulty.failures.get() > 100, "{}", faulty.failures.get());
    // D1 equals the source of truth: nothing lost, nothing duplicated.
    let stored = ready(D1DataStore::new(&db, m.clone()).list("Todo", &[], 1000)).unwrap();
    assert!(stored.next.is_some() || stored.rows.len() == truth.len());
    let got = dump(&db, &m);
    assert_eq!(got.len(), truth.len());
    for (k, want) in &truth {
        let have = got.get(k).unwrap_or_else(|| panic!("lost {k:?}"));
        let want = pylon_workers::manifest::decode_row(
            m.entity("Todo").unwrap(),
            pylon_workers::manifest::insert_columns(m.entity("Todo").unwrap(), want).unwrap(),
        );
        assert_eq!(have, &want, "{k:?}");
    }
    // The directory: live rows per shard and the newest seq of each.
    let dir = ready(list_shards(&db, &m, &AuthContext::admin(), None, 100)).unwrap();
    assert_eq!(dir.shards.len(), 20);
    for info in dir.shards {
        let live = truth.keys().filter(|(s, _)| *s == info.shard).count() as i64;
        assert_eq!(info.rows, live, "{}", info.shard);
        assert_eq!(info.last_seq, seq[&info.shard], "{}", info.shard);
    }
}
