//! Query parsing, errors and compiled SQL shapes.

use pylon_workers::manifest::{Entity, Field, FieldType};
use pylon_workers::query::{limits, Cursor, Query};
use pylon_workers::sql::SqlValue;
use serde_json::{json, Value as Json};

fn todo() -> Entity {
    let f = |name: &str, ty| Field {
        name: name.into(),
        ty,
        optional: true,
        unique: false,
    };
    Entity {
        name: "Todo".into(),
        fields: vec![
            f("title", FieldType::String),
            f("n", FieldType::Int),
            f("score", FieldType::Float),
            f("done", FieldType::Bool),
            f("meta", FieldType::Json),
        ],
        indexes: vec![],
    }
}

fn parse(j: Json) -> Result<Query, String> {
    Query::parse(&todo(), &j.into()).map_err(|e| e.code().to_owned())
}

fn sql(j: Json) -> (String, Vec<SqlValue>) {
    let (s, p) = parse(j).unwrap().to_sql();
    (s.split(" WHERE ").nth(1).unwrap().to_owned(), p)
}

#[test]
fn errors_have_codes() {
    assert_eq!(
        parse(json!({"entity":"Todo","where":{"nope":1}})).unwrap_err(),
        "UNKNOWN_FIELD"
    );
    assert_eq!(
        parse(json!({"entity":"Todo","order":["-nope"]})).unwrap_err(),
        "UNKNOWN_FIELD"
    );
    assert_eq!(
        parse(json!({"entity":"Todo","where":{"n":1.5}})).unwrap_err(),
        "TYPE_MISMATCH"
    );
    assert_eq!(
        parse(json!({"entity":"Todo","where":{"done":{"$in":[1]}}})).unwrap_err(),
        "TYPE_MISMATCH"
    );
    assert_eq!(
        parse(json!({"entity":"Todo","where":{"n":{"$gt":null}}})).unwrap_err(),
        "BAD_QUERY"
    );
    assert_eq!(
        parse(json!({"entity":"Todo","where":{"n":{"$like":"a"}}})).unwrap_err(),
        "BAD_QUERY"
    );
    assert_eq!(
        parse(json!({"entity":"Todo","where":{"meta":{"x":1}}})).unwrap_err(),
        "BAD_QUERY"
    );
    assert_eq!(
        parse(json!({"entity":"Todo","where":{"meta":1}})).unwrap_err(),
        "BAD_QUERY"
    );
    assert_eq!(
        parse(json!({"entity":"Todo","where":{"$nor":[]}})).unwrap_err(),
        "BAD_QUERY"
    );
    assert_eq!(
        parse(json!({"entity":"Todo","limit":0})).unwrap_err(),
        "BAD_QUERY"
    );
    assert_eq!(
        parse(json!({"entity":"Todo","limit":100000})).unwrap_err(),
        "BAD_QUERY"
    );
    assert_eq!(parse(json!({"entity":"Other"})).unwrap_err(), "BAD_QUERY");
    assert_eq!(
        parse(json!({"entity":"Todo","wher":{}})).unwrap_err(),
        "BAD_QUERY"
    );
    assert_eq!(
        parse(json!({"entity":"Todo","count":true,"limit":3})).unwrap_err(),
        "BAD_QUERY"
    );
    assert_eq!(
        parse(json!({"entity":"Todo","order":["id","n"]})).unwrap_err(),
        "BAD_QUERY"
    );
    assert_eq!(
        parse(json!({"entity":"Todo","after":"zz"})).unwrap_err(),
        "BAD_CURSOR"
    );
}

