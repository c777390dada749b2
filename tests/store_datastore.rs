//! Every DataStore operation on real SQLite, through `RusqliteExecutor`
//! (the D1 layout), and the same rows, queries and clashes on a shard's own
//! layout through `ShardStore`, the live shard's row layer.

mod store_support;

use pylon_workers::manifest::{insert_columns, update_columns, Manifest};
use pylon_workers::query::Query;
use pylon_workers::shard::ShardStore;
use pylon_workers::storage::SqliteConn;
use pylon_workers::store::{Aggregate, AggregateOp, AggregateRow, WriteOp};
use pylon_workers::value::{Row, Value};
use pylon_workers::{D1DataStore, DataStore};
use serde_json::json;
use store_support::*;

/// A shard's own store with the tables of `manifest()`.
fn local() -> (ShardStore<SqliteConn>, Manifest) {
    let m = manifest();
    let store = ShardStore::new(SqliteConn::open_in_memory().unwrap());
    store.ensure_schema(&m).unwrap();
    (store, m)
}

/// Inserts `row` into a shard's store; the row as stored.
fn local_insert(s: &ShardStore<SqliteConn>, m: &Manifest, entity: &str, row: &Row) -> Row {
    let e = m.entity(entity).unwrap();
    let cols = insert_columns(e, row).unwrap();
    s.insert_row(e, &cols).unwrap();
    s.get_row(e, row["id"].as_str().unwrap()).unwrap().unwrap()
}

