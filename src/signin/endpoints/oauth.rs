//! `GET oauth/{provider}/start` and `GET oauth/{provider}/callback`.
//!
//! Start makes a random `state`, PKCE verifier and OIDC `nonce`, keeps them
//! with the provider and the redirect target in the `pylon_oauth` cookie
//! (an HS256 JWT under the session secret, HttpOnly, 10 minutes, path
//! `/v1/auth/oauth`), and sends the browser to the provider. The callback
//! accepts only a `state` equal to the one in that browser's cookie, uses
//! each state once (the Auth object records it), exchanges the code with
//! the verifier, signs the user in and clears the cookie.

use serde_json::{json, Value as Json};

use super::{AuthRequest, AuthResponse, SignIn};
use crate::auth::{jwt, Validation};
use crate::http::HttpClient;
use crate::signin::cookie::{self, Attrs};
use crate::signin::csrf::ct_eq;
use crate::signin::error::SignInError;
use crate::signin::oauth::{authorize_url, identify, AuthorizeParams};
use crate::signin::random::{token, Random};
use crate::signin::store::Refusal;
use crate::signin::store_api::{unexpected, AuthBackend, StoreCall, StoreReply};
use crate::signin::{pkce, redirect, ProviderConfig, ProviderKind};

/// How long a started sign-in may take, seconds.
pub const OAUTH_TTL_SECS: i64 = 600;
const OAUTH_KID: &str = "pylon-oauth";
const OAUTH_AUD: &str = "pylon-oauth";

fn callback_url(base: &str, provider: &str) -> String {
    format!("{base}/v1/auth/oauth/{provider}/callback")
}

impl<H: HttpClient, B: AuthBackend, R: Random> SignIn<'_, H, B, R> {
    /// The configured provider `name`; the error names it (cut short).
    fn provider(&self, name: &str) -> Result<&ProviderConfig, SignInError> {
        self.config
            .provider(name)
            .ok_or_else(|| SignInError::UnknownProvider(name.chars().take(40).collect()))
    }

    pub(super) async fn oauth_start(
        &self,
        req: &AuthRequest,
        name: &str,
    ) -> Result<AuthResponse, SignInError> {
        let p = self.provider(name)?;
        let secret = self.secret()?;
        let base = self.config.base(&req.origin);
        let target = redirect::target(req.query("redirect"), base, &self.config.app_origins)?;
        let state = token(self.random, 24);
        let verifier = pkce::verifier(self.random);
        let nonce = token(self.random, 24);
        let oidc = matches!(p.kind, ProviderKind::Oidc { .. });
        let url = authorize_url(
            p,
            &AuthorizeParams {
                redirect_uri: &callback_url(base, &p.name),
                state: &state,
                challenge: &pkce::challenge_s256(&verifier),
                nonce: oidc.then_some(nonce.as_str()),
            },
        );
        let now = self.now();
        let claims = json!({"iss": crate::signin::session::ISSUER, "aud": OAUTH_AUD, "p": p.name,
            "st": state, "v": verifier, "n": nonce, "r": target, "iat": now, "exp": now + OAUTH_TTL_SECS});
        let signed =
            jwt::sign_with_header(&json!({"alg": "HS256", "kid": OAUTH_KID}), &claims, secret);
        let secure = self.config.secure_cookies(&req.origin);
        let c = cookie::set(
            cookie::OAUTH,
            &signed,
            &Attrs {
                path: cookie::OAUTH_PATH,
                max_age: OAUTH_TTL_SECS,
                http_only: true,
                secure,
            },
        );
        Ok(AuthResponse::redirect(&url).cookies(vec![c]))
    }

    pub(super) async fn oauth_callback(
        &self,
        req: &AuthRequest,
        name: &str,
    ) -> Result<AuthResponse, SignInError> {
        let p = self.provider(name)?;
        let secret = self.secret()?;
        let cookie = req.cookie(cookie::OAUTH).ok_or(SignInError::BadState(
            "no sign-in in progress in this browser (the pylon_oauth cookie is missing)",
        ))?;
        let v = Validation {
            issuer: Some(crate::signin::session::ISSUER.into()),
            audience: Some(OAUTH_AUD.into()),
            clock_skew_secs: 0,
        };
        let claims =
            jwt::verify_hs256(cookie, secret, &v, self.now()).map_err(|e| match e.reason() {
                "EXPIRED" => SignInError::BadState("the sign-in took too long; start again"),
                _ => SignInError::BadState("the sign-in cookie is not valid"),
            })?;
        let field = |k: &str| claims.get(k).and_then(Json::as_str).unwrap_or_default();
        if field("p") != p.name {
            return Err(SignInError::BadState(
                "the sign-in in progress is for another provider",
            ));
        }
        let state = req.query("state").unwrap_or_default();
        if state.is_empty() || !ct_eq(state.as_bytes(), field("st").as_bytes()) {
            return Err(SignInError::BadState(
                "the state does not match this browser's sign-in",
            ));
        }
        // Single use, whatever happens next.
        let exp = claims.get("exp").and_then(Json::as_i64).unwrap_or(0);
        let call = StoreCall::ConsumeState {
            id: crate::signin::store::hash_token(state),
            expires_ms: exp * 1000,
            now_ms: self.now_ms,
        };
        match self.backend.call(call).await? {
            StoreReply::Done => {}
            StoreReply::Refused(Refusal::StateUsed) => {
                return Err(SignInError::BadState(
                    "this sign-in was already completed; start again",
                ))
            }
            r => return Err(unexpected(&r)),
        }
        if let Some(err) = req.query("error") {
            let shown: String = err
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(60)
                .collect();
            return Err(SignInError::ProviderDenied(shown));
        }
        let code = req
            .query("code")
            .filter(|c| !c.is_empty())
            .ok_or_else(|| SignInError::BadRequest("the callback has no code".into()))?;
        let base = self.config.base(&req.origin);
        let identity = identify(
            self.http,
            p,
            code,
            &callback_url(base, &p.name),
            field("v"),
            field("n"),
            self.now(),
        )
        .await?;
        let issued = self.open_session(identity).await?;
        let mut cookies = self.session_cookies(req, &issued.access, &issued.refresh);
        cookies.push(cookie::clear(
            cookie::OAUTH,
            cookie::OAUTH_PATH,
            true,
            self.config.secure_cookies(&req.origin),
        ));
        Ok(AuthResponse::redirect(field("r")).cookies(cookies))
    }
}
