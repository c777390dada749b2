//! Sign-in flows end to end on the host: the endpoints with a test double
//! playing GitHub, an OIDC provider and an email API (an `HttpClient` that
//! checks what a real provider checks), and the Auth store on real SQLite.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use pylon_workers::auth::jwt::sign_hs256;
use pylon_workers::http::{form_urldecode, HttpClient, HttpError, HttpRequest, HttpResponse};
use pylon_workers::signin::random::Random;
use pylon_workers::signin::store::AuthStore;
use pylon_workers::signin::store_api::LocalBackend;
use pylon_workers::signin::{check_session, pkce, AuthRequest, AuthResponse, SignIn, SignInConfig};
use pylon_workers::storage::SqliteConn;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const SECRET: &str = "a-session-secret-for-tests-0123456789";
const ORIGIN: &str = "http://127.0.0.1:8787";
const NOW_MS: i64 = 1_800_000_000_000;

/// Counter-based bytes (tests only: predictable on purpose).
struct Seq(Cell<u64>);
impl Random for Seq {
    fn fill(&self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(32) {
            let n = self.0.get();
            self.0.set(n + 1);
            let h = Sha256::digest(n.to_le_bytes());
            chunk.copy_from_slice(&h[..chunk.len()]);
        }
    }
}

struct Grant {
    challenge: String,
    redirect_uri: String,
    nonce: Option<String>,
    used: bool,
}

/// Plays GitHub (`gh.test`), an OIDC provider (`id.test`) and an email API
/// (`mail.test`).
#[derive(Default)]
struct Providers {
    grants: RefCell<HashMap<String, Grant>>,
    next: Cell<u32>,
    mail: RefCell<Vec<Value>>,
}

fn resp(status: u16, body: Value) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![],
        body: body.to_string().into_bytes(),
    }
}

impl Providers {
    /// What the provider's authorize page does when the user says yes.
    fn authorize(&self, url: &str) -> (String, String) {
        let q: HashMap<String, String> = form_urldecode(url.split_once('?').unwrap().1)
            .into_iter()
            .collect();
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["response_type"], "code");
        self.next.set(self.next.get() + 1);
        let code = format!("code{}", self.next.get());
        self.grants.borrow_mut().insert(
            code.clone(),
            Grant {
                challenge: q["code_challenge"].clone(),
                redirect_uri: q["redirect_uri"].clone(),
                nonce: q.get("nonce").cloned(),
                used: false,
            },
        );
        (code, q["state"].clone())
    }

    fn token(&self, req: &HttpRequest, oidc: bool) -> HttpResponse {
        let f: HashMap<String, String> = form_urldecode(std::str::from_utf8(&req.body).unwrap())
            .into_iter()
            .collect();
        assert_eq!(req.header_value("accept"), Some("application/json"));
        if f["client_secret"] != "sec" {
            return resp(401, json!({"error": "invalid_client"}));
        }
        let mut grants = self.grants.borrow_mut();
        let Some(g) = grants.get_mut(&f["code"]) else {
            return resp(400, json!({"error": "invalid_grant"}));
        };
        if g.used {
            // GitHub answers 200 with an error.
            return resp(200, json!({"error": "bad_verification_code"}));
        }
        g.used = true;
        if pkce::challenge_s256(&f["code_verifier"]) != g.challenge
            || f["redirect_uri"] != g.redirect_uri
        {
            return resp(
                400,
                json!({"error": "invalid_grant", "error_description": "PKCE verification failed"}),
            );
        }
        let mut body = json!({"access_token": "at-1", "token_type": "bearer"});
        if oidc {
            body["id_token"] = json!(sign_hs256(
                &json!({"iss": "https://id.test", "aud": "cid", "sub": "oidc-7", "exp": NOW_MS / 1000 + 300,
                        "nonce": g.nonce}),
                b"provider key"
            ));
        }
        resp(200, body)
    }
}

