//! JSON Web Tokens (RFC 7519): the compact form split and its header read
//! ([`decode`]), HS256 verification, the `exp`, `nbf`, `iss` and `aud`
//! checks, and HS256 signing for tests and development tools. RS256 and
//! ES256 signatures are checked against JWKS keys ([`crate::auth::jwk`]).
//!
//! Only `HS256`, `RS256` and `ES256` are read; `none` and every other `alg`
//! are refused before the signature is looked at, and the key that checks
//! a token is chosen by its type (the secret for HS256 only, JWKS keys for
//! RS256/ES256 only), so a token cannot choose how it is checked. The HMAC
//! is compared in constant time.
//!
//! ```
//! use pylon_workers::auth::{jwt, AuthError, Validation};
//! let secret = b"an-example-secret-of-at-least-32-bytes!";
//! let token = jwt::sign_hs256(&serde_json::json!({"sub": "alice", "exp": 2_000}), secret);
//! let v = Validation::default();
//! assert_eq!(jwt::verify_hs256(&token, secret, &v, 1_000).unwrap()["sub"], "alice");
//! assert_eq!(jwt::verify_hs256(&token, secret, &v, 3_000), Err(AuthError::Expired));
//! assert_eq!(jwt::verify_hs256(&token, b"another-secret-another-secret-xx", &v, 1_000),
//!            Err(AuthError::BadSignature));
//! ```

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value as Json};
use sha2::Sha256;

use super::error::AuthError;

type HmacSha256 = Hmac<Sha256>;

/// Tokens longer than this are refused unread.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// What a token must satisfy besides its signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validation {
    /// When set, `iss` must equal it.
    pub issuer: Option<String>,
    /// When set, `aud` (a string or a list) must contain it. When unset, a
    /// token that names an audience is refused (RFC 7519 §4.1.3).
    pub audience: Option<String>,
    /// Leeway for `exp` and `nbf`, in seconds.
    pub clock_skew_secs: u64,
}

impl Default for Validation {
    fn default() -> Self {
        Validation {
            issuer: None,
            audience: None,
            clock_skew_secs: 60,
        }
    }
}

fn bad(msg: impl Into<String>) -> AuthError {
    AuthError::BadToken(msg.into())
}

fn decode_part(part: &str, what: &str) -> Result<Vec<u8>, AuthError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| bad(format!("the {what} is not unpadded base64url")))
}

fn json_object(bytes: &[u8], what: &str) -> Result<Map<String, Json>, AuthError> {
    match serde_json::from_slice(bytes) {
        Ok(Json::Object(o)) => Ok(o),
        _ => Err(bad(format!("the {what} is not a JSON object"))),
    }
}

/// A NumericDate claim: a JSON number of seconds, or absent.
fn numeric_date(claims: &Map<String, Json>, key: &str) -> Result<Option<f64>, AuthError> {
    match claims.get(key) {
        None => Ok(None),
        Some(Json::Number(n)) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| bad(format!("`{key}` is not a number"))),
        Some(_) => Err(bad(format!("`{key}` is not a number"))),
    }
}

/// A signing algorithm this crate accepts. `none` and every other `alg`
/// are refused before anything else is looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Alg {
    /// HMAC-SHA-256 with the shared secret.
    Hs256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, a public key from the JWKS.
    Rs256,
    /// ECDSA on P-256 with SHA-256, a public key from the JWKS.
    Es256,
}

impl Alg {
    /// The JOSE name (`HS256`, `RS256`, `ES256`); case-sensitive.
    pub fn parse(s: &str) -> Option<Alg> {
        match s {
            "HS256" => Some(Alg::Hs256),
            "RS256" => Some(Alg::Rs256),
            "ES256" => Some(Alg::Es256),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Hs256 => "HS256",
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
        }
    }
}

/// A compact JWS split and its header read; nothing verified yet.
#[derive(Debug)]
pub struct Decoded<'a> {
    pub alg: Alg,
    /// The header's `kid`, if any.
    pub kid: Option<String>,
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: &'a [u8],
    pub signature: Vec<u8>,
    payload: &'a str,
}