/// The operations every store must get right.
fn crud<S: DataStore>(s: &S) {
    let t1 = todo("t1", "u1", 1);
    let stored = ready(s.insert("Todo", t1.clone())).unwrap();
    assert_eq!(stored.get("tags"), Some(&Value::Null));
    assert_eq!(ready(s.get("Todo", "t1")).unwrap(), Some(stored.clone()));
    assert_eq!(ready(s.get("Todo", "nope")).unwrap(), None);
    fn err<T: std::fmt::Debug>(r: Result<T, pylon_workers::store::StoreError>) -> &'static str {
        r.unwrap_err().code()
    }
    assert_eq!(err(ready(s.insert("Todo", t1.clone()))), "ALREADY_EXISTS");
    assert_eq!(err(ready(s.insert("Nope", t1.clone()))), "UNKNOWN_ENTITY");
    let mut bad = t1.clone();
    bad.insert("done".into(), Value::Int(1));
    assert_eq!(err(ready(s.insert("Todo", bad))), "TYPE_MISMATCH");
    let mut bad = todo("t9", "u1", 9);
    bad.insert("colour".into(), "red".into());
    assert_eq!(err(ready(s.insert("Todo", bad))), "UNKNOWN_FIELD");

    // Update: partial, returns the row after.
    let after = ready(s.update("Todo", "t1", row(json!({"done": true, "order": null})))).unwrap();
    assert_eq!(after.get("done"), Some(&Value::Bool(true)));
    assert_eq!(after.get("order"), Some(&Value::Null));
    assert_eq!(after.get("title"), t1.get("title"));
    assert_eq!(
        err(ready(s.update("Todo", "nope", row(json!({"done": true}))))),
        "NOT_FOUND"
    );
    assert_eq!(
        err(ready(s.update("Todo", "t1", row(json!({"id": "x"}))))),
        "ID_IMMUTABLE"
    );
    assert_eq!(
        err(ready(s.update("Todo", "t1", row(json!({"nope": 1}))))),
        "UNKNOWN_FIELD"
    );

    // Unique fields, on insert and update.
    let user = |id: &str, email: &str| {
        row(
            json!({"id": id, "email": email, "displayName": id, "createdAt": "2026-01-01T00:00:00Z"}),
        )
    };
    ready(s.insert("User", user("a", "a@x"))).unwrap();
    ready(s.insert("User", user("b", "b@x"))).unwrap();
    assert_eq!(
        err(ready(s.insert("User", user("c", "a@x")))),
        "UNIQUE_VIOLATION"
    );
    assert_eq!(
        err(ready(s.update("User", "b", row(json!({"email": "a@x"}))))),
        "UNIQUE_VIOLATION"
    );
    ready(s.update(
        "User",
        "b",
        row(json!({"email": "b@x", "displayName": "B"})),
    ))
    .unwrap();
    // A unique index over two fields.
    let msg = |id: &str, seq: i64| {
        row(
            json!({"id": id, "channelId": "c1", "authorId": "a", "body": "hi",
                   "sentAt": "2026-01-01T00:00:00Z", "seq": seq}),
        )
    };
    ready(s.insert("Message", msg("m1", 1))).unwrap();
    ready(s.insert("Message", msg("m2", 2))).unwrap();
    assert_eq!(
        err(ready(s.insert("Message", msg("m3", 1)))),
        "UNIQUE_VIOLATION"
    );
    assert_eq!(
        err(ready(s.update("Message", "m2", row(json!({"seq": 1}))))),
        "UNIQUE_VIOLATION"
    );
    ready(s.update("Message", "m2", row(json!({"channelId": "c2", "seq": 1})))).unwrap();

    // Lookup by unique field.
    let a = ready(s.lookup_unique("User", "email", &Value::from("a@x")))
        .unwrap()
        .unwrap();
    assert_eq!(a.get("id"), Some(&Value::from("a")));
    assert_eq!(
        ready(s.lookup_unique("User", "email", &Value::from("z@x"))).unwrap(),
        None
    );
    assert_eq!(
        err(ready(s.lookup_unique(
            "User",
            "displayName",
            &Value::from("a")
        ))),
        "BAD_QUERY"
    );
    assert_eq!(
        err(ready(s.lookup_unique("User", "nope", &Value::from("a")))),
        "UNKNOWN_FIELD"
    );

    // Delete, then the id and the unique value are free again.
    ready(s.delete("User", "a")).unwrap();
    assert_eq!(err(ready(s.delete("User", "a"))), "NOT_FOUND");
    assert_eq!(ready(s.get("User", "a")).unwrap(), None);
    assert_eq!(
        ready(s.lookup_unique("User", "email", &Value::from("a@x"))).unwrap(),
        None
    );
    ready(s.insert("User", user("c", "a@x"))).unwrap();
    ready(s.insert("User", user("a", "new@x"))).unwrap();
    assert_eq!(
        ready(s.get("User", "a")).unwrap().unwrap().get("email"),
        Some(&Value::from("new@x"))
    );

    // Transactions: all or nothing.
    let before = ready(s.list("Todo", &[], 100)).unwrap();
    let failing = vec![
        WriteOp::Insert {
            entity: "Todo".into(),
            row: todo("t2", "u1", 2),
        },
        WriteOp::Update {
            entity: "Todo".into(),
            id: "t1".into(),
            set: row(json!({"title": "changed"})),
        },
        WriteOp::Delete {
            entity: "Todo".into(),
            id: "missing".into(),
        },
    ];
    let e = ready(s.transaction(failing)).unwrap_err();
    assert_eq!(e.code(), "NOT_FOUND");
    assert!(e.to_string().contains("missing"), "{e}");
    assert_eq!(ready(s.list("Todo", &[], 100)).unwrap(), before);
    let e = ready(s.transaction(vec![
        WriteOp::Insert {
            entity: "Todo".into(),
            row: todo("t2", "u1", 2),
        },
        WriteOp::Insert {
            entity: "User".into(),
            row: user("d", "b@x"),
        },
    ]))
    .unwrap_err();
    assert_eq!(e.code(), "UNIQUE_VIOLATION");
    assert_eq!(ready(s.get("Todo", "t2")).unwrap(), None);
    ready(s.transaction(vec![
        WriteOp::Insert {
            entity: "Todo".into(),
            row: todo("t2", "u1", 2),
        },
        WriteOp::Update {
            entity: "Todo".into(),
            id: "t2".into(),
            set: row(json!({"title": "set"})),
        },
        WriteOp::Delete {
            entity: "Todo".into(),
            id: "t1".into(),
        },
    ]))
    .unwrap();
    assert_eq!(ready(s.get("Todo", "t1")).unwrap(), None);
    assert_eq!(
        ready(s.get("Todo", "t2")).unwrap().unwrap().get("title"),
        Some(&Value::from("set"))
    );
}

