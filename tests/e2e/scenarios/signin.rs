//! Sign-in against wrangler dev, with GitHub, an OIDC provider and an email
//! API played by servers on 127.0.0.1 (tests/e2e/support/providers.rs).
//! The browser is reqwest with redirects off and a cookie jar kept here.
//!
//! Covered: GitHub and OIDC code flow with PKCE, state and nonce; email
//! link and code; the session opens a shard over HTTP (bearer and cookie)
//! and WebSocket (bearer subprotocol and cookie); CSRF refusals; refresh
//! rotation and reuse (which kills the session); logout; bad state,
//! replayed state, replayed code, another browser's code (wrong verifier)
//! and open redirects refused with their codes.

use std::collections::HashMap;

use anyhow::{bail, ensure, Context, Result};
use pylon_workers::client::{ClientConfig, ClientError, Query, RawConnection};
use pylon_workers::http::form_urldecode;
use pylon_workers::protocol::{Encoding, ErrorCode};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::{ids, unique, wait_rows, within};
use crate::Ctx;

struct Answer {
    status: u16,
    location: Option<String>,
    body: Value,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    fn reason(&self) -> &str {
        self.body["error"]["reason"].as_str().unwrap_or("")
    }
}

/// A browser: follows nothing by itself, keeps the server's cookies and
/// sends them only to the server (the providers share its host).
struct Browser {
    http: reqwest::Client,
    base: String,
    jar: HashMap<String, String>,
}