/// Splits `token` and reads its header: size, three base64url parts, a
/// JSON header with an accepted `alg`, no `crit`. The payload is read only
/// after the signature verifies ([`Decoded::claims`]).
pub fn decode(token: &str) -> Result<Decoded<'_>, AuthError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(bad(format!("longer than {MAX_TOKEN_BYTES} bytes")));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("not three dot-separated parts"));
    };
    let header = json_object(&decode_part(h, "header")?, "header")?;
    let alg = match header.get("alg").and_then(Json::as_str) {
        Some(name) => Alg::parse(name).ok_or_else(|| {
            let shown: String = name.chars().take(16).collect();
            bad(format!(
                "alg {shown:?} is not accepted (HS256, RS256, ES256)"
            ))
        })?,
        None => return Err(bad("the header has no `alg`")),
    };
    if header.contains_key("crit") {
        return Err(bad("`crit` header parameters are not supported"));
    }
    let kid = match header.get("kid") {
        None | Some(Json::Null) => None,
        Some(Json::String(k)) if k.len() <= 256 => Some(k.clone()),
        Some(_) => return Err(bad("`kid` is not a string of at most 256 bytes")),
    };
    Ok(Decoded {
        alg,
        kid,
        signing_input: &token.as_bytes()[..h.len() + 1 + p.len()],
        signature: decode_part(s, "signature")?,
        payload: p,
    })
}

impl Decoded<'_> {
    /// The claims, once the signature is verified, checked against `v` at
    /// `now`: `exp` (required), `nbf`, `iss`, `aud`.
    pub fn claims(&self, v: &Validation, now: i64) -> Result<Map<String, Json>, AuthError> {
        let claims = json_object(&decode_part(self.payload, "payload")?, "payload")?;
        check_claims(&claims, v, now)?;
        Ok(claims)
    }
}

/// HMAC-SHA-256 of the signing input against `sig`, in constant time.
pub fn verify_hmac(secret: &[u8], signing_input: &[u8], sig: &[u8]) -> Result<(), AuthError> {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(signing_input);
    mac.verify_slice(sig).map_err(|_| AuthError::BadSignature)
}

fn check_claims(claims: &Map<String, Json>, v: &Validation, now: i64) -> Result<(), AuthError> {
    let skew = v.clock_skew_secs as f64;
    let now = now as f64;
    match numeric_date(claims, "exp")? {
        None => return Err(bad("`exp` is required")),
        Some(exp) if now > exp + skew => return Err(AuthError::Expired),
        Some(_) => {}
    }
    if let Some(nbf) = numeric_date(claims, "nbf")? {
        if now + skew < nbf {
            return Err(AuthError::NotYetValid);
        }
    }
    if let Some(iss) = &v.issuer {
        if claims.get("iss").and_then(Json::as_str) != Some(iss.as_str()) {
            return Err(AuthError::WrongIssuer);
        }
    }
    let aud_ok = match (claims.get("aud"), &v.audience) {
        (None | Some(Json::Null), None) => true,
        (_, None) => false,
        (Some(Json::String(a)), Some(want)) => a == want,
        (Some(Json::Array(list)), Some(want)) => list.iter().any(|a| a.as_str() == Some(want)),
        (_, Some(_)) => false,
    };
    if !aud_ok {
        return Err(AuthError::WrongAudience);
    }
    Ok(())
}

/// Verifies a compact HS256 JWT at `now` (seconds since the Unix epoch)
/// and returns its claims.
///
/// Checks, in order: size and shape, `alg` (only `HS256` here; a `crit`
/// header is refused), the signature, `exp` (required), `nbf`, `iss`, `aud`.
pub fn verify_hs256(
    token: &str,
    secret: &[u8],
    v: &Validation,
    now: i64,
) -> Result<Map<String, Json>, AuthError> {
    let d = decode(token)?;
    if d.alg != Alg::Hs256 {
        return Err(bad(format!(
            "alg {} is not accepted here (only HS256)",
            d.alg.as_str()
        )));
    }
    verify_hmac(secret, d.signing_input, &d.signature)?;
    d.claims(v, now)
}

