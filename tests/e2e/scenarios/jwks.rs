//! RS256 and ES256 tokens against the suite's JWKS server (the Worker's
//! `PYLON_JWKS_URL`): with the endpoint down and nothing cached, then
//! valid, badly signed, expired, wrong-audience and unknown-kid tokens, a
//! flood of random kids (the endpoint is not hammered), a key rotation,
//! and the endpoint down again while cached keys keep working.
//!
//! A burst of concurrent first requests waits for one fetch.
//!
//! The example manifest sets `auth.jwks.minRefreshSeconds` to 2, so waits
//! below poll for up to a few seconds where a refetch must be allowed.

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use pylon_workers::auth::jwt;
use pylon_workers::auth::sign::{jwk_rs256, sign_es256, sign_rs256};
use pylon_workers::client::{ClientConfig, Query};
use pylon_workers::protocol::Encoding;
use serde_json::{json, Value};

use crate::support::jwks::TestKeys;
use crate::support::{unique, within};
use crate::Ctx;

const AUDIENCE: &str = "pylon-dev";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn claims(sub: &str, extra: Value) -> Value {
    let mut c = json!({"sub": sub, "aud": AUDIENCE, "exp": now() + 300});
    for (k, v) in extra.as_object().into_iter().flatten() {
        c[k] = v.clone();
    }
    c
}

/// POST a query with a bearer token: status, body, Retry-After.
async fn query(url: &str, token: &str) -> Result<(u16, Value, Option<String>)> {
    let resp = reqwest::Client::new()
        .post(url)
        .header("Authorization", format!("Bearer {token}"))
        .json(&json!({"entity": "Todo"}))
        .send()
        .await?;
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Ok((status, resp.json().await?, retry))
}

fn reason(body: &Value) -> &str {
    body["error"]["reason"].as_str().unwrap_or("")
}