#[test]
fn d1_store_crud() {
    let m = manifest();
    let db = d1(&m);
    let store = D1DataStore::new(&db, m.clone());
    assert_eq!(
        ready(store.insert("Todo", todo("t1", "u1", 1)))
            .unwrap_err()
            .code(),
        "SHARD_REQUIRED"
    );
    crud(&store.shard("s1"));
    // Another shard is independent: same ids, same unique values.
    crud(&store.shard("s2"));
    // Unscoped reads span shards.
    let all = ready(store.list("Todo", &[], 100)).unwrap();
    assert_eq!(all.rows.len(), 2);
    assert_eq!(all.shards, ["s1", "s2"]);
    // The directory counts live rows.
    let dir = ready(pylon_workers::store::list_shards(
        &db,
        &m,
        &pylon_workers::policy::AuthContext::admin(),
        None,
        10,
    ))
    .unwrap();
    assert_eq!(dir.shards.len(), 2);
    assert_eq!(dir.shards[0].rows, 1 + 3 + 2); // todos, users, messages
}

/// What `crud` checks, on the shard's row layer: the engine answers
/// `ALREADY_EXISTS` and `NOT_FOUND` itself (it reads the row first), and
/// learns which fields clashed from `unique_clash` after SQLite refused a
/// write.
#[test]
fn local_store_crud() {
    let (s, m) = local();
    let todo_e = m.entity("Todo").unwrap();
    let t1 = todo("t1", "u1", 1);
    let stored = local_insert(&s, &m, "Todo", &t1);
    assert_eq!(stored.get("tags"), Some(&Value::Null));
    assert_eq!(s.get_row(todo_e, "nope").unwrap(), None);
    let again = insert_columns(todo_e, &t1).unwrap();
    assert!(s
        .insert_row(todo_e, &again)
        .unwrap_err()
        .is_unique_violation());
    // The write path's insert: no error, no insert, the row untouched.
    let other = insert_columns(todo_e, &todo("t1", "u2", 9)).unwrap();
    assert!(!s.insert_new_row(todo_e, &other).unwrap());
    assert_eq!(s.get_row(todo_e, "t1").unwrap(), Some(stored.clone()));
    assert_eq!(s.unique_clash(todo_e, "t1", &again).unwrap(), None);
    let code = |r: Row| update_columns(todo_e, &r).unwrap_err().code();
    assert_eq!(code(row(json!({"id": "x"}))), "ID_IMMUTABLE");
    assert_eq!(code(row(json!({"nope": 1}))), "UNKNOWN_FIELD");

    // Update: partial, the other columns kept.
    let set = row(json!({"done": true, "order": null}));
    let cols = update_columns(todo_e, &set).unwrap();
    s.set_columns(todo_e, "t1", &cols).unwrap();
    let after = s.get_row(todo_e, "t1").unwrap().unwrap();
    assert_eq!(after.get("done"), Some(&Value::Bool(true)));
    assert_eq!(after.get("order"), Some(&Value::Null));
    assert_eq!(after.get("title"), t1.get("title"));
    // No such row: nothing written, nothing made.
    s.set_columns(todo_e, "nope", &cols).unwrap();
    assert_eq!(s.get_row(todo_e, "nope").unwrap(), None);

    // Unique fields, on insert and update.
    let user_e = m.entity("User").unwrap();
    let user = |id: &str, email: &str| {
        row(
            json!({"id": id, "email": email, "displayName": id, "createdAt": "2026-01-01T00:00:00Z"}),
        )
    };
    let a = local_insert(&s, &m, "User", &user("a", "a@x"));
    local_insert(&s, &m, "User", &user("b", "b@x"));
    let c = insert_columns(user_e, &user("c", "a@x")).unwrap();
    assert!(s.insert_row(user_e, &c).unwrap_err().is_unique_violation());
    let email = vec!["email".to_owned()];
    assert_eq!(
        s.unique_clash(user_e, "c", &c).unwrap(),
        Some((email.clone(), a.clone()))
    );
    let to_a = update_columns(user_e, &row(json!({"email": "a@x"}))).unwrap();
    assert!(s
        .set_columns(user_e, "b", &to_a)
        .unwrap_err()
        .is_unique_violation());
    assert_eq!(
        s.unique_clash(user_e, "b", &to_a).unwrap(),
        Some((email, a.clone()))
    );
    let own = update_columns(user_e, &row(json!({"email": "b@x", "displayName": "B"}))).unwrap();
    s.set_columns(user_e, "b", &own).unwrap();
    // A unique index over two fields.
    let msg_e = m.entity("Message").unwrap();
    let msg = |id: &str, seq: i64| {
        row(
            json!({"id": id, "channelId": "c1", "authorId": "a", "body": "hi",
                   "sentAt": "2026-01-01T00:00:00Z", "seq": seq}),
        )
    };
    let m1 = local_insert(&s, &m, "Message", &msg("m1", 1));
    local_insert(&s, &m, "Message", &msg("m2", 2));
    let m3 = insert_columns(msg_e, &msg("m3", 1)).unwrap();
    assert!(s.insert_row(msg_e, &m3).unwrap_err().is_unique_violation());
    let pair = vec!["channelId".to_owned(), "seq".to_owned()];
    assert_eq!(s.unique_clash(msg_e, "m3", &m3).unwrap(), Some((pair, m1)));
    let seq1 = update_columns(msg_e, &row(json!({"seq": 1}))).unwrap();
    assert!(s
        .set_columns(msg_e, "m2", &seq1)
        .unwrap_err()
        .is_unique_violation());
    let moved = update_columns(msg_e, &row(json!({"channelId": "c2", "seq": 1}))).unwrap();
    s.set_columns(msg_e, "m2", &moved).unwrap();

    // Lookup by unique field: a query.
    let by_email = |v: &str| {
        let q = json!({"entity": "User", "where": {"email": v}});
        s.query_rows(&Query::parse(user_e, &q.into()).unwrap())
            .unwrap()
    };
    assert_eq!(by_email("a@x"), [a]);
    assert_eq!(by_email("z@x"), []);

    // Delete, then the id and the unique value are free again.
    s.delete_row(user_e, "a").unwrap();
    assert_eq!(s.get_row(user_e, "a").unwrap(), None);
    assert_eq!(by_email("a@x"), []);
    local_insert(&s, &m, "User", &user("c", "a@x"));
    local_insert(&s, &m, "User", &user("a", "new@x"));
    assert_eq!(
        s.get_row(user_e, "a").unwrap().unwrap().get("email"),
        Some(&Value::from("new@x"))
    );

    // A failed mutation is undone row by row (`restore_row`).
    let all = |s: &ShardStore<SqliteConn>| {
        let q = json!({"entity": "Todo", "order": ["id"]});
        s.query_rows(&Query::parse(todo_e, &q.into()).unwrap())
            .unwrap()
    };
    let before = all(&s);
    let t1_before = s.get_row(todo_e, "t1").unwrap();
    local_insert(&s, &m, "Todo", &todo("t2", "u1", 2));
    let title = update_columns(todo_e, &row(json!({"title": "changed"}))).unwrap();
    s.set_columns(todo_e, "t1", &title).unwrap();
    s.restore_row(todo_e, "t2", None).unwrap();
    s.restore_row(todo_e, "t1", t1_before.as_ref()).unwrap();
    assert_eq!(all(&s), before);
    assert_eq!(s.count_rows(todo_e).unwrap(), 1);
}

