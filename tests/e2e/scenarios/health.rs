use anyhow::{ensure, Result};

use crate::support::get_json;
use crate::Ctx;

/// `GET /healthz` answers `{"ok":true,"version":...}`.
pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let body = get_json(&ctx.dev.http("/healthz")).await?;
    ensure!(body["ok"] == true, "ok is not true: {body}");
    ensure!(
        body["version"] == env!("CARGO_PKG_VERSION"),
        "version: {body}"
    );
    Ok(())
}
