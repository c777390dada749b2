//! The cold-path query API: read policies, shard filter, paging, aggregates.

mod store_support;

use pylon_workers::manifest::Manifest;
use pylon_workers::policy::AuthContext;
use pylon_workers::store::cold::{cold_query, ColdResult, ReadFilter};
use pylon_workers::store::{list_shards, read_filter, RusqliteExecutor};
use pylon_workers::D1DataStore;
use pylon_workers::DataStore;
use serde_json::{json, Value};
use store_support::*;

fn setup() -> (Manifest, RusqliteExecutor) {
    let m = manifest();
    let db = d1(&m);
    let store = D1DataStore::new(&db, m.clone());
    for s in 0..4 {
        let shard = store.shard(format!("s{s}"));
        for i in 0..30 {
            ready(shard.insert("Todo", todo(&format!("t{i}"), &format!("u{}", i % 3), i))).unwrap();
        }
    }
    (m, db)
}

fn rows(r: ColdResult) -> (Vec<Value>, Option<String>) {
    match r {
        ColdResult::Rows { rows, next } => (rows, next),
        other => panic!("{other:?}"),
    }
}

fn all_pages(
    m: &Manifest,
    db: &RusqliteExecutor,
    mut body: Value,
    auth: &AuthContext,
) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let (page, next) = rows(ready(cold_query(db, m, &body, auth)).unwrap());
        out.extend(page);
        match next {
            Some(n) => body["after"] = json!(n),
            None => return out,
        }
    }
}

#[test]
fn policies_filter_rows_in_sql() {
    let (m, db) = setup();
    let u1 = AuthContext::user("u1");
    let todo = m.entity("Todo").unwrap();
    assert!(matches!(read_filter(&m, todo, &u1), ReadFilter::Sql(_)));
    let body = json!({"entity": "Todo", "limit": 7, "order": ["-createdAt"]});
    let got = all_pages(&m, &db, body.clone(), &u1);
    assert_eq!(got.len(), 40); // 10 of u1's todos in each of 4 shards
    assert!(got
        .iter()
        .all(|r| r["ownerId"] == "u1" && r["_shard"].is_string()));
    // Pages are full when the policy compiles to SQL.
    let (first, next) = rows(ready(cold_query(&db, &m, &body, &u1)).unwrap());
    assert_eq!(first.len(), 7);
    assert!(next.is_some());
    // Anonymous callers see nothing; moderators and admins everything.
    assert!(all_pages(&m, &db, body.clone(), &AuthContext::anonymous()).is_empty());
    let moderator = AuthContext::user("x").with_roles(["moderator"]);
    assert_eq!(all_pages(&m, &db, body.clone(), &moderator).len(), 120);
    assert_eq!(
        all_pages(&m, &db, body.clone(), &AuthContext::admin()).len(),
        120
    );
    // A where clause and a shard filter.
    let one = json!({"entity": "Todo", "where": {"title": {"$like": "todo 1%"}}, "shard": "s2"});
    let got = all_pages(&m, &db, one, &u1);
    assert!(got
        .iter()
        .all(|r| r["_shard"] == "s2" && r["ownerId"] == "u1"));
    // u1 owns i % 3 == 1: of 1, 10..19 that is 1, 10, 13, 16, 19.
    assert_eq!(got.len(), 5);
}

#[test]
fn policies_checked_in_memory_when_they_do_not_compile() {
    let m = Manifest::from_value(json!({
        "entities": [{"name": "Todo", "fields": [
            {"name": "title", "type": "string"}, {"name": "done", "type": "bool"},
            {"name": "createdAt", "type": "datetime"}, {"name": "ownerId", "type": "id(Todo)"},
            {"name": "order", "type": "float", "optional": true},
            {"name": "tags", "type": "json", "optional": true}]}],
        "policies": [{"name": "self", "entity": "Todo", "allowRead": "data.ownerId == data.id"}]
    }))
    .unwrap();
    let db = d1(&m);
    let store = D1DataStore::new(&db, m.clone());
    let s = store.shard("s1");
    for i in 0..50 {
        let owner = if i % 10 == 0 {
            format!("t{i}")
        } else {
            "other".into()
        };
        ready(s.insert("Todo", todo(&format!("t{i}"), &owner, i))).unwrap();
    }
    let u = AuthContext::user("u1");
    assert_eq!(
        read_filter(&m, m.entity("Todo").unwrap(), &u),
        ReadFilter::InMemory
    );
    let body = json!({"entity": "Todo", "limit": 3});
    let (page, next) = rows(ready(cold_query(&db, &m, &body, &u)).unwrap());
    assert_eq!(page.len(), 3);
    assert!(next.is_some());
    let got = all_pages(&m, &db, body, &u);
    let ids: Vec<&str> = got.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["t0", "t10", "t20", "t30", "t40"]);
    let agg = json!({"entity": "Todo", "aggregate": {"op": "count"}});
    assert_eq!(
        ready(cold_query(&db, &m, &agg, &u)).unwrap_err().code(),
        "BAD_QUERY"
    );
}