/// Every operator, in SQL (`run`) and in memory, on the same rows.
fn operators(run: impl Fn(&Query) -> Vec<Row>, shard_rows: &[Row]) {
    let m = manifest();
    let e = m.entity("Todo").unwrap();
    let queries = [
        json!({"done": true}),
        json!({"done": {"$eq": false}}),
        json!({"ownerId": {"$ne": "u1"}}),
        json!({"order": {"$gt": 1.0}}),
        json!({"order": {"$gte": 1}}),
        json!({"order": {"$lt": 1.5}}),
        json!({"order": {"$lte": 1.5}}),
        json!({"ownerId": {"$in": ["u1", "u3"]}}),
        json!({"ownerId": {"$in": []}}),
        json!({"ownerId": {"$nin": ["u1"]}}),
        json!({"ownerId": {"$nin": []}}),
        json!({"title": {"$like": "todo 1%"}}),
        json!({"title": {"$like": "TODO _"}}),
        json!({"order": null}),
        json!({"order": {"$ne": null}}),
        json!({"order": {"$exists": false}}),
        json!({"tags": {"$exists": true}}),
        json!({"$or": [{"done": true}, {"ownerId": "u2"}]}),
        json!({"$and": [{"done": false}, {"order": {"$gte": 2}}]}),
        json!({"$not": {"order": {"$gt": 1}}}),
        json!({"$or": []}),
        json!({"$and": []}),
        json!({"createdAt": {"$gte": "2026-01-01T00:00:30Z"}, "id": {"$lt": "t50"}}),
    ];
    let orders = [
        json!([]),
        json!(["-order", "title"]),
        json!(["done", "-createdAt"]),
    ];
    for w in &queries {
        for o in &orders {
            let text = json!({"entity": "Todo", "where": w, "order": o});
            let q = Query::parse(e, &text.clone().into()).unwrap();
            let got = run(&q);
            let mut want: Vec<&Row> = shard_rows.iter().filter(|r| q.admits(r)).collect();
            want.sort_by(|a, b| q.compare(a, b));
            let ids =
                |rows: Vec<&Row>| -> Vec<Value> { rows.iter().map(|r| r["id"].clone()).collect() };
            assert_eq!(ids(got.iter().collect()), ids(want), "{text}");
        }
    }
}