/// Repeats the query until it answers `status` (a refetch waits for the
/// refresh interval), for at most 10 s.
async fn until(url: &str, token: &str, status: u16) -> Result<Value> {
    let started = Instant::now();
    loop {
        let (s, body, _) = query(url, token).await?;
        if s == status {
            return Ok(body);
        }
        ensure!(
            started.elapsed() < Duration::from_secs(10),
            "still {s} {body}, wanted {status}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let keys = TestKeys::load()?;
    let jwks = ctx.jwks.clone();
    let user = unique("rs");
    let own = ctx.dev.http(&format!("/v1/shards/user:{user}/query"));
    let other = ctx
        .dev
        .http(&format!("/v1/shards/user:{}/query", unique("bob")));
    let rs = sign_rs256(&claims(&user, json!({})), Some("rsa-a"), &keys.rsa_a);
    let es = sign_es256(&claims(&user, json!({})), Some("ec-a"), &keys.ec_a);

    // Down, nothing cached: 503 with a code and a Retry-After.
    jwks.set_up(false);
    let (s, body, retry) = query(&own, &rs).await?;
    ensure!(
        s == 503 && body["error"]["code"] == "UNAVAILABLE" && reason(&body) == "JWKS_UNAVAILABLE",
        "down, no cache: {s} {body}"
    );
    ensure!(retry.is_some(), "down, no cache: no Retry-After");
    ensure!(jwks.hits() >= 1, "the Worker did not try the JWKS URL");

    // Up again, and slow: once the refresh interval allows a new fetch,
    // concurrent first requests wait for the one fetch instead of each
    // fetching or failing.
    jwks.set_up(true);
    jwks.set_delay_ms(400);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let before = jwks.hits();
    let burst: Vec<_> = (0..8).map(|_| query(&own, &rs)).collect();
    for (i, got) in futures_util::future::join_all(burst)
        .await
        .into_iter()
        .enumerate()
    {
        let (s, body, _) = got?;
        ensure!(s == 200, "concurrent first request {i}: {s} {body}");
    }
    ensure!(
        jwks.hits() - before == 1,
        "{} fetches for one cold burst",
        jwks.hits() - before
    );
    jwks.set_delay_ms(0);
    let (s, body, _) = query(&own, &es).await?;
    ensure!(s == 200, "ES256: {s} {body}");
    // The caller is the token's subject: someone else's user shard is 403.
    let (s, body, _) = query(&other, &rs).await?;
    ensure!(
        s == 403 && reason(&body) == "SHARD_DENIED",
        "other user: {s} {body}"
    );

    // Refusals with their reasons.
    let forged = sign_rs256(&claims(&user, json!({})), Some("rsa-a"), &keys.rsa_b);
    let forged_ec = sign_es256(&claims(&user, json!({})), Some("ec-a"), &keys.ec_b);
    let expired = sign_rs256(
        &claims(&user, json!({"exp": now() - 3600})),
        Some("rsa-a"),
        &keys.rsa_a,
    );
    let aud = sign_es256(
        &claims(&user, json!({"aud": "other"})),
        Some("ec-a"),
        &keys.ec_a,
    );
    // HS256 "signed" with the published RSA key: alg confusion.
    let public = jwk_rs256(&keys.rsa_a, "rsa-a").to_string();
    let confused = jwt::sign_with_header(
        &json!({"alg": "HS256", "kid": "rsa-a"}),
        &claims(&user, json!({})),
        public.as_bytes(),
    );
    // WebCrypto gets signatures of the wrong length too (a truncated ES256
    // one, an RS256 one with a byte more): refused, not a 500.
    let cut = |t: &str, keep: usize| {
        let (head, sig) = t.rsplit_once('.').unwrap_or((t, ""));
        format!("{head}.{}", &sig[..keep.min(sig.len())])
    };
    let truncated_ec = cut(&es, 40);
    let long_rs = format!("{rs}AAAA");
    for (what, token, want) in [
        ("truncated ES signature", &truncated_ec, "BAD_SIGNATURE"),
        ("RS signature with extra bytes", &long_rs, "BAD_SIGNATURE"),
        ("bad RS signature", &forged, "BAD_SIGNATURE"),
        ("bad ES signature", &forged_ec, "BAD_SIGNATURE"),
        ("expired", &expired, "EXPIRED"),
        ("wrong audience", &aud, "WRONG_AUDIENCE"),
        ("HS256 with the public key", &confused, "BAD_SIGNATURE"),
    ] {
        let (s, body, _) = query(&own, token).await?;
        ensure!(s == 401 && reason(&body) == want, "{what}: {s} {body}");
    }

    // A flood of random kids: UNKNOWN_KEY, and at most one refetch per
    // refresh interval (2 s) reaches the JWKS endpoint.
    let before = jwks.hits();
    let started = Instant::now();
    for i in 0..30 {
        let t = sign_rs256(
            &claims(&user, json!({})),
            Some(&format!("random-{i}-{}", unique("k"))),
            &keys.rsa_a,
        );
        let (s, body, _) = query(&own, &t).await?;
        ensure!(
            s == 401 && reason(&body) == "UNKNOWN_KEY",
            "random kid: {s} {body}"
        );
    }
    let allowed = 1 + started.elapsed().as_secs() / 2;
    let fetched = jwks.hits() - before;
    ensure!(
        fetched <= allowed,
        "30 random kids caused {fetched} JWKS fetches in {:?}",
        started.elapsed()
    );

    // Rotation: the provider publishes rsa-b/ec-b and drops rsa-a/ec-a.
    jwks.set_doc(keys.rotated());
    let rs_b = sign_rs256(&claims(&user, json!({})), Some("rsa-b"), &keys.rsa_b);
    let es_b = sign_es256(&claims(&user, json!({})), Some("ec-b"), &keys.ec_b);
    until(&own, &rs_b, 200).await?;
    let (s, body, _) = query(&own, &es_b).await?;
    ensure!(s == 200, "rotated ES256: {s} {body}");
    let (s, body, _) = query(&own, &rs).await?;
    ensure!(
        s == 401 && reason(&body) == "UNKNOWN_KEY",
        "retired key: {s} {body}"
    );

    // Down with keys cached: they keep working; unknown kids stay refused.
    jwks.set_up(false);
    tokio::time::sleep(Duration::from_millis(2100)).await; // a refetch is allowed
    let (s, body, _) = query(&own, &rs_b).await?;
    ensure!(s == 200, "cached key while down: {s} {body}");
    let (s, body, _) = query(&own, &rs).await?;
    ensure!(
        s == 401 && reason(&body) == "UNKNOWN_KEY",
        "unknown kid while down: {s} {body}"
    );

    // A WebSocket with an RS256 token in the subprotocol list.
    let config = ClientConfig::new(
        format!("ws://127.0.0.1:{}", ctx.dev.port),
        format!("user:{user}"),
    )
    .encoding(Encoding::Json)
    .connect_timeout(Duration::from_secs(5))
    .token(&rs_b);
    let client = within("connect", pylon_workers::client::Client::connect(config)).await??;
    let sub = client.subscribe(Query::new("Todo")).await;
    ensure!(
        sub.is_ok(),
        "subscribe with an RS256 identity: {:?}",
        sub.err()
    );
    jwks.set_up(true);
    Ok(())
}
