//! The OpenAPI 3.1 document of an app's HTTP API, served at
//! `GET /v1/openapi.json` (docs/openapi.md): every route of the router,
//! one per server function, and a JSON Schema per entity of the manifest.
//!
//! ```
//! use pylon_workers::functions::{FnKind, FunctionInfo};
//! use pylon_workers::manifest::Manifest;
//! let m = Manifest::from_json_str(
//!     r#"{"name":"todos","entities":[{"name":"Todo","fields":[{"name":"title","type":"string"}]}]}"#,
//! ).unwrap();
//! let fns = [FunctionInfo { name: "addTodo".into(), kind: FnKind::Mutation, trusted: false }];
//! let doc = pylon_workers::openapi::document(&m, &fns, "0.1.0");
//! assert_eq!(doc["openapi"], "3.1.0");
//! assert_eq!(doc["info"]["title"], "todos");
//! assert!(doc["paths"]["/v1/shards/{shard}/fn/addTodo"]["post"].is_object());
//! assert_eq!(doc["components"]["schemas"]["Todo"]["required"], serde_json::json!(["id", "title"]));
//! ```
//!
//! What is fixed is data: the document's top (`document.json`), the
//! runtime's schemas, parameters and error responses (`components.json`)
//! and the router's routes (`routes/*.json`, in OpenAPI's own form, each
//! operation naming who may call it). What the app brings is generated:
//! entity schemas (`entities.rs`), each operation's `security` from the
//! manifest (`access.rs`), the functions' routes (`functions.rs`). Data
//! rather than code keeps the Worker small: the generator is a few
//! kilobytes of wasm.

mod access;
mod entities;
mod functions;
mod json;
mod routes;

use serde_json::Value;

use crate::functions::FunctionInfo;
use crate::manifest::Manifest;
use json::{object, parse, text};

/// The document's top: `openapi`, `servers`, `tags`.
const TOP: &str = include_str!("document.json");
/// The runtime's own schemas, parameters, responses and security schemes.
const COMPONENTS: &str = include_str!("components.json");

/// The document for `manifest` and `functions` (the app's, as
/// `Functions::list` gives them); `version` is the runtime's version.
pub fn document(manifest: &Manifest, functions: &[FunctionInfo], version: &str) -> Value {
    let mut components = parse(COMPONENTS);
    if let Value::Object(schemas) = &mut components["schemas"] {
        entities::add_schemas(schemas, manifest);
    }
    let mut paths = routes::paths(manifest);
    functions::add(&mut paths, functions, manifest);
    keep_built(&mut paths, crate::features::Feature::built);
    let mut doc = parse(TOP);
    doc["info"] = info(manifest, version);
    doc["paths"] = Value::Object(paths);
    doc["components"] = components;
    doc
}

/// Drops the paths of the parts this build leaves out (they answer 501
/// `NOT_BUILT`, src/features.rs).
fn keep_built(
    paths: &mut serde_json::Map<String, Value>,
    built: impl Fn(crate::features::Feature) -> bool,
) {
    paths.retain(|path, _| crate::features::for_path(path).is_none_or(&built));
}

fn info(manifest: &Manifest, version: &str) -> Value {
    let title = manifest.name().unwrap_or("pylon-workers app");
    let description = format!(
        "The HTTP API of `{title}`, served by pylon-workers {version} and generated from its \
         manifest and server functions.\n\n\
         Errors are `{{\"error\": {{\"code\", \"message\", \"reason\"?}}}}` with stable codes \
         (docs/protocol.md, Errors). Credentials: `Authorization: Bearer <JWT>` (an identity \
         provider's token or a sign-in session token), or the sign-in cookie. Shard rules: {}. \
         Live queries, presence and broadcasts go over the WebSocket of `GET \
         /v1/shards/{{shard}}/ws` (docs/protocol.md). Function arguments are not described: \
         their validators are checked when a function is called.",
        access::shard_rules(manifest)
    );
    object([
        ("title", text(title)),
        // The app's own version when the manifest has one, else the runtime's.
        ("version", text(manifest.version().unwrap_or(version))),
        ("description", text(description)),
        ("x-pylon-runtime", text(version)),
    ])
}

