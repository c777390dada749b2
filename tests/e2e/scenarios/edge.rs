//! The router's edge layer against wrangler dev: security headers on API
//! answers (errors included) and on the demo's static files (`_headers`),
//! CORS for the configured origin (`PYLON_CORS_ORIGINS`, set by the
//! harness) and none for others, and no token or secret in the wrangler
//! log of a run that sent many (this runs after the auth, jwks and hello
//! scenarios).

use anyhow::{ensure, Result};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::json;

use super::auth::dev_secret;
use crate::support::unique;
use crate::Ctx;

/// The origin the harness allows (`PYLON_CORS_ORIGINS`).
pub const ALLOWED_ORIGIN: &str = "https://app.example.test";
const OTHER_ORIGIN: &str = "https://evil.example.test";

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn security_headers(what: &str, h: &HeaderMap) -> Result<()> {
    ensure!(
        header(h, "x-content-type-options") == Some("nosniff"),
        "{what}: nosniff {h:?}"
    );
    ensure!(
        header(h, "x-frame-options") == Some("DENY"),
        "{what}: x-frame-options {h:?}"
    );
    ensure!(
        header(h, "referrer-policy").is_some(),
        "{what}: referrer-policy {h:?}"
    );
    let csp = header(h, "content-security-policy").unwrap_or_default();
    ensure!(
        csp.contains("frame-ancestors 'none'"),
        "{what}: csp {csp:?}"
    );
    // HSTS is for https answers only (wrangler dev speaks http).
    ensure!(
        header(h, "strict-transport-security").is_none(),
        "{what}: hsts over http"
    );
    Ok(())
}

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let http = reqwest::Client::new();
    let shard = unique("edge");
    let query_url = ctx.dev.http(&format!("/v1/shards/{shard}/query"));

    // Security headers: a JSON answer, an error, the demo page.
    let health = http.get(ctx.dev.http("/healthz")).send().await?;
    security_headers("healthz", health.headers())?;
    ensure!(header(health.headers(), "vary") == Some("Origin"));
    let missing = http.get(ctx.dev.http("/v1/nope")).send().await?;
    ensure!(missing.status() == 404);
    security_headers("404", missing.headers())?;
    let page = http.get(ctx.dev.http("/")).send().await?;
    ensure!(page.status() == 200, "demo page: {}", page.status());
    let h = page.headers();
    ensure!(
        header(h, "x-content-type-options") == Some("nosniff"),
        "page: {h:?}"
    );
    ensure!(header(h, "x-frame-options") == Some("DENY"), "page: {h:?}");
    let csp = header(h, "content-security-policy").unwrap_or_default();
    ensure!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "page csp: {csp:?}"
    );

    // Preflight from the allowed origin: 204 with credentials.
    let pre = http
        .request(Method::OPTIONS, &query_url)
        .header("Origin", ALLOWED_ORIGIN)
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization, content-type",
        )
        .send()
        .await?;
    let h = pre.headers();
    ensure!(pre.status() == 204, "preflight: {}", pre.status());
    ensure!(
        header(h, "access-control-allow-origin") == Some(ALLOWED_ORIGIN),
        "{h:?}"
    );
    ensure!(
        header(h, "access-control-allow-credentials") == Some("true"),
        "{h:?}"
    );
    ensure!(
        header(h, "access-control-allow-methods").is_some_and(|m| m.contains("POST")),
        "{h:?}"
    );
    ensure!(header(h, "vary") == Some("Origin"), "{h:?}");
    // From another origin, or asking for another header: refused.
    for (origin, asked) in [
        (OTHER_ORIGIN, "content-type"),
        (ALLOWED_ORIGIN, "x-pylon-auth"),
    ] {
        let pre = http
            .request(Method::OPTIONS, &query_url)
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", asked)
            .send()
            .await?;
        let status = pre.status().as_u16();
        let h = pre.headers().clone();
        ensure!(
            header(&h, "access-control-allow-origin").is_none(),
            "{origin}: {h:?}"
        );
        let body: serde_json::Value = pre.json().await?;
        ensure!(
            status == 403 && body["error"]["code"] == "CORS_REFUSED",
            "{origin} {asked}: {status} {body}"
        );
    }

    // Actual requests: the allowed origin may read the answer (errors too).
    let body = json!({"entity": "Card"});
    let ok = http
        .post(&query_url)
        .header("Origin", ALLOWED_ORIGIN)
        .json(&body)
        .send()
        .await?;
    ensure!(ok.status() == 200);
    let h = ok.headers();
    ensure!(
        header(h, "access-control-allow-origin") == Some(ALLOWED_ORIGIN),
        "{h:?}"
    );
    ensure!(
        header(h, "access-control-allow-credentials") == Some("true"),
        "{h:?}"
    );
    security_headers("shard answer", h)?;
    let refused = http
        .post(&query_url)
        .header("Origin", ALLOWED_ORIGIN)
        .header("Authorization", "Bearer not.a.token")
        .json(&body)
        .send()
        .await?;
    ensure!(refused.status() == 401);
    let h = refused.headers();
    ensure!(
        header(h, "access-control-allow-origin") == Some(ALLOWED_ORIGIN),
        "{h:?}"
    );
    ensure!(
        header(h, "access-control-expose-headers").is_some_and(|e| e.contains("WWW-Authenticate")),
        "{h:?}"
    );
    let other = http
        .post(&query_url)
        .header("Origin", OTHER_ORIGIN)
        .json(&body)
        .send()
        .await?;
    let h = other.headers();
    ensure!(header(h, "access-control-allow-origin").is_none(), "{h:?}");
    ensure!(
        header(h, "access-control-allow-credentials").is_none(),
        "{h:?}"
    );
    ensure!(header(h, "vary") == Some("Origin"), "{h:?}");

    // No token or secret in the log of this run (tokens were sent by the
    // auth, jwks and hello scenarios, in headers, subprotocols and hellos).
    let log = std::fs::read_to_string(&ctx.dev.log)?;
    ensure!(
        log.contains("/v1/shards/"),
        "the log has no requests: is it the right file?"
    );
    let secret = dev_secret()?;
    ensure!(
        !log.contains(&secret),
        "the HS256 secret is in the wrangler log"
    );
    // Every JWT starts with base64url of `{"` + `alg`/`typ`: "eyJ".
    if let Some(at) = log.find("eyJ") {
        let shown: String = log[at.saturating_sub(80)..].chars().take(160).collect();
        anyhow::bail!("a token is in the wrangler log: …{shown}…");
    }
    ensure!(
        !log.contains("bearer."),
        "a bearer subprotocol entry is in the log"
    );
    Ok(())
}
