//! Request rate limits at the router, per client and per user, counted by
//! Cloudflare's Rate Limiting bindings (`[[ratelimits]]` in wrangler.toml):
//! this module names the counters and shapes the refusal.
//!
//! * per client: every request to `/v1/...` counts against its address
//!   (`CF-Connecting-IP`), before the token is even verified, so a flood of
//!   bad tokens is throttled too;
//! * per user: requests with a verified token also count against the user,
//!   across connections, shards and addresses.
//!
//! A WebSocket upgrade is a request. Messages on open sockets are limited
//! per connection by the shard (`shard::limiter`) and, for verified users,
//! per user across connections and shards ([`USER_MSG_BINDING`]).
//!
//! ```
//! use pylon_workers::edge::limits::{client_key, user_key, refusal, Scope, PERIOD_SECS};
//! use pylon_workers::policy::AuthContext;
//! assert_eq!(client_key(Some("203.0.113.9")), "ip:203.0.113.9");
//! assert_eq!(user_key(&AuthContext::user("ann")).as_deref(), Some("user:ann"));
//! assert_eq!(user_key(&AuthContext::anonymous()), None);
//! let e = refusal(Scope::User);
//! assert_eq!((e.status, e.code, e.reason), (429, "RATE_LIMITED", Some("USER_RATE")));
//! assert_eq!(PERIOD_SECS, 10);
//! ```

use crate::api_error::ApiError;
use crate::policy::AuthContext;

/// The binding counting requests per client address.
pub const CLIENT_BINDING: &str = "PYLON_CLIENT_LIMITER";
/// The binding counting requests per user.
pub const USER_BINDING: &str = "PYLON_USER_LIMITER";
/// The binding counting WebSocket messages per user, across the user's
/// connections and shards (checked by the Shard, answered with `err`).
pub const USER_MSG_BINDING: &str = "PYLON_USER_MSG_LIMITER";
/// The bindings' `simple.period` in wrangler.toml; also the `Retry-After`.
pub const PERIOD_SECS: u32 = 10;

/// Which limit a request exceeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Client,
    User,
}

/// The per-client counter's key: the connecting address.
pub fn client_key(ip: Option<&str>) -> String {
    match ip.map(str::trim).filter(|ip| !ip.is_empty()) {
        // Addresses are short; anything longer is not one.
        Some(ip) if ip.len() <= 64 => format!("ip:{ip}"),
        _ => "ip:unknown".into(),
    }
}

/// The per-user counter's key; anonymous callers have none.
pub fn user_key(caller: &AuthContext) -> Option<String> {
    caller.user_id.as_ref().map(|u| format!("user:{u}"))
}

/// The 429 answer (send with `Retry-After: PERIOD_SECS`).
pub fn refusal(scope: Scope) -> ApiError {
    let (reason, who) = match scope {
        Scope::Client => ("CLIENT_RATE", "this client"),
        Scope::User => ("USER_RATE", "this user"),
    };
    ApiError::new(
        429,
        "RATE_LIMITED",
        format!("too many requests from {who}; retry after {PERIOD_SECS} s"),
    )
    .with_reason(reason)
}
