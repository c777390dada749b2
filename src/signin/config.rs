//! Sign-in settings, read from wrangler vars and secrets (docs/sign-in.md,
//! "Configuration"). A provider is enabled when its client id is set; its
//! endpoints default to the real GitHub and Google ones.
//!
//! ```
//! use pylon_workers::signin::SignInConfig;
//! let vars = |k: &str| match k {
//!     "PYLON_SESSION_SECRET" => Some("a-session-secret-of-32-bytes-or-more!".to_string()),
//!     "PYLON_GITHUB_CLIENT_ID" => Some("Iv1.abc".to_string()),
//!     "PYLON_GITHUB_CLIENT_SECRET" => Some("shh".to_string()),
//!     _ => None,
//! };
//! let c = SignInConfig::from_vars(vars).unwrap();
//! let gh = c.provider("github").unwrap();
//! assert_eq!(gh.token_url, "https://github.com/login/oauth/access_token");
//! assert!(c.provider("google").is_none());
//! assert_eq!(c.access_ttl_secs, 900);
//! ```

use crate::auth::MIN_SECRET_BYTES;

pub const SESSION_SECRET_VAR: &str = "PYLON_SESSION_SECRET";

/// How a provider's user is found after the code exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProviderKind {
    /// GitHub: `GET {api}/user` and `GET {api}/user/emails`.
    GitHub { api_url: String },
    /// OpenID Connect: the id_token (iss, aud, exp, nonce), then userinfo.
    Oidc {
        issuer: String,
        userinfo_url: Option<String>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderConfig {
    /// The `{provider}` in `/v1/auth/oauth/{provider}/...`.
    pub name: String,
    pub kind: ProviderKind,
    pub authorize_url: String,
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    /// Space-separated.
    pub scopes: String,
}

/// The pluggable email API: a JSON POST with a bearer key (see `email.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailConfig {
    pub api_url: String,
    pub api_key: String,
    pub from: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignInConfig {
    /// HS256 key for session tokens and the OAuth cookie; `None`: sign-in
    /// and session tokens are off.
    pub secret: Option<Vec<u8>>,
    /// This server's public origin (for callback URLs, links, CSRF); when
    /// unset, the origin the request arrived on.
    pub public_url: Option<String>,
    /// Other origins pages may be served from (CSRF, redirect targets).
    pub app_origins: Vec<String>,
    pub access_ttl_secs: i64,
    pub refresh_ttl_secs: i64,
    /// How long the router trusts a "not revoked" answer (per isolate).
    pub revocation_cache_secs: i64,
    pub email_code_ttl_secs: i64,
    /// No new email code for an address within this long of the last.
    pub email_resend_secs: i64,
    /// Tenant and roles given to new users.
    pub default_tenant: Option<String>,
    pub default_roles: Vec<String>,
    pub github: Option<ProviderConfig>,
    pub oidc: Option<ProviderConfig>,
    pub email: Option<EmailConfig>,
}

fn number(
    get: &impl Fn(&str) -> Option<String>,
    var: &str,
    default: i64,
    max: i64,
) -> Result<i64, String> {
    match get(var) {
        None => Ok(default),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if (0..=max).contains(&n) => Ok(n),
            _ => Err(format!("{var} must be an integer from 0 to {max}")),
        },
    }
}

/// `PYLON_REVOCATION_CACHE_SECS` (default 10, at most 300): how stale a
/// "session live" answer may be, at the router and on open sockets.
pub fn revocation_cache_secs(get: &impl Fn(&str) -> Option<String>) -> Result<i64, String> {
    number(get, "PYLON_REVOCATION_CACHE_SECS", 10, 300)
}

