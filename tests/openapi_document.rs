//! The board's OpenAPI document (`pylon_workers::openapi`) checked by real
//! validators: `tests/openapi/validate.mjs` runs
//! @seriousme/openapi-schema-validator (the OpenAPI 3.1 schema and every
//! `$ref`) and ajv (every schema compiles as JSON Schema 2020-12, answers
//! fit their schemas). Node comes from `scripts/env.sh` (installed by
//! `scripts/setup.sh`); without it these tests fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pylon_workers::functions::{ActionCtx, Functions};
use pylon_workers::manifest::Manifest;
use pylon_workers::value::Value;
use serde_json::{json, Value as Json};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A few functions of each kind (the board's own are TypeScript, in its
/// bundle, and Rust, in its crate, which this crate does not depend on).
fn functions() -> Functions {
    Functions::new()
        .query("cardsInColumn", |_, _| Ok(Value::Null))
        .mutation("moveCard", |_, _| Ok(Value::Null))
        .trusted_mutation("stamp", |_, _| Ok(Value::Null))
        .action("notifyCard", |_: ActionCtx<'_>, _| {
            Box::pin(async { Ok(Value::Null) })
        })
}

fn board_document() -> Json {
    let text = std::fs::read_to_string(root().join("examples/board/schema.json")).unwrap();
    let manifest = Manifest::from_json_str(&text).unwrap();
    pylon_workers::openapi::document(&manifest, &functions().list(), "0.1.0")
}

/// Writes `value` under the test's temporary directory.
fn write(name: &str, value: &Json) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("openapi");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
    path
}

/// `node tests/openapi/validate.mjs ARGS` with the project's node.
fn validate(args: &[String]) -> Output {
    Command::new("bash")
        .arg("-c")
        .arg(r#"source scripts/env.sh && exec node tests/openapi/validate.mjs "$@""#)
        .arg("validate")
        .args(args)
        .current_dir(root())
        .output()
        .expect("bash runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_boards_document_is_valid_openapi_3_1() {
    let doc = board_document();
    for f in ["cardsInColumn", "moveCard", "stamp", "notifyCard"] {
        let path = format!("/v1/shards/{{shard}}/fn/{f}");
        assert!(doc["paths"][&path]["post"].is_object(), "{path}");
    }
    let file = write("board.json", &doc);
    let out = validate(&[file.display().to_string()]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("openapi: valid 3.1"), "{said}");
}

#[test]
fn answers_are_checked_against_their_schemas() {
    let doc = write("board-answers.json", &board_document());
    let page = write(
        "page.json",
        &json!({"seq": 3, "next": null, "rows": [
            {"id": "c1", "title": "hello", "done": false, "position": 1.0,
             "createdAt": "2026-11-23T00:00:00Z", "column": null}]}),
    );
    let count = write("count.json", &json!({"seq": 3, "count": 7}));
    let error = write(
        "error.json",
        &json!({"error": {"code": "NOT_FOUND", "message": "no route"}}),
    );
    let args = |pairs: &[(&str, &PathBuf)]| -> Vec<String> {
        std::iter::once(doc.display().to_string())
            .chain(pairs.iter().map(|(s, f)| format!("{s}={}", f.display())))
            .collect()
    };
    let out = validate(&args(&[
        ("QueryAnswer", &page),
        ("QueryAnswer", &count),
        ("Error", &error),
    ]));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("3 answers fit"), "{}", text(&out));

    // A Todo row without its required fields fits no entity.
    let bad_row = write(
        "bad-row.json",
        &json!({"seq": 1, "next": null, "rows": [{"id": "t1", "title": 5}]}),
    );
    let out = validate(&args(&[("QueryPage", &bad_row)]));
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("does not fit QueryPage"),
        "{}",
        text(&out)
    );
}

/// A way to break a document, and what the validator must say about it.
type Breakage = (&'static str, fn(&mut Json), &'static str);

#[test]
fn broken_documents_are_refused() {
    let cases: [Breakage; 5] = [
        (
            "dangling-ref",
            |d| {
                d["components"]["schemas"]
                    .as_object_mut()
                    .unwrap()
                    .remove("Error");
            },
            "not a valid OpenAPI document",
        ),
        (
            "bad-type",
            |d| d["components"]["schemas"]["Card"]["properties"]["title"]["type"] = json!("strnig"),
            "schema Card is not JSON Schema 2020-12",
        ),
        (
            "typo",
            |d| d["components"]["schemas"]["Card"]["properties"]["title"]["minLenght"] = json!(3),
            "unknown keyword: \"minLenght\"",
        ),
        (
            "twice",
            |d| d["paths"]["/v1/query"]["post"]["operationId"] = json!("health"),
            "operationId health",
        ),
        (
            "undeclared",
            |d| {
                d["paths"]["/v1/shards/{shard}/stats"]["get"]
                    .as_object_mut()
                    .unwrap()
                    .remove("parameters");
            },
            "path parameter shard is not declared",
        ),
    ];
    for (name, break_it, expected) in cases {
        let mut doc = board_document();
        break_it(&mut doc);
        let file = write(&format!("{name}.json"), &doc);
        let out = validate(&[file.display().to_string()]);
        assert!(!out.status.success(), "{name}: {}", text(&out));
        assert!(text(&out).contains(expected), "{name}: {}", text(&out));
    }
}
