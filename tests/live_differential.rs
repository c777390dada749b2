//! Differential test of live queries against SQLite.
//!
//! A seeded PRNG builds many random live queries over an entity with every
//! field type, then runs long random sequences of inserts, updates and
//! deletes. Each write goes to a real SQLite database and, through the
//! `SubscriptionIndex`, to the subscriptions it may affect, which are
//! maintained incrementally (their `WindowSource` runs the compiled SQL on
//! the same database). After every write, every subscription's window (or
//! count) must equal the same query run from scratch on SQLite, and a client
//! copy kept up to date by applying the diffs must equal the window. A
//! second copy gets only the diff since a mark every few writes (as a
//! coalescing shard sends them), and some writes reload a window instead
//! of applying the change.
//!
//! `PYLON_DIFF_WRITES` (default 5000, about 30 s here; the test command's
//! time budget) sets the number of writes, `PYLON_DIFF_SEED` the first
//! seed: `PYLON_DIFF_WRITES=100000 cargo test --test native live_differential`
//! for a long run.

use std::cell::RefCell;

use pylon_workers::live::{Change, SubKey, Subscription, SubscriptionIndex, WindowSource};
use pylon_workers::manifest::{Entity, Field, FieldType};
use pylon_workers::query::{quote_ident, Query};
use pylon_workers::sql::{to_sql, SqlValue};
use pylon_workers::value::{Row, Value};
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use serde_json::json;

mod gen_support;
use gen_support::{ready, Rng};

fn field(name: &str, ty: FieldType) -> Field {
    Field {
        name: name.into(),
        ty,
        optional: true,
        unique: false,
    }
}

fn entity() -> Entity {
    Entity {
        name: "Item".into(),
        fields: vec![
            field("title", FieldType::String),
            field("n", FieldType::Int),
            field("score", FieldType::Float),
            field("done", FieldType::Bool),
            field("at", FieldType::Datetime),
            field("owner", FieldType::Id("User".into())),
            field("meta", FieldType::Json),
        ],
        indexes: vec![],
    }
}

/// Stands in for the manifest's DDL generator (written elsewhere): one
/// column per field with the SQLite type of `crate::sql`'s mapping.
fn create_table(conn: &Connection, e: &Entity) {
    let cols: Vec<String> = e
        .fields
        .iter()
        .map(|f| {
            let ty = match f.ty {
                FieldType::Int | FieldType::Bool => "INTEGER",
                FieldType::Float => "REAL",
                _ => "TEXT",
            };
            format!("{} {ty}", quote_ident(&f.name))
        })
        .collect();
    let sql = format!(
        "CREATE TABLE {} (\"id\" TEXT PRIMARY KEY NOT NULL, {})",
        quote_ident(&e.name),
        cols.join(", ")
    );
    conn.execute(&sql, []).unwrap();
}

fn to_rusqlite(v: &SqlValue) -> rusqlite::types::Value {
    match v {
        SqlValue::Null => rusqlite::types::Value::Null,
        SqlValue::Integer(i) => rusqlite::types::Value::Integer(*i),
        SqlValue::Real(f) => rusqlite::types::Value::Real(*f),
        SqlValue::Text(t) => rusqlite::types::Value::Text(t.clone()),
    }
}

fn from_rusqlite(v: ValueRef) -> SqlValue {
    match v {
        ValueRef::Null => SqlValue::Null,
        ValueRef::Integer(i) => SqlValue::Integer(i),
        ValueRef::Real(f) => SqlValue::Real(f),
        ValueRef::Text(t) => SqlValue::Text(String::from_utf8(t.to_vec()).unwrap()),
        ValueRef::Blob(_) => panic!("blobs are never stored"),
    }
}

/// The database, as a window source.
struct Store {
    conn: Connection,
    fetches: std::cell::Cell<usize>,
}

impl Store {
    fn rows(&self, q: &Query) -> Vec<Row> {
        let (sql, params) = q.to_sql();
        let mut stmt = self.conn.prepare_cached(&sql).unwrap();
        let params = rusqlite::params_from_iter(params.iter().map(to_rusqlite));
        let mut rows = stmt.query(params).unwrap();
        let mut out = Vec::new();
        while let Some(r) = rows.next().unwrap() {
            let values = (0..q.columns.len()).map(|i| from_rusqlite(r.get_ref(i).unwrap()));
            out.push(q.decode_row(values));
        }
        out
    }

