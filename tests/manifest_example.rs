//! The example manifest loads cleanly and its tables work in SQLite.

use pylon_workers::manifest::{create_statements, plan_migration, Manifest};
use pylon_workers::policy::AuthContext;
use pylon_workers::value::{Row, Value};

const EXAMPLE: &str = include_str!("../examples/board/schema.json");

fn row(json: &str) -> Row {
    match serde_json::from_str::<Value>(json).unwrap() {
        Value::Map(m) => m,
        _ => panic!("not an object"),
    }
}

#[test]
fn example_loads_cleanly() {
    let m = Manifest::from_json_str(EXAMPLE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.name(), Some("collab-todos"));
    assert_eq!(m.version(), Some("1"));
    let names: Vec<_> = m.entities.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["User", "Card", "Todo", "Channel", "Message", "Attachment"]);
    assert_eq!(m.policies().all().len(), 6);
    assert_eq!(m.source(), EXAMPLE);
    // The stored source loads again to the same schema.
    let again = Manifest::from_json_str(m.source()).unwrap();
    assert_eq!(again.entities, m.entities);
    assert!(plan_migration(Some(&m), &again).unwrap().is_empty());
}

#[test]
fn example_creates_in_sqlite() {
    let m = Manifest::from_json_str(EXAMPLE).unwrap();
    let db = rusqlite::Connection::open_in_memory().unwrap();
    for sql in plan_migration(None, &m).unwrap() {
        db.execute(&sql, [])
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let tables: i64 = db
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 6);
    assert_eq!(create_statements(m.entity("Message").unwrap()).len(), 3);
}

#[test]
fn example_policies() {
    let m = Manifest::from_json_str(EXAMPLE).unwrap();
    let p = m.policies();
    let alice = AuthContext::user("alice");
    let bob = AuthContext::user("bob");
    let todo = row(r#"{"id":"t1","ownerId":"alice","title":"x","done":false}"#);
    assert!(p.can_read("Todo", &alice, &todo).is_allowed());
    assert_eq!(
        p.can_read("Todo", &bob, &todo).to_string(),
        "policy todoOwner (allowRead) denied read on Todo"
    );
    let moderator = AuthContext::user("mo").with_roles(["support"]);
    assert!(p.can_delete("Todo", &moderator, &todo).is_allowed());
    let steal = row(r#"{"ownerId":"bob"}"#);
    assert!(!p.can_update("Todo", &alice, &todo, &steal).is_allowed());
    assert!(p
        .can_update("Todo", &alice, &todo, &row(r#"{"done":true}"#))
        .is_allowed());
    let channel = row(r#"{"id":"c1","tenantId":"acme","slug":"general","title":"General"}"#);
    let member = AuthContext::user("carol").with_tenant("acme");
    assert!(p.can_read("Channel", &member, &channel).is_allowed());
    assert!(!p
        .can_update("Channel", &member, &channel, &Row::new())
        .is_allowed());
    assert!(p
        .can_update(
            "Channel",
            &member.clone().with_roles(["channelAdmin"]),
            &channel,
            &Row::new()
        )
        .is_allowed());
    assert!(!p
        .can_read(
            "Channel",
            &AuthContext::user("dan").with_tenant("other"),
            &channel
        )
        .is_allowed());
}
