//! How long a verified caller holds its identity: the token's `exp`, and
//! for our own session tokens the session id, so that a WebSocket that
//! outlives the request that opened it can stop at the token's expiry
//! and ask whether the session was revoked (docs/auth.md, "Open sockets").
//!
//! ```
//! use pylon_workers::auth::Lease;
//! let jwt = Lease { exp: Some(1_000), sid: None };
//! // Outside JWTs get the manifest's clock skew, like at the router ...
//! assert!(!jwt.expired(1_060_999, 60) && jwt.expired(1_061_000, 60));
//! // ... our own session tokens none (we issued them).
//! let session = Lease { exp: Some(1_000), sid: Some("s_1".into()) };
//! assert!(!session.expired(1_000_999, 60) && session.expired(1_001_000, 60));
//! assert!(!Lease::default().expired(i64::MAX, 0)); // anonymous: never
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

/// Small on purpose: it rides in every socket attachment and in the
/// router's `x-pylon-auth` header. Missing fields decode as `None`, so
/// values written before it existed still read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Lease {
    /// The token's `exp` (Unix seconds, rounded down); `None` for
    /// anonymous callers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// The session a session token names (`sid`); `None` for outside JWTs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

impl Lease {
    /// The lease of an outside JWT whose claims were verified (`exp` is
    /// required there; it is read again here, rounded down).
    pub fn of_claims(claims: &Map<String, Json>) -> Lease {
        Lease {
            exp: claims
                .get("exp")
                .and_then(Json::as_f64)
                .map(|e| e.floor() as i64),
            sid: None,
        }
    }

    /// The last Unix second the token is accepted in: `exp` plus the
    /// clock skew the router allows (`auth.clockSkewSeconds`), except for
    /// session tokens, which are checked with none.
    pub fn last_second(&self, skew_secs: u64) -> Option<i64> {
        let skew = if self.sid.is_some() { 0 } else { skew_secs };
        self.exp
            .map(|e| e.saturating_add(i64::try_from(skew).unwrap_or(i64::MAX)))
    }

    /// The first instant (ms) at which the token is no longer accepted.
    pub fn ends_ms(&self, skew_secs: u64) -> Option<i64> {
        self.last_second(skew_secs)
            .map(|s| s.saturating_add(1).saturating_mul(1000))
    }

    /// Whether the token is past its end at `now_ms`: exactly when the
    /// router would refuse it (`now > exp + skew`, in whole seconds).
    pub fn expired(&self, now_ms: i64, skew_secs: u64) -> bool {
        self.ends_ms(skew_secs).is_some_and(|end| now_ms >= end)
    }
}