    fn count(&self, q: &Query) -> u64 {
        let (sql, params) = q.to_sql();
        let params = rusqlite::params_from_iter(params.iter().map(to_rusqlite));
        self.conn
            .query_row(&sql, params, |r| r.get::<_, i64>(0))
            .unwrap() as u64
    }
}

impl WindowSource for Store {
    type Error = std::convert::Infallible;
    async fn rows_after(
        &self,
        q: &Query,
        after: Option<&Row>,
        n: usize,
    ) -> Result<Vec<Row>, Self::Error> {
        self.fetches.set(self.fetches.get() + 1);
        Ok(self.rows(&q.page(after, n)))
    }
}

const TITLES: &[&str] = &[
    "a", "A", "ab", "aB", "b", "B%", "_x", "", "é", "É", "ab_c", "abc%", "zz", "a\u{0}b",
];
const DATES: &[&str] = &[
    "2026-01-01T00:00:00Z",
    "2026-01-01T00:00:00.5Z",
    "2025-12-31T23:59:59Z",
    "2026-06-01T12:00:00Z",
];
const PATTERNS: &[&str] = &[
    "a%", "%b%", "_", "A_", "%", "é%", "%c", "ab_c", "%\\%", "_%_", "", "B%", "%A%B%",
];

fn literal(rng: &mut Rng, name: &str, ids: usize) -> serde_json::Value {
    match name {
        "id" => json!(format!("r{}", rng.below(ids.max(1)))),
        "title" => json!(rng.pick(TITLES)),
        "n" => json!(rng.below(7) as i64 - 3),
        "score" => {
            if rng.chance(20) {
                json!(rng.below(3) as i64 - 1) // an int literal, widened
            } else {
                json!(*rng.pick(&[-1.5, -0.0, 0.0, 0.5, 1.0, 2.5]))
            }
        }
        "done" => json!(rng.chance(50)),
        "at" => json!(rng.pick(DATES)),
        "owner" => json!(format!("u{}", rng.below(3))),
        _ => unreachable!(),
    }
}

fn random_value(rng: &mut Rng, f: &Field) -> Value {
    if rng.chance(20) {
        return Value::Null;
    }
    match f.name.as_str() {
        "meta" => Value::from(
            rng.pick(&[json!({"x": 1}), json!([1, 2]), json!("s"), json!(0)])
                .clone(),
        ),
        name => Value::from(literal(rng, name, 0)),
    }
}

const FIELDS: &[&str] = &["id", "title", "n", "score", "done", "at", "owner", "meta"];

fn leaf(rng: &mut Rng, ids: usize) -> serde_json::Value {
    let name = *rng.pick(FIELDS);
    if name == "meta" || rng.chance(8) {
        let check = match rng.below(4) {
            0 => json!(null),
            1 => json!({"$ne": null}),
            2 => json!({"$exists": true}),
            _ => json!({"$exists": false}),
        };
        return json!({ name: check });
    }
    let text = matches!(name, "id" | "title" | "at" | "owner");
    let ops: &[&str] = if text {
        &[
            "=", "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$like", "$like",
        ]
    } else {
        &[
            "=", "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin",
        ]
    };
    let op = *rng.pick(ops);
    match op {
        "=" => json!({ name: literal(rng, name, ids) }),
        "$in" | "$nin" => {
            let vals: Vec<_> = (0..rng.below(4)).map(|_| literal(rng, name, ids)).collect();
            json!({ name: { op: vals } })
        }
        "$like" => json!({ name: { "$like": rng.pick(PATTERNS) } }),
        _ => {
            if rng.chance(15) {
                // Two operators on one field: a range.
                json!({ name: { op: literal(rng, name, ids), "$lte": literal(rng, name, ids) } })
            } else {
                json!({ name: { op: literal(rng, name, ids) } })
            }
        }
    }
}

