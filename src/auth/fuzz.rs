//! Entry point for fuzzing what reads tokens and key material from
//! outside: the compact JWS decoder and its claims checks, HS256 and
//! session-token verification, JWKS documents (and a signature check with
//! whatever keys parse), the forwarded identity header, `Cache-Control`
//! max-age, and shard rule patterns. The cargo-fuzz target is one line:
//!
//! ```ignore
//! libfuzzer_sys::fuzz_target!(|data: &[u8]| pylon_workers::auth::fuzz::fuzz_token(data));
//! ```
//!
//! `tests/auth_fuzz_inputs.rs` runs it on generated and mutated tokens.

use serde_json::Value as Json;

use std::future::Future;

use super::jwk::KeySet;
use super::jwt::{self, Alg, Validation, MAX_TOKEN_BYTES};

const SECRET: &[u8] = b"fuzzing-secret-fuzzing-secret-32b";
const OTHER: &[u8] = b"another-secret-another-secret-32b";
const ALGS: [Alg; 3] = [Alg::Hs256, Alg::Rs256, Alg::Es256];

/// Runs every token and key reader on `data`. Panics only on a bug: a
/// reader panicking, or a token this crate signed that does not verify with
/// its secret (or verifies with another).
pub fn fuzz_token(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let v = Validation::default();
    if let Ok(d) = jwt::decode(&text) {
        let _ = d.claims(&v, 0);
        let _ = d.claims(&v, i64::MAX);
        let _ = jwt::verify_hmac(SECRET, d.signing_input, &d.signature);
    }
    let _ = jwt::verify_hs256(&text, SECRET, &v, 0);
    let _ = crate::signin::session::is_session_token(&text);
    let _ = crate::signin::session::verify(&text, SECRET, 0);
    if let Ok(keys) = KeySet::parse(data, &ALGS) {
        for alg in ALGS {
            // RustCrypto answers at once: one poll finishes it.
            let checking = std::pin::pin!(keys.verify(&super::RustCrypto, alg, None, data, data));
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            let _ = checking.poll(&mut cx);
        }
    }
    let _ = super::decode_context(&text);
    let _ = super::jwks::max_age(&text);
    let _ = super::Pattern::parse(&text);

    // The input as claims: what we sign, we verify, and only with our key.
    if let Ok(claims @ Json::Object(_)) = serde_json::from_slice::<Json>(data) {
        let token = jwt::sign_hs256(&claims, SECRET);
        if token.len() <= MAX_TOKEN_BYTES {
            let d = jwt::decode(&token).expect("a token this crate signed decodes");
            assert!(jwt::verify_hmac(SECRET, d.signing_input, &d.signature).is_ok());
            assert!(jwt::verify_hmac(OTHER, d.signing_input, &d.signature).is_err());
        }
    }
}