/// Signs `claims` as a compact HS256 JWT. For tests and development tools:
/// production tokens come from the identity provider that holds the secret.
pub fn sign_hs256(claims: &Json, secret: &[u8]) -> String {
    sign_with_header(
        &serde_json::json!({"alg": "HS256", "typ": "JWT"}),
        claims,
        secret,
    )
}

/// Like [`sign_hs256`] with any header (tests use it to forge `alg`).
pub fn sign_with_header(header: &Json, claims: &Json, secret: &[u8]) -> String {
    let mut out = URL_SAFE_NO_PAD.encode(header.to_string());
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(out.as_bytes());
    let sig = mac.finalize().into_bytes();
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(sig));
    out
}

/// `header.payload` of a token with these parts, unsigned (the signing
/// helpers for RS256/ES256 in [`crate::auth::sign`] append the signature).
pub fn signing_input(header: &Json, claims: &Json) -> String {
    let mut out = URL_SAFE_NO_PAD.encode(header.to_string());
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &[u8] = b"test-secret-test-secret-test-secret!";
    const NOW: i64 = 1_800_000_000;

    fn token(claims: Json) -> String {
        sign_hs256(&claims, SECRET)
    }

    fn check(t: &str, v: &Validation) -> Result<Map<String, Json>, AuthError> {
        verify_hs256(t, SECRET, v, NOW)
    }

    fn reason(r: Result<Map<String, Json>, AuthError>) -> &'static str {
        r.map(|_| "OK").unwrap_or_else(|e| e.reason())
    }

    #[test]
    fn good_token() {
        let c = check(
            &token(json!({"sub": "u1", "exp": NOW + 10})),
            &Validation::default(),
        )
        .unwrap();
        assert_eq!(c["sub"], "u1");
        // Float dates are NumericDates too.
        let t = token(json!({"sub": "u1", "exp": NOW as f64 + 0.5, "nbf": NOW as f64 - 0.5}));
        assert!(check(&t, &Validation::default()).is_ok());
    }

    #[test]
    fn bad_signature() {
        let t = token(json!({"sub": "u1", "exp": NOW + 10}));
        assert_eq!(
            verify_hs256(&t, b"other", &Validation::default(), NOW),
            Err(AuthError::BadSignature)
        );
        // A payload swapped under the old signature.
        let other = token(json!({"sub": "admin", "exp": NOW + 10}));
        let (h, rest) = t.split_once('.').unwrap();
        let sig = rest.rsplit_once('.').unwrap().1;
        let p = other.split('.').nth(1).unwrap();
        assert_eq!(
            reason(check(&format!("{h}.{p}.{sig}"), &Validation::default())),
            "BAD_SIGNATURE"
        );
        // One signature character changed.
        let (head, sig) = t.rsplit_once('.').unwrap();
        let flipped = if sig.starts_with('A') { "B" } else { "A" };
        let t2 = format!("{head}.{flipped}{}", &sig[1..]);
        assert_eq!(reason(check(&t2, &Validation::default())), "BAD_SIGNATURE");
    }

    #[test]
    fn time_checks_with_skew() {
        let v = Validation::default();
        assert_eq!(
            reason(check(&token(json!({"exp": NOW - 61})), &v)),
            "EXPIRED"
        );
        assert_eq!(reason(check(&token(json!({"exp": NOW - 60})), &v)), "OK");
        assert_eq!(
            reason(check(&token(json!({"exp": NOW + 99, "nbf": NOW + 61})), &v)),
            "NOT_YET_VALID"
        );
        assert_eq!(
            reason(check(&token(json!({"exp": NOW + 99, "nbf": NOW + 60})), &v)),
            "OK"
        );
        let strict = Validation {
            clock_skew_secs: 0,
            ..Validation::default()
        };
        assert_eq!(
            reason(check(&token(json!({"exp": NOW - 1})), &strict)),
            "EXPIRED"
        );
        assert_eq!(reason(check(&token(json!({"sub": "u"})), &v)), "BAD_TOKEN");
        assert_eq!(
            reason(check(&token(json!({"exp": "later"})), &v)),
            "BAD_TOKEN"
        );
    }

    #[test]
    fn issuer_and_audience() {
        let v = Validation {
            issuer: Some("https://id.example".into()),
            audience: Some("pylon".into()),
            ..Validation::default()
        };
        let exp = NOW + 10;
        let ok = json!({"exp": exp, "iss": "https://id.example", "aud": "pylon"});
        assert_eq!(reason(check(&token(ok), &v)), "OK");
        let list = json!({"exp": exp, "iss": "https://id.example", "aud": ["x", "pylon"]});
        assert_eq!(reason(check(&token(list), &v)), "OK");
        let iss = json!({"exp": exp, "iss": "https://evil.example", "aud": "pylon"});
        assert_eq!(reason(check(&token(iss), &v)), "WRONG_ISSUER");
        let no_iss = json!({"exp": exp, "aud": "pylon"});
        assert_eq!(reason(check(&token(no_iss), &v)), "WRONG_ISSUER");
        let aud = json!({"exp": exp, "iss": "https://id.example", "aud": "other"});
        assert_eq!(reason(check(&token(aud), &v)), "WRONG_AUDIENCE");
        let no_aud = json!({"exp": exp, "iss": "https://id.example"});
        assert_eq!(reason(check(&token(no_aud), &v)), "WRONG_AUDIENCE");
        // No audience configured: a token naming one is refused.
        let named = json!({"exp": exp, "aud": "pylon"});
        assert_eq!(
            reason(check(&token(named), &Validation::default())),
            "WRONG_AUDIENCE"
        );
    }

    #[test]
    fn other_algorithms_refused() {
        let claims = json!({"sub": "u1", "exp": NOW + 10});
        for alg in [
            "none", "None", "HS384", "HS512", "RS256", "ES256", "hs256", "RS384", "PS256",
        ] {
            let t = sign_with_header(&json!({"alg": alg}), &claims, SECRET);
            assert_eq!(
                reason(check(&t, &Validation::default())),
                "BAD_TOKEN",
                "{alg}"
            );
        }
        // alg none with an empty signature.
        let h = URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#);
        let p = URL_SAFE_NO_PAD.encode(claims.to_string());
        assert_eq!(
            reason(check(&format!("{h}.{p}."), &Validation::default())),
            "BAD_TOKEN"
        );
        let t = sign_with_header(&json!({"typ": "JWT"}), &claims, SECRET);
        assert_eq!(reason(check(&t, &Validation::default())), "BAD_TOKEN");
        let t = sign_with_header(&json!({"alg": "HS256", "crit": ["b64"]}), &claims, SECRET);
        assert_eq!(reason(check(&t, &Validation::default())), "BAD_TOKEN");
    }

    #[test]
    fn malformed() {
        let v = Validation::default();
        let good = token(json!({"exp": NOW + 10}));
        let long = "a".repeat(MAX_TOKEN_BYTES + 1);
        let padded = format!("{good}=");
        let not_json = format!(
            "{}.{}.x",
            URL_SAFE_NO_PAD.encode("[1]"),
            URL_SAFE_NO_PAD.encode("{}")
        );
        for t in [
            "", ".", "..", "a.b", "a.b.c.d", "!!.!!.!!", &long, &padded, &not_json,
        ] {
            assert_eq!(reason(check(t, &v)), "BAD_TOKEN", "{t:.40}");
        }
        // A payload that is not an object, correctly signed.
        let t = sign_with_header(&json!({"alg": "HS256"}), &json!([1, 2]), SECRET);
        assert_eq!(reason(check(&t, &v)), "BAD_TOKEN");
    }
}
