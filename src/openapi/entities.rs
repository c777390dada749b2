//! The manifest's entities as JSON Schemas: one per entity (its row), plus
//! `EntityName` (the names, for queries and ops) and `Row` (any entity's
//! row, for query answers).
//!
//! | field type   | JSON Schema |
//! |--------------|-------------|
//! | `string`     | `string` |
//! | `int`        | `integer` (`int64`; exact in JavaScript within ±(2^53 − 1)) |
//! | `float`      | `number` (`double`) |
//! | `bool`       | `boolean` |
//! | `datetime`   | `string`, `date-time`, in the engine's form `YYYY-MM-DDTHH:MM:SS[.f]Z` |
//! | `json`       | any value |
//! | `id(Entity)` | a non-empty `string`, described as that entity's id |
//!
//! Optional fields are not required and may be null.

use serde_json::{Map, Value};

use super::json::{component_ref, object, parse, text};
use crate::manifest::{Entity, Field, FieldType, Manifest};

/// The engine's datetime text (docs/queries.md), as a schema.
const DATETIME: &str = r#"{"type": "string", "format": "date-time",
  "pattern": "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?Z$",
  "description": "RFC 3339 in UTC: YYYY-MM-DDTHH:MM:SS[.f]Z."}"#;

/// The component name of `entity`'s schema: its own name, unless the
/// runtime's schemas already use it (an entity `Error`, `Job`, ...); then
/// `entity.<Name>` (entity names cannot hold a dot, so this never clashes).
pub fn schema_name(entity: &str, runtime: &Map<String, Value>) -> String {
    if runtime.contains_key(entity) {
        format!("entity.{entity}")
    } else {
        entity.to_owned()
    }
}

