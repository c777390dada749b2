//! Authentication at the edge: JWTs (HS256 with the shared secret, RS256
//! and ES256 with keys from a JWKS URL) checked by the router Worker,
//! turned into an [`AuthContext`] by the manifest's `auth` section, and
//! matched against its shard rules before a request reaches a shard.
//!
//! ```
//! use pylon_workers::auth::{jwt, AuthConfig};
//! let secret = b"dev-only-secret-dev-only-secret-0123";
//! let config = AuthConfig::default(); // tokens required on every shard
//! let t = jwt::sign_hs256(&serde_json::json!({"sub": "ann", "exp": 2_000_000_000}), secret);
//! let ann = config.authenticate(Some(&t), Some(secret), "room-1", 1_900_000_000).unwrap();
//! assert_eq!(ann.user_id.as_deref(), Some("ann"));
//! let e = config.authenticate(None, Some(secret), "room-1", 1_900_000_000).unwrap_err();
//! assert_eq!(e.reason(), "MISSING_TOKEN");
//! ```
//!
//! See docs/auth.md.

mod access;
mod config;
mod error;
#[cfg(not(target_arch = "wasm32"))]
pub mod fuzz;
pub mod jwk;
pub mod jwks;
pub mod jwt;
mod lease;
#[cfg(not(target_arch = "wasm32"))]
pub mod sign;
pub mod signature;
mod verify;

pub use access::{token_caller, AccessClause, ShardAccess};
pub use config::{AuthConfig, Binding, ClaimNames, Pattern, ShardRule, MIN_SECRET_BYTES};
pub use error::AuthError;
pub use jwks::JwksPolicy;
pub use jwt::{Alg, Validation};
pub use lease::Lease;
#[cfg(not(target_arch = "wasm32"))]
pub use signature::RustCrypto;
pub use signature::SignatureCheck;
pub use verify::{verify_credential, verify_token, Jwks, Keys, NoHttp};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::policy::AuthContext;

/// The internal header carrying the verified caller from the router to the
/// shard. The router removes every incoming `x-pylon-*` header first.
pub const AUTH_HEADER: &str = "x-pylon-auth";

/// Headers with this prefix are internal: never accepted from clients.
pub const INTERNAL_HEADER_PREFIX: &str = "x-pylon-";

/// The Worker secret (or var) holding the HS256 key.
pub const SECRET_VAR: &str = "PYLON_JWT_SECRET";

/// The Worker var that, when set, replaces `auth.jwks.url` (a staging
/// identity provider, or a test server on 127.0.0.1).
pub const JWKS_URL_VAR: &str = "PYLON_JWKS_URL";

/// The token of a request: `Authorization: Bearer <token>`, else a
/// `bearer.<token>` entry of `Sec-WebSocket-Protocol`. An `Authorization`
/// header of another scheme is a `BAD_TOKEN`.
pub fn request_token<'a>(
    authorization: Option<&'a str>,
    ws_protocols: Option<&'a str>,
) -> Result<Option<&'a str>, AuthError> {
    if let Some(h) = authorization {
        let h = h.trim();
        let (scheme, token) = h.split_once(' ').unwrap_or((h, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::BadToken(
                "the Authorization scheme must be Bearer".into(),
            ));
        }
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::BadToken("empty bearer token".into()));
        }
        return Ok(Some(token));
    }
    Ok(crate::protocol::bearer_token(ws_protocols))
}

/// The [`AUTH_HEADER`] value for a caller: base64url of its JSON (header
/// values must be Latin-1; ids need not be).
pub fn encode_context(a: &AuthContext) -> String {
    encode_caller(a, &Lease::default())
}

/// [`encode_context`] with the caller's [`Lease`]: its `exp` and `sid`
/// beside the caller's fields, in the same JSON object (so a reader that
/// knows only [`AuthContext`] still reads it).
pub fn encode_caller(a: &AuthContext, lease: &Lease) -> String {
    let mut v = serde_json::to_value(a).expect("an AuthContext serializes");
    if let (serde_json::Value::Object(m), Ok(serde_json::Value::Object(l))) =
        (&mut v, serde_json::to_value(lease))
    {
        m.extend(l);
    }
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&v).expect("JSON serializes"))
}

/// Reads an [`AUTH_HEADER`] value; `None` if it is not one.
pub fn decode_context(header: &str) -> Option<AuthContext> {
    decode_caller(header).map(|(a, _)| a)
}