#[test]
fn aggregates_respect_policies() {
    let (m, db) = setup();
    let u1 = AuthContext::user("u1");
    let count = |body: Value, auth: &AuthContext| {
        serde_json::to_value(ready(cold_query(&db, &m, &body, auth)).unwrap()).unwrap()
    };
    assert_eq!(
        count(json!({"entity": "Todo", "aggregate": {"op": "count"}}), &u1),
        json!({"aggregate": [{"value": 40}]})
    );
    assert_eq!(
        count(
            json!({"entity": "Todo", "aggregate": {"op": "count"}, "shard": "s0"}),
            &AuthContext::admin()
        ),
        json!({"aggregate": [{"value": 30}]})
    );
    let by_owner = count(
        json!({"entity": "Todo", "aggregate": {"op": "count", "groupBy": "ownerId"}}),
        &AuthContext::admin(),
    );
    assert_eq!(
        by_owner,
        json!({"aggregate": [
        {"group": "u0", "value": 40}, {"group": "u1", "value": 40}, {"group": "u2", "value": 40}]})
    );
    let max = count(
        json!({"entity": "Todo", "where": {"done": false}, "aggregate": {"op": "max", "field": "order", "groupBy": "done"}}),
        &u1,
    );
    assert_eq!(max["aggregate"][0]["group"], json!(false));
}

#[test]
fn request_errors() {
    let (m, db) = setup();
    let a = AuthContext::admin();
    let code = |body: Value| ready(cold_query(&db, &m, &body, &a)).unwrap_err().code();
    assert_eq!(code(json!({"entity": "Nope"})), "UNKNOWN_ENTITY");
    assert_eq!(code(json!({})), "BAD_QUERY");
    assert_eq!(code(json!({"entity": "Todo", "colour": 1})), "BAD_QUERY");
    assert_eq!(
        code(json!({"entity": "Todo", "where": {"nope": 1}})),
        "UNKNOWN_FIELD"
    );
    assert_eq!(
        code(json!({"entity": "Todo", "where": {"done": 1}})),
        "TYPE_MISMATCH"
    );
    assert_eq!(code(json!({"entity": "Todo", "after": "00"})), "BAD_CURSOR");
    assert_eq!(code(json!({"entity": "Todo", "limit": 5000})), "BAD_QUERY");
    assert_eq!(
        code(json!({"entity": "Todo", "aggregate": {"op": "avg"}})),
        "BAD_QUERY"
    );
    assert_eq!(
        code(json!({"entity": "Todo", "limit": 3, "aggregate": {"op": "count"}})),
        "BAD_QUERY"
    );
    assert_eq!(code(json!({"entity": "Todo", "shard": 3})), "BAD_QUERY");
    // Empty $in matches nothing.
    let (r, next) = rows(
        ready(cold_query(
            &db,
            &m,
            &json!({"entity": "Todo", "where": {"id": {"$in": []}}}),
            &a,
        ))
        .unwrap(),
    );
    assert!(r.is_empty() && next.is_none());
}

#[test]
fn shard_directory_pages() {
    let (m, db) = setup();
    let anyone = AuthContext::anonymous();
    let p = ready(list_shards(&db, &m, &anyone, None, 3)).unwrap();
    let names: Vec<_> = p.shards.iter().map(|s| s.shard.as_str()).collect();
    assert_eq!(names, ["s0", "s1", "s2"]);
    assert_eq!(p.shards[0].rows, 30);
    let p2 = ready(list_shards(&db, &m, &anyone, p.next.as_deref(), 3)).unwrap();
    assert_eq!(p2.shards.len(), 1);
    assert_eq!(p2.next, None);
    assert_eq!(
        serde_json::to_value(&p2).unwrap(),
        json!({"shards": [{"shard": "s3", "rows": 30, "lastSeq": 0, "lastChange": null}], "next": null})
    );
}

#[test]
fn pages_stay_within_the_byte_budget() {
    use pylon_workers::query::limits::MAX_RESULT_BYTES;
    let m = manifest();
    let db = d1(&m);
    let store = D1DataStore::new(&db, m.clone());
    let card = |id: &str, title: String| {
        row(
            json!({"id": id, "title": title, "done": false, "position": 1.0,
                   "createdAt": "2026-11-23T00:00:00Z"}),
        )
    };
    let lobby = store.shard("lobby");
    for i in 0..3 {
        let title = format!("{i}{}", "x".repeat(400 * 1024));
        ready(lobby.insert("Card", card(&format!("c{i}"), title))).unwrap();
    }
    let anyone = AuthContext::anonymous();
    let mut body = json!({"entity": "Card", "shard": "lobby"});
    let mut sizes = Vec::new();
    let mut ids = Vec::new();
    loop {
        let page = ready(cold_query(&db, &m, &body, &anyone)).unwrap();
        let bytes = serde_json::to_vec(&page).unwrap().len();
        assert!(bytes <= MAX_RESULT_BYTES, "{bytes}");
        let (rows, next) = rows(page);
        sizes.push(rows.len());
        ids.extend(rows.iter().map(|r| r["id"].as_str().unwrap().to_owned()));
        match next {
            Some(n) => body["after"] = json!(n),
            None => break,
        }
    }
    assert_eq!(
        sizes,
        [2, 1],
        "two rows of 400 KiB fit in 1 MiB, three do not"
    );
    assert_eq!(ids, ["c0", "c1", "c2"]);
    // An aggregate over the same rows, grouped by the big titles.
    let agg = json!({"entity": "Card", "aggregate": {"op": "count", "groupBy": "title"}});
    let e = ready(cold_query(&db, &m, &agg, &anyone)).unwrap_err();
    assert_eq!((e.status(), e.code()), (413, "RESULT_TOO_LARGE"));
    // One row alone over the budget: a typed error, not a page.
    let title = "y".repeat(MAX_RESULT_BYTES);
    ready(store.shard("huge").insert("Card", card("big", title))).unwrap();
    let e = ready(cold_query(
        &db,
        &m,
        &json!({"entity": "Card", "shard": "huge"}),
        &anyone,
    ))
    .unwrap_err();
    assert_eq!((e.status(), e.code()), (413, "RESULT_TOO_LARGE"));
    assert_eq!(e.to_api_error().code, "RESULT_TOO_LARGE");
}
