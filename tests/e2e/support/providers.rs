//! Test providers on 127.0.0.1 that speak the real protocols, for the
//! sign-in scenario: a GitHub (OAuth app with PKCE: authorize, token,
//! `/user`, `/user/emails`), an OpenID Connect provider (authorize, token
//! with an id_token carrying the nonce, userinfo) and an email API that
//! records each message. Their URLs reach wrangler dev as `--var`s.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use pylon_workers::auth::jwt::sign_hs256;
use pylon_workers::http::form_urlencode;
use pylon_workers::signin::pkce::challenge_s256;
use serde_json::{json, Value};

use super::mini_http::{serve, Req, Resp};

pub const GITHUB_CLIENT: &str = "gh-test-client";
pub const GITHUB_SECRET: &str = "gh-test-secret";
pub const OIDC_CLIENT: &str = "oidc-test-client";
pub const OIDC_SECRET: &str = "oidc-test-secret";
pub const MAIL_KEY: &str = "mail-test-key";
pub const GITHUB_USER_ID: u64 = 4242;
pub const OIDC_SUB: &str = "oidc-user-7";

struct Grant {
    client_id: String,
    challenge: String,
    redirect_uri: String,
    nonce: Option<String>,
    used: bool,
}

/// What every provider remembers (codes, access tokens, mail).
#[derive(Default)]
pub struct Memory {
    grants: HashMap<String, Grant>,
    tokens: Vec<String>,
    next: u64,
    pub mail: Vec<Value>,
    /// Token requests refused, with the reason (for assertions).
    pub refusals: Vec<String>,
}

#[derive(Clone)]
pub struct Providers {
    pub github: u16,
    pub oidc: u16,
    pub mail: u16,
    pub memory: Arc<Mutex<Memory>>,
}

fn issuer(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

fn authorize(m: &Mutex<Memory>, req: &Req, client: &str, oidc: bool) -> Resp {
    let q = &req.query;
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    if get("client_id") != client || get("response_type") != "code" {
        return Resp::json(400, &json!({"error": "unauthorized_client"}));
    }
    if get("code_challenge_method") != "S256" || get("code_challenge").len() != 43 {
        return Resp::json(
            400,
            &json!({"error": "invalid_request", "error_description": "PKCE S256 required"}),
        );
    }
    if get("state").is_empty() || (oidc && get("nonce").is_empty()) {
        return Resp::json(400, &json!({"error": "invalid_request"}));
    }
    let mut m = m.lock().unwrap();
    m.next += 1;
    let code = format!("code-{}-{}", m.next, std::process::id());
    m.grants.insert(
        code.clone(),
        Grant {
            client_id: client.into(),
            challenge: get("code_challenge"),
            redirect_uri: get("redirect_uri"),
            nonce: q.get("nonce").cloned(),
            used: false,
        },
    );
    let redirect = get("redirect_uri");
    let sep = if redirect.contains('?') { '&' } else { '?' };
    // The user says yes at once: back to the client with code and state.
    Resp::redirect(&format!(
        "{redirect}{sep}{}",
        form_urlencode(&[("code", &code), ("state", &get("state"))])
    ))
}

/// The token endpoint: client secret, single-use code, PKCE verifier and
/// redirect_uri are checked as a real server does. GitHub answers a bad
/// code with 200 and an `error`; OIDC providers with 400 `invalid_grant`.
fn token(m: &Mutex<Memory>, req: &Req, client: &str, secret: &str, oidc: Option<u16>) -> Resp {
    let f = req.form();
    let get = |k: &str| f.get(k).cloned().unwrap_or_default();
    let mut m = m.lock().unwrap();
    let refuse = |m: &mut Memory, status: u16, error: &str| {
        m.refusals.push(error.to_owned());
        Resp::json(status, &json!({"error": error}))
    };
    if req.header("accept") != Some("application/json") {
        return refuse(&mut m, 406, "accept_json_please");
    }
    if get("grant_type") != "authorization_code"
        || get("client_id") != client
        || get("client_secret") != secret
    {
        return refuse(&mut m, 401, "invalid_client");
    }
    let bad_grant = if oidc.is_some() {
        (400, "invalid_grant")
    } else {
        (200, "bad_verification_code")
    };
    let code = get("code");
    let Some(g) = m.grants.get_mut(&code) else {
        return refuse(&mut m, bad_grant.0, bad_grant.1);
    };
    if g.used || g.client_id != client {
        return refuse(&mut m, bad_grant.0, bad_grant.1);
    }
    g.used = true;
    if challenge_s256(&get("code_verifier")) != g.challenge {
        return refuse(&mut m, 400, "invalid_grant_pkce");
    }
    if get("redirect_uri") != g.redirect_uri {
        return refuse(&mut m, 400, "redirect_uri_mismatch");
    }
    let nonce = g.nonce.clone();
    let access = format!("at-{}-{}", m.next, code.len());
    m.tokens.push(access.clone());
    let mut body =
        json!({"access_token": access, "token_type": "bearer", "scope": "read:user,user:email"});
    if let Some(port) = oidc {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        // Signed with the provider's own key, which the client never needs
        // (the id_token comes straight from this endpoint).
        body["id_token"] = json!(sign_hs256(
            &json!({"iss": issuer(port), "aud": client, "sub": OIDC_SUB, "iat": now,
                    "exp": now + 300, "nonce": nonce, "email": "ann@example.com",
                    "email_verified": true}),
            b"the provider's own key, not shared"
        ));
        body["expires_in"] = json!(3600);
    }
    Resp::json(200, &body)
}

fn bearer_ok(m: &Mutex<Memory>, req: &Req) -> bool {
    let t = req
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "));
    t.is_some_and(|t| m.lock().unwrap().tokens.iter().any(|k| k == t))
}

/// Starts the three servers.
pub async fn start() -> Result<Providers> {
    let memory = Arc::new(Mutex::new(Memory::default()));

    let m = memory.clone();
    let github = serve(Arc::new(move |req: Req| match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/login/oauth/authorize") => authorize(&m, &req, GITHUB_CLIENT, false),
        ("POST", "/login/oauth/access_token") => token(&m, &req, GITHUB_CLIENT, GITHUB_SECRET, None),
        ("GET", "/user") | ("GET", "/user/emails") if req.header("user-agent").is_none() => {
            Resp::json(403, &json!({"message": "Request forbidden by administrative rules. Please make sure your request has a User-Agent header"}))
        }
        ("GET", "/user") if bearer_ok(&m, &req) => {
            Resp::json(200, &json!({"id": GITHUB_USER_ID, "login": "octocat", "email": null}))
        }
        ("GET", "/user/emails") if bearer_ok(&m, &req) => Resp::json(
            200,
            &json!([{"email": "octo@old.example", "primary": false, "verified": true},
                    {"email": "octocat@example.com", "primary": true, "verified": true}]),
        ),
        ("GET", "/user" | "/user/emails") => Resp::json(401, &json!({"message": "Bad credentials"})),
        _ => Resp::json(404, &json!({"message": "Not Found"})),
    }))
    .await?;

    let m = memory.clone();
    let oidc_port = Arc::new(Mutex::new(0u16));
    let p = oidc_port.clone();
    let oidc = serve(Arc::new(move |req: Req| {
        let port = *p.lock().unwrap();
        match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/authorize") => authorize(&m, &req, OIDC_CLIENT, true),
            ("POST", "/token") => token(&m, &req, OIDC_CLIENT, OIDC_SECRET, Some(port)),
            ("GET", "/userinfo") if bearer_ok(&m, &req) => Resp::json(
                200,
                &json!({"sub": OIDC_SUB, "email": "ann@example.com", "email_verified": true}),
            ),
            ("GET", "/userinfo") => Resp::json(401, &json!({"error": "invalid_token"})),
            _ => Resp::json(404, &json!({"error": "not_found"})),
        }
    }))
    .await?;
    *oidc_port.lock().unwrap() = oidc;

    let m = memory.clone();
    let mail = serve(Arc::new(move |req: Req| {
        if (req.method.as_str(), req.path.as_str()) != ("POST", "/emails") {
            return Resp::json(404, &json!({"message": "not found"}));
        }
        if req.header("authorization") != Some(&format!("Bearer {MAIL_KEY}")) {
            return Resp::json(401, &json!({"message": "missing API key"}));
        }
        match serde_json::from_slice::<Value>(&req.body) {
            Ok(msg) if msg["to"].is_array() && msg["text"].is_string() => {
                let mut m = m.lock().unwrap();
                m.mail.push(msg);
                Resp::json(200, &json!({"id": format!("msg-{}", m.mail.len())}))
            }
            _ => Resp::json(422, &json!({"message": "invalid message"})),
        }
    }))
    .await?;

    Ok(Providers {
        github,
        oidc,
        mail,
        memory,
    })
}