impl HttpClient for Providers {
    async fn send(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let bearer_ok = req.header_value("authorization") == Some("Bearer at-1");
        Ok(match req.url.as_str() {
            "https://gh.test/token" => self.token(&req, false),
            "https://id.test/token" => self.token(&req, true),
            "https://api.gh.test/user" => {
                assert!(req.header_value("user-agent").is_some());
                if bearer_ok {
                    resp(200, json!({"id": 4242, "login": "octo"}))
                } else {
                    resp(401, json!({}))
                }
            }
            "https://api.gh.test/user/emails" => resp(
                200,
                json!([{"email": "other@example.com", "primary": false, "verified": true},
                       {"email": "Octo@Example.com", "primary": true, "verified": true}]),
            ),
            "https://id.test/userinfo" => {
                if bearer_ok {
                    resp(
                        200,
                        json!({"sub": "oidc-7", "email": "ann@example.com", "email_verified": true}),
                    )
                } else {
                    resp(401, json!({}))
                }
            }
            "https://mail.test/send" => {
                assert_eq!(req.header_value("authorization"), Some("Bearer mailkey"));
                self.mail
                    .borrow_mut()
                    .push(serde_json::from_slice(&req.body).unwrap());
                resp(200, json!({"id": "m1"}))
            }
            other => panic!("unexpected request to {other}"),
        })
    }
}

fn config() -> SignInConfig {
    let vars: HashMap<&str, &str> = [
        ("PYLON_SESSION_SECRET", SECRET),
        ("PYLON_GITHUB_CLIENT_ID", "cid"),
        ("PYLON_GITHUB_CLIENT_SECRET", "sec"),
        ("PYLON_GITHUB_AUTHORIZE_URL", "https://gh.test/authorize"),
        ("PYLON_GITHUB_TOKEN_URL", "https://gh.test/token"),
        ("PYLON_GITHUB_API_URL", "https://api.gh.test"),
        ("PYLON_OIDC_CLIENT_ID", "cid"),
        ("PYLON_OIDC_CLIENT_SECRET", "sec"),
        ("PYLON_OIDC_ISSUER", "https://id.test"),
        ("PYLON_OIDC_AUTHORIZE_URL", "https://id.test/authorize"),
        ("PYLON_OIDC_TOKEN_URL", "https://id.test/token"),
        ("PYLON_OIDC_USERINFO_URL", "https://id.test/userinfo"),
        ("PYLON_EMAIL_API_URL", "https://mail.test/send"),
        ("PYLON_EMAIL_API_KEY", "mailkey"),
        ("PYLON_SIGNIN_TENANT", "acme"),
    ]
    .into_iter()
    .collect();
    SignInConfig::from_vars(|k| vars.get(k).map(|v| v.to_string())).unwrap()
}

struct World {
    config: SignInConfig,
    http: Providers,
    backend: LocalBackend<SqliteConn>,
    random: Seq,
    now_ms: Cell<i64>,
    /// The browser's cookies.
    jar: RefCell<HashMap<String, String>>,
}

impl World {
    fn new() -> Self {
        World {
            config: config(),
            http: Providers::default(),
            backend: LocalBackend(AuthStore::open(SqliteConn::open_in_memory().unwrap()).unwrap()),
            random: Seq(Cell::new(1)),
            now_ms: Cell::new(NOW_MS),
            jar: RefCell::new(HashMap::new()),
        }
    }

    /// A browser request: sends the jar, keeps what comes back.
    async fn browse(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: Value,
    ) -> AuthResponse {
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let cookie = self
            .jar
            .borrow()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut h: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if !cookie.is_empty() {
            h.push(("cookie".into(), cookie));
        }
        let req = AuthRequest {
            method: method.into(),
            path: path.trim_start_matches("/v1/auth/").into(),
            query: form_urldecode(query),
            headers: h,
            body: if body.is_null() {
                vec![]
            } else {
                body.to_string().into_bytes()
            },
            origin: ORIGIN.into(),
        };
        let s = SignIn {
            config: &self.config,
            http: &self.http,
            backend: &self.backend,
            random: &self.random,
            now_ms: self.now_ms.get(),
        };
        let r = s.handle(&req).await;
        for (n, v) in &r.headers {
            if n == "set-cookie" {
                let (kv, attrs) = v.split_once(';').unwrap();
                let (k, val) = kv.split_once('=').unwrap();
                assert!(attrs.contains("SameSite=Lax"), "{v}");
                if attrs.contains("Max-Age=0") {
                    self.jar.borrow_mut().remove(k);
                } else {
                    self.jar.borrow_mut().insert(k.into(), val.into());
                }
            }
        }
        r
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.jar.borrow().get(name).cloned()
    }

