use anyhow::{bail, ensure, Context, Result};
use pylon_workers::auth::{encode_context, jwt, AUTH_HEADER};
use pylon_workers::client::{ClientConfig, ClientError, Query};
use pylon_workers::policy::AuthContext;
use pylon_workers::protocol::{Encoding, ErrorCode, Op};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::{ids, project_root, unique, wait_rows, within};
use crate::Ctx;

/// The example schema's audience (examples/board/schema.json `auth.audience`).
const AUDIENCE: &str = "pylon-dev";

/// The development secret wrangler dev reads from `.dev.vars`.
pub(crate) fn dev_secret() -> Result<String> {
    let text = std::fs::read_to_string(project_root().join(".dev.vars"))?;
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("PYLON_JWT_SECRET="))
        .context("PYLON_JWT_SECRET in .dev.vars")?;
    Ok(line.trim().trim_matches('"').to_owned())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

struct Minter {
    secret: String,
}

impl Minter {
    /// A token for `sub` valid for five minutes, with `extra` claims.
    fn token(&self, sub: &str, extra: Value) -> String {
        let mut claims = json!({"sub": sub, "aud": AUDIENCE, "exp": now() + 300});
        for (k, v) in extra.as_object().into_iter().flatten() {
            claims[k] = v.clone();
        }
        jwt::sign_hs256(&claims, self.secret.as_bytes())
    }
}

/// POST JSON with optional bearer token and extra headers: status, body,
/// WWW-Authenticate.
async fn post(
    url: &str,
    body: &Value,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> Result<(u16, Value, Option<String>)> {
    send(reqwest::Client::new().post(url).json(body), token, headers).await
}

/// Status, JSON body (null when empty) and `WWW-Authenticate` of a request.
async fn send(
    mut req: reqwest::RequestBuilder,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> Result<(u16, Value, Option<String>)> {
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = resp.bytes().await?;
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)?
    };
    Ok((status, body, challenge))
}

fn todo(id: &str, owner: &str) -> Value {
    json!({"id": id, "title": id, "done": false, "createdAt": "2026-11-23T00:00:00Z",
           "ownerId": owner})
}

fn insert_todo(id: &str, owner: &str) -> Value {
    json!({"ops": [{"type": "insert", "entity": "Todo", "row": todo(id, owner)}]})
}

/// Expects an error status, code and (for 401) reason and challenge.
fn expect_refused(
    what: &str,
    got: (u16, Value, Option<String>),
    status: u16,
    code: &str,
    reason: Option<&str>,
) -> Result<()> {
    let (s, body, challenge) = got;
    ensure!(s == status, "{what}: status {s} {body}");
    ensure!(body["error"]["code"] == code, "{what}: {body}");
    if let Some(r) = reason {
        ensure!(body["error"]["reason"] == r, "{what}: {body}");
    }
    if status == 401 {
        ensure!(
            challenge
                .as_deref()
                .is_some_and(|c| c.starts_with("Bearer")),
            "{what}: WWW-Authenticate {challenge:?}"
        );
    }
    Ok(())
}

async fn ws_client(
    port: u16,
    shard: &str,
    token: Option<&str>,
) -> Result<pylon_workers::client::Client, ClientError> {
    let mut config = ClientConfig::new(format!("ws://127.0.0.1:{port}"), shard)
        .encoding(Encoding::Json)
        .connect_timeout(std::time::Duration::from_secs(5));
    if let Some(t) = token {
        config = config.token(t);
    }
    match within("connect", pylon_workers::client::Client::connect(config)).await {
        Ok(r) => r,
        Err(e) => Err(ClientError::Transport(e.to_string())),
    }
}

