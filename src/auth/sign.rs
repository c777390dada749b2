//! RS256 and ES256 signing, and the public JWK of a key: for tests and
//! development tools (a JWKS server in the end-to-end suite, a token for
//! curl). Production tokens come from the identity provider. Not built
//! into the Worker.
//!
//! ```
//! use pylon_workers::auth::sign::{es256_key_from_pem, sign_es256, jwk_es256};
//! # let pem = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/jwt/ec-a.pem")).unwrap();
//! let key = es256_key_from_pem(&pem).unwrap();
//! let token = sign_es256(&serde_json::json!({"sub": "ann", "exp": 2_000_000_000}), Some("ec-a"), &key);
//! assert_eq!(token.split('.').count(), 3);
//! assert_eq!(jwk_es256(&key, "ec-a")["crv"], "P-256");
//! ```

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::signature::Signer;
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};

pub use p256::ecdsa::SigningKey as Es256Key;
pub use rsa::RsaPrivateKey as Rs256Key;

const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// An RSA private key from PKCS#8 PEM.
pub fn rs256_key_from_pem(pem: &str) -> Result<Rs256Key, String> {
    use rsa::pkcs8::DecodePrivateKey;
    RsaPrivateKey::from_pkcs8_pem(pem).map_err(|e| e.to_string())
}

/// A P-256 private key from PKCS#8 PEM.
pub fn es256_key_from_pem(pem: &str) -> Result<Es256Key, String> {
    use p256::pkcs8::DecodePrivateKey;
    Es256Key::from_pkcs8_pem(pem).map_err(|e| e.to_string())
}

fn header(alg: &str, kid: Option<&str>) -> Json {
    let mut h = json!({"alg": alg, "typ": "JWT"});
    if let Some(k) = kid {
        h["kid"] = json!(k);
    }
    h
}

/// Signs `claims` as a compact RS256 JWT, with `kid` in the header.
pub fn sign_rs256(claims: &Json, kid: Option<&str>, key: &Rs256Key) -> String {
    sign_rs256_with_header(&header("RS256", kid), claims, key)
}

/// Like [`sign_rs256`] with any header (tests forge `alg` with it).
pub fn sign_rs256_with_header(header: &Json, claims: &Json, key: &Rs256Key) -> String {
    let mut out = super::jwt::signing_input(header, claims);
    let scheme = Pkcs1v15Sign {
        hash_len: Some(32),
        prefix: SHA256_DIGEST_INFO.to_vec().into_boxed_slice(),
    };
    let sig = key
        .sign(scheme, &Sha256::digest(out.as_bytes()))
        .expect("a 2048-bit key signs a SHA-256 digest");
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(sig));
    out
}

/// Signs `claims` as a compact ES256 JWT (deterministic, RFC 6979).
pub fn sign_es256(claims: &Json, kid: Option<&str>, key: &Es256Key) -> String {
    sign_es256_with_header(&header("ES256", kid), claims, key)
}

/// Like [`sign_es256`] with any header.
pub fn sign_es256_with_header(header: &Json, claims: &Json, key: &Es256Key) -> String {
    let mut out = super::jwt::signing_input(header, claims);
    let sig: p256::ecdsa::Signature = key.sign(out.as_bytes());
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(sig.to_bytes()));
    out
}

/// The public JWK of an RSA key.
pub fn jwk_rs256(key: &Rs256Key, kid: &str) -> Json {
    let p = key.to_public_key();
    json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
           "n": URL_SAFE_NO_PAD.encode(p.n().to_bytes_be()),
           "e": URL_SAFE_NO_PAD.encode(p.e().to_bytes_be())})
}

/// The public JWK of a P-256 key.
pub fn jwk_es256(key: &Es256Key, kid: &str) -> Json {
    let point = key.verifying_key().to_sec1_point(false);
    let point = point.as_bytes();
    // Uncompressed SEC1: 0x04 || x || y.
    json!({"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
           "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
           "y": URL_SAFE_NO_PAD.encode(&point[33..65])})
}