/// `n` todos inserted with `insert`, which returns the row as stored.
fn seed_with(n: i64, mut insert: impl FnMut(Row) -> Row) -> Vec<Row> {
    let mut rows = Vec::new();
    for i in 0..n {
        let mut r = todo(&format!("t{i}"), &format!("u{}", i % 4), i);
        if i % 5 == 0 {
            r.insert("order".into(), Value::Null);
        }
        if i % 6 == 0 {
            r.insert("tags".into(), Value::from(serde_json::json!(["x"])));
        }
        rows.push(insert(r));
    }
    rows
}

fn seed<S: DataStore>(s: &S, n: i64) -> Vec<Row> {
    seed_with(n, |r| ready(s.insert("Todo", r)).unwrap())
}

fn local_seed(s: &ShardStore<SqliteConn>, m: &Manifest, n: i64) -> Vec<Row> {
    seed_with(n, |r| local_insert(s, m, "Todo", &r))
}

#[test]
fn every_operator_d1_and_local() {
    let m = manifest();
    let db = d1(&m);
    let store = D1DataStore::new(&db, m);
    let rows = seed(&store.shard("s1"), 60);
    seed(&store.shard("s2"), 10); // other shards' rows must not leak in
    let s1 = store.shard("s1");
    operators(|q| ready(s1.query(q, None)).unwrap().rows, &rows);
    let (l, m) = local();
    let rows = local_seed(&l, &m, 60);
    operators(|q| l.query_rows(q).unwrap(), &rows);
}

fn paginate<S: DataStore>(s: &S, order: &[&str], limit: usize) -> Vec<(Option<String>, Value)> {
    let mut out = Vec::new();
    let mut page = ready(s.list("Todo", order, limit)).unwrap();
    loop {
        assert!(page.rows.len() <= limit);
        for (i, r) in page.rows.iter().enumerate() {
            out.push((page.shards.get(i).cloned(), r["id"].clone()));
        }
        let Some(next) = page.next else { break };
        page = ready(s.list_after("Todo", order, limit, &next)).unwrap();
    }
    out
}

