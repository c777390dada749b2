//! The `/v1/auth/...` endpoints as plain functions: an [`AuthRequest`] in,
//! an [`AuthResponse`] out, with HTTP, the store and randomness passed in.
//! The Worker converts its request and response and does nothing else
//! (`glue::signin`); native tests play the provider with an `HttpClient`.
//!
//! | method and path (under `/v1/auth/`) | what |
//! |---|---|
//! | `GET oauth/{provider}/start?redirect=` | to the provider, with state, PKCE and nonce bound to a cookie |
//! | `GET oauth/{provider}/callback` | code exchange, session cookies, back to `redirect` |
//! | `POST email/start` | `{"email","redirect"?}`: a link and a code by email |
//! | `GET email/verify?token=` | the link: session cookies, back to `redirect` |
//! | `POST email/verify` | `{"email","code"}`: session cookies and tokens |
//! | `POST refresh` | rotate the refresh token (body or cookie) |
//! | `POST logout` | revoke the session |
//! | `GET session` | who the session is |

mod email;
mod oauth;
mod session;

use serde_json::{json, Value as Json};

use super::config::SignInConfig;
use super::cookie::{self, Attrs};
use super::error::SignInError;
use super::random::{token, Random};
use super::session::{issue, SessionClaims};
use super::store::{hash_token, Identity, NewSession, User};
use super::store_api::{unexpected, AuthBackend, StoreCall, StoreReply};
use crate::http::HttpClient;

pub use session::check_session;

/// A request to `/v1/auth/...`, as the Worker received it.
#[derive(Clone, Debug, Default)]
pub struct AuthRequest {
    /// Upper-case.
    pub method: String,
    /// What follows `/v1/auth/`.
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// `scheme://host[:port]` of the request URL.
    pub origin: String,
}

