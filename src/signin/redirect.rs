//! Where a browser may be sent after sign-in: a path on this server, or a
//! URL on one of the configured app origins. Anything else is refused, so
//! sign-in is never an open redirect.
//!
//! ```
//! use pylon_workers::signin::redirect::target;
//! let apps = vec!["https://app.example.com".to_string()];
//! let own = "https://api.example.com";
//! assert_eq!(target(None, own, &apps).unwrap(), "/");
//! assert_eq!(target(Some("/board?room=1"), own, &apps).unwrap(), "/board?room=1");
//! assert!(target(Some("https://app.example.com/home"), own, &apps).is_ok());
//! assert!(target(Some("//evil.example/"), own, &apps).is_err());
//! assert!(target(Some("https://app.example.com.evil.example/"), own, &apps).is_err());
//! ```

use super::error::SignInError;

/// Longest redirect target accepted.
pub const MAX_TARGET: usize = 2048;

/// The origin (`scheme://host[:port]`) of an absolute `http(s)` URL, or
/// `None` if `url` is not one (or hides its host behind `@` or `\`).
pub fn origin_of(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let host_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = &rest[..host_len];
    if host.is_empty() || host.contains(['@', '\\']) || !host.is_ascii() {
        return None;
    }
    Some(&url[..url.len() - rest.len() + host_len])
}

/// The checked redirect target for `requested` (default `/`).
pub fn target(
    requested: Option<&str>,
    own_origin: &str,
    app_origins: &[String],
) -> Result<String, SignInError> {
    let t = match requested {
        None | Some("") => return Ok("/".into()),
        Some(t) => t,
    };
    let bad = |why: &str| SignInError::BadRedirect(format!("redirect target refused: {why}"));
    if t.len() > MAX_TARGET {
        return Err(bad("too long"));
    }
    if t.chars().any(|c| c.is_control() || c == '\\' || c == ' ') {
        return Err(bad(
            "control characters, spaces and backslashes are not allowed",
        ));
    }
    if t.starts_with('/') {
        // `//host` is protocol-relative: another site.
        if t.starts_with("//") {
            return Err(bad("a path may not start with //"));
        }
        return Ok(t.to_owned());
    }
    match origin_of(t) {
        Some(o) if o == own_origin || app_origins.iter().any(|a| a == o) => Ok(t.to_owned()),
        Some(_) => Err(bad("not one of the configured app origins")),
        None => Err(bad("use a path (/...) or an absolute http(s) URL")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let apps = vec!["http://localhost:5173".to_string()];
        let own = "http://127.0.0.1:8787";
        for ok in [
            "/",
            "/a/b?c=d#e",
            "http://localhost:5173",
            "http://localhost:5173/x",
            "http://127.0.0.1:8787/y",
        ] {
            assert!(target(Some(ok), own, &apps).is_ok(), "{ok}");
        }
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example/",
            "http://localhost:5173@evil.example/",
            "http://localhost:51730/",
            "javascript:alert(1)",
            "evil.example",
            "/a\nb",
            "http://localhost:5173\\@evil.example",
        ] {
            assert_eq!(
                target(Some(bad), own, &apps).unwrap_err().code(),
                "BAD_REDIRECT",
                "{bad:?}"
            );
        }
        assert_eq!(origin_of("https://a.b:1/x?y"), Some("https://a.b:1"));
        assert_eq!(origin_of("https://a.b?x"), Some("https://a.b"));
        assert_eq!(origin_of("ftp://a.b"), None);
    }
}