#[test]
fn cursor_pagination_across_shards() {
    let m = manifest();
    let db = d1(&m);
    let store = D1DataStore::new(&db, m);
    // The same ids in 5 shards: order must stay total through the shard key.
    for s in 0..5 {
        seed(&store.shard(format!("s{s}")), 97);
    }
    for order in [
        &[][..],
        &["-order"][..],
        &["done", "-createdAt"][..],
        &["ownerId"][..],
    ] {
        let all = ready(store.list("Todo", order, 1000)).unwrap();
        assert_eq!(all.rows.len(), 485);
        let want: Vec<_> = all
            .rows
            .iter()
            .zip(&all.shards)
            .map(|(r, s)| (Some(s.clone()), r["id"].clone()))
            .collect();
        for limit in [1, 7, 50, 485] {
            assert_eq!(paginate(&store, order, limit), want, "{order:?} {limit}");
        }
        // Scoped to one shard.
        let one = paginate(&store.shard("s3"), order, 10);
        assert_eq!(one.len(), 97);
        assert!(one.iter().all(|(s, _)| s.as_deref() == Some("s3")));
    }
    let e = ready(store.list_after("Todo", &["-order"], 5, "zz")).unwrap_err();
    assert_eq!(e.code(), "BAD_CURSOR");
    let next = ready(store.list("Todo", &[], 5)).unwrap().next.unwrap();
    let e = ready(store.list_after("Todo", &["title"], 5, &next)).unwrap_err();
    assert_eq!(e.code(), "BAD_CURSOR");
}

/// Pages of a shard's own store, as the shard reads them: each after the
/// last row of the one before (`Query::page`).
fn local_paginate(s: &ShardStore<SqliteConn>, m: &Manifest, limit: usize) -> Vec<Value> {
    let q = json!({"entity": "Todo", "order": ["-order"]});
    let q = Query::parse(m.entity("Todo").unwrap(), &q.into()).unwrap();
    let mut out: Vec<Row> = Vec::new();
    loop {
        let page = s.query_rows(&q.page(out.last(), limit)).unwrap();
        assert!(page.len() <= limit);
        let done = page.len() < limit;
        out.extend(page);
        if done {
            break;
        }
    }
    out.iter().map(|r| r["id"].clone()).collect()
}

#[test]
fn local_pagination() {
    let (l, m) = local();
    local_seed(&l, &m, 53);
    let all = local_paginate(&l, &m, 1000);
    assert_eq!(all.len(), 53);
    assert_eq!(local_paginate(&l, &m, 6), all);
}

fn agg(op: AggregateOp, field: Option<&str>, group: Option<&str>) -> Aggregate {
    Aggregate {
        op,
        field: field.map(Into::into),
        group_by: group.map(Into::into),
    }
}