fn text(get: &impl Fn(&str) -> Option<String>, var: &str) -> Option<String> {
    get(var)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

impl SignInConfig {
    /// Reads every setting through `get` (a var or secret by name). A bad
    /// value is an error naming its variable.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let secret = match get(SESSION_SECRET_VAR) {
            None => None,
            Some(s) if s.len() < MIN_SECRET_BYTES => {
                return Err(format!(
                    "{SESSION_SECRET_VAR} is shorter than {MIN_SECRET_BYTES} bytes"
                ))
            }
            Some(s) => Some(s.into_bytes()),
        };
        let public_url = text(&get, "PYLON_PUBLIC_URL").map(|u| u.trim_end_matches('/').to_owned());
        if let Some(u) = &public_url {
            if super::redirect::origin_of(u) != Some(u.as_str()) {
                return Err(
                    "PYLON_PUBLIC_URL must be an origin like https://api.example.com".into(),
                );
            }
        }
        let app_origins: Vec<String> = text(&get, "PYLON_APP_ORIGINS")
            .unwrap_or_default()
            .split([',', ' '])
            .filter(|o| !o.is_empty())
            .map(|o| o.trim_end_matches('/').to_owned())
            .collect();
        for o in &app_origins {
            if super::redirect::origin_of(o) != Some(o.as_str()) {
                return Err(format!(
                    "PYLON_APP_ORIGINS: {o:?} is not an origin like https://app.example.com"
                ));
            }
        }
        let github = text(&get, "PYLON_GITHUB_CLIENT_ID").map(|client_id| ProviderConfig {
            name: "github".into(),
            kind: ProviderKind::GitHub {
                api_url: text(&get, "PYLON_GITHUB_API_URL")
                    .unwrap_or_else(|| "https://api.github.com".into()),
            },
            authorize_url: text(&get, "PYLON_GITHUB_AUTHORIZE_URL")
                .unwrap_or_else(|| "https://github.com/login/oauth/authorize".into()),
            token_url: text(&get, "PYLON_GITHUB_TOKEN_URL")
                .unwrap_or_else(|| "https://github.com/login/oauth/access_token".into()),
            client_id,
            client_secret: get("PYLON_GITHUB_CLIENT_SECRET").unwrap_or_default(),
            scopes: text(&get, "PYLON_GITHUB_SCOPES")
                .unwrap_or_else(|| "read:user user:email".into()),
        });
        let oidc = text(&get, "PYLON_OIDC_CLIENT_ID").map(|client_id| ProviderConfig {
            name: text(&get, "PYLON_OIDC_NAME").unwrap_or_else(|| "google".into()),
            kind: ProviderKind::Oidc {
                issuer: text(&get, "PYLON_OIDC_ISSUER")
                    .unwrap_or_else(|| "https://accounts.google.com".into()),
                userinfo_url: match text(&get, "PYLON_OIDC_USERINFO_URL").as_deref() {
                    Some("none") => None,
                    Some(u) => Some(u.to_owned()),
                    None => Some("https://openidconnect.googleapis.com/v1/userinfo".into()),
                },
            },
            authorize_url: text(&get, "PYLON_OIDC_AUTHORIZE_URL")
                .unwrap_or_else(|| "https://accounts.google.com/o/oauth2/v2/auth".into()),
            token_url: text(&get, "PYLON_OIDC_TOKEN_URL")
                .unwrap_or_else(|| "https://oauth2.googleapis.com/token".into()),
            client_id,
            client_secret: get("PYLON_OIDC_CLIENT_SECRET").unwrap_or_default(),
            scopes: text(&get, "PYLON_OIDC_SCOPES")
                .unwrap_or_else(|| "openid email profile".into()),
        });
        if let Some(o) = &oidc {
            if o.name == "github"
                || o.name == "email"
                || !o
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(
                    "PYLON_OIDC_NAME must be lower-case letters, digits and -, and not github or email"
                        .into(),
                );
            }
        }
        let email = text(&get, "PYLON_EMAIL_API_URL").map(|api_url| EmailConfig {
            api_url,
            api_key: get("PYLON_EMAIL_API_KEY").unwrap_or_default(),
            from: text(&get, "PYLON_EMAIL_FROM").unwrap_or_else(|| "sign-in@localhost".into()),
        });
        let day = 86_400;
        Ok(SignInConfig {
            secret,
            public_url,
            app_origins,
            access_ttl_secs: number(&get, "PYLON_SESSION_TTL_SECS", 900, day)?.max(1),
            refresh_ttl_secs: number(&get, "PYLON_REFRESH_TTL_SECS", 30 * day, 365 * day)?.max(1),
            revocation_cache_secs: revocation_cache_secs(&get)?,
            email_code_ttl_secs: number(&get, "PYLON_EMAIL_CODE_TTL_SECS", 600, 3600)?.max(1),
            email_resend_secs: number(&get, "PYLON_EMAIL_RESEND_SECS", 30, 3600)?,
            default_tenant: text(&get, "PYLON_SIGNIN_TENANT"),
            default_roles: text(&get, "PYLON_SIGNIN_ROLES")
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            github,
            oidc,
            email,
        })
    }

    /// The enabled provider called `name`.
    pub fn provider(&self, name: &str) -> Option<&ProviderConfig> {
        [&self.github, &self.oidc]
            .into_iter()
            .flatten()
            .find(|p| p.name == name)
    }

    /// This server's origin: `PYLON_PUBLIC_URL`, else the request's.
    pub fn base<'a>(&'a self, request_origin: &'a str) -> &'a str {
        self.public_url.as_deref().unwrap_or(request_origin)
    }

    /// Origins our pages may come from: this server's and the app origins.
    pub fn allowed_origins(&self, request_origin: &str) -> Vec<String> {
        let mut v = vec![self.base(request_origin).to_owned()];
        v.extend(self.app_origins.iter().cloned());
        v
    }

    /// Whether cookies carry `Secure` (always, except on loopback HTTP).
    pub fn secure_cookies(&self, request_origin: &str) -> bool {
        !super::cookie::dev_origin(self.base(request_origin))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<SignInConfig, String> {
        let m: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SignInConfig::from_vars(|k| m.get(k).cloned())
    }

    #[test]
    fn vars() {
        let c = from(&[]).unwrap();
        assert!(c.secret.is_none() && c.github.is_none() && c.email.is_none());
        assert!(from(&[("PYLON_SESSION_SECRET", "short")])
            .unwrap_err()
            .contains("PYLON_SESSION_SECRET"));
        assert!(from(&[("PYLON_SESSION_TTL_SECS", "x")])
            .unwrap_err()
            .contains("PYLON_SESSION_TTL_SECS"));
        assert!(from(&[("PYLON_APP_ORIGINS", "https://a.example/path")]).is_err());
        assert!(from(&[("PYLON_PUBLIC_URL", "https://a.example/")]).is_ok());
        for bad in ["email", "github", "Google", "a b"] {
            let vars = [("PYLON_OIDC_CLIENT_ID", "c"), ("PYLON_OIDC_NAME", bad)];
            assert!(from(&vars).is_err(), "{bad}");
        }
        let c = from(&[
            ("PYLON_OIDC_CLIENT_ID", "cid"),
            ("PYLON_OIDC_TOKEN_URL", "http://127.0.0.1:9/token"),
            (
                "PYLON_APP_ORIGINS",
                "http://localhost:5173, https://app.example",
            ),
            ("PYLON_SIGNIN_ROLES", "member reader"),
        ])
        .unwrap();
        let g = c.provider("google").unwrap();
        assert_eq!(g.token_url, "http://127.0.0.1:9/token");
        assert_eq!(
            g.authorize_url,
            "https://accounts.google.com/o/oauth2/v2/auth"
        );
        assert_eq!(c.app_origins.len(), 2);
        assert_eq!(c.default_roles, ["member", "reader"]);
        assert!(!c.secure_cookies("http://127.0.0.1:8787"));
        assert!(c.secure_cookies("https://x.example"));
    }
}