/// The `{placeholders}` of a path template, in order.
#[cfg(test)]
fn placeholders(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::functions::FnKind;
    use serde_json::{json, Map};

    #[test]
    fn the_paths_of_a_part_left_out_are_not_described() {
        use crate::features::Feature;
        let mut paths = routes::paths(&board());
        let before = paths.len();
        assert!(paths.contains_key("/v1/crons") && paths.contains_key("/v1/cache/{key}"));
        keep_built(&mut paths, |f| f != Feature::Jobs && f != Feature::Cache);
        assert!(!paths.keys().any(|p| p.starts_with("/v1/jobs")
            || p.starts_with("/v1/workflows")
            || p.starts_with("/v1/crons")
            || p.starts_with("/v1/cache")));
        assert!(paths.contains_key("/v1/query") && paths.len() < before);
        assert!(paths.keys().any(|p| p.starts_with("/v1/files")));
    }

    fn board() -> Manifest {
        Manifest::from_json_str(include_str!("../../examples/board/schema.json")).unwrap()
    }

    fn fns() -> Vec<FunctionInfo> {
        [
            ("moveCard", FnKind::Mutation),
            ("boardSummary", FnKind::Query),
            ("notifyCard", FnKind::Action),
        ]
        .into_iter()
        .map(|(name, kind)| FunctionInfo {
            name: name.into(),
            kind,
            trusted: false,
        })
        .collect()
    }

    /// Every `$ref` in `v`.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }

    #[test]
    fn placeholders_in_order() {
        let got: Vec<&str> = placeholders("/v1/match/{kind}/{queue}/tickets/{ticket}").collect();
        assert_eq!(got, ["kind", "queue", "ticket"]);
        assert_eq!(placeholders("/healthz").count(), 0);
    }

    #[test]
    fn the_top_lists_the_tags_operations_use() {
        let doc = document(&board(), &fns(), "0.1.0");
        let tags: Vec<&str> = doc["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                let tag = op["tags"][0].as_str().unwrap();
                assert!(tags.contains(&tag), "{tag}");
            }
        }
    }

    #[test]
    fn components_json_is_an_object_of_four_sections() {
        let c: Map<String, Value> = serde_json::from_str(COMPONENTS).unwrap();
        let keys: Vec<&String> = c.keys().collect();
        assert_eq!(
            keys,
            ["parameters", "responses", "schemas", "securitySchemes"]
        );
    }

    #[test]
    fn every_ref_resolves() {
        let doc = document(&board(), &fns(), "0.1.0");
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(all.len() > 100, "{}", all.len());
        for r in all {
            let pointer = r.strip_prefix('#').expect("internal refs only");
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
    }

    #[test]
    fn operation_ids_are_unique_and_path_parameters_declared() {
        let doc = document(&board(), &fns(), "0.1.0");
        let mut ids = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap();
                assert!(ids.insert(id.to_owned()), "{id} twice");
                let declared: BTreeSet<String> = op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| {
                        let r = p["$ref"].as_str().unwrap();
                        let p = doc.pointer(&r[1..]).unwrap();
                        format!(
                            "{}:{}",
                            p["in"].as_str().unwrap(),
                            p["name"].as_str().unwrap()
                        )
                    })
                    .collect();
                for name in placeholders(path) {
                    assert!(
                        declared.contains(&format!("path:{name}")),
                        "{method} {path}: {name} not declared"
                    );
                }
                let in_path = declared.iter().filter(|d| d.starts_with("path:")).count();
                assert_eq!(in_path, placeholders(path).count(), "{path}");
            }
        }
    }

    #[test]
    fn the_boards_document() {
        let doc = document(&board(), &fns(), "0.1.0");
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(doc["info"]["title"], "collab-todos");
        assert_eq!(doc["info"]["version"], "1");
        assert_eq!(doc["info"]["x-pylon-runtime"], "0.1.0");
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes["bearer"]["scheme"], "bearer");
        assert_eq!(schemes["sessionCookie"]["name"], "pylon_session");
        let schemas = &doc["components"]["schemas"];
        for e in ["User", "Card", "Todo", "Channel", "Message", "Attachment"] {
            assert_eq!(schemas[e]["type"], "object", "{e}");
        }
        assert_eq!(schemas["EntityName"]["enum"].as_array().unwrap().len(), 6);
        let paths = &doc["paths"];
        for f in ["moveCard", "boardSummary", "notifyCard"] {
            let op = &paths[format!("/v1/shards/{{shard}}/fn/{f}")]["post"];
            assert_eq!(op["operationId"], format!("fn_{f}"));
        }
        // The board lets anonymous callers into `*` shards and the cold
        // path; jobs need a signed-in caller; crons an admin.
        let optional = json!([{ "bearer": [] }, { "sessionCookie": [] }, {}]);
        let required = json!([{ "bearer": [] }, { "sessionCookie": [] }]);
        assert_eq!(
            paths["/v1/shards/{shard}/query"]["post"]["security"],
            optional
        );
        assert_eq!(paths["/v1/query"]["post"]["security"], optional);
        assert_eq!(paths["/v1/jobs"]["post"]["security"], required);
        assert_eq!(paths["/v1/crons"]["get"]["security"], required);
        assert_eq!(paths["/healthz"]["get"]["security"], json!([]));
        assert_eq!(paths["/v1/openapi.json"]["get"]["security"], json!([]));
        let ws = &paths["/v1/shards/{shard}/ws"]["get"]["responses"]["101"];
        assert_eq!(ws["$ref"], "#/components/responses/Upgrade");
        let rules = doc["info"]["description"].as_str().unwrap();
        assert!(
            rules.contains("`team:{tenantId}` is for the caller"),
            "{rules}"
        );
    }

    #[test]
    fn a_manifest_without_name_version_or_entities() {
        let m = Manifest::from_json_str(r#"{"entities":[]}"#).unwrap();
        let doc = document(&m, &[], "9.9.9");
        assert_eq!(doc["info"]["title"], "pylon-workers app");
        assert_eq!(doc["info"]["version"], "9.9.9");
        assert_eq!(
            doc["components"]["schemas"]["EntityName"],
            json!({"type": "string"})
        );
        // Without `auth`, every shard needs a token.
        let security = &doc["paths"]["/v1/shards/{shard}/mutate"]["post"]["security"];
        assert_eq!(security.as_array().unwrap().len(), 2);
    }
}
