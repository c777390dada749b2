use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};

use crate::support::{card, get_any, post, project_root, unique};
use crate::Ctx;

/// `GET /v1/openapi.json` answers the board's document without
/// credentials, cacheable; it has a path for every TypeScript function of
/// the board; it is valid OpenAPI 3.1 (`tests/openapi/validate.mjs`); and
/// real answers of the Worker fit the schemas it gives them.
pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let resp = reqwest::get(ctx.dev.http("/v1/openapi.json")).await?;
    ensure!(resp.status() == 200, "status {}", resp.status());
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    ensure!(
        header("content-type").starts_with("application/json"),
        "content-type {:?}",
        header("content-type")
    );
    ensure!(
        header("cache-control") == "public, max-age=300",
        "cache-control {:?}",
        header("cache-control")
    );
    let doc: Value = resp.json().await?;
    ensure!(doc["openapi"] == "3.1.0", "{}", doc["openapi"]);
    ensure!(doc["info"]["title"] == "collab-todos", "{}", doc["info"]);

    let functions = board_ts_functions()?;
    ensure!(functions.len() >= 5, "{functions:?}");
    for name in &functions {
        let path = format!("/v1/shards/{{shard}}/fn/{name}");
        ensure!(
            doc["paths"][&path]["post"]["operationId"] == format!("fn_{name}"),
            "no {path} in the document"
        );
    }

    // Real answers, each with the schema the document gives it.
    let shard = unique("openapi");
    let (status, health) = get_any(&ctx.dev.http("/healthz")).await?;
    ensure!(status == 200, "{status} {health}");
    let (status, written) = post(
        &ctx.dev.http(&format!("/v1/shards/{shard}/mutate")),
        &json!({"op": unique("op"), "ops": [
            {"type": "insert", "entity": "Card", "row": card("c1", "documented", 1.0)}]}),
    )
    .await?;
    ensure!(status == 200, "{status} {written}");
    let (status, page) = post(
        &ctx.dev.http(&format!("/v1/shards/{shard}/query")),
        &json!({"entity": "Card", "order": ["position"]}),
    )
    .await?;
    ensure!(
        status == 200 && page["rows"][0]["id"] == "c1",
        "{status} {page}"
    );
    let (status, count) = post(
        &ctx.dev.http(&format!("/v1/shards/{shard}/query")),
        &json!({"entity": "Card", "count": true}),
    )
    .await?;
    ensure!(status == 200, "{status} {count}");
    let (status, stats) = get_any(&ctx.dev.http(&format!("/v1/shards/{shard}/stats"))).await?;
    ensure!(status == 200, "{status} {stats}");
    let (status, missing) = get_any(&ctx.dev.http("/nope")).await?;
    ensure!(status == 404, "{status} {missing}");

    let dir = ctx.dir.join("openapi");
    std::fs::create_dir_all(&dir)?;
    let write = |name: &str, v: &Value| -> Result<PathBuf> {
        let path = dir.join(name);
        std::fs::write(&path, serde_json::to_vec(v)?)?;
        Ok(path)
    };
    let mut args = vec![write("document.json", &doc)?.display().to_string()];
    for (schema, file, answer) in [
        ("Health", "health.json", &health),
        ("MutationResult", "mutate.json", &written),
        ("QueryAnswer", "page.json", &page),
        ("QueryAnswer", "count.json", &count),
        ("ShardStats", "stats.json", &stats),
        ("Error", "error.json", &missing),
    ] {
        args.push(format!("{schema}={}", write(file, answer)?.display()));
    }
    let out = Command::new("bash")
        .arg("-c")
        .arg(r#"source scripts/env.sh && exec node tests/openapi/validate.mjs "$@""#)
        .arg("validate")
        .args(&args)
        .current_dir(project_root())
        .output()
        .context("running tests/openapi/validate.mjs")?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!("the served document or an answer is refused:\n{said}");
    }
    ensure!(said.contains("6 answers fit"), "{said}");
    Ok(())
}

/// The board's TypeScript functions: `functions/*.ts` whose name does not
/// start with `_` (helpers), as the build bundles them.
fn board_ts_functions() -> Result<Vec<String>> {
    let dir = project_root().join("examples/board/functions");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let file = entry?.file_name().to_string_lossy().into_owned();
        if let Some(name) = file.strip_suffix(".ts") {
            if !name.starts_with('_') && !name.ends_with(".d") {
                names.push(name.to_owned());
            }
        }
    }
    names.sort();
    Ok(names)
}