impl Providers {
    /// The wrangler vars that point the Worker at these servers.
    pub fn vars(&self) -> Vec<(String, String)> {
        let gh = issuer(self.github);
        let id = issuer(self.oidc);
        [
            ("PYLON_GITHUB_CLIENT_ID", GITHUB_CLIENT.to_string()),
            ("PYLON_GITHUB_CLIENT_SECRET", GITHUB_SECRET.to_string()),
            (
                "PYLON_GITHUB_AUTHORIZE_URL",
                format!("{gh}/login/oauth/authorize"),
            ),
            (
                "PYLON_GITHUB_TOKEN_URL",
                format!("{gh}/login/oauth/access_token"),
            ),
            ("PYLON_GITHUB_API_URL", gh.clone()),
            ("PYLON_OIDC_NAME", "google".to_string()),
            ("PYLON_OIDC_CLIENT_ID", OIDC_CLIENT.to_string()),
            ("PYLON_OIDC_CLIENT_SECRET", OIDC_SECRET.to_string()),
            ("PYLON_OIDC_ISSUER", id.clone()),
            ("PYLON_OIDC_AUTHORIZE_URL", format!("{id}/authorize")),
            ("PYLON_OIDC_TOKEN_URL", format!("{id}/token")),
            ("PYLON_OIDC_USERINFO_URL", format!("{id}/userinfo")),
            (
                "PYLON_EMAIL_API_URL",
                format!("{}/emails", issuer(self.mail)),
            ),
            ("PYLON_EMAIL_API_KEY", MAIL_KEY.to_string()),
            ("PYLON_EMAIL_FROM", "sign-in@pylon.test".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The last message sent to `to`.
    pub fn last_mail_to(&self, to: &str) -> Option<Value> {
        let m = self.memory.lock().unwrap();
        m.mail.iter().rev().find(|msg| msg["to"][0] == to).cloned()
    }

    /// How many messages went to `to`.
    pub fn mail_count_to(&self, to: &str) -> usize {
        let m = self.memory.lock().unwrap();
        m.mail.iter().filter(|msg| msg["to"][0] == to).count()
    }

    pub fn refusals(&self) -> Vec<String> {
        self.memory.lock().unwrap().refusals.clone()
    }
}
