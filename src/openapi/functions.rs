//! One operation per server function: `POST /v1/shards/{shard}/fn/{name}`
//! (docs/functions.md, Calling functions), actions included. The
//! arguments are any JSON here: a function's validators are not visible to
//! the runtime (TypeScript ones live in the bundle, Rust ones take a
//! `Value`), so a call that does not fit them is only refused when made
//! (400 `BAD_ARGS`).

use serde_json::{json, Value};

use super::access::Access;
use super::operation::{Answer, Body, Fail, OpSpec, Tag};
use crate::functions::{FnKind, FunctionInfo};

const FAILS: &[Fail] = &[
    Fail::BadRequest,
    Fail::Forbidden,
    Fail::NotFound,
    Fail::TooLarge,
    Fail::Unprocessable,
    Fail::Unavailable,
];

/// The path of `name`'s route.
pub fn path(name: &str) -> String {
    format!("/v1/shards/{{shard}}/fn/{name}")
}

/// The operation id of `name`'s route; function names are identifiers,
/// and no route of the router's has a `_`, so they never clash.
pub fn operation_id(name: &str) -> String {
    format!("fn_{name}")
}

fn detail(f: &FunctionInfo) -> String {
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

/// The operation of `f`, under the shard rules of `security`/`who`.
pub fn operation(f: &FunctionInfo, security: Value, who: &str) -> Value {
    let path = path(&f.name);
    let id = operation_id(&f.name);
    let summary = format!("`{}` ({})", f.name, f.kind.as_str());
    let detail = detail(f);
    let (query, ok): (&'static [&'static str], &'static [Answer]) = match f.kind {
        FnKind::Action => (&[], &[Answer::Json(200, "ActionResult")]),
        _ => (&["op"], &[Answer::Json(200, "FunctionResult")]),
    };
    let spec = OpSpec::post(&path, &id, Tag::Functions, Access::ShardRules)
        .summary(&summary)
        .detail(&detail)
        .query(query)
        .body(Body::Optional("Json"))
        .ok(ok)
        .fails(FAILS);
    let mut op = spec.to_json(security, who);
    op["x-pylon-function"] = json!({ "kind": f.kind, "trusted": f.trusted });
    op
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, kind: FnKind, trusted: bool) -> FunctionInfo {
        FunctionInfo {
            name: name.into(),
            kind,
            trusted,
        }
    }

    #[test]
    fn a_mutation() {
        let op = operation(
            &info("moveCard", FnKind::Mutation, false),
            json!([]),
            "anyone",
        );
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
    }

    #[test]
    fn an_action_and_a_trusted_query() {
        let op = operation(&info("notify", FnKind::Action, false), json!([]), "x");
        assert_eq!(
            op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ActionResult"
        );
        assert_eq!(
            op["parameters"],
            json!([{"$ref": "#/components/parameters/shard"}])
        );
        let op = operation(&info("peek", FnKind::Query, true), json!([]), "x");
        assert!(op["description"].as_str().unwrap().contains("Trusted"));
        assert_eq!(op["x-pylon-function"]["kind"], "query");
    }
}