/// Reads an [`AUTH_HEADER`] value with its [`Lease`] (empty when the
/// value has none).
pub fn decode_caller(header: &str) -> Option<(AuthContext, Lease)> {
    let bytes = URL_SAFE_NO_PAD.decode(header.trim()).ok()?;
    Some((
        serde_json::from_slice(&bytes).ok()?,
        serde_json::from_slice(&bytes).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &[u8] = b"test-secret-test-secret-test-secret!";
    const NOW: i64 = 1_800_000_000;

    fn p(s: &str) -> Pattern {
        Pattern::parse(s).unwrap()
    }

    #[test]
    fn patterns_parse() {
        for bad in ["", "a b", "{user}", "team:{tenantId", "x/y", "é"] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?}");
        }
        assert!(p("team:{tenantId}").has_bindings());
        assert!(!p("lobby-*").has_bindings());
    }

    #[test]
    fn patterns_fit_and_admit() {
        let ann = AuthContext::user("ann").with_tenant("acme");
        let team = p("team:{tenantId}");
        assert!(team.fits("team:acme") && team.fits("team:x"));
        assert!(!team.fits("team:") && !team.fits("teams:acme") && !team.fits("Team:acme"));
        assert!(team.admits("team:acme", &ann));
        assert!(!team.admits("team:acme2", &ann) && !team.admits("team:acm", &ann));
        assert!(!team.admits("team:acme", &AuthContext::user("bob")));

        let user = p("user:{userId}:*");
        assert!(user.fits("user:ann:") && user.fits("user:ann:notes"));
        assert!(user.admits("user:ann:notes", &ann));
        assert!(!user.admits("user:bob:notes", &ann));
        // A value containing the separator cannot reach into another's space.
        let colon = AuthContext::user("ann:x");
        assert!(!user.admits("user:ann:notes", &colon));

        let star = p("*");
        assert!(star.fits("anything") && star.admits("x", &AuthContext::anonymous()));
        let mid = p("a*b*c");
        assert!(mid.fits("abc") && mid.fits("a-b-b-c") && !mid.fits("a-b-cd"));
        assert!(p("lobby").fits("lobby") && !p("lobby").fits("lobby2"));
    }

    fn config() -> AuthConfig {
        AuthConfig {
            anonymous: false,
            jwks: None,
            validation: Validation {
                issuer: Some("iss".into()),
                audience: Some("pylon".into()),
                ..Validation::default()
            },
            claims: ClaimNames::default(),
            shards: vec![
                ShardRule::new(p("team:{tenantId}")),
                ShardRule::new(p("user:{userId}")),
                ShardRule::new(p("ops:*")).roles(["ops"]),
                ShardRule::new(p("private-*")),
                ShardRule::new(p("*")).allow_anonymous(true),
            ],
        }
    }

    fn token(extra: serde_json::Value) -> String {
        let mut claims = json!({"sub": "ann", "iss": "iss", "aud": "pylon", "exp": NOW + 60});
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        jwt::sign_hs256(&claims, SECRET)
    }

    fn reason(c: &AuthConfig, token: Option<&str>, shard: &str) -> &'static str {
        match c.authenticate(token, Some(SECRET), shard, NOW) {
            Ok(_) => "OK",
            Err(e) => e.reason(),
        }
    }

    #[test]
    fn shard_rules() {
        let c = config();
        let acme = token(json!({"tenant": "acme"}));
        let admin = token(json!({"admin": true}));
        let ops = token(json!({"roles": ["ops"]}));
        let table = [
            (None, "lobby", "OK"),
            (None, "team:acme", "MISSING_TOKEN"),
            (None, "private-1", "MISSING_TOKEN"),
            (Some(&acme), "team:acme", "OK"),
            (Some(&acme), "team:other", "SHARD_DENIED"),
            (Some(&acme), "user:ann", "OK"),
            (Some(&acme), "user:bob", "SHARD_DENIED"),
            (Some(&acme), "ops:1", "SHARD_DENIED"),
            (Some(&ops), "ops:1", "OK"),
            (Some(&acme), "private-1", "OK"),
            (Some(&acme), "lobby", "OK"),
            (Some(&admin), "team:other", "OK"),
            (Some(&admin), "user:bob", "OK"),
        ];
        for (t, shard, want) in table {
            assert_eq!(
                reason(&c, t.map(String::as_str), shard),
                want,
                "{shard} {t:?}"
            );
        }
        // No rule fits: denied to everyone, admins included.
        let narrow = AuthConfig {
            shards: vec![ShardRule::new(p("room-*"))],
            ..config()
        };
        assert_eq!(reason(&narrow, Some(&admin), "lobby"), "SHARD_DENIED");
        // No rules: `*` with the top-level `anonymous`.
        let open = AuthConfig {
            anonymous: true,
            shards: vec![],
            ..config()
        };
        assert_eq!(reason(&open, None, "x"), "OK");
        assert_eq!(reason(&AuthConfig::default(), None, "x"), "MISSING_TOKEN");
        // A bad token is refused even where anonymous callers are welcome.
        assert_eq!(reason(&c, Some("nope"), "lobby"), "BAD_TOKEN");
    }

    #[test]
    fn claims_to_context() {
        let c = config();
        let t = token(json!({"tenant": "acme", "roles": ["a", "b"], "admin": false}));
        let a = c
            .authenticate(Some(&t), Some(SECRET), "lobby", NOW)
            .unwrap();
        assert_eq!(
            a,
            AuthContext::user("ann")
                .with_tenant("acme")
                .with_roles(["a", "b"])
        );
        let t = token(json!({"roles": "a b", "sub": 42}));
        let a = c
            .authenticate(Some(&t), Some(SECRET), "lobby", NOW)
            .unwrap();
        assert_eq!(a, AuthContext::user("42").with_roles(["a", "b"]));
        for bad in [
            json!({"sub": null}),
            json!({"sub": ""}),
            json!({"roles": [1]}),
            json!({"admin": "yes"}),
            json!({"tenant": {}}),
        ] {
            assert_eq!(
                reason(&c, Some(&token(bad.clone())), "lobby"),
                "BAD_TOKEN",
                "{bad}"
            );
        }
        // A mapping can be switched off.
        let mut off = config();
        off.claims.is_admin = None;
        off.claims.user_id = "uid".into();
        let t = token(json!({"uid": "u9", "admin": true}));
        let a = off
            .authenticate(Some(&t), Some(SECRET), "lobby", NOW)
            .unwrap();
        assert!(!a.is_admin && a.user_id.as_deref() == Some("u9"));
    }

    #[test]
    fn secrets_and_headers() {
        let c = config();
        let t = token(json!({}));
        let short = c
            .authenticate(Some(&t), Some(b"short"), "lobby", NOW)
            .unwrap_err();
        assert_eq!((short.reason(), short.status()), ("NOT_CONFIGURED", 500));
        assert_eq!(
            c.authenticate(Some(&t), None, "lobby", NOW)
                .unwrap_err()
                .status(),
            500
        );
        // No token and no secret is fine where anonymous callers are let in.
        assert!(c.authenticate(None, None, "lobby", NOW).is_ok());

        assert_eq!(request_token(Some("Bearer abc"), None), Ok(Some("abc")));
        assert_eq!(
            request_token(Some("bearer  abc "), Some("bearer.x")),
            Ok(Some("abc"))
        );
        assert_eq!(
            request_token(None, Some("pylon.v1.json, bearer.xyz")),
            Ok(Some("xyz"))
        );
        assert_eq!(request_token(None, Some("pylon.v1.json")), Ok(None));
        assert_eq!(
            request_token(Some("Basic Zm9v"), None)
                .unwrap_err()
                .reason(),
            "BAD_TOKEN"
        );
        assert_eq!(
            request_token(Some("Bearer "), None).unwrap_err().reason(),
            "BAD_TOKEN"
        );

        let a = AuthContext::user("zoë")
            .with_tenant("acme")
            .with_roles(["r"]);
        let h = encode_context(&a);
        assert!(h.is_ascii());
        assert_eq!(decode_context(&h), Some(a.clone()));
        assert_eq!(decode_context("!!"), None);
        // The lease rides beside the caller; a value without one reads as
        // an empty lease, and an old reader still finds the caller.
        assert_eq!(decode_caller(&h), Some((a.clone(), Lease::default())));
        let lease = Lease {
            exp: Some(1_900_000_000),
            sid: Some("s_1".into()),
        };
        let h = encode_caller(&a, &lease);
        assert_eq!(decode_caller(&h), Some((a.clone(), lease)));
        assert_eq!(decode_context(&h), Some(a));
    }
}
