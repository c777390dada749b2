//! CSRF protection for requests authenticated by the session cookie.
//!
//! A browser attaches cookies to requests other sites make, so a request
//! that changes state and is authenticated only by a cookie must prove it
//! comes from one of our pages:
//!
//! - its `Origin` must be this server's origin or a configured app origin;
//! - and it must carry the `x-csrf-token` header equal to the `pylon_csrf`
//!   cookie (double submit: another site can neither read our cookie nor
//!   set a custom header without a CORS preflight we do not grant).
//!
//! Safe methods (GET, HEAD, OPTIONS) change nothing and pass. A WebSocket
//! upgrade cannot carry custom headers, so it passes on `Origin` alone
//! (browsers always send `Origin` on a WebSocket handshake). Requests with
//! a bearer token are not affected: a browser never adds one by itself.
//!
//! ```
//! use pylon_workers::signin::csrf::{check, CsrfInput};
//! let allowed = vec!["https://app.example.com".to_string()];
//! let mut input = CsrfInput { method: "POST", upgrade: false, origin: Some("https://app.example.com"),
//!     cookie_token: Some("t1"), header_token: Some("t1") };
//! assert!(check(&input, &allowed).is_ok());
//! input.origin = Some("https://evil.example");
//! assert_eq!(check(&input, &allowed).unwrap_err().code(), "CSRF_FAILED");
//! ```

use super::error::SignInError;

pub struct CsrfInput<'a> {
    pub method: &'a str,
    /// A WebSocket upgrade.
    pub upgrade: bool,
    pub origin: Option<&'a str>,
    /// The `pylon_csrf` cookie.
    pub cookie_token: Option<&'a str>,
    /// The `x-csrf-token` header.
    pub header_token: Option<&'a str>,
}

/// Byte comparison whose time does not depend on where the inputs differ.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks a cookie-authenticated request; `allowed` are the origins our
/// pages are served from.
pub fn check(i: &CsrfInput<'_>, allowed: &[String]) -> Result<(), SignInError> {
    let safe = matches!(i.method, "GET" | "HEAD" | "OPTIONS");
    if safe && !i.upgrade {
        return Ok(());
    }
    match i.origin {
        None => return Err(SignInError::Csrf("no Origin header")),
        Some(o) if !allowed.iter().any(|a| a == o) => {
            return Err(SignInError::Csrf("the Origin is not an allowed app origin"))
        }
        Some(_) => {}
    }
    if i.upgrade {
        return Ok(());
    }
    match (i.cookie_token, i.header_token) {
        (Some(c), Some(h)) if ct_eq(c.as_bytes(), h.as_bytes()) => Ok(()),
        (None, _) => Err(SignInError::Csrf("no pylon_csrf cookie")),
        (_, None) => Err(SignInError::Csrf("no x-csrf-token header")),
        _ => Err(SignInError::Csrf(
            "x-csrf-token does not match the pylon_csrf cookie",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix() {
        let allowed = vec!["http://127.0.0.1:8787".to_string()];
        let base = CsrfInput {
            method: "POST",
            upgrade: false,
            origin: Some("http://127.0.0.1:8787"),
            cookie_token: Some("abc"),
            header_token: Some("abc"),
        };
        assert!(check(&base, &allowed).is_ok());
        let get = CsrfInput {
            method: "GET",
            origin: None,
            cookie_token: None,
            header_token: None,
            ..base
        };
        assert!(check(&get, &allowed).is_ok());
        let ws = CsrfInput {
            upgrade: true,
            header_token: None,
            ..get
        };
        assert!(check(&ws, &allowed).is_err());
        let ws_ok = CsrfInput {
            origin: Some("http://127.0.0.1:8787"),
            ..ws
        };
        assert!(check(&ws_ok, &allowed).is_ok());
        for bad in [
            CsrfInput {
                origin: None,
                ..base
            },
            CsrfInput {
                origin: Some("http://127.0.0.1:8788"),
                ..base
            },
            CsrfInput {
                header_token: None,
                ..base
            },
            CsrfInput {
                cookie_token: None,
                ..base
            },
            CsrfInput {
                header_token: Some("abd"),
                ..base
            },
        ] {
            assert_eq!(check(&bad, &allowed).unwrap_err().code(), "CSRF_FAILED");
        }
    }
}