#[test]
fn aggregates() {
    let m = manifest();
    let e = m.entity("Todo").unwrap();
    let db = d1(&m);
    let store = D1DataStore::new(&db, m.clone());
    let rows = seed(&store.shard("s1"), 40);
    seed(&store.shard("s2"), 10);
    let s1 = store.shard("s1");
    let all = Query::parse(e, &json!({"entity": "Todo"}).into()).unwrap();
    let open = Query::parse(
        e,
        &json!({"entity": "Todo", "where": {"done": false}}).into(),
    )
    .unwrap();
    let one = |q: &Query, a: Aggregate| ready(s1.aggregate(q, &a)).unwrap();
    let value = |v: Vec<AggregateRow>| v[0].value.clone();
    assert_eq!(
        value(one(&all, agg(AggregateOp::Count, None, None))),
        Value::Int(40)
    );
    assert_eq!(
        value(ready(store.aggregate(&all, &agg(AggregateOp::Count, None, None))).unwrap()),
        Value::Int(50)
    );
    let open_rows: Vec<&Row> = rows.iter().filter(|r| open.admits(r)).collect();
    assert_eq!(
        value(one(&open, agg(AggregateOp::Count, None, None))),
        Value::Int(open_rows.len() as i64)
    );
    let orders: Vec<f64> = open_rows
        .iter()
        .filter_map(|r| r["order"].as_f64())
        .collect();
    assert_eq!(
        value(one(&open, agg(AggregateOp::Count, Some("order"), None))),
        Value::Int(orders.len() as i64)
    );
    assert_eq!(
        value(one(&open, agg(AggregateOp::Sum, Some("order"), None))),
        Value::Float(orders.iter().sum())
    );
    assert_eq!(
        value(one(&open, agg(AggregateOp::Min, Some("order"), None))),
        Value::Float(orders.iter().cloned().fold(f64::MAX, f64::min))
    );
    assert_eq!(
        value(one(&all, agg(AggregateOp::Max, Some("createdAt"), None))),
        rows.iter()
            .map(|r| r["createdAt"].as_str().unwrap().to_owned())
            .max()
            .unwrap()
            .into()
    );
    // Sum of nothing is null; count of nothing 0.
    let none = Query::parse(
        e,
        &json!({"entity": "Todo", "where": {"ownerId": "nobody"}}).into(),
    )
    .unwrap();
    assert_eq!(
        value(one(&none, agg(AggregateOp::Sum, Some("order"), None))),
        Value::Null
    );
    assert_eq!(
        value(one(&none, agg(AggregateOp::Count, None, None))),
        Value::Int(0)
    );
    // Group by.
    let groups = one(&all, agg(AggregateOp::Count, None, Some("ownerId")));
    assert_eq!(groups.len(), 4);
    assert_eq!(groups[0].group, Some(Value::from("u0")));
    assert_eq!(
        groups
            .iter()
            .map(|g| g.value.as_i64().unwrap())
            .sum::<i64>(),
        40
    );
    let by_done = one(&all, agg(AggregateOp::Max, Some("order"), Some("done")));
    assert_eq!(
        by_done
            .iter()
            .map(|g| g.group.clone().unwrap())
            .collect::<Vec<_>>(),
        [Value::Bool(false), Value::Bool(true)]
    );
    // Refusals.
    let bad = |a: Aggregate| ready(s1.aggregate(&all, &a)).unwrap_err().code();
    assert_eq!(bad(agg(AggregateOp::Sum, Some("title"), None)), "BAD_QUERY");
    assert_eq!(bad(agg(AggregateOp::Sum, None, None)), "BAD_QUERY");
    assert_eq!(bad(agg(AggregateOp::Min, Some("tags"), None)), "BAD_QUERY");
    assert_eq!(
        bad(agg(AggregateOp::Max, Some("nope"), None)),
        "UNKNOWN_FIELD"
    );
    // The same counts on a shard's own store (the shard counts matching
    // rows; it has no group by).
    let (l, m) = local();
    local_seed(&l, &m, 40);
    for g in &groups {
        let q = json!({"entity": "Todo", "where": {"ownerId": g.group.clone().unwrap()}});
        let q = Query::parse(e, &q.into()).unwrap();
        assert_eq!(
            l.count_matching(&q).unwrap() as i64,
            g.value.as_i64().unwrap()
        );
    }
}

/// A wake re-opens the store: with the same manifest and runtime tables it
/// is one read; a changed manifest still migrates.
#[test]
fn a_wake_with_an_unchanged_schema_is_one_statement_and_a_changed_one_migrates() {
    use pylon_workers::storage::SqlConn;
    let db = std::rc::Rc::new(SqliteConn::open_in_memory().unwrap());
    let m = manifest();
    ShardStore::new(db.clone()).ensure_schema(&m).unwrap();
    let before = db.meter().unwrap();
    ShardStore::new(db.clone()).ensure_schema(&m).unwrap();
    let wake = db.meter().unwrap().since(before);
    assert_eq!((wake.statements, wake.rows_written), (1, 0), "{wake:?}");

    let mut src: serde_json::Value = serde_json::from_str(m.source()).unwrap();
    src["entities"][0]["fields"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "addedLater", "type": "string", "optional": true}));
    let grown = Manifest::from_json_str(&src.to_string()).unwrap();
    let store = ShardStore::new(db.clone());
    store.ensure_schema(&grown).unwrap();
    let entity = grown.entities[0].name.clone();
    let cols = db
        .exec(
            &format!("SELECT name FROM pragma_table_info('{entity}')"),
            &[],
        )
        .unwrap();
    assert!(
        cols.iter()
            .any(|r| r[0] == pylon_workers::sql::SqlValue::Text("addedLater".into())),
        "{cols:?}"
    );
    let before = db.meter().unwrap();
    ShardStore::new(db.clone()).ensure_schema(&grown).unwrap();
    assert_eq!(db.meter().unwrap().since(before).statements, 1);
}
