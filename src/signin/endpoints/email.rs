//! `POST email/start`, `GET email/verify?token=` (the link) and
//! `POST email/verify` (the typed code).
//!
//! Start always answers the same 202 for any well-formed address, so the
//! answer never tells whether an address has an account. The code (6
//! digits) and the link token (32 random bytes) are stored as HMACs under
//! the session secret, live `PYLON_EMAIL_CODE_TTL_SECS` (10 minutes), work
//! once, and a code dies after 5 wrong tries. A new start for the same
//! address replaces the old code and link, but not within
//! `PYLON_EMAIL_RESEND_SECS` (30 s) of the last one: then nothing is sent
//! and the answer is the same.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::{json, Value as Json};
use sha2::Sha256;

use super::{AuthRequest, AuthResponse, SignIn};
use crate::http::{percent_encode, HttpClient};
use crate::signin::error::SignInError;
use crate::signin::random::{digits, token, Random};
use crate::signin::store::{Identity, Refusal};
use crate::signin::store_api::{unexpected, AuthBackend, StoreCall, StoreReply};
use crate::signin::{email, redirect};

/// Digits in a code.
pub const CODE_DIGITS: usize = 6;

fn keyed(secret: &[u8], what: &str, parts: &[&str]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(what.as_bytes());
    for p in parts {
        mac.update(b"\0");
        mac.update(p.as_bytes());
    }
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl<H: HttpClient, B: AuthBackend, R: Random> SignIn<'_, H, B, R> {
    pub(super) async fn email_start(&self, req: &AuthRequest) -> Result<AuthResponse, SignInError> {
        let secret = self.secret()?;
        let api = self
            .config
            .email
            .as_ref()
            .ok_or_else(|| SignInError::UnknownProvider("email".into()))?;
        let body = req.json()?;
        let address =
            email::normalize(body.get("email").and_then(Json::as_str).unwrap_or_default())?;
        let base = self.config.base(&req.origin);
        let target = redirect::target(
            body.get("redirect").and_then(Json::as_str),
            base,
            &self.config.app_origins,
        )?;
        let code = digits(self.random, CODE_DIGITS);
        let link_token = token(self.random, 32);
        let ttl = self.config.email_code_ttl_secs;
        let call = StoreCall::EmailStart {
            email: address.clone(),
            code_hash: keyed(secret, "code", &[&address, &code]),
            link_hash: keyed(secret, "link", &[&link_token]),
            redirect: target,
            expires_ms: self.now_ms + ttl * 1000,
            resend_gap_ms: self.config.email_resend_secs * 1000,
            now_ms: self.now_ms,
        };
        match self.backend.call(call).await? {
            StoreReply::Done => {}
            // Sent moments ago: the same answer, nothing sent (the earlier
            // code still works).
            StoreReply::Refused(Refusal::TooSoon) => return Ok(accepted()),
            r => return Err(unexpected(&r)),
        }
        let link = format!(
            "{base}/v1/auth/email/verify?token={}",
            percent_encode(&link_token)
        );
        let msg = email::message(&api.from, &address, &link, &code, (ttl + 59) / 60);
        email::send(self.http, api, &msg).await?;
        Ok(accepted())
    }

    pub(super) async fn email_link(&self, req: &AuthRequest) -> Result<AuthResponse, SignInError> {
        let secret = self.secret()?;
        let t = req
            .query("token")
            .filter(|t| !t.is_empty())
            .ok_or(SignInError::CodeInvalid)?;
        let call = StoreCall::EmailLink {
            link_hash: keyed(secret, "link", &[t]),
            now_ms: self.now_ms,
        };
        let (address, target) = match self.backend.call(call).await? {
            StoreReply::Email { email, redirect } => (email, redirect),
            StoreReply::Refused(_) => return Err(SignInError::CodeInvalid),
            r => return Err(unexpected(&r)),
        };
        let issued = self.open_session(identity(address)).await?;
        let cookies = self.session_cookies(req, &issued.access, &issued.refresh);
        Ok(AuthResponse::redirect(&target).cookies(cookies))
    }

    pub(super) async fn email_code(&self, req: &AuthRequest) -> Result<AuthResponse, SignInError> {
        let secret = self.secret()?;
        let body = req.json()?;
        let address =
            email::normalize(body.get("email").and_then(Json::as_str).unwrap_or_default())
                .map_err(|_| SignInError::CodeInvalid)?;
        let code: String = body
            .get("code")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if code.len() != CODE_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SignInError::CodeInvalid);
        }
        let call = StoreCall::EmailCode {
            email: address.clone(),
            code_hash: keyed(secret, "code", &[&address, &code]),
            now_ms: self.now_ms,
        };
        match self.backend.call(call).await? {
            StoreReply::Email { .. } => {}
            StoreReply::Refused(_) => return Err(SignInError::CodeInvalid),
            r => return Err(unexpected(&r)),
        }
        let issued = self.open_session(identity(address)).await?;
        let in_body = body.get("refresh_in_body") == Some(&Json::Bool(true));
        let cookies = self.session_cookies(req, &issued.access, &issued.refresh);
        Ok(AuthResponse::json(200, &self.token_body(&issued, in_body)).cookies(cookies))
    }
}

/// The one answer to every well-formed start.
fn accepted() -> AuthResponse {
    AuthResponse::json(
        202,
        &json!({"ok": true, "message": "if this address can receive email, a sign-in link and code are on the way"}),
    )
}

fn identity(address: String) -> Identity {
    Identity {
        provider: "email".into(),
        subject: address.clone(),
        email: Some(address),
    }
}