/// The JSON Schema of one field type.
pub fn field_type(ty: &FieldType) -> Value {
    match ty {
        FieldType::String => parse(r#"{"type": "string"}"#),
        FieldType::Int => parse(r#"{"type": "integer", "format": "int64"}"#),
        FieldType::Float => parse(r#"{"type": "number", "format": "double"}"#),
        FieldType::Bool => parse(r#"{"type": "boolean"}"#),
        FieldType::Datetime => parse(DATETIME),
        FieldType::Json => parse(r#"{"description": "Any JSON value, stored as JSON text."}"#),
        FieldType::Id(target) => {
            let mut schema = parse(r#"{"type": "string", "minLength": 1}"#);
            schema["description"] = text(format!("The id of a {target} row."));
            schema["x-pylon-entity"] = text(target.as_str());
            schema
        }
    }
}

fn field(f: &Field) -> Value {
    let mut schema = field_type(&f.ty);
    if f.optional {
        // Optional fields may be null: widen `type` to allow it (a `json`
        // field, with no `type`, allows it already).
        if let Some(t) = schema.get("type").cloned() {
            schema["type"] = Value::Array(vec![t, text("null")]);
        }
    }
    if f.unique {
        let said = schema["description"].as_str().unwrap_or_default();
        let description = format!("{said} Unique within the shard.");
        schema["description"] = text(description.trim_start());
    }
    schema
}

/// The schema of a row of `entity`: `id` and every declared field; the
/// required ones are required.
pub fn entity(entity: &Entity) -> Value {
    let mut properties = Map::new();
    properties.insert(
        "id".into(),
        parse(r#"{"type": "string", "minLength": 1, "description": "The row's id (its primary key)."}"#),
    );
    let mut required = vec![text("id")];
    for f in &entity.fields {
        properties.insert(f.name.clone(), field(f));
        if !f.optional {
            required.push(text(f.name.as_str()));
        }
    }
    let mut description = format!(
        "A row of the entity `{}`. Writes refuse unknown fields (`UNKNOWN_FIELD`).",
        entity.name
    );
    if !entity.indexes.is_empty() {
        let indexes: Vec<String> = entity
            .indexes
            .iter()
            .map(|x| {
                let unique = if x.unique { " (unique)" } else { "" };
                format!("`{}` on {}{unique}", x.name, x.fields.join(", "))
            })
            .collect();
        description.push_str(&format!(" Indexes: {}.", indexes.join("; ")));
    }
    object([
        ("type", text("object")),
        ("description", text(description)),
        ("required", Value::Array(required)),
        ("properties", Value::Object(properties)),
    ])
}

/// Adds every entity's schema, `EntityName` and `Row` to `schemas` (the
/// runtime's, from `components.json`).
pub fn add_schemas(schemas: &mut Map<String, Value>, manifest: &Manifest) {
    let names: Vec<String> = manifest
        .entities
        .iter()
        .map(|e| schema_name(&e.name, schemas))
        .collect();
    let (entity_name, row) = if names.is_empty() {
        (
            parse(r#"{"type": "string"}"#),
            parse(r#"{"type": "object"}"#),
        )
    } else {
        let entities = manifest.entities.iter();
        let rows = names.iter().map(|n| component_ref("schemas", n)).collect();
        (
            object([
                ("type", text("string")),
                ("enum", entities.map(|e| text(e.name.as_str())).collect()),
            ]),
            object([
                ("description", text("A row of one of the entities.")),
                ("anyOf", Value::Array(rows)),
            ]),
        )
    };
    for (e, name) in manifest.entities.iter().zip(&names) {
        schemas.insert(name.clone(), entity(e));
    }
    schemas.insert("EntityName".into(), entity_name);
    schemas.insert("Row".into(), row);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn board() -> Manifest {
        Manifest::from_json_str(
            r#"{"entities":[
              {"name":"User","fields":[{"name":"email","type":"string","unique":true}]},
              {"name":"Todo","fields":[
                {"name":"title","type":"string"},
                {"name":"done","type":"bool"},
                {"name":"n","type":"int"},
                {"name":"order","type":"float","optional":true},
                {"name":"due","type":"datetime","optional":true},
                {"name":"tags","type":"json","optional":true},
                {"name":"ownerId","type":"id(User)"}],
               "indexes":[{"name":"byOwner","fields":["ownerId","due"]}]},
              {"name":"Error","fields":[{"name":"text","type":"string"}]}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn field_types() {
        assert_eq!(field_type(&FieldType::String), json!({"type": "string"}));
        assert_eq!(
            field_type(&FieldType::Int),
            json!({"type": "integer", "format": "int64"})
        );
        assert_eq!(
            field_type(&FieldType::Float),
            json!({"type": "number", "format": "double"})
        );
        assert_eq!(field_type(&FieldType::Bool), json!({"type": "boolean"}));
        let dt = field_type(&FieldType::Datetime);
        assert_eq!(
            (&dt["type"], &dt["format"]),
            (&json!("string"), &json!("date-time"))
        );
        // The engine's form only: a UTC `Z`, an optional fraction.
        assert_eq!(
            dt["pattern"],
            r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$"
        );
        assert!(field_type(&FieldType::Json).get("type").is_none());
        let id = field_type(&FieldType::Id("User".into()));
        assert_eq!(id["type"], "string");
        assert_eq!(id["description"], "The id of a User row.");
        assert_eq!(id["x-pylon-entity"], "User");
    }

    #[test]
    fn an_entity_row() {
        let m = board();
        let todo = entity(m.entity("Todo").unwrap());
        assert_eq!(
            todo["required"],
            json!(["id", "title", "done", "n", "ownerId"])
        );
        let p = &todo["properties"];
        assert_eq!(p["id"]["type"], "string");
        assert_eq!(p["order"]["type"], json!(["number", "null"]));
        assert_eq!(p["due"]["type"], json!(["string", "null"]));
        assert!(p["tags"].get("type").is_none(), "json allows null already");
        assert_eq!(p["ownerId"]["description"], "The id of a User row.");
        assert!(todo["description"]
            .as_str()
            .unwrap()
            .contains("`byOwner` on ownerId, due"));
        let user = entity(m.entity("User").unwrap());
        assert_eq!(
            user["properties"]["email"]["description"],
            "Unique within the shard."
        );
    }

    #[test]
    fn schemas_added_without_clashing_with_the_runtimes() {
        let m = board();
        let mut schemas = Map::new();
        schemas.insert("Error".into(), json!({"type": "object"}));
        add_schemas(&mut schemas, &m);
        assert_eq!(schemas["Error"], json!({"type": "object"}), "kept");
        assert_eq!(
            schemas["entity.Error"]["properties"]["text"]["type"],
            "string"
        );
        assert!(schemas.contains_key("Todo") && schemas.contains_key("User"));
        assert_eq!(
            schemas["EntityName"],
            json!({"type": "string", "enum": ["User", "Todo", "Error"]})
        );
        assert_eq!(
            schemas["Row"]["anyOf"],
            json!([{"$ref": "#/components/schemas/User"},
                   {"$ref": "#/components/schemas/Todo"},
                   {"$ref": "#/components/schemas/entity.Error"}])
        );
    }
}