#[test]
fn limits_are_enforced() {
    let big: Vec<i64> = (0..=limits::MAX_IN as i64).collect();
    assert_eq!(
        parse(json!({"entity":"Todo","where":{"n":{"$in":big}}})).unwrap_err(),
        "BAD_QUERY"
    );
    let mut deep = json!({"n": 1});
    for _ in 0..=limits::MAX_DEPTH {
        deep = json!({ "$not": deep });
    }
    assert_eq!(
        parse(json!({"entity":"Todo","where":deep})).unwrap_err(),
        "BAD_QUERY"
    );
    let many: Vec<Json> = (0..=limits::MAX_PREDICATES)
        .map(|i| json!({"n": i}))
        .collect();
    assert_eq!(
        parse(json!({"entity":"Todo","where":{"$or":many}})).unwrap_err(),
        "BAD_QUERY"
    );
    // Two full $in lists exceed the bound parameters.
    let full: Vec<i64> = (0..limits::MAX_IN as i64).collect();
    let w = json!({"n":{"$in":full.clone()},"score":{"$in":full}});
    assert_eq!(
        parse(json!({"entity":"Todo","where":w})).unwrap_err(),
        "BAD_QUERY"
    );
    assert_eq!(
        parse(json!({"entity":"Todo","order":["n","score","done","title","-meta"]})).unwrap_err(),
        "BAD_QUERY"
    );
}

#[test]
fn compiled_shapes() {
    assert_eq!(sql(json!({"entity":"Todo"})).0, r#"1 ORDER BY "id" ASC"#);
    assert_eq!(
        sql(json!({"entity":"Todo","where":{"title":null}})).0,
        r#""title" IS NULL ORDER BY "id" ASC"#
    );
    assert_eq!(
        sql(json!({"entity":"Todo","where":{"n":{"$ne":3}}})).0,
        r#""n" IS NOT ? ORDER BY "id" ASC"#
    );
    assert_eq!(
        sql(json!({"entity":"Todo","where":{"n":{"$in":[]}}})).0,
        r#"0 ORDER BY "id" ASC"#
    );
    assert_eq!(
        sql(json!({"entity":"Todo","where":{"n":{"$nin":[1,2]}}})).0,
        r#"("n" IS NULL OR "n" NOT IN (?, ?)) ORDER BY "id" ASC"#
    );
    assert_eq!(
        sql(json!({"entity":"Todo","where":{"$not":{"done":true}}})).0,
        r#"(("done" = ?) IS NOT 1) ORDER BY "id" ASC"#
    );
    let (s, p) = sql(json!({"entity":"Todo","where":{"score":1}}));
    assert_eq!(s, r#""score" = ? ORDER BY "id" ASC"#);
    assert_eq!(p, vec![SqlValue::Real(1.0)]);
    let count = parse(json!({"entity":"Todo","where":{"done":false},"count":true}))
        .unwrap()
        .to_sql()
        .0;
    assert_eq!(count, r#"SELECT COUNT(*) FROM "Todo" WHERE "done" = ?"#);
}

#[test]
fn cursors_round_trip_and_compile() {
    let q = parse(json!({"entity":"Todo","order":["-score","title"],"limit":2})).unwrap();
    let row = json!({"id":"x","score":0.1,"title":null});
    let row = match pylon_workers::value::Value::from(row) {
        pylon_workers::value::Value::Map(m) => m,
        _ => unreachable!(),
    };
    let text = q.cursor_after(&row);
    assert_eq!(
        Cursor::decode(&text, &q.order).unwrap().keys[0],
        SqlValue::Real(0.1)
    );
    let q2 =
        parse(json!({"entity":"Todo","order":["-score","title"],"limit":2,"after":text})).unwrap();
    let (s, p) = q2.to_sql();
    assert!(s.contains(r#"AND ((("score" < ? OR "score" IS NULL)) OR ("score" IS ? AND "title" IS NOT NULL) OR ("score" IS ? AND "title" IS ? AND "id" > ?))"#), "{s}");
    assert_eq!(p.len(), 6);
    // Another order refuses the cursor.
    let other = parse(json!({"entity":"Todo","order":["score"],"after":q.cursor_after(&row)}));
    assert_eq!(other.unwrap_err(), "BAD_CURSOR");
}
