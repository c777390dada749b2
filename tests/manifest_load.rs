//! Loading manifests: every problem is reported, with its code and path.

use pylon_workers::manifest::{FieldType, Manifest, ManifestError, Problem};
use serde_json::json;

/// (path, code) of every problem found in `json`.
fn problems(json: serde_json::Value) -> Vec<(String, &'static str)> {
    match Manifest::from_value(json) {
        Ok(_) => panic!("loaded"),
        Err(e) => {
            assert_eq!(e.code(), "INVALID_MANIFEST");
            e.problems()
                .iter()
                .map(|p| (p.path().to_owned(), p.code()))
                .collect()
        }
    }
}

fn one(json: serde_json::Value) -> (String, &'static str) {
    let mut ps = problems(json);
    assert_eq!(ps.len(), 1, "{ps:?}");
    ps.remove(0)
}

fn p(path: &str, code: &'static str) -> (String, &'static str) {
    (path.to_owned(), code)
}

fn todo_with(fields: serde_json::Value) -> serde_json::Value {
    json!({"entities": [{"name": "Todo", "fields": fields}]})
}

#[test]
fn all_types_load() {
    let m = Manifest::from_value(json!({"entities": [
        {"name": "User"},
        {"name": "T", "fields": [
            {"name": "s", "type": "string"}, {"name": "i", "type": "int"},
            {"name": "f", "type": "float", "optional": true}, {"name": "b", "type": "bool"},
            {"name": "d", "type": "datetime"}, {"name": "j", "type": "json", "unique": false},
            {"name": "u", "type": "id(User)", "unique": true}]}]}))
    .unwrap();
    let tys: Vec<_> = m
        .entity("T")
        .unwrap()
        .fields
        .iter()
        .map(|f| f.ty.clone())
        .collect();
    assert_eq!(
        tys,
        [
            FieldType::String,
            FieldType::Int,
            FieldType::Float,
            FieldType::Bool,
            FieldType::Datetime,
            FieldType::Json,
            FieldType::Id("User".into())
        ]
    );
    assert!(m.entity("T").unwrap().fields[2].optional);
    assert!(m.entity("T").unwrap().fields[6].unique);
    assert!(m.entity("User").unwrap().fields.is_empty());
    assert!(m.policies().all().is_empty());
}

#[test]
fn not_json() {
    let e = Manifest::from_json_str("{\"entities\": [}").unwrap_err();
    assert_eq!(e.code(), "INVALID_JSON");
    let ManifestError::Json { line, column, .. } = &e else {
        panic!()
    };
    assert_eq!((*line, *column), (1, 15));
    assert!(e.problems().is_empty());
    assert!(
        e.to_string().starts_with("manifest is not valid JSON: "),
        "{e}"
    );
}

#[test]
fn top_level() {
    assert_eq!(one(json!([])), p("(top level)", "WRONG_TYPE"));
    assert_eq!(one(json!({})), p("", "MISSING_KEY"));
    assert_eq!(one(json!({"entities": {}})), p("entities", "WRONG_TYPE"));
    assert_eq!(
        one(json!({"entities": [], "policies": {}})),
        p("policies", "WRONG_TYPE")
    );
    assert_eq!(
        one(json!({"entities": [], "name": 3})),
        p("name", "WRONG_TYPE")
    );
    assert_eq!(
        one(json!({"entities": [], "version": true})),
        p("version", "WRONG_TYPE")
    );
    assert_eq!(
        one(json!({"entities": [7]})),
        p("entities[0]", "WRONG_TYPE")
    );
    // Unknown top-level keys are ignored, so other Pylon sections carry over.
    let m =
        Manifest::from_value(json!({"entities": [], "functions": {}, "version": "2.1"})).unwrap();
    assert_eq!(m.version(), Some("2.1"));
    assert_eq!(
        m.source(),
        r#"{"entities":[],"functions":{},"version":"2.1"}"#
    );
}

#[test]
fn unknown_keys_inside_are_errors() {
    let ps = problems(json!({"entities": [{"name": "T", "label": "x",
        "fields": [{"name": "a", "type": "int", "default": 0}],
        "indexes": [{"name": "i", "fields": ["a"], "sparse": true}]}],
        "policies": [{"name": "p", "entity": "T", "allow": "true", "deny": "false"}]}));
    assert_eq!(
        ps,
        [
            p("entities[0].label", "UNKNOWN_KEY"),
            p("entities[0].fields[0].default", "UNKNOWN_KEY"),
            p("entities[0].indexes[0].sparse", "UNKNOWN_KEY"),
            p("policies[0].deny", "UNKNOWN_KEY"),
        ]
    );
}