fn filter(rng: &mut Rng, depth: usize, ids: usize) -> serde_json::Value {
    if depth < 2 && rng.chance(35) {
        let kids: Vec<_> = (0..rng.below(4))
            .map(|_| filter(rng, depth + 1, ids))
            .collect();
        return match rng.below(3) {
            0 => json!({"$and": kids}),
            1 => json!({"$or": kids}),
            _ => json!({"$not": filter(rng, depth + 1, ids)}),
        };
    }
    let mut f = leaf(rng, ids);
    if rng.chance(30) {
        // Several fields in one object: an implicit AND.
        if let (Some(a), serde_json::Value::Object(b)) = (f.as_object_mut(), leaf(rng, ids)) {
            for (k, v) in b {
                a.entry(k).or_insert(v);
            }
        }
    }
    f
}

fn random_query(rng: &mut Rng, e: &Entity, ids: usize) -> serde_json::Value {
    let mut q = json!({"entity": "Item"});
    let mut w = if rng.chance(85) {
        filter(rng, 0, ids)
    } else {
        json!({})
    };
    if rng.chance(40) {
        // A top-level equality, so the index routes by value.
        let name = *rng.pick(&["owner", "done", "n", "score", "title"]);
        w.as_object_mut()
            .unwrap()
            .insert(name.into(), literal(rng, name, ids));
    }
    q["where"] = w;
    if rng.chance(10) {
        q["count"] = json!(true);
        return q;
    }
    let sortable = ["title", "n", "score", "done", "at", "owner", "id"];
    let mut order = Vec::new();
    for _ in 0..rng.below(3) {
        let f = *rng.pick(&sortable);
        if !order
            .iter()
            .any(|o: &String| o.trim_start_matches('-') == f)
            && !order.iter().any(|o| o.ends_with("id"))
        {
            order.push(if rng.chance(50) {
                format!("-{f}")
            } else {
                f.to_string()
            });
        }
    }
    q["order"] = json!(order);
    if rng.chance(80) {
        q["limit"] = json!(*rng.pick(&[1, 2, 3, 5, 8]));
    }
    if rng.chance(15) {
        let parsed = Query::parse(e, &q.clone().into()).unwrap();
        let mut row: Row = e
            .fields
            .iter()
            .map(|f| (f.name.clone(), random_value(rng, f)))
            .collect();
        row.insert(
            "id".into(),
            Value::from(format!("r{}", rng.below(ids.max(1)))),
        );
        q["after"] = json!(parsed.cursor_after(&row));
    }
    q
}

/// A subscriber's read policy.
fn visible(kind: usize, row: &Row) -> bool {
    match kind {
        0 => true,
        1 => row.get("n") != Some(&Value::Int(0)),
        _ => row.get("done") != Some(&Value::Bool(true)),
    }
}

struct Live {
    json: serde_json::Value,
    sub: Subscription,
    client: Vec<Row>,
    client_count: u64,
    /// The copy that gets `take_diff` every `flush_every` writes (at 5,
    /// the only copy: changes are absorbed, `client` is not kept).
    coalesced: Vec<Row>,
    coalesced_count: u64,
    flush_every: usize,
    policy: usize,
}

fn reference(store: &Store, q: &Query, policy: usize) -> (Vec<Row>, u64) {
    let mut all = q.clone();
    all.limit = None;
    all.count = false;
    let mut rows: Vec<Row> = store
        .rows(&all)
        .into_iter()
        .filter(|r| visible(policy, r))
        .collect();
    let n = rows.len() as u64;
    if policy == 0 && q.count {
        assert_eq!(store.count(q), n, "COUNT(*) disagrees with the rows");
    }
    if let Some(l) = q.limit {
        rows.truncate(l);
    }
    (rows, n)
}

fn by_id(e: &Entity) -> impl Fn(&Store, &str) -> Option<Row> {
    let e = e.clone();
    move |store, id| {
        let q = Query::parse(&e, &json!({"entity": "Item", "where": {"id": id}}).into()).unwrap();
        store.rows(&q).pop()
    }
}

#[derive(Default, Debug)]
struct Stats {
    applied: usize,
    diffs: usize,
    added: usize,
    removed: usize,
    changed: usize,
    counts: usize,
    fetches: usize,
}