/// The auth matrix over HTTP and WebSocket: missing, badly signed, expired
/// and wrong-audience tokens are 401 with a reason; another tenant's shard
/// is 403; policies see the verified caller (own Todo yes, someone else's
/// no, admin passes); a forged `x-pylon-auth` header is ignored.
pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let port = ctx.dev.port;
    let m = Minter {
        secret: dev_secret()?,
    };
    let tenant = unique("acme");
    let team = format!("team:{tenant}");
    let url = |shard: &str, rest: &str| ctx.dev.http(&format!("/v1/shards/{shard}/{rest}"));
    let query = json!({"entity": "Todo"});

    let ann = m.token("ann", json!({"tenant": tenant}));
    let admin = m.token("root", json!({"admin": true}));

    // 401s, each with its reason.
    let q = url(&team, "query");
    expect_refused(
        "no token",
        post(&q, &query, None, &[]).await?,
        401,
        "UNAUTHORIZED",
        Some("MISSING_TOKEN"),
    )?;
    let forged = jwt::sign_hs256(
        &json!({"sub": "ann", "tenant": tenant, "aud": AUDIENCE, "exp": now() + 300}),
        b"not-the-server-secret-not-the-server-secret",
    );
    expect_refused(
        "bad signature",
        post(&q, &query, Some(&forged), &[]).await?,
        401,
        "UNAUTHORIZED",
        Some("BAD_SIGNATURE"),
    )?;
    let expired = m.token("ann", json!({"tenant": tenant, "exp": now() - 3600}));
    expect_refused(
        "expired",
        post(&q, &query, Some(&expired), &[]).await?,
        401,
        "UNAUTHORIZED",
        Some("EXPIRED"),
    )?;
    let wrong_aud = m.token("ann", json!({"tenant": tenant, "aud": "someone-else"}));
    expect_refused(
        "wrong audience",
        post(&q, &query, Some(&wrong_aud), &[]).await?,
        401,
        "UNAUTHORIZED",
        Some("WRONG_AUDIENCE"),
    )?;
    let none = jwt::sign_with_header(
        &json!({"alg": "none"}),
        &json!({"sub": "ann", "exp": now() + 300}),
        b"",
    );
    expect_refused(
        "alg none",
        post(&q, &query, Some(&none), &[]).await?,
        401,
        "UNAUTHORIZED",
        Some("BAD_TOKEN"),
    )?;
    // A bad token is refused even on a shard open to anonymous callers.
    let room = unique("room");
    expect_refused(
        "expired on an open shard",
        post(&url(&room, "query"), &query, Some(&expired), &[]).await?,
        401,
        "UNAUTHORIZED",
        Some("EXPIRED"),
    )?;

    // 403: another tenant's shard.
    let other = format!("team:{}", unique("other"));
    expect_refused(
        "another tenant",
        post(&url(&other, "query"), &query, Some(&ann), &[]).await?,
        403,
        "FORBIDDEN",
        None,
    )?;
    expect_refused(
        "another user",
        post(&url("user:bob", "query"), &query, Some(&ann), &[]).await?,
        403,
        "FORBIDDEN",
        None,
    )?;
    // `alive`, answered before the object opens, is behind the same
    // rules: anonymous 401, another tenant's 403, the own shard 204.
    let alive = |shard: &str| reqwest::Client::new().get(url(shard, "alive"));
    expect_refused(
        "alive, no token",
        send(alive(&team), None, &[]).await?,
        401,
        "UNAUTHORIZED",
        Some("MISSING_TOKEN"),
    )?;
    expect_refused(
        "alive, another tenant",
        send(alive(&other), Some(&ann), &[]).await?,
        403,
        "FORBIDDEN",
        None,
    )?;
    let (s, body, _) = send(alive(&team), Some(&ann), &[]).await?;
    ensure!(s == 204 && body.is_null(), "alive, own shard: {s} {body}");

    // Policies see the verified caller.
    let mu = url(&team, "mutate");
    let (s, body, _) = post(&mu, &insert_todo("ann-1", "ann"), Some(&ann), &[]).await?;
    ensure!(s == 200, "ann inserts her own Todo: {s} {body}");
    let (s, body, _) = post(&mu, &insert_todo("bob-1", "bob"), Some(&ann), &[]).await?;
    ensure!(
        s == 403 && body["error"]["code"] == "FORBIDDEN",
        "ann inserts bob's Todo: {s} {body}"
    );
    let (s, body, _) = post(&mu, &insert_todo("bob-2", "bob"), Some(&admin), &[]).await?;
    ensure!(s == 200, "an admin passes the policy: {s} {body}");
    let (s, body, _) = post(&q, &query, Some(&ann), &[]).await?;
    let rows: Vec<_> = body["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["id"].clone())
        .collect();
    ensure!(
        s == 200 && rows == [json!("ann-1")],
        "ann reads only her Todo: {s} {body}"
    );
    let (s, body, _) = post(&q, &query, Some(&admin), &[]).await?;
    ensure!(
        s == 200 && body["rows"].as_array().map(Vec::len) == Some(2),
        "admin reads all: {body}"
    );

    // A forged identity header is dropped by the router.
    let fake_admin = encode_context(&AuthContext::admin());
    let (s, body, _) = post(
        &url(&room, "mutate"),
        &insert_todo("f-1", "bob"),
        None,
        &[(AUTH_HEADER, &fake_admin)],
    )
    .await?;
    ensure!(s == 403, "anonymous with a forged header: {s} {body}");
    let (s, body, _) = post(
        &mu,
        &insert_todo("f-2", "bob"),
        Some(&ann),
        &[(AUTH_HEADER, &fake_admin), ("X-Pylon-Auth", &fake_admin)],
    )
    .await?;
    ensure!(s == 403, "ann with a forged admin header: {s} {body}");
    expect_refused(
        "no token, forged header",
        post(&q, &query, None, &[(AUTH_HEADER, &fake_admin)]).await?,
        401,
        "UNAUTHORIZED",
        Some("MISSING_TOKEN"),
    )?;

    // WebSocket: the same decisions at the upgrade.
    for (what, token, status) in [
        ("no token", None, 401),
        ("bad signature", Some(&forged), 401),
        ("expired", Some(&expired), 401),
    ] {
        match ws_client(port, &team, token.map(String::as_str)).await {
            Err(ClientError::Refused { status: s }) if s == status => {}
            Err(e) => bail!("ws {what}: {e}"),
            Ok(_) => bail!("ws {what}: connected"),
        }
    }
    match ws_client(port, &other, Some(&ann)).await {
        Err(ClientError::Refused { status: 403 }) => {}
        Err(e) => bail!("ws another tenant: {e}"),
        Ok(_) => bail!("ws another tenant: connected"),
    }
    let c = ws_client(port, &team, Some(&ann)).await?;
    let mut sub = c.subscribe(Query::new("Todo")).await?;
    wait_rows(&mut sub, "ann's snapshot", |v| ids(v) == ["ann-1"]).await?;
    c.mutate(vec![Op::Insert {
        entity: "Todo".into(),
        row: serde_json::from_value(todo("ann-2", "ann"))?,
    }])
    .await?;
    wait_rows(&mut sub, "ann's second Todo", |v| {
        ids(v) == ["ann-1", "ann-2"]
    })
    .await?;
    match c
        .mutate(vec![Op::Insert {
            entity: "Todo".into(),
            row: serde_json::from_value(todo("bob-3", "bob"))?,
        }])
        .await
    {
        Err(ClientError::Server {
            code: ErrorCode::Forbidden,
            ..
        }) => {}
        other => bail!("ws: ann inserting bob's Todo: {other:?}"),
    }
    // Bob's rows written by an admin never reach ann's subscription.
    post(&mu, &insert_todo("bob-4", "bob"), Some(&admin), &[]).await?;
    post(&mu, &insert_todo("ann-3", "ann"), Some(&admin), &[]).await?;
    let v = wait_rows(&mut sub, "ann-3", |v| ids(v).contains(&"ann-3".to_string())).await?;
    ensure!(
        ids(&v) == ["ann-1", "ann-2", "ann-3"],
        "ws rows: {:?}",
        ids(&v)
    );

    // The upgrade echoes only the pylon subprotocol, never the bearer entry;
    // a refusal is the JSON error shape.
    let mut req = ctx
        .dev
        .ws(&format!("/v1/shards/{team}/ws"))
        .into_client_request()?;
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        format!("pylon.v1.json, bearer.{ann}").parse()?,
    );
    let (_ws, resp) = within("raw upgrade", tokio_tungstenite::connect_async(req)).await??;
    let echo = resp
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok());
    ensure!(echo == Some("pylon.v1.json"), "echoed {echo:?}");
    let mut req = ctx
        .dev
        .ws(&format!("/v1/shards/{other}/ws"))
        .into_client_request()?;
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        format!("pylon.v1.json, bearer.{ann}").parse()?,
    );
    match within("raw refused upgrade", tokio_tungstenite::connect_async(req)).await? {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            ensure!(resp.status().as_u16() == 403, "{:?}", resp.status());
            // tungstenite keeps only the body bytes that came with the
            // head; when it has them, they are the JSON error shape.
            if let Some(bytes) = resp.body().as_deref().filter(|b| !b.is_empty()) {
                let body: Value = serde_json::from_slice(bytes)?;
                ensure!(body["error"]["code"] == "FORBIDDEN", "{body}");
            }
        }
        other => bail!("refused upgrade: {:?}", other.map(|_| ())),
    }
    // The same refusal read over plain HTTP: the JSON error shape.
    let resp = reqwest::Client::new()
        .get(ctx.dev.http(&format!("/v1/shards/{other}/ws")))
        .header("Upgrade", "websocket")
        .header(
            "Sec-WebSocket-Protocol",
            format!("pylon.v1.json, bearer.{ann}"),
        )
        .send()
        .await?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await?;
    ensure!(
        status == 403 && body["error"]["code"] == "FORBIDDEN",
        "{status} {body}"
    );
    // The cold path (cross-shard reads from D1) runs as the verified caller
    // too: a forged token is refused there as well, a good one is served.
    let cold = ctx.dev.http("/v1/query");
    expect_refused(
        "cold path, bad signature",
        post(&cold, &query, Some(&forged), &[]).await?,
        401,
        "UNAUTHORIZED",
        Some("BAD_SIGNATURE"),
    )?;
    let (status, body, _) = post(&cold, &query, Some(&ann), &[]).await?;
    ensure!(
        status == 200,
        "cold path with a good token: {status} {body}"
    );
    for row in body["rows"].as_array().into_iter().flatten() {
        ensure!(
            row["ownerId"] == "ann",
            "the cold path showed ann a row she may not read: {row}"
        );
    }
    Ok(())
}
