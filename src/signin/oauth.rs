//! OAuth 2.0 authorization code flow (RFC 6749 §4.1) with PKCE S256 and
//! `state` (plus `nonce` for OpenID Connect): the authorization URL, and
//! the code-for-token exchange over any [`HttpClient`].
//!
//! ```
//! use pylon_workers::signin::oauth::{authorize_url, AuthorizeParams};
//! use pylon_workers::signin::{ProviderConfig, ProviderKind};
//! let p = ProviderConfig { name: "github".into(), kind: ProviderKind::GitHub { api_url: "https://api.github.com".into() },
//!     authorize_url: "https://github.com/login/oauth/authorize".into(), token_url: String::new(),
//!     client_id: "cid".into(), client_secret: String::new(), scopes: "read:user".into() };
//! let u = authorize_url(&p, &AuthorizeParams { redirect_uri: "https://api.example/cb", state: "st",
//!     challenge: "ch", nonce: None });
//! assert!(u.starts_with("https://github.com/login/oauth/authorize?response_type=code&client_id=cid&"));
//! assert!(u.contains("&code_challenge=ch&code_challenge_method=S256"));
//! ```

use serde_json::Value as Json;

use super::config::{ProviderConfig, ProviderKind};
use super::error::SignInError;
use super::store::Identity;
use crate::http::{form_urlencode, HttpClient, HttpRequest};

pub struct AuthorizeParams<'a> {
    pub redirect_uri: &'a str,
    pub state: &'a str,
    pub challenge: &'a str,
    /// OIDC only.
    pub nonce: Option<&'a str>,
}

/// Where the browser goes to sign in at the provider.
pub fn authorize_url(p: &ProviderConfig, a: &AuthorizeParams<'_>) -> String {
    let mut fields = vec![
        ("response_type", "code"),
        ("client_id", p.client_id.as_str()),
        ("redirect_uri", a.redirect_uri),
        ("scope", p.scopes.as_str()),
        ("state", a.state),
        ("code_challenge", a.challenge),
        ("code_challenge_method", "S256"),
    ];
    if let Some(n) = a.nonce {
        fields.push(("nonce", n));
    }
    let sep = if p.authorize_url.contains('?') {
        '&'
    } else {
        '?'
    };
    format!("{}{sep}{}", p.authorize_url, form_urlencode(&fields))
}

/// What the token endpoint gave back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tokens {
    pub access_token: String,
    pub id_token: Option<String>,
}

/// A short, printable cut of a provider's own words (never a token).
fn said(v: &Json, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Json::as_str)
        .map(|s| s.chars().filter(|c| !c.is_control()).take(120).collect())
}

/// Exchanges `code` at the token endpoint (client secret in the form body,
/// `Accept: application/json`, as GitHub needs). A refusal (4xx, or
/// GitHub's 200 with an `error`) is [`SignInError::GrantRefused`].
pub async fn exchange(
    http: &impl HttpClient,
    p: &ProviderConfig,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> Result<Tokens, SignInError> {
    let req = HttpRequest::post_form(
        p.token_url.as_str(),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("client_id", &p.client_id),
            ("client_secret", &p.client_secret),
            ("code_verifier", verifier),
        ],
    )
    .header("accept", "application/json")
    .header("user-agent", super::USER_AGENT);
    let resp = http
        .send(req)
        .await
        .map_err(|e| SignInError::Provider(format!("token endpoint: {e}")))?;
    let body: Json = serde_json::from_slice(&resp.body).unwrap_or(Json::Null);
    if let Some(err) = said(&body, "error") {
        if resp.status < 500 {
            let detail = said(&body, "error_description")
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            return Err(SignInError::GrantRefused(format!("{err}{detail}")));
        }
    }
    if !resp.is_success() {
        return Err(SignInError::Provider(format!(
            "token endpoint answered {}",
            resp.status
        )));
    }
    let access_token = body
        .get("access_token")
        .and_then(Json::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| SignInError::Provider("the token endpoint gave no access_token".into()))?
        .to_owned();
    let id_token = body
        .get("id_token")
        .and_then(Json::as_str)
        .map(str::to_owned);
    Ok(Tokens {
        access_token,
        id_token,
    })
}

/// The whole callback leg: exchange the code, then find out who signed in.
pub async fn identify(
    http: &impl HttpClient,
    p: &ProviderConfig,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
    nonce: &str,
    now: i64,
) -> Result<Identity, SignInError> {
    let tokens = exchange(http, p, code, redirect_uri, verifier).await?;
    match &p.kind {
        ProviderKind::GitHub { api_url } => {
            super::github::user(http, api_url, &tokens.access_token).await
        }
        ProviderKind::Oidc {
            issuer,
            userinfo_url,
        } => {
            let id_token = tokens.id_token.as_deref().ok_or_else(|| {
                SignInError::BadIdToken("the token endpoint gave no id_token".into())
            })?;
            let claims = super::oidc::check_id_token(id_token, issuer, &p.client_id, nonce, now)?;
            super::oidc::identity(
                http,
                p,
                userinfo_url.as_deref(),
                &tokens.access_token,
                &claims,
            )
            .await
        }
    }
}
