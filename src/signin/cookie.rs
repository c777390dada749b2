//! The cookies sign-in sets, and reading a `Cookie` header.
//!
//! All are `SameSite=Lax` and `Secure` unless the server runs on
//! `http://127.0.0.1` or `http://localhost` (development).
//!
//! ```
//! use pylon_workers::signin::cookie::{get, set, Attrs};
//! let c = set("pylon_session", "abc", &Attrs { path: "/", max_age: 900, http_only: true, secure: true });
//! assert_eq!(c, "pylon_session=abc; Path=/; Max-Age=900; HttpOnly; Secure; SameSite=Lax");
//! assert_eq!(get("a=1; pylon_session=abc; b=2", "pylon_session"), Some("abc"));
//! ```

/// The access token (a session JWT), sent on every request.
pub const SESSION: &str = "pylon_session";
/// The opaque refresh token, sent only to `/v1/auth/`.
pub const REFRESH: &str = "pylon_refresh";
/// The double-submit CSRF token, readable by the page's scripts.
pub const CSRF: &str = "pylon_csrf";
/// The signed OAuth state, verifier and nonce, sent only to the callback.
pub const OAUTH: &str = "pylon_oauth";

/// The header a page copies the [`CSRF`] cookie into.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Where the refresh and OAuth cookies are sent.
pub const AUTH_PATH: &str = "/v1/auth";
pub const OAUTH_PATH: &str = "/v1/auth/oauth";

pub struct Attrs<'a> {
    pub path: &'a str,
    pub max_age: i64,
    pub http_only: bool,
    pub secure: bool,
}

/// A `Set-Cookie` value. Values here are base64url or JWTs, never quoted.
pub fn set(name: &str, value: &str, a: &Attrs<'_>) -> String {
    let mut s = format!("{name}={value}; Path={}; Max-Age={}", a.path, a.max_age);
    if a.http_only {
        s.push_str("; HttpOnly");
    }
    if a.secure {
        s.push_str("; Secure");
    }
    s.push_str("; SameSite=Lax");
    s
}

/// A `Set-Cookie` value that deletes `name` (same path and flags).
pub fn clear(name: &str, path: &str, http_only: bool, secure: bool) -> String {
    set(
        name,
        "",
        &Attrs {
            path,
            max_age: 0,
            http_only,
            secure,
        },
    )
}

/// The value of cookie `name` in a `Cookie` header (the first one).
pub fn get<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .split(';')
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim().trim_matches('"'))
        .filter(|v| !v.is_empty())
}

/// Whether cookies for `base` (the server's own origin) may go without
/// `Secure`: only plain-HTTP loopback development.
pub fn dev_origin(base: &str) -> bool {
    let Some(host) = base.strip_prefix("http://") else {
        return false;
    };
    let host = host.split(['/', '?', '#']).next().unwrap_or("");
    let name = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    name == "127.0.0.1" || name == "localhost"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies() {
        assert_eq!(get("x=1;y=2", "y"), Some("2"));
        assert_eq!(get("x=1; xy=2", "y"), None);
        assert_eq!(get("y=", "y"), None);
        assert_eq!(
            clear(CSRF, "/", false, false),
            "pylon_csrf=; Path=/; Max-Age=0; SameSite=Lax"
        );
        assert!(dev_origin("http://127.0.0.1:8787"));
        assert!(dev_origin("http://localhost"));
        assert!(!dev_origin("https://127.0.0.1"));
        assert!(!dev_origin("http://127.0.0.1.evil.example"));
        assert!(!dev_origin("http://example.com"));
    }
}
