//! Randomness for state, PKCE verifiers, session ids, refresh tokens and
//! one-time codes, behind one method: `crypto.getRandomValues` in the
//! Worker, anything natively.
//!
//! ```
//! use pylon_workers::signin::random::{digits, token, Random};
//! struct Fixed;
//! impl Random for Fixed { fn fill(&self, buf: &mut [u8]) { buf.fill(7) } }
//! assert_eq!(token(&Fixed, 3), "BwcH");
//! assert_eq!(digits(&Fixed, 6), "777777");
//! ```

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// A cryptographically secure source of random bytes.
pub trait Random {
    fn fill(&self, buf: &mut [u8]);
}

/// `bytes` random bytes as unpadded base64url.
pub fn token(r: &impl Random, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    r.fill(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// `n` uniformly random decimal digits (rejection sampling, no modulo bias).
pub fn digits(r: &impl Random, n: usize) -> String {
    let mut out = String::with_capacity(n);
    let mut b = [0u8; 1];
    while out.len() < n {
        r.fill(&mut b);
        // 250 = 25 * 10: values 250..=255 would favour 0..=5.
        if b[0] < 250 {
            out.push(char::from(b'0' + b[0] % 10));
        }
    }
    out
}
