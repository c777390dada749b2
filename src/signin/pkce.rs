//! PKCE (RFC 7636) with the S256 method: a random verifier kept by us and
//! its SHA-256 challenge sent with the authorization request.
//!
//! ```
//! use pylon_workers::signin::pkce::challenge_s256;
//! // RFC 7636, Appendix B.
//! assert_eq!(challenge_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
//!            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
//! ```

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use super::random::{token, Random};

/// A new code verifier: 32 random bytes, 43 base64url characters (RFC 7636
/// §4.1 asks for 43 to 128 unreserved characters).
pub fn verifier(r: &impl Random) -> String {
    token(r, 32)
}

/// `BASE64URL(SHA256(verifier))`.
pub fn challenge_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}