    async fn session_of(&self, token: &str) -> Result<String, String> {
        check_session(SECRET.as_bytes(), &self.backend, token, self.now_ms.get())
            .await
            .map(|c| c.sub)
            .map_err(|e| e.to_api_error().reason.unwrap_or(e.code()).to_string())
    }
}

fn body(r: &AuthResponse) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

fn code(r: &AuthResponse) -> String {
    body(r)["error"]["code"].as_str().unwrap_or("").to_string()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

/// Start, the provider's consent, and the callback URL it sends back to.
async fn consent(w: &World, provider: &str, redirect: &str) -> (String, String, String) {
    let r = w
        .browse(
            "GET",
            &format!("oauth/{provider}/start?redirect={redirect}"),
            &[],
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 302, "{}", String::from_utf8_lossy(&r.body));
    let loc = r.header("location").unwrap();
    assert!(loc.contains(&format!(
        "redirect_uri=http%3A%2F%2F127.0.0.1%3A8787%2Fv1%2Fauth%2Foauth%2F{provider}%2Fcallback"
    )));
    let (code, state) = w.http.authorize(loc);
    (
        format!("oauth/{provider}/callback?code={code}&state={state}"),
        code,
        state,
    )
}

#[test]
fn github_sign_in_refresh_reuse_and_logout() {
    block_on(async {
        let w = World::new();
        let (callback, _, _) = consent(&w, "github", "/board").await;
        let r = w.browse("GET", &callback, &[], Value::Null).await;
        assert_eq!(r.status, 302, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.header("location"), Some("/board"));
        assert!(
            w.cookie("pylon_oauth").is_none(),
            "the state cookie is cleared"
        );
        let access = w.cookie("pylon_session").unwrap();
        let user = w.session_of(&access).await.unwrap();
        assert!(user.starts_with("u_"));
        let s = w
            .browse(
                "GET",
                "session",
                &[("authorization", &format!("Bearer {access}"))],
                Value::Null,
            )
            .await;
        assert_eq!(body(&s)["tenant_id"], "acme");

        // The same callback again: its state was used.
        let replay = w.browse("GET", &callback, &[], Value::Null).await;
        assert_eq!(
            code(&replay),
            "BAD_STATE",
            "the used state is refused first"
        );

        // Signing in again finds the same user.
        let (cb2, _, _) = consent(&w, "github", "/").await;
        w.browse("GET", &cb2, &[], Value::Null).await;
        let again = w.cookie("pylon_session").unwrap();
        assert_eq!(w.session_of(&again).await.unwrap(), user);

        // Refresh by cookie needs the CSRF header and our Origin.
        let r1 = w.cookie("pylon_refresh").unwrap();
        let csrf = w.cookie("pylon_csrf").unwrap();
        let no_csrf = w
            .browse("POST", "refresh", &[("origin", ORIGIN)], Value::Null)
            .await;
        assert_eq!(code(&no_csrf), "CSRF_FAILED");
        let foreign = w
            .browse(
                "POST",
                "refresh",
                &[("origin", "https://evil.example"), ("x-csrf-token", &csrf)],
                Value::Null,
            )
            .await;
        assert_eq!(code(&foreign), "CSRF_FAILED");
        let ok = w
            .browse(
                "POST",
                "refresh",
                &[("origin", ORIGIN), ("x-csrf-token", &csrf)],
                Value::Null,
            )
            .await;
        assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
        assert!(
            body(&ok).get("refresh_token").is_none(),
            "cookie clients never see the refresh token"
        );
        let r2 = w.cookie("pylon_refresh").unwrap();
        assert_ne!(r1, r2);

        // Body form: rotates and answers with the successor.
        let b = w
            .browse("POST", "refresh", &[], json!({"refresh_token": r2}))
            .await;
        let r3 = body(&b)["refresh_token"].as_str().unwrap().to_string();
        let fresh = body(&b)["access_token"].as_str().unwrap().to_string();
        assert_eq!(w.session_of(&fresh).await.unwrap(), user);

        // r2 again: reuse; the whole session dies, r3 with it.
        let reused = w
            .browse("POST", "refresh", &[], json!({"refresh_token": r2}))
            .await;
        assert_eq!(
            (reused.status, code(&reused)),
            (401, "REFRESH_REUSED".to_string())
        );
        assert_eq!(w.session_of(&fresh).await.unwrap_err(), "SESSION_REVOKED");
        let dead = w
            .browse("POST", "refresh", &[], json!({"refresh_token": r3}))
            .await;
        assert_eq!(code(&dead), "REFRESH_INVALID");

        // The first session is untouched; logout revokes it.
        assert_eq!(w.session_of(&access).await.unwrap(), user);
        let out = w
            .browse(
                "POST",
                "logout",
                &[("authorization", &format!("Bearer {access}"))],
                Value::Null,
            )
            .await;
        assert_eq!(body(&out)["revoked"], true);
        assert_eq!(w.session_of(&access).await.unwrap_err(), "SESSION_REVOKED");
    });
}

#[test]
fn oauth_refusals() {
    block_on(async {
        let w = World::new();
        // No start in this browser.
        let r = w
            .browse(
                "GET",
                "oauth/github/callback?code=x&state=y",
                &[],
                Value::Null,
            )
            .await;
        assert_eq!(code(&r), "BAD_STATE");
        // Wrong state.
        let (_, c, _) = consent(&w, "github", "/").await;
        let r = w
            .browse(
                "GET",
                &format!("oauth/github/callback?code={c}&state=forged"),
                &[],
                Value::Null,
            )
            .await;
        assert_eq!(code(&r), "BAD_STATE");
        // A state cookie for another provider.
        let (_, c, s) = consent(&w, "github", "/").await;
        let r = w
            .browse(
                "GET",
                &format!("oauth/google/callback?code={c}&state={s}"),
                &[],
                Value::Null,
            )
            .await;
        assert_eq!(code(&r), "BAD_STATE");
        // Wrong verifier: another browser's cookie with the right state cannot help,
        // so swap the provider's recorded challenge instead.
        let (cb, c, _) = consent(&w, "github", "/").await;
        w.http.grants.borrow_mut().get_mut(&c).unwrap().challenge = "tampered".into();
        let r = w.browse("GET", &cb, &[], Value::Null).await;
        assert_eq!(
            code(&r),
            "OAUTH_GRANT_REFUSED",
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        // A replayed code with a fresh, valid state: the provider refuses it.
        let (cb, c, _) = consent(&w, "github", "/").await;
        assert_eq!(w.browse("GET", &cb, &[], Value::Null).await.status, 302);
        let (_, _, s) = consent(&w, "github", "/").await;
        let r = w
            .browse(
                "GET",
                &format!("oauth/github/callback?code={c}&state={s}"),
                &[],
                Value::Null,
            )
            .await;
        assert_eq!(code(&r), "OAUTH_GRANT_REFUSED");
        // The user said no.
        let (_, _, s) = consent(&w, "github", "/").await;
        let r = w
            .browse(
                "GET",
                &format!("oauth/github/callback?error=access_denied&state={s}"),
                &[],
                Value::Null,
            )
            .await;
        assert_eq!(code(&r), "OAUTH_DENIED");
        // Expired start.
        let (cb, _, _) = consent(&w, "github", "/").await;
        w.now_ms.set(w.now_ms.get() + 601_000);
        assert_eq!(
            code(&w.browse("GET", &cb, &[], Value::Null).await),
            "BAD_STATE"
        );
        // Open redirects and unknown providers.
        let r = w
            .browse(
                "GET",
                "oauth/github/start?redirect=https://evil.example/",
                &[],
                Value::Null,
            )
            .await;
        assert_eq!(code(&r), "BAD_REDIRECT");
        let r = w
            .browse("GET", "oauth/gitlab/start", &[], Value::Null)
            .await;
        assert_eq!((r.status, code(&r)), (404, "UNKNOWN_PROVIDER".to_string()));
        let r = w
            .browse("POST", "oauth/github/start", &[], Value::Null)
            .await;
        assert_eq!(r.status, 405);
    });
}

#[test]
fn oidc_sign_in_checks_nonce() {
    block_on(async {
        let w = World::new();
        let (cb, _, _) = consent(&w, "google", "/").await;
        let r = w.browse("GET", &cb, &[], Value::Null).await;
        assert_eq!(r.status, 302, "{}", String::from_utf8_lossy(&r.body));
        assert!(w
            .session_of(&w.cookie("pylon_session").unwrap())
            .await
            .is_ok());
        // The provider returns an id_token for another sign-in's nonce.
        let (cb, c, _) = consent(&w, "google", "/").await;
        w.http.grants.borrow_mut().get_mut(&c).unwrap().nonce = Some("another".into());
        let r = w.browse("GET", &cb, &[], Value::Null).await;
        assert_eq!(code(&r), "BAD_ID_TOKEN");
    });
}

fn mailed_code_and_link(w: &World) -> (String, String) {
    let mail = w.http.mail.borrow();
    let text = mail.last().unwrap()["text"].as_str().unwrap().to_string();
    let link = text
        .split_whitespace()
        .find(|t| t.starts_with("http"))
        .unwrap()
        .to_string();
    let code = text.split("code: ").nth(1).unwrap()[..6].to_string();
    (code, link)
}

#[test]
fn email_code_and_link() {
    block_on(async {
        let w = World::new();
        // Same answer for any well-formed address; a malformed one is 400.
        let a = w
            .browse(
                "POST",
                "email/start",
                &[],
                json!({"email": "Ann@Example.com"}),
            )
            .await;
        assert_eq!(a.status, 202);
        let b = w
            .browse(
                "POST",
                "email/start",
                &[],
                json!({"email": "nobody@example.com"}),
            )
            .await;
        assert_eq!((b.status, b.body.clone()), (a.status, a.body.clone()));
        assert_eq!(
            code(
                &w.browse("POST", "email/start", &[], json!({"email": "x"}))
                    .await
            ),
            "BAD_EMAIL"
        );

        w.now_ms.set(w.now_ms.get() + 31_000); // past the resend gap
        w.browse(
            "POST",
            "email/start",
            &[],
            json!({"email": "ann@example.com", "redirect": "/after"}),
        )
        .await;
        let (c, link) = mailed_code_and_link(&w);
        assert_eq!(
            w.http.mail.borrow().last().unwrap()["to"][0],
            "ann@example.com"
        );
        // Again at once: the same answer, nothing sent, the code stays.
        let sent = w.http.mail.borrow().len();
        let again = w
            .browse(
                "POST",
                "email/start",
                &[],
                json!({"email": "ann@example.com"}),
            )
            .await;
        assert_eq!((again.status, w.http.mail.borrow().len()), (202, sent));
        let wrong = if c == "000000" { "000001" } else { "000000" };
        let r = w
            .browse(
                "POST",
                "email/verify",
                &[],
                json!({"email": "ann@example.com", "code": wrong}),
            )
            .await;
        assert_eq!(code(&r), "CODE_INVALID");
        let r = w
            .browse(
                "POST",
                "email/verify",
                &[],
                json!({"email": "ann@example.com", "code": c, "refresh_in_body": true}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let user = body(&r)["user"]["id"].as_str().unwrap().to_string();
        assert!(body(&r)["refresh_token"].is_string());
        // Used: neither the code nor the link works again.
        let again = w
            .browse(
                "POST",
                "email/verify",
                &[],
                json!({"email": "ann@example.com", "code": c}),
            )
            .await;
        assert_eq!(code(&again), "CODE_INVALID");
        let path = link.split_once("/v1/auth/").unwrap().1;
        assert_eq!(
            code(&w.browse("GET", path, &[], Value::Null).await),
            "CODE_INVALID"
        );

        // The link, on a fresh start: signs in the same user and redirects.
        w.now_ms.set(w.now_ms.get() + 31_000); // past the resend gap
        w.browse(
            "POST",
            "email/start",
            &[],
            json!({"email": "ann@example.com", "redirect": "/after"}),
        )
        .await;
        let (_, link) = mailed_code_and_link(&w);
        let r = w
            .browse(
                "GET",
                link.split_once("/v1/auth/").unwrap().1,
                &[],
                Value::Null,
            )
            .await;
        assert_eq!((r.status, r.header("location")), (302, Some("/after")));
        assert_eq!(
            w.session_of(&w.cookie("pylon_session").unwrap())
                .await
                .unwrap(),
            user
        );

        // Five wrong tries kill a code, even the right one after them.
        w.now_ms.set(w.now_ms.get() + 31_000); // past the resend gap
        w.browse(
            "POST",
            "email/start",
            &[],
            json!({"email": "ann@example.com"}),
        )
        .await;
        let (c, _) = mailed_code_and_link(&w);
        let wrong = if c == "000000" { "000001" } else { "000000" };
        for _ in 0..5 {
            w.browse(
                "POST",
                "email/verify",
                &[],
                json!({"email": "ann@example.com", "code": wrong}),
            )
            .await;
        }
        let r = w
            .browse(
                "POST",
                "email/verify",
                &[],
                json!({"email": "ann@example.com", "code": c}),
            )
            .await;
        assert_eq!(code(&r), "CODE_INVALID");

        // Expired.
        w.now_ms.set(w.now_ms.get() + 31_000); // past the resend gap
        w.browse(
            "POST",
            "email/start",
            &[],
            json!({"email": "ann@example.com"}),
        )
        .await;
        let (c, _) = mailed_code_and_link(&w);
        w.now_ms.set(w.now_ms.get() + 601_000);
        let r = w
            .browse(
                "POST",
                "email/verify",
                &[],
                json!({"email": "ann@example.com", "code": c}),
            )
            .await;
        assert_eq!(code(&r), "CODE_INVALID");
    });
}

#[test]
fn logout_by_cookie_needs_csrf_and_clears_cookies() {
    block_on(async {
        let w = World::new();
        let (cb, _, _) = consent(&w, "github", "/").await;
        w.browse("GET", &cb, &[], Value::Null).await;
        let access = w.cookie("pylon_session").unwrap();
        let csrf = w.cookie("pylon_csrf").unwrap();
        let r = w
            .browse(
                "POST",
                "logout",
                &[("origin", "https://evil.example"), ("x-csrf-token", &csrf)],
                Value::Null,
            )
            .await;
        assert_eq!((r.status, code(&r)), (403, "CSRF_FAILED".to_string()));
        assert!(w.session_of(&access).await.is_ok());
        let r = w
            .browse(
                "POST",
                "logout",
                &[("origin", ORIGIN), ("x-csrf-token", &csrf)],
                Value::Null,
            )
            .await;
        assert_eq!(r.status, 200);
        assert!(w.cookie("pylon_session").is_none() && w.cookie("pylon_refresh").is_none());
        assert_eq!(w.session_of(&access).await.unwrap_err(), "SESSION_REVOKED");
        let r = w.browse("POST", "logout", &[], Value::Null).await;
        assert_eq!(r.status, 401);
    });
}
