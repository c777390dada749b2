//! Policies as loaded from a manifest: rule precedence and the combination rule.

use pylon_workers::manifest::Manifest;
use pylon_workers::policy::{Action, AuthContext, Decision, Rule};
use pylon_workers::value::{Row, Value};
use serde_json::json;

fn row(v: serde_json::Value) -> Row {
    match Value::from(v) {
        Value::Map(m) => m,
        _ => panic!("not an object"),
    }
}

fn manifest() -> Manifest {
    Manifest::from_value(json!({
        "entities": [
            {"name": "Doc", "fields": [{"name": "ownerId", "type": "string"}, {"name": "public", "type": "bool"},
                                       {"name": "meta", "type": "json", "optional": true}]},
            {"name": "Open", "fields": []}
        ],
        "policies": [
            {"name": "docs", "entity": "Doc",
             "allow": "auth.userId != null && data.public",
             "allowWrite": "data.ownerId == auth.userId",
             "allowDelete": "auth.hasRole('janitor')"},
            {"name": "tenantDocs", "entity": "Doc", "allowRead": "data.meta.tenant == auth.tenantId && auth.tenantId != null"}
        ]
    }))
    .unwrap()
}

#[test]
fn precedence_within_a_policy() {
    let m = manifest();
    let docs = m.policies().get("docs").unwrap();
    assert_eq!(docs.rule_for(Action::Read).unwrap().0, Rule::Allow);
    assert_eq!(docs.rule_for(Action::Insert).unwrap().0, Rule::AllowWrite);
    assert_eq!(docs.rule_for(Action::Update).unwrap().0, Rule::AllowWrite);
    assert_eq!(docs.rule_for(Action::Delete).unwrap().0, Rule::AllowDelete);
    let p = m.policies();
    let owner = AuthContext::user("u1");
    let doc = row(json!({"id": "d1", "ownerId": "u1", "public": false}));
    // The owner may update, but delete is governed by allowDelete only.
    assert!(p.can_update("Doc", &owner, &doc, &Row::new()).is_allowed());
    assert_eq!(
        p.can_delete("Doc", &owner, &doc).to_string(),
        "policy docs (allowDelete) denied delete on Doc"
    );
    assert!(p
        .can_delete("Doc", &AuthContext::user("x").with_roles(["janitor"]), &doc)
        .is_allowed());
}

#[test]
fn any_policy_allowing_suffices_and_missing_paths_are_null() {
    let m = manifest();
    let p = m.policies();
    let private =
        row(json!({"id": "d1", "ownerId": "u1", "public": false, "meta": {"tenant": "acme"}}));
    let acme = AuthContext::user("u2").with_tenant("acme");
    assert!(p.can_read("Doc", &acme, &private).is_allowed());
    let Decision::Deny(d) = p.can_read("Doc", &AuthContext::user("u2"), &private) else {
        panic!()
    };
    assert_eq!(d.refused_by, Some(("docs", Rule::Allow)));
    // No meta: data.meta.tenant is null, and an anonymous tenant is null too,
    // which is why the rule also demands auth.tenantId != null.
    let bare = row(json!({"id": "d2", "ownerId": "u1", "public": false}));
    assert!(!p
        .can_read("Doc", &AuthContext::anonymous(), &bare)
        .is_allowed());
}

#[test]
fn open_entities_and_admins() {
    let m = manifest();
    let p = m.policies();
    let anon = AuthContext::anonymous();
    assert!(p.for_entity("Open").is_open());
    for d in [
        p.can_read("Open", &anon, &Row::new()),
        p.can_insert("Open", &anon, &Row::new()),
        p.can_update("Open", &anon, &Row::new(), &Row::new()),
        p.can_delete("Open", &anon, &Row::new()),
    ] {
        assert!(d.is_allowed());
    }
    let doc = row(json!({"id": "d1", "ownerId": "u1", "public": false}));
    assert!(p
        .can_delete("Doc", &AuthContext::admin(), &doc)
        .is_allowed());
}
