//! Session access tokens: short-lived HS256 JWTs signed with the session
//! secret, naming the session (`sid`) so the router can refuse a revoked
//! one. The header's `kid` (`pylon-session`) tells them apart from tokens
//! of an outside identity provider; the signature decides.
//!
//! ```
//! use pylon_workers::signin::session::{issue, verify, is_session_token, SessionClaims};
//! let secret = b"a-session-secret-of-32-bytes-or-more!";
//! let c = SessionClaims { sub: "u_1".into(), sid: "s_1".into(), tenant: None, roles: vec![], exp: 1_000 };
//! let t = issue(&c, secret, 100);
//! assert!(is_session_token(&t));
//! assert_eq!(verify(&t, secret, 500).unwrap(), c);
//! assert_eq!(verify(&t, secret, 1_001).unwrap_err().reason(), "EXPIRED");
//! ```

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value as Json};

use crate::auth::{jwt, AuthError, Lease, Validation};
use crate::policy::AuthContext;

pub const SESSION_KID: &str = "pylon-session";
pub const ISSUER: &str = "pylon";
pub const AUDIENCE: &str = "pylon-session";

/// What a session token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionClaims {
    /// The user id.
    pub sub: String,
    pub sid: String,
    pub tenant: Option<String>,
    pub roles: Vec<String>,
    /// Unix seconds.
    pub exp: i64,
}

impl SessionClaims {
    /// The caller policies see. Sessions never make admins.
    pub fn context(&self) -> AuthContext {
        AuthContext {
            user_id: Some(self.sub.clone()),
            is_admin: false,
            tenant_id: self.tenant.clone(),
            roles: self.roles.clone(),
        }
    }

    /// How long the token holds: its `exp`, and the session to check for
    /// revocation.
    pub fn lease(&self) -> Lease {
        Lease {
            exp: Some(self.exp),
            sid: Some(self.sid.clone()),
        }
    }
}

/// Signs `c` at `now` (Unix seconds).
pub fn issue(c: &SessionClaims, secret: &[u8], now: i64) -> String {
    let mut claims = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": c.sub, "sid": c.sid,
                            "iat": now, "exp": c.exp});
    if let Some(t) = &c.tenant {
        claims["tenant"] = json!(t);
    }
    if !c.roles.is_empty() {
        claims["roles"] = json!(c.roles);
    }
    jwt::sign_with_header(
        &json!({"alg": "HS256", "typ": "JWT", "kid": SESSION_KID}),
        &claims,
        secret,
    )
}

/// Whether `token`'s header names our session key (unverified: it only
/// chooses which check runs).
pub fn is_session_token(token: &str) -> bool {
    let Some(h) = token.split('.').next() else {
        return false;
    };
    if h.len() > 512 {
        return false;
    }
    URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice::<Json>(&b).ok())
        .is_some_and(|h| h["kid"] == SESSION_KID)
}

/// Verifies a session token at `now`: signature, `exp` (no leeway: we
/// issued it), issuer and audience, and its claims' shapes.
pub fn verify(token: &str, secret: &[u8], now: i64) -> Result<SessionClaims, AuthError> {
    let v = Validation {
        issuer: Some(ISSUER.into()),
        audience: Some(AUDIENCE.into()),
        clock_skew_secs: 0,
    };
    let claims = jwt::verify_hs256(token, secret, &v, now)?;
    let text = |k: &str| {
        claims
            .get(k)
            .and_then(Json::as_str)
            .filter(|s| !s.is_empty())
    };
    let bad = |k: &str| AuthError::BadToken(format!("session claim `{k}` is missing or malformed"));
    let roles = match claims.get("roles") {
        None => Vec::new(),
        Some(Json::Array(a)) => a
            .iter()
            .map(|r| r.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("roles"))?,
        Some(_) => return Err(bad("roles")),
    };
    Ok(SessionClaims {
        sub: text("sub").ok_or_else(|| bad("sub"))?.to_owned(),
        sid: text("sid").ok_or_else(|| bad("sid"))?.to_owned(),
        tenant: text("tenant").map(str::to_owned),
        roles,
        exp: claims.get("exp").and_then(Json::as_f64).unwrap_or(0.0) as i64,
    })
}

/// The session token of a request, and whether it came from the cookie:
/// a bearer token (header, else `bearer.` subprotocol) whose header names
/// the session key, or, with no bearer token at all, the `pylon_session`
/// cookie. Other bearer tokens are the JWT gate's business (`None`).
pub fn request_session<'a>(
    bearer: Option<&'a str>,
    cookie_header: Option<&'a str>,
) -> Option<(&'a str, bool)> {
    match bearer {
        Some(t) if is_session_token(t) => Some((t, false)),
        Some(_) => None,
        None => cookie_header
            .and_then(|h| super::cookie::get(h, super::cookie::SESSION))
            .map(|t| (t, true)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a-session-secret-of-32-bytes-or-more!";

    #[test]
    fn tokens() {
        let c = SessionClaims {
            sub: "u".into(),
            sid: "s".into(),
            tenant: Some("acme".into()),
            roles: vec!["member".into()],
            exp: 200,
        };
        let t = issue(&c, SECRET, 100);
        assert_eq!(verify(&t, SECRET, 200).unwrap(), c);
        assert_eq!(
            verify(&t, b"another-secret-another-secret-xxxxx", 150)
                .unwrap_err()
                .reason(),
            "BAD_SIGNATURE"
        );
        assert_eq!(c.context().tenant_id.as_deref(), Some("acme"));
        // An outside token signed with the same key is no session token.
        let other = jwt::sign_hs256(&json!({"sub": "u", "exp": 300}), SECRET);
        assert!(!is_session_token(&other));
        assert_eq!(
            verify(&other, SECRET, 150).unwrap_err().reason(),
            "WRONG_ISSUER"
        );
        let no_sid = jwt::sign_hs256(
            &json!({"sub": "u", "exp": 300, "iss": ISSUER, "aud": AUDIENCE}),
            SECRET,
        );
        assert_eq!(
            verify(&no_sid, SECRET, 150).unwrap_err().reason(),
            "BAD_TOKEN"
        );

        assert_eq!(
            request_session(Some(&t), Some("pylon_session=x")),
            Some((t.as_str(), false))
        );
        assert_eq!(request_session(Some(&other), Some("pylon_session=x")), None);
        assert_eq!(
            request_session(None, Some("a=b; pylon_session=x")),
            Some(("x", true))
        );
        assert_eq!(request_session(None, None), None);
    }
}
