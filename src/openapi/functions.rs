//! One operation per server function: `POST /v1/shards/{shard}/fn/{name}`
//! (docs/functions.md, Calling functions), actions included. The
//! arguments are any JSON here: a function's validators are not visible to
//! the runtime (TypeScript ones live in the bundle, Rust ones take a
//! `Value`), so a call that does not fit them is only refused when made
//! (400 `BAD_ARGS`).

use serde_json::{Map, Value};

use super::access;
use super::json::{component_ref, object, parse, text};
use crate::functions::{FnKind, FunctionInfo};
use crate::manifest::Manifest;

/// Every function's operation, before its name and kind are filled in.
const TEMPLATE: &str = r##"{
  "tags": ["functions"],
  "parameters": [{"$ref": "#/components/parameters/shard"}],
  "requestBody": {
    "required": false,
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Json"}}}
  },
  "responses": {
    "200": {
      "description": "OK",
      "content": {"application/json": {"schema": {"$ref": "#/components/schemas/FunctionResult"}}}
    },
    "400": {"$ref": "#/components/responses/BadRequest"},
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "403": {"$ref": "#/components/responses/Forbidden"},
    "404": {"$ref": "#/components/responses/NotFound"},
    "413": {"$ref": "#/components/responses/TooLarge"},
    "422": {"$ref": "#/components/responses/Unprocessable"},
    "429": {"$ref": "#/components/responses/RateLimited"},
    "500": {"$ref": "#/components/responses/Internal"},
    "503": {"$ref": "#/components/responses/Unavailable"}
  },
  "x-pylon-access": "shardRules"
}"##;

/// The path of `name`'s route.
pub fn path(name: &str) -> String {
    format!("/v1/shards/{{shard}}/fn/{name}")
}

/// The operation id of `name`'s route; function names are identifiers,
/// and no route of the router's has a `_`, so they never clash.
pub fn operation_id(name: &str) -> String {
    format!("fn_{name}")
}

fn description(f: &FunctionInfo) -> String {
    let kind = match f.kind {
        FnKind::Query => {
            "A query: reads the shard's rows inside its turn (over a socket, `watch` keeps it live)."
        }
        FnKind::Mutation => {
            "A mutation: reads and writes the shard's rows inside its turn, all or nothing; \
             `op` makes a retry run it once."
        }
        FnKind::Action => {
            "An action: runs in the router Worker, outside any turn; may do I/O and call the \
             shard's queries and mutations as the same caller. Only over HTTP."
        }
    };
    let trusted = if f.trusted {
        " Trusted: its reads and writes skip the policies (the caller is still `ctx.auth`)."
    } else {
        ""
    };
    format!(
        "{kind}{trusted} The body is the arguments as JSON (empty: null); they are checked \
         against the function's validators when it is called (400 `BAD_ARGS`), not described \
         here."
    )
}

/// The operation of `f`, under the manifest's shard rules.
pub fn operation(f: &FunctionInfo, manifest: &Manifest) -> Value {
    let mut op = parse(TEMPLATE);
    op["operationId"] = text(operation_id(&f.name));
    op["summary"] = text(format!("`{}` ({})", f.name, f.kind.as_str()));
    op["description"] = text(description(f));
    match f.kind {
        FnKind::Action => {
            op["responses"]["200"]["content"]["application/json"]["schema"] =
                component_ref("schemas", "ActionResult");
        }
        _ => {
            if let Value::Array(params) = &mut op["parameters"] {
                params.push(component_ref("parameters", "op"));
            }
        }
    }
    op["x-pylon-function"] = object([
        ("kind", text(f.kind.as_str())),
        ("trusted", Value::Bool(f.trusted)),
    ]);
    access::apply(&mut op, manifest);
    op
}

/// Adds every function's route to `paths`.
pub fn add(paths: &mut Map<String, Value>, functions: &[FunctionInfo], manifest: &Manifest) {
    for f in functions {
        let op = operation(f, manifest);
        paths.insert(path(&f.name), object([("post", op)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn info(name: &str, kind: FnKind, trusted: bool) -> FunctionInfo {
        FunctionInfo {
            name: name.into(),
            kind,
            trusted,
        }
    }

    fn manifest() -> Manifest {
        Manifest::from_json_str(r#"{"entities":[],"auth":{"anonymous":true}}"#).unwrap()
    }

    #[test]
    fn a_mutation() {
        let op = operation(&info("moveCard", FnKind::Mutation, false), &manifest());
        assert_eq!(path("moveCard"), "/v1/shards/{shard}/fn/moveCard");
        assert_eq!(op["operationId"], "fn_moveCard");
        assert_eq!(op["summary"], "`moveCard` (mutation)");
        assert_eq!(
            op["x-pylon-function"],
            json!({"kind": "mutation", "trusted": false})
        );
        assert_eq!(
            op["parameters"],
            json!([{"$ref": "#/components/parameters/shard"},
                   {"$ref": "#/components/parameters/op"}])
        );
        assert_eq!(op["requestBody"]["required"], false);
        assert_eq!(
            op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/FunctionResult"
        );
        assert!(op["description"]
            .as_str()
            .unwrap()
            .starts_with("A mutation"));
        assert!(op["responses"]["422"].is_object());
        // The implicit `*` rule with `anonymous: true`: callers without a
        // token too.
        assert_eq!(op["security"].as_array().unwrap().len(), 3);
        assert!(op["description"]
            .as_str()
            .unwrap()
            .contains("\n\nWho: the manifest's shard rules"));
    }

    #[test]
    fn an_action_and_a_trusted_query() {
        let op = operation(&info("notify", FnKind::Action, false), &manifest());
        assert_eq!(
            op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ActionResult"
        );
        assert_eq!(
            op["parameters"],
            json!([{"$ref": "#/components/parameters/shard"}])
        );
        let op = operation(&info("peek", FnKind::Query, true), &manifest());
        assert!(op["description"].as_str().unwrap().contains("Trusted"));
        assert_eq!(op["x-pylon-function"]["kind"], "query");
    }
}