#[test]
fn names() {
    assert_eq!(
        one(json!({"entities": [{"fields": []}]})),
        p("entities[0]", "MISSING_KEY")
    );
    assert_eq!(
        one(json!({"entities": [{"name": "9T"}]})),
        p("entities[0].name", "INVALID_NAME")
    );
    assert_eq!(
        one(json!({"entities": [{"name": "_T"}]})),
        p("entities[0].name", "RESERVED_NAME")
    );
    assert_eq!(
        one(json!({"entities": [{"name": "sqlite_T"}]})),
        p("entities[0].name", "RESERVED_NAME")
    );
    assert_eq!(
        one(json!({"entities": [{"name": "a".repeat(65)}]})),
        p("entities[0].name", "INVALID_NAME")
    );
    assert_eq!(
        one(todo_with(json!([{"name": "a-b", "type": "int"}]))),
        p("entities[0].fields[0].name", "INVALID_NAME")
    );
    assert_eq!(
        one(todo_with(json!([{"name": "_x", "type": "int"}]))),
        p("entities[0].fields[0].name", "RESERVED_NAME")
    );
    assert_eq!(
        one(todo_with(json!([{"type": "int"}]))),
        p("entities[0].fields[0]", "MISSING_KEY")
    );
}

#[test]
fn duplicates_ignore_case() {
    let ps = problems(json!({"entities": [
        {"name": "Todo", "fields": [{"name": "title", "type": "string"}, {"name": "Title", "type": "int"}],
         "indexes": [{"name": "i", "fields": ["title"]}, {"name": "I", "fields": ["title", "title"]}]},
        {"name": "todo"}],
        "policies": [{"name": "p", "entity": "Todo", "allow": "true"}, {"name": "p", "entity": "Todo", "allow": "true"}]}));
    assert_eq!(
        ps,
        [
            p("entities[1].name", "DUPLICATE_NAME"),
            p("entities[0].fields[1].name", "DUPLICATE_NAME"),
            p("entities[0].indexes[1].name", "DUPLICATE_NAME"),
            p("entities[0].indexes[1].fields[1]", "DUPLICATE_NAME"),
            p("policies[1].name", "DUPLICATE_NAME"),
        ]
    );
    let e = Manifest::from_value(json!({"entities": [{"name": "A"}, {"name": "a"}]})).unwrap_err();
    assert_eq!(
        e.problems()[0],
        Problem::DuplicateName {
            path: "entities[1].name".into(),
            kind: "entity",
            name: "a".into(),
            first: "entities[0].name".into()
        }
    );
    // A field and an index may share a name.
    Manifest::from_value(
        json!({"entities": [{"name": "T", "fields": [{"name": "a", "type": "int"}],
        "indexes": [{"name": "a", "fields": ["a"]}]}]}),
    )
    .unwrap();
}

#[test]
fn field_shapes_and_types() {
    let ps = problems(todo_with(json!([
        {"name": "a", "type": "text"},
        {"name": "b"},
        {"name": "c", "type": 3},
        {"name": "d", "type": "int", "optional": "yes"},
        {"name": "e", "type": "int", "unique": 1},
        {"name": "f", "type": "id(Nope)"},
        {"name": "g", "type": "id()"},
        "h"
    ])));
    assert_eq!(
        ps,
        [
            p("entities[0].fields[0].type", "UNKNOWN_TYPE"),
            p("entities[0].fields[1]", "MISSING_KEY"),
            p("entities[0].fields[2].type", "WRONG_TYPE"),
            p("entities[0].fields[3].optional", "WRONG_TYPE"),
            p("entities[0].fields[4].unique", "WRONG_TYPE"),
            p("entities[0].fields[6].type", "UNKNOWN_TYPE"),
            p("entities[0].fields[7]", "WRONG_TYPE"),
            p("entities[0].fields[5].type", "UNKNOWN_ENTITY"),
        ]
    );
    assert_eq!(
        one(json!({"entities": [{"name": "T", "fields": {}}]})),
        p("entities[0].fields", "WRONG_TYPE")
    );
}