fn run_round(seed: u64, writes: usize, subs: usize, stats: &mut Stats) {
    let mut rng = Rng::new(seed);
    let e = entity();
    let store = Store {
        conn: Connection::open_in_memory().unwrap(),
        fetches: Default::default(),
    };
    create_table(&store.conn, &e);
    let get = by_id(&e);
    let mut ids: Vec<String> = Vec::new();
    let mut next_id = 0usize;
    let target = 10 + rng.below(50);

    let mut live = Vec::new();
    let mut index = SubscriptionIndex::new();
    for k in 0..subs {
        let json = random_query(&mut rng, &e, target);
        let q =
            Query::parse(&e, &json.clone().into()).unwrap_or_else(|err| panic!("{err}: {json}"));
        let policy = rng.below(3);
        let sub = ready(Subscription::load(
            q.clone(),
            &|r| visible(policy, r),
            &store,
        ))
        .unwrap();
        index.insert(SubKey(k as u64), &q);
        let mut sub = sub;
        sub.mark();
        live.push(Live {
            json,
            client: sub.rows().to_vec(),
            client_count: sub.count(),
            coalesced: sub.rows().to_vec(),
            coalesced_count: sub.count(),
            flush_every: 1 + k % 5,
            sub,
            policy,
        });
    }

    let cells = RefCell::new(Vec::new());
    store.fetches.set(0);
    for w in 0..writes {
        let op = if ids.len() < target / 2 {
            0
        } else {
            rng.below(10)
        };
        let (id, before) = if op < 4 || ids.is_empty() {
            // Sometimes bring back a deleted id.
            let id = if next_id > 0 && rng.chance(10) {
                format!("r{}", rng.below(next_id))
            } else {
                format!("r{next_id}")
            };
            next_id += 1;
            if ids.contains(&id) {
                continue;
            }
            let mut cols = vec!["\"id\"".to_string()];
            let mut vals = vec![SqlValue::Text(id.clone())];
            for f in &e.fields {
                cols.push(quote_ident(&f.name));
                vals.push(to_sql(&f.ty, &random_value(&mut rng, f)).unwrap());
            }
            let marks = vec!["?"; cols.len()].join(", ");
            let sql = format!(
                "INSERT INTO \"Item\" ({}) VALUES ({marks})",
                cols.join(", ")
            );
            store
                .conn
                .execute(
                    &sql,
                    rusqlite::params_from_iter(vals.iter().map(to_rusqlite)),
                )
                .unwrap();
            ids.push(id.clone());
            (id, None)
        } else {
            let at = rng.below(ids.len());
            let id = ids[at].clone();
            let before = get(&store, &id);
            if op < 8 {
                let mut sets = Vec::new();
                let mut vals = Vec::new();
                for _ in 0..rng.below(4) {
                    let f = &e.fields[rng.below(e.fields.len())];
                    sets.push(format!("{} = ?", quote_ident(&f.name)));
                    vals.push(to_sql(&f.ty, &random_value(&mut rng, f)).unwrap());
                }
                if !sets.is_empty() {
                    vals.push(SqlValue::Text(id.clone()));
                    let sql = format!("UPDATE \"Item\" SET {} WHERE \"id\" = ?", sets.join(", "));
                    store
                        .conn
                        .execute(
                            &sql,
                            rusqlite::params_from_iter(vals.iter().map(to_rusqlite)),
                        )
                        .unwrap();
                }
            } else {
                store
                    .conn
                    .execute("DELETE FROM \"Item\" WHERE \"id\" = ?", [&id])
                    .unwrap();
                ids.swap_remove(at);
            }
            (id, before)
        };
        let change = Change {
            entity: "Item".into(),
            before,
            after: get(&store, &id),
        };

        let mut affected = cells.borrow_mut();
        index.affected_into(&change, &mut affected);
        for key in affected.iter() {
            let l = &mut live[key.0 as usize];
            let old = l.sub.rows().to_vec();
            let old_count = l.sub.count();
            let policy = l.policy;
            if l.flush_every == 5 {
                // Only the coalesced copy follows this one (as in a shard
                // that coalesces): no diff per change.
                // One write in 17 reloads it instead, as a flush of
                // several changes to one window does.
                if (w + key.0 as usize) % 17 == 0 {
                    ready(l.sub.absorb_reload(&|r| visible(policy, r), &store)).unwrap();
                } else {
                    ready(l.sub.absorb(&change, &|r| visible(policy, r), &store)).unwrap();
                }
                stats.applied += 1;
                continue;
            }
            let diff = if (w + key.0 as usize) % 17 == 0 {
                ready(l.sub.reload(&|r| visible(policy, r), &store)).unwrap()
            } else {
                ready(l.sub.apply(&change, &|r| visible(policy, r), &store)).unwrap()
            };
            diff.apply_to(&mut l.client);
            stats.applied += 1;
            stats.diffs += !diff.is_empty() as usize;
            stats.added += diff.added.len();
            stats.removed += diff.removed.len();
            stats.changed += diff.changed.len();
            stats.counts += diff.count.is_some() as usize;
            if let Some(c) = diff.count {
                l.client_count = c;
            }
            if old == l.sub.rows() && old_count == l.sub.count() {
                assert!(
                    diff.is_empty(),
                    "seed {seed} write {w}: a diff without a change: {diff:?}\nquery {}",
                    l.json
                );
            }
        }
        for l in &mut live {
            if (w + 1) % l.flush_every == 0 {
                let diff = l.sub.take_diff();
                diff.apply_to(&mut l.coalesced);
                if let Some(c) = diff.count {
                    l.coalesced_count = c;
                }
                l.sub.mark();
                if l.sub.query().count {
                    assert_eq!(l.coalesced_count, l.sub.count(), "seed {seed} write {w}");
                } else {
                    assert_eq!(
                        l.coalesced,
                        l.sub.rows(),
                        "seed {seed} write {w}: {}",
                        l.json
                    );
                }
            }
        }
        for l in &live {
            let (rows, n) = reference(&store, l.sub.query(), l.policy);
            let ctx = || {
                format!(
                    "seed {seed} write {w} change {change:?}\nquery {} policy {}",
                    l.json, l.policy
                )
            };
            if l.sub.query().count {
                assert_eq!(l.sub.count(), n, "count diverged: {}", ctx());
                if l.flush_every != 5 {
                    assert_eq!(l.client_count, n, "client count diverged: {}", ctx());
                }
            } else {
                assert_eq!(l.sub.rows(), rows.as_slice(), "window diverged: {}", ctx());
                if l.flush_every != 5 {
                    assert_eq!(l.client, rows, "client copy diverged: {}", ctx());
                }
            }
        }
    }
    stats.fetches += store.fetches.get();
}

