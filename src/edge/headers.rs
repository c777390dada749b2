//! Security headers on every answer of the router (JSON API answers; the
//! demo's static files get theirs from `public/_headers`).
//!
//! ```
//! use pylon_workers::edge::headers::security_headers;
//! let h = security_headers(true);
//! assert!(h.contains(&("x-content-type-options", "nosniff")));
//! assert!(h.iter().any(|(n, _)| *n == "strict-transport-security"));
//! assert!(security_headers(false).iter().all(|(n, _)| *n != "strict-transport-security"));
//! ```

/// HSTS for answers over https (a year; subdomains are left to the zone's
/// own HSTS setting, see docs/edge.md).
pub const HSTS: &str = "max-age=31536000";

/// The headers for an API answer; `https`: the request came over TLS.
pub fn security_headers(https: bool) -> Vec<(&'static str, &'static str)> {
    let mut h = vec![
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        // JSON is never a document: nothing may load, frame or run from it.
        (
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ];
    if https {
        h.push(("strict-transport-security", HSTS));
    }
    h
}
