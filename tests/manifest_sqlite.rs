//! DDL, row encoding and migrations against a real SQLite (rusqlite).

use pylon_workers::manifest::{
    columns, decode_row, insert_columns, plan_migration, quote_ident, update_columns, Manifest,
};
use pylon_workers::sql::SqlValue;
use pylon_workers::value::{Row, Value};
use rusqlite::types::{ToSqlOutput, Value as Lite, ValueRef};
use rusqlite::Connection;
use serde_json::json;

fn manifest(entities: serde_json::Value) -> Manifest {
    Manifest::from_value(json!({ "entities": entities })).unwrap_or_else(|e| panic!("{e}"))
}

fn row(v: serde_json::Value) -> Row {
    match Value::from(v) {
        Value::Map(m) => m,
        _ => panic!("not an object"),
    }
}

fn apply(db: &Connection, plan: &[String]) {
    for sql in plan {
        db.execute(sql, []).unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

fn lite(v: &SqlValue) -> Lite {
    match v {
        SqlValue::Null => Lite::Null,
        SqlValue::Integer(i) => Lite::Integer(*i),
        SqlValue::Real(f) => Lite::Real(*f),
        SqlValue::Text(t) => Lite::Text(t.clone()),
    }
}

fn insert(
    db: &Connection,
    m: &Manifest,
    entity: &str,
    r: serde_json::Value,
) -> rusqlite::Result<usize> {
    let e = m.entity(entity).unwrap();
    let cols = insert_columns(e, &row(r)).unwrap();
    let names: Vec<String> = cols.iter().map(|c| quote_ident(c.0)).collect();
    let marks = vec!["?"; cols.len()].join(", ");
    let sql = format!(
        "INSERT INTO {} ({}) VALUES ({marks})",
        quote_ident(entity),
        names.join(", ")
    );
    let params: Vec<ToSqlOutput<'_>> = cols
        .iter()
        .map(|c| ToSqlOutput::Owned(lite(&c.1)))
        .collect();
    db.execute(&sql, rusqlite::params_from_iter(params))
}

fn select_all(db: &Connection, m: &Manifest, entity: &str) -> Vec<Row> {
    let e = m.entity(entity).unwrap();
    let cols = columns(e);
    let list: Vec<String> = cols.iter().map(|c| quote_ident(c)).collect();
    let sql = format!(
        "SELECT {} FROM {} ORDER BY \"id\"",
        list.join(", "),
        quote_ident(entity)
    );
    let mut stmt = db.prepare(&sql).unwrap();
    stmt.query_map([], |r| {
        let vals: Vec<(&str, SqlValue)> = (0..cols.len())
            .map(|i| {
                let v = match r.get_ref(i).unwrap() {
                    ValueRef::Null => SqlValue::Null,
                    ValueRef::Integer(i) => SqlValue::Integer(i),
                    ValueRef::Real(f) => SqlValue::Real(f),
                    ValueRef::Text(t) => SqlValue::Text(String::from_utf8(t.to_vec()).unwrap()),
                    ValueRef::Blob(_) => panic!("blob"),
                };
                (cols[i], v)
            })
            .collect();
        Ok(decode_row(e, vals))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

/// (name, type, notnull, pk) per column.
fn table_info(db: &Connection, table: &str) -> Vec<(String, String, bool, bool)> {
    let mut stmt = db
        .prepare(&format!("PRAGMA table_info({})", quote_ident(table)))
        .unwrap();
    stmt.query_map([], |r| {
        Ok((r.get(1)?, r.get(2)?, r.get(3)?, r.get::<_, i64>(5)? > 0))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn index_names(db: &Connection) -> Vec<String> {
    let mut stmt = db
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name",
        )
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn v1() -> Manifest {
    manifest(json!([
        {"name": "Todo", "fields": [
            {"name": "title", "type": "string"},
            {"name": "done", "type": "bool"},
            {"name": "createdAt", "type": "datetime"},
            {"name": "order", "type": "float", "optional": true},
            {"name": "tags", "type": "json", "optional": true},
            {"name": "slug", "type": "string", "unique": true}],
         "indexes": [{"name": "byOrder", "fields": ["order"]}]},
        {"name": "Note", "fields": [{"name": "body", "type": "string"}],
         "indexes": [{"name": "byOrder", "fields": ["body"]}]}
    ]))
}

const T1: &str = "2026-01-01T00:00:00Z";

#[test]
fn create_insert_read_back() {
    let m = v1();
    let db = Connection::open_in_memory().unwrap();
    let plan = plan_migration(None, &m).unwrap();
    apply(&db, &plan);
    // Idempotent: the same creation plan again changes nothing.
    apply(&db, &plan);
    assert_eq!(
        table_info(&db, "Todo"),
        [
            ("id".into(), "TEXT".into(), true, true),
            ("title".into(), "TEXT".into(), true, false),
            ("done".into(), "INTEGER".into(), true, false),
            ("createdAt".into(), "TEXT".into(), true, false),
            ("order".into(), "REAL".into(), false, false),
            ("tags".into(), "TEXT".into(), false, false),
            ("slug".into(), "TEXT".into(), true, false),
        ]
    );
    // Same index name in two entities: no collision.
    assert_eq!(index_names(&db), ["Note:byOrder", "Todo:byOrder"]);

    let r = json!({"id": "t1", "title": "a", "done": true, "createdAt": T1, "order": 2,
                   "tags": {"k": [1, "x"]}, "slug": "a"});
    insert(&db, &m, "Todo", r.clone()).unwrap();
    insert(
        &db,
        &m,
        "Todo",
        json!({"id": "t2", "title": "b", "done": false, "createdAt": T1, "slug": "b"}),
    )
    .unwrap();
    let rows = select_all(&db, &m, "Todo");
    let mut expected = row(r);
    expected.insert("order".into(), Value::Float(2.0));
    assert_eq!(rows[0], expected);
    assert_eq!(rows[1].get("order"), Some(&Value::Null));
    assert_eq!(rows[1].get("done"), Some(&Value::Bool(false)));

    // Unique fields and the primary key are enforced by SQLite.
    let dup_slug = insert(
        &db,
        &m,
        "Todo",
        json!({"id": "t3", "title": "c", "done": false, "createdAt": T1, "slug": "a"}),
    );
    assert!(dup_slug.unwrap_err().to_string().contains("UNIQUE"));
    let dup_id = insert(
        &db,
        &m,
        "Todo",
        json!({"id": "t1", "title": "c", "done": false, "createdAt": T1, "slug": "c"}),
    );
    assert!(dup_id.unwrap_err().to_string().contains("UNIQUE"));
}

#[test]
fn update_columns_write() {
    let m = v1();
    let db = Connection::open_in_memory().unwrap();
    apply(&db, &plan_migration(None, &m).unwrap());
    insert(&db, &m, "Todo", json!({"id": "t1", "title": "a", "done": false, "createdAt": T1, "order": 1.5, "slug": "a"})).unwrap();
    let todo = m.entity("Todo").unwrap();
    let cols = update_columns(todo, &row(json!({"done": true, "order": null}))).unwrap();
    let set: Vec<String> = cols
        .iter()
        .map(|c| format!("{} = ?", quote_ident(c.0)))
        .collect();
    let params: Vec<ToSqlOutput<'_>> = cols
        .iter()
        .map(|c| ToSqlOutput::Owned(lite(&c.1)))
        .collect();
    db.execute(
        &format!("UPDATE \"Todo\" SET {} WHERE \"id\" = 't1'", set.join(", ")),
        rusqlite::params_from_iter(params),
    )
    .unwrap();
    let r = &select_all(&db, &m, "Todo")[0];
    assert_eq!(
        (r.get("done"), r.get("order")),
        (Some(&Value::Bool(true)), Some(&Value::Null))
    );
}

#[test]
fn additive_migration() {
    let old = v1();
    let db = Connection::open_in_memory().unwrap();
    apply(&db, &plan_migration(None, &old).unwrap());
    insert(
        &db,
        &old,
        "Todo",
        json!({"id": "t1", "title": "a", "done": false, "createdAt": T1, "slug": "a"}),
    )
    .unwrap();
    insert(&db, &old, "Note", json!({"id": "n1", "body": "same"})).unwrap();
    insert(&db, &old, "Note", json!({"id": "n2", "body": "same"})).unwrap();

    let new = manifest(json!([
        {"name": "Todo", "fields": [
            {"name": "title", "type": "string", "unique": true},
            {"name": "done", "type": "bool"},
            {"name": "createdAt", "type": "datetime"},
            {"name": "order", "type": "float", "optional": true},
            {"name": "tags", "type": "json", "optional": true},
            {"name": "slug", "type": "string", "unique": true},
            {"name": "ownerId", "type": "string", "optional": true, "unique": true},
            {"name": "due", "type": "datetime", "optional": true}],
         "indexes": [{"name": "byOrder", "fields": ["order", "done"]}, {"name": "byOwner", "fields": ["ownerId"]}]},
        {"name": "Note", "fields": [{"name": "body", "type": "string"}]},
        {"name": "Tag", "fields": [{"name": "label", "type": "string"}],
         "indexes": [{"name": "byLabel", "fields": ["label"], "unique": true}]}
    ]));
    let plan = plan_migration(Some(&old), &new).unwrap();
    assert_eq!(
        plan,
        [
            r#"CREATE TABLE IF NOT EXISTS "Tag" ("id" TEXT PRIMARY KEY NOT NULL, "label" TEXT NOT NULL) WITHOUT ROWID"#,
            r#"CREATE UNIQUE INDEX IF NOT EXISTS "Tag:byLabel" ON "Tag" ("label")"#,
            r#"ALTER TABLE "Todo" ADD COLUMN "ownerId" TEXT"#,
            r#"ALTER TABLE "Todo" ADD COLUMN "due" TEXT"#,
            r#"DROP INDEX IF EXISTS "Todo:byOrder""#,
            r#"DROP INDEX IF EXISTS "Note:byOrder""#,
            r#"CREATE UNIQUE INDEX IF NOT EXISTS "Todo:title:unique" ON "Todo" ("title")"#,
            r#"CREATE UNIQUE INDEX IF NOT EXISTS "Todo:ownerId:unique" ON "Todo" ("ownerId")"#,
            r#"CREATE INDEX IF NOT EXISTS "Todo:byOrder" ON "Todo" ("order", "done")"#,
            r#"CREATE INDEX IF NOT EXISTS "Todo:byOwner" ON "Todo" ("ownerId")"#,
        ]
    );
    apply(&db, &plan);
    let cols: Vec<_> = table_info(&db, "Todo")
        .into_iter()
        .map(|c| (c.0, c.2))
        .collect();
    assert_eq!(
        &cols[7..],
        [("ownerId".to_string(), false), ("due".to_string(), false)]
    );
    assert_eq!(
        index_names(&db),
        [
            "Tag:byLabel",
            "Todo:byOrder",
            "Todo:byOwner",
            "Todo:ownerId:unique",
            "Todo:title:unique"
        ]
    );
    // Old rows read back with the new fields null.
    let rows = select_all(&db, &new, "Todo");
    assert_eq!(rows[0].get("due"), Some(&Value::Null));
    // The new unique constraints hold; nulls do not collide.
    let base = |id: &str, title: &str, slug: &str, owner: serde_json::Value| json!({"id": id, "title": title, "done": false, "createdAt": T1, "slug": slug, "ownerId": owner});
    insert(&db, &new, "Todo", base("t2", "b", "b", json!(null))).unwrap();
    insert(&db, &new, "Todo", base("t3", "c", "c", json!("u1"))).unwrap();
    assert!(
        insert(&db, &new, "Todo", base("t4", "a", "d", json!(null))).is_err(),
        "duplicate title"
    );
    assert!(
        insert(&db, &new, "Todo", base("t5", "e", "e", json!("u1"))).is_err(),
        "duplicate owner"
    );
    assert!(insert(&db, &new, "Tag", json!({"id": "g1", "label": "x"})).is_ok());
    assert!(insert(&db, &new, "Tag", json!({"id": "g2", "label": "x"})).is_err());

    // Planning against the applied manifest yields nothing.
    assert!(plan_migration(Some(&new), &new).unwrap().is_empty());
    // Re-running the guarded statements is harmless; ADD COLUMN is refused
    // by SQLite and changes nothing.
    for sql in &plan {
        let r = db.execute(sql, []);
        if sql.contains("ADD COLUMN") {
            assert!(r.unwrap_err().to_string().contains("duplicate column name"));
        } else {
            r.unwrap();
        }
    }
    assert_eq!(select_all(&db, &new, "Todo").len(), 3);
}

#[test]
fn unique_on_existing_duplicates_fails_in_sqlite_without_damage() {
    let old = manifest(json!([{"name": "Note", "fields": [{"name": "body", "type": "string"}]}]));
    let new = manifest(
        json!([{"name": "Note", "fields": [{"name": "body", "type": "string", "unique": true}]}]),
    );
    let db = Connection::open_in_memory().unwrap();
    apply(&db, &plan_migration(None, &old).unwrap());
    insert(&db, &old, "Note", json!({"id": "n1", "body": "same"})).unwrap();
    insert(&db, &old, "Note", json!({"id": "n2", "body": "same"})).unwrap();
    let plan = plan_migration(Some(&old), &new).unwrap();
    assert_eq!(plan.len(), 1);
    assert!(db
        .execute(&plan[0], [])
        .unwrap_err()
        .to_string()
        .contains("UNIQUE"));
    assert_eq!(select_all(&db, &old, "Note").len(), 2);
    assert!(index_names(&db).is_empty());
}

#[test]
fn destructive_changes_are_refused_all_at_once() {
    let old = manifest(json!([
        {"name": "A", "fields": [
            {"name": "gone", "type": "string"},
            {"name": "ty", "type": "int"},
            {"name": "opt", "type": "string", "optional": true},
            {"name": "req", "type": "string"},
            {"name": "uniq", "type": "string", "unique": true}]},
        {"name": "Dropped"}
    ]));
    let new = manifest(json!([
        {"name": "A", "fields": [
            {"name": "ty", "type": "float"},
            {"name": "opt", "type": "string"},
            {"name": "req", "type": "string", "optional": true},
            {"name": "uniq", "type": "string"},
            {"name": "added", "type": "bool"}]}
    ]));
    let e = plan_migration(Some(&old), &new).unwrap_err();
    assert_eq!(e.code(), "UNSAFE_MIGRATION");
    let codes: Vec<_> = e.problems.iter().map(|p| p.code()).collect();
    assert_eq!(
        codes,
        [
            "ENTITY_DROPPED",
            "FIELD_DROPPED",
            "TYPE_CHANGED",
            "MADE_REQUIRED",
            "MADE_OPTIONAL",
            "UNIQUE_DROPPED",
            "REQUIRED_FIELD_ADDED"
        ]
    );
    assert_eq!(
        e.to_string(),
        "unsafe migration:
  entity Dropped was removed; dropping data is not supported
  field A.gone was removed; dropping data is not supported
  field A.ty changed type from int to float; existing values may not fit
  field A.opt became required; existing rows may hold null
  field A.req became optional; SQLite cannot drop NOT NULL without rebuilding the table
  field A.uniq is no longer unique; SQLite cannot drop UNIQUE without rebuilding the table
  new field A.added is required; existing rows have no value (make it optional)"
    );
}

#[test]
fn quoted_names_survive_keywords() {
    // Entity and field names that are SQL keywords work because every identifier is quoted.
    let m = manifest(
        json!([{"name": "Order", "fields": [{"name": "select", "type": "int"}, {"name": "group", "type": "string", "optional": true}],
        "indexes": [{"name": "where", "fields": ["select"]}]}]),
    );
    let db = Connection::open_in_memory().unwrap();
    apply(&db, &plan_migration(None, &m).unwrap());
    insert(&db, &m, "Order", json!({"id": "o1", "select": 3})).unwrap();
    assert_eq!(
        select_all(&db, &m, "Order")[0].get("select"),
        Some(&Value::Int(3))
    );
}