/// `writes` random writes in rounds of 1,000 from `seed` on, checked
/// against SQLite after each; the run must exercise every kind of diff.
fn windows_agree(seed: u64, writes: usize) {
    let per_round = 1000;
    let rounds = writes.div_ceil(per_round);
    let mut stats = Stats::default();
    for r in 0..rounds as u64 {
        run_round(
            seed + r,
            per_round.min(writes - r as usize * per_round),
            32,
            &mut stats,
        );
    }
    eprintln!("{writes} writes from seed {seed}, no divergence: {stats:?}");
    assert!(
        stats.added > 0
            && stats.removed > 0
            && stats.changed > 0
            && stats.counts > 0
            && stats.fetches > 0,
        "seed {seed}: {stats:?}"
    );
}

/// Seeds 1 to 3, a round of 1,000 writes each, as three tests the harness
/// runs side by side. A long run: `PYLON_DIFF_WRITES=100000` (and
/// `PYLON_DIFF_SEED`) for this first one.
#[test]
fn live_windows_agree_with_sqlite() {
    let writes: usize = std::env::var("PYLON_DIFF_WRITES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000);
    let seed: u64 = std::env::var("PYLON_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    windows_agree(seed, writes);
}

#[test]
fn live_windows_agree_with_sqlite_seed_2() {
    windows_agree(2, 1_000);
}

#[test]
fn live_windows_agree_with_sqlite_seed_3() {
    windows_agree(3, 1_000);
}