impl AuthRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        cookie::get(self.header("cookie")?, name)
    }

    /// The body as a JSON object (an empty body is `{}`).
    fn json(&self) -> Result<serde_json::Map<String, Json>, SignInError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Default::default());
        }
        match serde_json::from_slice(&self.body) {
            Ok(Json::Object(o)) => Ok(o),
            _ => Err(SignInError::BadRequest(
                "the body must be a JSON object".into(),
            )),
        }
    }

    /// The CSRF checks for a cookie-authenticated request (see `csrf`).
    fn csrf(&self, config: &SignInConfig) -> Result<(), SignInError> {
        super::csrf::check(
            &super::csrf::CsrfInput {
                method: &self.method,
                upgrade: false,
                origin: self.header("origin"),
                cookie_token: self.cookie(cookie::CSRF),
                header_token: self.header(cookie::CSRF_HEADER),
            },
            &config.allowed_origins(&self.origin),
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthResponse {
    pub status: u16,
    /// Names in lower case; `set-cookie` may repeat.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// For the log only: what went wrong behind a 500.
    pub internal: Option<String>,
}

impl AuthResponse {
    pub fn json(status: u16, body: &Json) -> Self {
        AuthResponse {
            status,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("cache-control".into(), "no-store".into()),
            ],
            body: body.to_string().into_bytes(),
            internal: None,
        }
    }

    pub fn redirect(location: &str) -> Self {
        AuthResponse {
            status: 302,
            headers: vec![
                ("location".into(), location.to_owned()),
                ("cache-control".into(), "no-store".into()),
            ],
            body: Vec::new(),
            internal: None,
        }
    }

    pub fn error(e: &SignInError) -> Self {
        let api = e.to_api_error();
        let mut r = Self::json(api.status, &api.body());
        if api.status == 401 {
            r.headers.push(("www-authenticate".into(), "Bearer".into()));
        }
        if e.is_internal() {
            r.internal = Some(e.to_string());
        }
        r
    }

    fn cookies(mut self, cookies: Vec<String>) -> Self {
        self.headers
            .extend(cookies.into_iter().map(|c| ("set-cookie".to_owned(), c)));
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Everything an endpoint needs, for one request.
pub struct SignIn<'a, H: HttpClient, B: AuthBackend, R: Random> {
    pub config: &'a SignInConfig,
    pub http: &'a H,
    pub backend: &'a B,
    pub random: &'a R,
    pub now_ms: i64,
}

/// A new session's tokens.
pub(crate) struct Issued {
    pub user: User,
    pub sid: String,
    pub access: String,
    pub refresh: String,
}

impl<H: HttpClient, B: AuthBackend, R: Random> SignIn<'_, H, B, R> {
    /// Answers one request; failures become the API's error shape.
    pub async fn handle(&self, req: &AuthRequest) -> AuthResponse {
        match self.route(req).await {
            Ok(r) => r,
            Err(e) => AuthResponse::error(&e),
        }
    }

    async fn route(&self, req: &AuthRequest) -> Result<AuthResponse, SignInError> {
        let parts: Vec<&str> = req.path.split('/').collect();
        let m = req.method.as_str();
        let wrong = |allowed: &str| {
            Err(SignInError::MethodNotAllowed(format!(
                "use {allowed} /v1/auth/{}",
                req.path
            )))
        };
        match parts.as_slice() {
            ["oauth", p, "start"] => match m {
                "GET" => self.oauth_start(req, p).await,
                _ => wrong("GET"),
            },
            ["oauth", p, "callback"] => match m {
                "GET" => self.oauth_callback(req, p).await,
                _ => wrong("GET"),
            },
            ["email", "start"] => match m {
                "POST" => self.email_start(req).await,
                _ => wrong("POST"),
            },
            ["email", "verify"] => match m {
                "GET" => self.email_link(req).await,
                "POST" => self.email_code(req).await,
                _ => wrong("GET or POST"),
            },
            ["refresh"] => match m {
                "POST" => self.refresh(req).await,
                _ => wrong("POST"),
            },
            ["logout"] => match m {
                "POST" => self.logout(req).await,
                _ => wrong("POST"),
            },
            ["session"] => match m {
                "GET" => self.session(req).await,
                _ => wrong("GET"),
            },
            _ => Err(SignInError::NotFound(format!("/v1/auth/{}", req.path))),
        }
    }

    pub(crate) fn secret(&self) -> Result<&[u8], SignInError> {
        self.config
            .secret
            .as_deref()
            .ok_or_else(|| SignInError::NotConfigured("PYLON_SESSION_SECRET is not set".into()))
    }

    pub(crate) fn now(&self) -> i64 {
        self.now_ms.div_euclid(1000)
    }

    /// A signed access token for `user` in session `sid`.
    pub(crate) fn access_token(&self, user: &User, sid: &str) -> Result<String, SignInError> {
        let claims = SessionClaims {
            sub: user.id.clone(),
            sid: sid.to_owned(),
            tenant: user.tenant.clone(),
            roles: user.roles.clone(),
            exp: self.now() + self.config.access_ttl_secs,
        };
        Ok(issue(&claims, self.secret()?, self.now()))
    }

    /// Signs in `identity`: finds or makes its user, opens a session.
    pub(crate) async fn open_session(&self, identity: Identity) -> Result<Issued, SignInError> {
        self.secret()?;
        let sid = format!("s_{}", token(self.random, 18));
        let refresh = token(self.random, 32);
        let new = NewSession {
            user_id: format!("u_{}", token(self.random, 12)),
            tenant: self.config.default_tenant.clone(),
            roles: self.config.default_roles.clone(),
            sid: sid.clone(),
            refresh_hash: hash_token(&refresh),
            expires_ms: self.now_ms + self.config.refresh_ttl_secs * 1000,
        };
        let call = StoreCall::SignIn {
            identity,
            new,
            now_ms: self.now_ms,
        };
        match self.backend.call(call).await? {
            StoreReply::Session { user, sid } => {
                let access = self.access_token(&user, &sid)?;
                Ok(Issued {
                    user,
                    sid,
                    access,
                    refresh,
                })
            }
            r => Err(unexpected(&r)),
        }
    }

    /// The session cookies for a browser: access token, refresh token
    /// (sent only to /v1/auth) and the CSRF double-submit token.
    pub(crate) fn session_cookies(
        &self,
        req: &AuthRequest,
        access: &str,
        refresh: &str,
    ) -> Vec<String> {
        let secure = self.config.secure_cookies(&req.origin);
        let refresh_age = self.config.refresh_ttl_secs;
        // Keep the page's CSRF token if it has one (other tabs read it).
        let csrf = req
            .cookie(cookie::CSRF)
            .filter(|c| c.len() >= 22 && c.len() <= 64)
            .map(str::to_owned)
            .unwrap_or_else(|| token(self.random, 24));
        vec![
            cookie::set(
                cookie::SESSION,
                access,
                &Attrs {
                    path: "/",
                    max_age: self.config.access_ttl_secs,
                    http_only: true,
                    secure,
                },
            ),
            cookie::set(
                cookie::REFRESH,
                refresh,
                &Attrs {
                    path: cookie::AUTH_PATH,
                    max_age: refresh_age,
                    http_only: true,
                    secure,
                },
            ),
            cookie::set(
                cookie::CSRF,
                &csrf,
                &Attrs {
                    path: "/",
                    max_age: refresh_age,
                    http_only: false,
                    secure,
                },
            ),
        ]
    }

    /// Cookies that end a browser session.
    pub(crate) fn clear_cookies(&self, req: &AuthRequest) -> Vec<String> {
        let secure = self.config.secure_cookies(&req.origin);
        vec![
            cookie::clear(cookie::SESSION, "/", true, secure),
            cookie::clear(cookie::REFRESH, cookie::AUTH_PATH, true, secure),
            cookie::clear(cookie::CSRF, "/", false, secure),
        ]
    }

    /// The JSON body describing a session.
    pub(crate) fn token_body(&self, issued: &Issued, refresh_in_body: bool) -> Json {
        let mut b = json!({
            "access_token": issued.access,
            "token_type": "Bearer",
            "expires_in": self.config.access_ttl_secs,
            "session_id": issued.sid,
            "user": {"id": issued.user.id, "email": issued.user.email,
                     "tenant": issued.user.tenant, "roles": issued.user.roles},
        });
        if refresh_in_body {
            b["refresh_token"] = json!(issued.refresh);
        }
        b
    }
}