impl Browser {
    fn new(base: &str) -> Result<Self> {
        Ok(Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            base: base.to_owned(),
            jar: HashMap::new(),
        })
    }

    fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn cookie(&self, name: &str) -> Result<String> {
        self.jar
            .get(name)
            .cloned()
            .with_context(|| format!("no {name} cookie"))
    }

    async fn send(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Answer> {
        let ours = url.starts_with(&self.base);
        let mut req = match method {
            "GET" => self.http.get(url),
            _ => self.http.post(url),
        };
        if ours && !self.jar.is_empty() {
            req = req.header("cookie", self.cookie_header());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        if ours {
            for c in resp.headers().get_all("set-cookie") {
                let c = c.to_str()?;
                let (kv, attrs) = c.split_once(';').unwrap_or((c, ""));
                let (k, v) = kv.split_once('=').context("a cookie without =")?;
                ensure!(attrs.contains("SameSite=Lax"), "cookie attributes: {c}");
                ensure!(!attrs.contains("Secure"), "no Secure on loopback http: {c}");
                if k != "pylon_csrf" {
                    ensure!(attrs.contains("HttpOnly"), "HttpOnly: {c}");
                }
                if attrs.contains("Max-Age=0") {
                    self.jar.remove(k);
                } else {
                    self.jar.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        let location = resp
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        let text = resp.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer {
            status,
            location,
            body,
        })
    }

    async fn get(&mut self, url: &str) -> Result<Answer> {
        self.send("GET", url, &[], None).await
    }

    /// Start at the server and consent at the provider: the callback URL
    /// the provider sends the browser back to (not yet visited).
    async fn consent(&mut self, provider: &str, redirect: &str) -> Result<String> {
        let start = self
            .get(&format!(
                "{}/v1/auth/oauth/{provider}/start?redirect={redirect}",
                self.base
            ))
            .await?;
        ensure!(
            start.status == 302,
            "start: {} {}",
            start.status,
            start.body
        );
        let at_provider = start.location.context("start: no Location")?;
        ensure!(
            at_provider.starts_with("http://127.0.0.1:"),
            "{at_provider}"
        );
        let back = self.get(&at_provider).await?;
        ensure!(
            back.status == 302,
            "provider authorize: {} {}",
            back.status,
            back.body
        );
        back.location.context("provider: no Location")
    }

    /// The whole OAuth sign-in; the session cookies land in the jar.
    async fn sign_in(&mut self, provider: &str, redirect: &str) -> Result<Answer> {
        let cb = self.consent(provider, redirect).await?;
        self.get(&cb).await
    }
}

fn query_of(url: &str) -> HashMap<String, String> {
    form_urldecode(url.split_once('?').map(|(_, q)| q).unwrap_or(""))
        .into_iter()
        .collect()
}

fn todo(id: &str, owner: &str) -> Value {
    json!({"ops": [{"type": "insert", "entity": "Todo", "row": {"id": id, "title": id,
        "done": false, "createdAt": "2026-11-23T00:00:00Z", "ownerId": owner}}]})
}

async fn post(url: &str, body: &Value, headers: &[(&str, &str)]) -> Result<Answer> {
    let mut req = reqwest::Client::new().post(url).json(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    Ok(Answer {
        status,
        location: None,
        body: resp.json().await.unwrap_or(Value::Null),
    })
}

async fn session_user(base: &str, access: &str) -> Result<String> {
    let resp = reqwest::Client::new()
        .get(format!("{base}/v1/auth/session"))
        .bearer_auth(access)
        .send()
        .await?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await?;
    ensure!(status == 200, "GET session: {status} {body}");
    Ok(body["user_id"].as_str().context("user_id")?.to_owned())
}

/// A WebSocket upgrade to `shard` with the token as a subprotocol entry:
/// `Ok(())` if it opened, else the refusal status.
async fn ws_status(port: u16, shard: &str, token: &str) -> Result<std::result::Result<(), u16>> {
    let config = ClientConfig::new(format!("ws://127.0.0.1:{port}"), shard)
        .encoding(Encoding::Json)
        .token(token)
        .connect_timeout(std::time::Duration::from_secs(5));
    match within("connect", pylon_workers::client::Client::connect(config)).await? {
        Ok(_) => Ok(Ok(())),
        Err(ClientError::Refused { status }) => Ok(Err(status)),
        Err(e) => bail!("ws {shard}: {e}"),
    }
}

/// A raw upgrade with the browser's cookies and an `Origin`.
async fn ws_with_cookie(
    ctx: &Ctx,
    shard: &str,
    cookie: &str,
    origin: &str,
) -> Result<std::result::Result<(), u16>> {
    let mut req = ctx
        .dev
        .ws(&format!("/v1/shards/{shard}/ws"))
        .into_client_request()?;
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "pylon.v1.json".parse()?);
    req.headers_mut().insert("Cookie", cookie.parse()?);
    req.headers_mut().insert("Origin", origin.parse()?);
    match within("cookie upgrade", tokio_tungstenite::connect_async(req)).await? {
        Ok(_) => Ok(Ok(())),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Ok(Err(resp.status().as_u16())),
        Err(e) => bail!("cookie upgrade: {e}"),
    }
}

fn expect(what: &str, a: &Answer, status: u16, code: &str) -> Result<()> {
    ensure!(
        a.status == status && a.code() == code,
        "{what}: {} {}",
        a.status,
        a.body
    );
    Ok(())
}

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let base = ctx.dev.http("");
    let port = ctx.dev.port;
    let shard_url = |shard: &str, rest: &str| ctx.dev.http(&format!("/v1/shards/{shard}/{rest}"));

    // --- GitHub: code flow with PKCE and state, back to the redirect target.
    let mut ann = Browser::new(&base)?;
    let done = ann.sign_in("github", "/after").await?;
    ensure!(
        done.status == 302 && done.location.as_deref() == Some("/after"),
        "callback: {} {:?} {}",
        done.status,
        done.location,
        done.body
    );
    ensure!(
        !ann.jar.contains_key("pylon_oauth"),
        "the state cookie is cleared"
    );
    let access = ann.cookie("pylon_session")?;
    let uid = session_user(&base, &access).await?;
    ensure!(uid.starts_with("u_"), "{uid}");
    let mine = format!("user:{uid}");
    let bearer = format!("Bearer {access}");

    // The session opens the user's own shard over HTTP; nobody else's.
    let a = post(
        &shard_url(&mine, "mutate"),
        &todo("gh-1", &uid),
        &[("authorization", &bearer)],
    )
    .await?;
    ensure!(a.status == 200, "bearer mutate: {} {}", a.status, a.body);
    expect(
        "anonymous",
        &post(&shard_url(&mine, "query"), &json!({"entity": "Todo"}), &[]).await?,
        401,
        "UNAUTHORIZED",
    )?;
    expect(
        "another user's shard",
        &post(
            &shard_url("user:someone-else", "query"),
            &json!({"entity": "Todo"}),
            &[("authorization", &bearer)],
        )
        .await?,
        403,
        "FORBIDDEN",
    )?;

    // The cookie works too, with CSRF protection on state changes.
    let csrf = ann.cookie("pylon_csrf")?;
    let q = ann
        .send(
            "POST",
            &shard_url(&mine, "mutate"),
            &[("origin", &base), ("x-csrf-token", &csrf)],
            Some(&todo("gh-2", &uid)),
        )
        .await?;
    ensure!(q.status == 200, "cookie mutate: {} {}", q.status, q.body);
    let foreign = ann
        .send(
            "POST",
            &shard_url(&mine, "mutate"),
            &[("origin", "https://evil.example"), ("x-csrf-token", &csrf)],
            Some(&todo("evil-1", &uid)),
        )
        .await?;
    expect(
        "cookie POST from a foreign Origin",
        &foreign,
        403,
        "CSRF_FAILED",
    )?;
    let no_token = ann
        .send(
            "POST",
            &shard_url(&mine, "mutate"),
            &[("origin", &base)],
            Some(&todo("evil-2", &uid)),
        )
        .await?;
    expect(
        "cookie POST without x-csrf-token",
        &no_token,
        403,
        "CSRF_FAILED",
    )?;

    // WebSocket: bearer subprotocol entry, and the cookie with our Origin.
    let config = ClientConfig::new(format!("ws://127.0.0.1:{port}"), &mine)
        .encoding(Encoding::Json)
        .token(&access);
    let c = within("connect", pylon_workers::client::Client::connect(config)).await??;
    let mut sub = c.subscribe(Query::new("Todo")).await?;
    wait_rows(&mut sub, "the session's Todos", |v| {
        ids(v) == ["gh-1", "gh-2"]
    })
    .await?;
    drop(sub);
    drop(c);
    let jar = ann.cookie_header();
    ensure!(
        ws_with_cookie(ctx, &mine, &jar, &base).await? == Ok(()),
        "cookie upgrade from our origin"
    );
    ensure!(
        ws_with_cookie(ctx, &mine, &jar, "https://evil.example").await? == Err(403),
        "cookie upgrade from a foreign origin"
    );

    // --- Refresh: rotation, then reuse of the old token kills the session.
    let r1 = ann.cookie("pylon_refresh")?;
    let refresh_url = format!("{base}/v1/auth/refresh");
    let r = post(&refresh_url, &json!({"refresh_token": r1}), &[]).await?;
    ensure!(r.status == 200, "refresh: {} {}", r.status, r.body);
    let access2 = r.body["access_token"]
        .as_str()
        .context("access_token")?
        .to_owned();
    let r2 = r.body["refresh_token"]
        .as_str()
        .context("refresh_token")?
        .to_owned();
    ensure!(
        r2 != r1 && session_user(&base, &access2).await? == uid,
        "rotated"
    );
    let a = post(
        &shard_url(&mine, "query"),
        &json!({"entity": "Todo"}),
        &[("authorization", &format!("Bearer {access2}"))],
    )
    .await?;
    ensure!(
        a.status == 200,
        "refreshed token on the shard: {} {}",
        a.status,
        a.body
    );
    let reused = post(&refresh_url, &json!({"refresh_token": r1}), &[]).await?;
    expect("reused refresh token", &reused, 401, "REFRESH_REUSED")?;
    for (what, t) in [("refreshed", &access2), ("original", &access)] {
        let a = post(
            &shard_url(&mine, "query"),
            &json!({"entity": "Todo"}),
            &[("authorization", &format!("Bearer {t}"))],
        )
        .await?;
        ensure!(
            a.status == 401 && a.reason() == "SESSION_REVOKED",
            "{what} token after reuse: {} {}",
            a.status,
            a.body
        );
        ensure!(
            ws_status(port, &mine, t).await? == Err(401),
            "{what} token, ws after reuse"
        );
    }
    expect(
        "the successor after reuse",
        &post(&refresh_url, &json!({"refresh_token": r2}), &[]).await?,
        401,
        "REFRESH_INVALID",
    )?;
    let a = ann
        .send(
            "POST",
            &shard_url(&mine, "query"),
            &[("origin", &base), ("x-csrf-token", &csrf)],
            Some(&json!({"entity": "Todo"})),
        )
        .await?;
    ensure!(
        a.status == 401 && a.reason() == "SESSION_REVOKED",
        "cookie after reuse: {} {}",
        a.status,
        a.body
    );

    // Signing in again with GitHub finds the same user.
    let mut ann2 = Browser::new(&base)?;
    ensure!(
        ann2.sign_in("github", "/").await?.status == 302,
        "second sign-in"
    );
    ensure!(
        session_user(&base, &ann2.cookie("pylon_session")?).await? == uid,
        "same GitHub user, same id"
    );
    // Refresh by cookie: CSRF checked, new cookies set, no token in the body.
    let csrf2 = ann2.cookie("pylon_csrf")?;
    let old = ann2.cookie("pylon_refresh")?;
    expect(
        "cookie refresh from a foreign Origin",
        &ann2
            .send(
                "POST",
                &refresh_url,
                &[("origin", "https://evil.example"), ("x-csrf-token", &csrf2)],
                None,
            )
            .await?,
        403,
        "CSRF_FAILED",
    )?;
    let r = ann2
        .send(
            "POST",
            &refresh_url,
            &[("origin", &base), ("x-csrf-token", &csrf2)],
            None,
        )
        .await?;
    ensure!(
        r.status == 200 && r.body.get("refresh_token").is_none(),
        "cookie refresh: {} {}",
        r.status,
        r.body
    );
    ensure!(
        ann2.cookie("pylon_refresh")? != old,
        "the refresh cookie rotated"
    );

    // --- OIDC ("google" pointed at the test provider), then logout.
    let mut bo = Browser::new(&base)?;
    let done = bo.sign_in("google", "/").await?;
    ensure!(
        done.status == 302,
        "oidc callback: {} {}",
        done.status,
        done.body
    );
    let oidc_access = bo.cookie("pylon_session")?;
    let oidc_uid = session_user(&base, &oidc_access).await?;
    ensure!(oidc_uid != uid, "another user");
    let oidc_shard = format!("user:{oidc_uid}");
    ensure!(
        ws_status(port, &oidc_shard, &oidc_access).await? == Ok(()),
        "oidc session over ws"
    );
    // A socket opened with the session, and a `hello` renewing it: the
    // shard verifies session tokens like the router does.
    let config =
        ClientConfig::new(format!("ws://127.0.0.1:{port}"), &oidc_shard).token(oidc_access.clone());
    let mut raw = within("connect", RawConnection::connect(&config)).await??;
    within("welcome", raw.recv_welcome()).await??;
    ensure!(
        super::hello::hello(&mut raw, &oidc_access).await?.is_ok(),
        "hello with the live session token"
    );
    let out = post(
        &format!("{base}/v1/auth/logout"),
        &json!({}),
        &[("authorization", &format!("Bearer {oidc_access}"))],
    )
    .await?;
    ensure!(
        out.status == 200 && out.body["revoked"] == true,
        "logout: {} {}",
        out.status,
        out.body
    );
    let a = post(
        &shard_url(&oidc_shard, "query"),
        &json!({"entity": "Todo"}),
        &[("authorization", &format!("Bearer {oidc_access}"))],
    )
    .await?;
    ensure!(
        a.status == 401 && a.reason() == "SESSION_REVOKED",
        "after logout: {} {}",
        a.status,
        a.body
    );
    ensure!(
        ws_status(port, &oidc_shard, &oidc_access).await? == Err(401),
        "ws upgrade after logout"
    );
    match super::hello::hello(&mut raw, &oidc_access).await? {
        Err((ErrorCode::Unauthorized, m)) if m.contains("revoked") => {}
        other => bail!("hello with a revoked session: {other:?}"),
    }

    // --- Refusals in the OAuth flow.
    let mut eve = Browser::new(&base)?;
    let cb = eve.consent("github", "/").await?;
    let forged = cb.replace("state=", "state=x");
    expect("forged state", &eve.get(&forged).await?, 400, "BAD_STATE")?;
    // A state works once, even with its cookie kept.
    let mut bob = Browser::new(&base)?;
    let cb = bob.consent("github", "/").await?;
    let kept = bob.cookie("pylon_oauth")?;
    ensure!(bob.get(&cb).await?.status == 302, "bob signs in");
    bob.jar.insert("pylon_oauth".into(), kept);
    expect("replayed callback", &bob.get(&cb).await?, 400, "BAD_STATE")?;
    // A used code, brought to a fresh sign-in: the provider refuses it.
    let used_code = query_of(&cb)["code"].clone();
    let mut mallory = Browser::new(&base)?;
    let fresh = mallory.consent("github", "/").await?;
    let state = query_of(&fresh)["state"].clone();
    let replay = format!("{base}/v1/auth/oauth/github/callback?code={used_code}&state={state}");
    expect(
        "replayed code",
        &mallory.get(&replay).await?,
        400,
        "OAUTH_GRANT_REFUSED",
    )?;
    // Another browser's code (injected into mine): my verifier does not fit
    // its challenge, so PKCE stops it.
    let mut victim = Browser::new(&base)?;
    let victims = victim.consent("github", "/").await?;
    let stolen = query_of(&victims)["code"].clone();
    let mut attacker = Browser::new(&base)?;
    let own = attacker.consent("github", "/").await?;
    let state = query_of(&own)["state"].clone();
    let inject = format!("{base}/v1/auth/oauth/github/callback?code={stolen}&state={state}");
    expect(
        "another browser's code",
        &attacker.get(&inject).await?,
        400,
        "OAUTH_GRANT_REFUSED",
    )?;
    ensure!(
        ctx.providers
            .refusals()
            .iter()
            .any(|r| r == "invalid_grant_pkce"),
        "the provider saw a wrong verifier: {:?}",
        ctx.providers.refusals()
    );
    let evil = eve
        .get(&format!(
            "{base}/v1/auth/oauth/github/start?redirect=https://evil.example/"
        ))
        .await?;
    expect("open redirect", &evil, 400, "BAD_REDIRECT")?;
    expect(
        "unknown provider",
        &eve.get(&format!("{base}/v1/auth/oauth/nope/start")).await?,
        404,
        "UNKNOWN_PROVIDER",
    )?;

    // --- Email: the link, then the code.
    let address = format!("{}@example.com", unique("zoe"));
    let mut zoe = Browser::new(&base)?;
    let start = format!("{base}/v1/auth/email/start");
    let a = zoe
        .send(
            "POST",
            &start,
            &[],
            Some(&json!({"email": address.to_uppercase(), "redirect": "/welcome"})),
        )
        .await?;
    ensure!(a.status == 202, "email start: {} {}", a.status, a.body);
    let unknown = zoe
        .send(
            "POST",
            &start,
            &[],
            Some(&json!({"email": format!("nobody-{address}")})),
        )
        .await?;
    ensure!(
        unknown.status == a.status && unknown.body == a.body,
        "the same answer for any address"
    );
    let mail = ctx
        .providers
        .last_mail_to(&address)
        .context("no mail recorded")?;
    let text = mail["text"].as_str().context("text")?;
    let link = text
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .context("no link")?
        .to_owned();
    ensure!(
        link.starts_with(&format!("{base}/v1/auth/email/verify?token=")),
        "{link}"
    );
    let done = zoe.get(&link).await?;
    ensure!(
        done.status == 302 && done.location.as_deref() == Some("/welcome"),
        "link: {} {}",
        done.status,
        done.body
    );
    let zoe_uid = session_user(&base, &zoe.cookie("pylon_session")?).await?;
    expect(
        "the link again",
        &zoe.get(&link).await?,
        400,
        "CODE_INVALID",
    )?;

    zoe.send("POST", &start, &[], Some(&json!({"email": address})))
        .await?;
    let mail = ctx
        .providers
        .last_mail_to(&address)
        .context("no second mail")?;
    let code = mail["text"]
        .as_str()
        .unwrap_or("")
        .split("code: ")
        .nth(1)
        .context("no code")?[..6]
        .to_owned();
    // Asking again at once sends nothing (the answer is the same; the
    // code just sent keeps working).
    let sent = ctx.providers.mail_count_to(&address);
    let again = zoe
        .send("POST", &start, &[], Some(&json!({"email": address})))
        .await?;
    ensure!(
        again.status == 202 && ctx.providers.mail_count_to(&address) == sent,
        "resend within the gap: {} {}",
        again.status,
        again.body
    );
    let verify = format!("{base}/v1/auth/email/verify");
    let wrong = if code == "000000" { "000001" } else { "000000" };
    expect(
        "wrong code",
        &zoe.send(
            "POST",
            &verify,
            &[],
            Some(&json!({"email": address, "code": wrong})),
        )
        .await?,
        400,
        "CODE_INVALID",
    )?;
    let ok = zoe
        .send(
            "POST",
            &verify,
            &[],
            Some(&json!({"email": address, "code": code, "refresh_in_body": true})),
        )
        .await?;
    ensure!(
        ok.status == 200 && ok.body["user"]["id"] == zoe_uid.as_str(),
        "code: {} {}",
        ok.status,
        ok.body
    );
    let t = ok.body["access_token"].as_str().context("access_token")?;
    ensure!(
        ws_status(port, &format!("user:{zoe_uid}"), t).await? == Ok(()),
        "email session over ws"
    );

    // Sessions and revocations live in the Auth object's storage, not in
    // the isolate: after a kill -9 and restart, a live session still
    // works, its refresh token still rotates, and a revoked one stays
    // refused.
    let zoe_access = t.to_owned();
    let zoe_refresh = ok.body["refresh_token"]
        .as_str()
        .context("refresh_token")?
        .to_owned();
    ctx.restart().await?;
    let base = ctx.dev.http("");
    ensure!(
        session_user(&base, &zoe_access).await? == zoe_uid,
        "a session after a restart"
    );
    let r = post(
        &format!("{base}/v1/auth/refresh"),
        &json!({"refresh_token": zoe_refresh}),
        &[],
    )
    .await?;
    ensure!(
        r.status == 200,
        "refresh after a restart: {} {}",
        r.status,
        r.body
    );
    let a = post(
        &ctx.dev.http(&format!("/v1/shards/{oidc_shard}/query")),
        &json!({"entity": "Todo"}),
        &[("authorization", &format!("Bearer {oidc_access}"))],
    )
    .await?;
    ensure!(
        a.status == 401 && a.reason() == "SESSION_REVOKED",
        "a revoked session after a restart: {} {}",
        a.status,
        a.body
    );
    Ok(())
}
