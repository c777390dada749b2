//! OpenID Connect: the id_token's checks, and the identity it names.
//!
//! The id_token arrives directly from the token endpoint over TLS in the
//! answer to our own authenticated request, so its signature is not
//! checked: OIDC Core 1.0 §3.1.3.7 (6) allows TLS server validation in
//! place of it for the authorization code flow. Its claims are checked:
//! `iss` equals the configured issuer, `aud` contains our client id (and
//! `azp`, if there are several audiences, is our client id), `exp` is in
//! the future, and `nonce` is the one bound to this browser.
//!
//! ```
//! use pylon_workers::auth::jwt::sign_hs256;
//! use pylon_workers::signin::oidc::check_id_token;
//! let t = sign_hs256(&serde_json::json!({"iss": "https://accounts.google.com", "aud": "cid",
//!     "sub": "110", "exp": 2_000, "nonce": "n1"}), b"any key: the signature is not checked");
//! assert!(check_id_token(&t, "https://accounts.google.com", "cid", "n1", 1_000).is_ok());
//! assert_eq!(check_id_token(&t, "https://accounts.google.com", "cid", "n2", 1_000).unwrap_err().code(),
//!            "BAD_ID_TOKEN");
//! ```

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{Map, Value as Json};

use super::config::ProviderConfig;
use super::error::SignInError;
use super::store::Identity;
use crate::http::{HttpClient, HttpRequest};

/// Leeway for `exp`, seconds.
const SKEW: i64 = 60;

fn bad(why: impl Into<String>) -> SignInError {
    SignInError::BadIdToken(why.into())
}

/// The id_token's claims, after the checks above.
pub fn check_id_token(
    token: &str,
    issuer: &str,
    client_id: &str,
    nonce: &str,
    now: i64,
) -> Result<Map<String, Json>, SignInError> {
    if token.len() > crate::auth::jwt::MAX_TOKEN_BYTES {
        return Err(bad("too long"));
    }
    let payload = token.split('.').nth(1).ok_or_else(|| bad("not a JWT"))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| bad("not base64url"))?;
    let claims = match serde_json::from_slice(&bytes) {
        Ok(Json::Object(o)) => o,
        _ => return Err(bad("the payload is not a JSON object")),
    };
    if claims.get("iss").and_then(Json::as_str) != Some(issuer) {
        return Err(bad("iss is not the configured issuer"));
    }
    let auds: Vec<&str> = match claims.get("aud") {
        Some(Json::String(a)) => vec![a.as_str()],
        Some(Json::Array(l)) => l.iter().filter_map(Json::as_str).collect(),
        _ => vec![],
    };
    if !auds.contains(&client_id) {
        return Err(bad("aud does not contain our client id"));
    }
    if auds.len() > 1 && claims.get("azp").and_then(Json::as_str) != Some(client_id) {
        return Err(bad("azp is not our client id"));
    }
    match claims.get("exp").and_then(Json::as_f64) {
        Some(exp) if (now as f64) <= exp + SKEW as f64 => {}
        Some(_) => return Err(bad("expired")),
        None => return Err(bad("exp is missing")),
    }
    let got = claims.get("nonce").and_then(Json::as_str).unwrap_or("");
    if !super::csrf::ct_eq(got.as_bytes(), nonce.as_bytes()) {
        return Err(bad("nonce does not match this sign-in"));
    }
    match claims.get("sub").and_then(Json::as_str) {
        Some(s) if !s.is_empty() && s.len() <= 255 => {}
        _ => return Err(bad("sub is missing")),
    }
    Ok(claims)
}

fn verified_email(c: &Map<String, Json>) -> Option<String> {
    let verified = matches!(c.get("email_verified"), Some(Json::Bool(true)))
        || c.get("email_verified").and_then(Json::as_str) == Some("true");
    c.get("email")
        .and_then(Json::as_str)
        .filter(|_| verified)
        .map(str::to_ascii_lowercase)
}

/// The identity: `sub` from the id_token, the verified address from
/// userinfo (whose `sub` must match) or else from the id_token.
pub async fn identity(
    http: &impl HttpClient,
    p: &ProviderConfig,
    userinfo_url: Option<&str>,
    access_token: &str,
    claims: &Map<String, Json>,
) -> Result<Identity, SignInError> {
    let sub = claims
        .get("sub")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut email = verified_email(claims);
    if let Some(url) = userinfo_url {
        let req = HttpRequest::get(url)
            .header("authorization", format!("Bearer {access_token}"))
            .header("accept", "application/json");
        let resp = http
            .send(req)
            .await
            .map_err(|e| SignInError::Provider(format!("userinfo: {e}")))?;
        if !resp.is_success() {
            return Err(SignInError::Provider(format!(
                "userinfo answered {}",
                resp.status
            )));
        }
        let info: Map<String, Json> = resp
            .json()
            .map_err(|_| SignInError::Provider("userinfo is not a JSON object".into()))?;
        if info.get("sub").and_then(Json::as_str) != Some(sub.as_str()) {
            return Err(bad("userinfo sub differs from the id_token's"));
        }
        email = verified_email(&info).or(email);
    }
    Ok(Identity {
        provider: p.name.clone(),
        subject: sub,
        email,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::jwt::sign_hs256;
    use serde_json::json;

    fn tok(c: Json) -> String {
        sign_hs256(&c, b"k")
    }

    #[test]
    fn checks() {
        let base = json!({"iss": "I", "aud": "C", "sub": "s", "exp": 1000, "nonce": "N"});
        let with = |k: &str, v: Json| {
            let mut c = base.clone();
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v;
            }
            tok(c)
        };
        assert!(check_id_token(&tok(base.clone()), "I", "C", "N", 1000).is_ok());
        assert!(check_id_token(&with("aud", json!(["x", "C"])), "I", "C", "N", 1000).is_err());
        assert!(check_id_token(&with("azp", json!("C")), "I", "C", "N", 1000).is_ok());
        for t in [
            with("iss", json!("J")),
            with("aud", json!("D")),
            with("exp", json!(900)),
            with("exp", Json::Null),
            with("nonce", json!("M")),
            with("nonce", Json::Null),
            with("sub", json!("")),
            "x".into(),
        ] {
            assert_eq!(
                check_id_token(&t, "I", "C", "N", 1000).unwrap_err().code(),
                "BAD_ID_TOKEN"
            );
        }
        let mut multi = base.clone();
        multi["aud"] = json!(["x", "C"]);
        multi["azp"] = json!("C");
        assert!(check_id_token(&tok(multi), "I", "C", "N", 1000).is_ok());
    }
}
