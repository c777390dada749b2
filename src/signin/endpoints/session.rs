//! `POST refresh`, `POST logout`, `GET session`, and [`check_session`],
//! which the router runs on every request that carries a session token.
//!
//! Refresh and logout take the refresh token from a JSON body
//! (`{"refresh_token"}`, for clients that keep tokens themselves) or from
//! the `pylon_refresh` cookie; the cookie form passes the CSRF checks
//! first. A refresh token works once: the answer carries its successor,
//! and presenting a used one revokes the whole session.

use serde_json::{json, Value as Json};

use super::{AuthRequest, AuthResponse, Issued, SignIn};
use crate::auth::{request_token, AuthError};
use crate::http::HttpClient;
use crate::signin::cookie;
use crate::signin::error::SignInError;
use crate::signin::random::{token, Random};
use crate::signin::session::{request_session, verify, SessionClaims};
use crate::signin::store::{hash_token, Refusal};
use crate::signin::store_api::{unexpected, AuthBackend, StoreCall, StoreReply};

/// Verifies a session token at `now_ms` and asks the store (through
/// `backend`, which may cache) that its session is still live.
pub async fn check_session(
    secret: &[u8],
    backend: &impl AuthBackend,
    token: &str,
    now_ms: i64,
) -> Result<SessionClaims, SignInError> {
    let claims =
        verify(token, secret, now_ms.div_euclid(1000)).map_err(SignInError::Unauthenticated)?;
    let call = StoreCall::Live {
        sid: claims.sid.clone(),
        now_ms,
    };
    match backend.call(call).await? {
        StoreReply::Live { live: true } => Ok(claims),
        StoreReply::Live { live: false } => Err(SignInError::Revoked),
        r => Err(unexpected(&r)),
    }
}

impl<H: HttpClient, B: AuthBackend, R: Random> SignIn<'_, H, B, R> {
    pub(super) async fn refresh(&self, req: &AuthRequest) -> Result<AuthResponse, SignInError> {
        self.secret()?;
        let body = req.json()?;
        let (old, from_cookie) = match body.get("refresh_token").and_then(Json::as_str) {
            Some(t) => (t.to_owned(), false),
            None => {
                let t = req
                    .cookie(cookie::REFRESH)
                    .ok_or(SignInError::RefreshInvalid)?;
                req.csrf(self.config)?;
                (t.to_owned(), true)
            }
        };
        let new = token(self.random, 32);
        let call = StoreCall::Refresh {
            hash: hash_token(&old),
            new_hash: hash_token(&new),
            now_ms: self.now_ms,
        };
        let (user, sid) = match self.backend.call(call).await? {
            StoreReply::Session { user, sid } => (user, sid),
            StoreReply::Refused(Refusal::RefreshReused { .. }) => {
                let r = AuthResponse::error(&SignInError::RefreshReused);
                return Ok(if from_cookie {
                    r.cookies(self.clear_cookies(req))
                } else {
                    r
                });
            }
            StoreReply::Refused(_) => return Err(SignInError::RefreshInvalid),
            r => return Err(unexpected(&r)),
        };
        let access = self.access_token(&user, &sid)?;
        let issued = Issued {
            user,
            sid,
            access,
            refresh: new,
        };
        let resp = AuthResponse::json(200, &self.token_body(&issued, !from_cookie));
        Ok(if from_cookie {
            resp.cookies(self.session_cookies(req, &issued.access, &issued.refresh))
        } else {
            resp
        })
    }

    pub(super) async fn logout(&self, req: &AuthRequest) -> Result<AuthResponse, SignInError> {
        let secret = self.secret()?;
        let body = req.json()?;
        let bearer = request_token(req.header("authorization"), None)
            .map_err(SignInError::Unauthenticated)?;
        let call = if let Some(t) = body.get("refresh_token").and_then(Json::as_str) {
            StoreCall::RevokeRefresh {
                hash: hash_token(t),
                now_ms: self.now_ms,
            }
        } else if let Some((t, via_cookie)) = request_session(bearer, req.header("cookie")) {
            if via_cookie {
                req.csrf(self.config)?;
            }
            match verify(t, secret, self.now()) {
                Ok(c) => StoreCall::Revoke {
                    sid: c.sid,
                    now_ms: self.now_ms,
                },
                // An expired access cookie: the refresh cookie names the session.
                Err(_) if via_cookie && req.cookie(cookie::REFRESH).is_some() => {
                    StoreCall::RevokeRefresh {
                        hash: hash_token(req.cookie(cookie::REFRESH).unwrap_or_default()),
                        now_ms: self.now_ms,
                    }
                }
                Err(e) => return Err(SignInError::Unauthenticated(e)),
            }
        } else if let Some(t) = req.cookie(cookie::REFRESH) {
            req.csrf(self.config)?;
            StoreCall::RevokeRefresh {
                hash: hash_token(t),
                now_ms: self.now_ms,
            }
        } else {
            return Err(SignInError::Unauthenticated(AuthError::MissingToken));
        };
        let revoked = match self.backend.call(call).await? {
            StoreReply::Revoked { sid } => sid.is_some(),
            r => return Err(unexpected(&r)),
        };
        Ok(
            AuthResponse::json(200, &json!({"ok": true, "revoked": revoked}))
                .cookies(self.clear_cookies(req)),
        )
    }

    pub(super) async fn session(&self, req: &AuthRequest) -> Result<AuthResponse, SignInError> {
        let secret = self.secret()?;
        let bearer = request_token(req.header("authorization"), None)
            .map_err(SignInError::Unauthenticated)?;
        let (t, _) = request_session(bearer, req.header("cookie"))
            .ok_or(SignInError::Unauthenticated(AuthError::MissingToken))?;
        let c = check_session(secret, self.backend, t, self.now_ms).await?;
        Ok(AuthResponse::json(
            200,
            &json!({"user_id": c.sub, "session_id": c.sid, "tenant_id": c.tenant, "roles": c.roles,
                    "expires_at": c.exp}),
        ))
    }
}
