//! Who checks an RS256/ES256 signature: a [`SignatureCheck`]. In the
//! Worker it is the runtime's WebCrypto (`crypto.subtle`, the glue's
//! `WebCrypto`), so the bundle carries no RSA or elliptic-curve code;
//! natively (tests, tools) it is [`RustCrypto`], the pure-Rust `rsa` and
//! `p256` crates. Both see the same parsed keys ([`PublicKey`]), and the
//! e2e suite checks the Worker's with real keys.

use std::future::Future;
use std::pin::Pin;

use super::jwk::PublicKey;

/// A boxed future of this thread (Workers are single-threaded).
pub type Checking<'a> = Pin<Box<dyn Future<Output = bool> + 'a>>;

/// Checks one signature with one key.
pub trait SignatureCheck {
    /// Whether `sig` is `key`'s signature over `signing_input` (a JWS's
    /// `header.payload`), with SHA-256: RSASSA-PKCS1-v1_5 for an RSA key,
    /// ECDSA with `r || s` for a P-256 key. A key the checker cannot use
    /// (a point off the curve) verifies nothing: `false`.
    fn verify<'a>(
        &'a self,
        key: &'a PublicKey,
        signing_input: &'a [u8],
        sig: &'a [u8],
    ) -> Checking<'a>;
}

/// The DER `DigestInfo` prefix for SHA-256 (RFC 8017 §9.2, note 1): the
/// `rsa` crate's own constructor wants another `digest` version than ours.
#[cfg(not(target_arch = "wasm32"))]
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// The pure-Rust checker (not in the Worker).
#[cfg(not(target_arch = "wasm32"))]
#[derive(Clone, Copy, Debug, Default)]
pub struct RustCrypto;

#[cfg(not(target_arch = "wasm32"))]
impl RustCrypto {
    /// The check itself, synchronous.
    pub fn check(key: &PublicKey, signing_input: &[u8], sig: &[u8]) -> bool {
        use p256::ecdsa::signature::Verifier;
        use rsa::{BigUint, Pkcs1v15Sign, RsaPublicKey};
        use sha2::{Digest, Sha256};
        match key {
            PublicKey::Rsa { n, e } => {
                let Ok(k) = RsaPublicKey::new(BigUint::from_bytes_be(n), BigUint::from_bytes_be(e))
                else {
                    return false;
                };
                let hashed = Sha256::digest(signing_input);
                let scheme = Pkcs1v15Sign {
                    hash_len: Some(32),
                    prefix: SHA256_DIGEST_INFO.to_vec().into_boxed_slice(),
                };
                k.verify(scheme, &hashed, sig).is_ok()
            }
            PublicKey::P256 { x, y } => {
                let mut sec1 = [0u8; 65];
                sec1[0] = 0x04;
                sec1[1..33].copy_from_slice(x);
                sec1[33..].copy_from_slice(y);
                let Ok(k) = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1) else {
                    return false;
                };
                // JWS carries r || s, 32 bytes each (RFC 7518 §3.4), not DER.
                p256::ecdsa::Signature::from_slice(sig)
                    .is_ok_and(|s| k.verify(signing_input, &s).is_ok())
            }
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl SignatureCheck for RustCrypto {
    fn verify<'a>(
        &'a self,
        key: &'a PublicKey,
        signing_input: &'a [u8],
        sig: &'a [u8],
    ) -> Checking<'a> {
        let ok = RustCrypto::check(key, signing_input, sig);
        Box::pin(std::future::ready(ok))
    }
}