#[test]
fn id_field() {
    // Declaring `id` as a required string is the implicit key, nothing more.
    let m = Manifest::from_value(todo_with(
        json!([{"name": "id", "type": "string", "unique": true}]),
    ))
    .unwrap();
    assert!(m.entities[0].fields.is_empty());
    let bad = [
        json!({"name": "id", "type": "int"}),
        json!({"name": "id", "type": "string", "optional": true}),
        json!({"name": "ID", "type": "string"}),
    ];
    for f in bad {
        assert_eq!(
            one(todo_with(json!([f]))),
            p("entities[0].fields[0]", "INVALID_ID_FIELD")
        );
    }
}

#[test]
fn indexes() {
    let ps = problems(
        json!({"entities": [{"name": "T", "fields": [{"name": "a", "type": "int"}], "indexes": [
            {"name": "x", "fields": ["a", "nope"]},
            {"name": "y", "fields": []},
            {"name": "z"},
            {"name": "w", "fields": [1]},
            {"name": "v", "fields": "a"},
            {"name": "byId", "fields": ["id", "a"], "unique": true},
            {"fields": ["a"]},
            {"name": "u", "fields": ["a"], "unique": "no"}
        ]}]}),
    );
    assert_eq!(
        ps,
        [
            p("entities[0].indexes[1].fields", "EMPTY_INDEX"),
            p("entities[0].indexes[2]", "MISSING_KEY"),
            p("entities[0].indexes[3].fields[0]", "WRONG_TYPE"),
            p("entities[0].indexes[4].fields", "WRONG_TYPE"),
            p("entities[0].indexes[6]", "MISSING_KEY"),
            p("entities[0].indexes[7].unique", "WRONG_TYPE"),
            p("entities[0].indexes[0].fields[1]", "UNKNOWN_FIELD"),
        ]
    );
}

#[test]
fn policies() {
    let ps = problems(
        json!({"entities": [{"name": "T", "fields": [{"name": "ownerId", "type": "string"}]}],
        "policies": [
            {"name": "a", "entity": "Nope", "allow": "true"},
            {"name": "b", "entity": "T", "allowRead": "data.ownerId = auth.userId"},
            {"name": "c", "entity": "T", "allowWrite": "data.owner == auth.userId && input.x == 1"},
            {"name": "d", "entity": "T"},
            {"name": "e", "entity": "T", "allowDelete": true},
            {"entity": "T", "allow": "true"},
            {"name": "f", "allow": "true"},
            {"name": "_g", "entity": "T", "allow": "true"},
            "h",
            {"name": "i", "entity": "T", "allowUpdate": "data.ownerId == auth.userId", "allowRead": null}
        ]}),
    );
    assert_eq!(
        ps,
        [
            p("policies[0].entity", "UNKNOWN_ENTITY"),
            p("policies[1].allowRead", "POLICY_PARSE"),
            p("policies[2].allowWrite", "UNKNOWN_FIELD"),
            p("policies[2].allowWrite", "UNKNOWN_FIELD"),
            p("policies[3]", "EMPTY_POLICY"),
            p("policies[4].allowDelete", "WRONG_TYPE"),
            p("policies[5]", "MISSING_KEY"),
            p("policies[6]", "MISSING_KEY"),
            p("policies[7].name", "RESERVED_NAME"),
            p("policies[8]", "WRONG_TYPE"),
        ]
    );
}

#[test]
fn parse_errors_carry_position() {
    let e = Manifest::from_value(json!({"entities": [{"name": "T"}],
        "policies": [{"name": "p", "entity": "T", "allow": "auth.userId = 'x'"}]}))
    .unwrap_err();
    let Problem::PolicyParse { error, .. } = &e.problems()[0] else {
        panic!()
    };
    assert_eq!((error.column, error.code()), (13, "UNEXPECTED_CHAR"));
    assert_eq!(
        e.to_string(),
        "invalid manifest (1 problem):\n  policies[0].allow: policy expression does not parse: unexpected character `=` at column 13"
    );
}

#[test]
fn every_problem_is_displayed() {
    let e = Manifest::from_json_str(
        r#"{"entities":[{"name":"T","fields":[{"name":"a","type":"text"},{"name":"b","type":"id(X)"}],
            "indexes":[{"name":"i","fields":["c"]}]}],
            "policies":[{"name":"p","entity":"U","allow":"true"}]}"#,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid manifest (4 problems):
  entities[0].fields[0].type: unknown type \"text\" (expected string, int, float, bool, datetime, json or id(<Entity>))
  entities[0].fields[1].type: unknown entity \"X\"
  entities[0].indexes[0].fields[0]: entity T has no field \"c\"
  policies[0].entity: unknown entity \"U\""
    );
}
