//! CORS for the origins a deployment lists in `PYLON_CORS_ORIGINS`.
//!
//! A listed origin is echoed with `Access-Control-Allow-Credentials: true`;
//! `*` in the list lets any other origin in *without* credentials (the
//! answer is then `Access-Control-Allow-Origin: *`, never with
//! credentials); an unlisted origin gets no CORS headers, so browsers keep
//! its scripts from reading the answer. Every answer varies by `Origin`.
//!
//! ```
//! use pylon_workers::edge::cors::{Cors, Preflight};
//! let cors = Cors::parse("https://app.example.com").unwrap();
//! let h = cors.headers(Some("https://app.example.com"));
//! assert!(h.contains(&("access-control-allow-credentials", "true".into())));
//! assert!(cors.headers(Some("https://evil.example")).iter().all(|(n, _)| *n == "vary"));
//! assert!(matches!(cors.preflight(Some("https://evil.example"), Some("POST"), None), Preflight::Refused(_)));
//! ```

/// Methods a browser may use cross-origin.
pub const METHODS: &str = "GET, POST, OPTIONS";
/// Request headers a browser may send cross-origin (`x-csrf-token`: the
/// sign-in cookie's double-submit header, docs/sign-in.md).
pub const ALLOWED_HEADERS: &[&str] = &["authorization", "content-type", "x-csrf-token"];
/// Response headers scripts may read.
pub const EXPOSED: &str = "Retry-After, WWW-Authenticate";
/// How long a browser may cache a preflight answer, in seconds.
pub const MAX_AGE: &str = "600";

/// The configured origins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cors {
    /// Exact origins (`scheme://host[:port]`), credentials allowed.
    origins: Vec<String>,
    /// `*` was listed: any other origin, without credentials.
    any: bool,
}

/// The answer to an `OPTIONS` request.
#[derive(Debug, PartialEq, Eq)]
pub enum Preflight {
    /// 204 with these headers.
    Allowed(Vec<(&'static str, String)>),
    /// 403 (`CORS_REFUSED`) with this reason; no CORS headers.
    Refused(String),
    /// Not a preflight (no `Origin` or `Access-Control-Request-Method`).
    NotPreflight,
}

fn valid_origin(o: &str) -> bool {
    let Some(rest) = o
        .strip_prefix("https://")
        .or_else(|| o.strip_prefix("http://"))
    else {
        return false;
    };
    !rest.is_empty()
        && !rest.contains('/')
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
}

impl Cors {
    /// Parses a comma-separated list of origins (`https://a.example,
    /// http://localhost:5173`) and `*`. Empty: no cross-origin access.
    pub fn parse(list: &str) -> Result<Cors, String> {
        let mut c = Cors::default();
        for o in list.split(',').map(str::trim).filter(|o| !o.is_empty()) {
            if o == "*" {
                c.any = true;
            } else if valid_origin(o) {
                c.origins.push(o.to_ascii_lowercase());
            } else {
                return Err(format!(
                    "{o:?} is not an origin (scheme://host[:port], no path) or *"
                ));
            }
        }
        Ok(c)
    }

    fn listed(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }

    /// Headers for an ordinary (non-preflight) answer to `origin`.
    pub fn headers(&self, origin: Option<&str>) -> Vec<(&'static str, String)> {
        let mut h = vec![("vary", "Origin".to_owned())];
        match origin {
            Some(o) if self.listed(o) => {
                h.push(("access-control-allow-origin", o.to_owned()));
                h.push(("access-control-allow-credentials", "true".into()));
                h.push(("access-control-expose-headers", EXPOSED.into()));
            }
            Some(_) if self.any => {
                h.push(("access-control-allow-origin", "*".into()));
                h.push(("access-control-expose-headers", EXPOSED.into()));
            }
            _ => {}
        }
        h
    }

    /// The answer to an `OPTIONS` request with these headers.
    pub fn preflight(
        &self,
        origin: Option<&str>,
        method: Option<&str>,
        request_headers: Option<&str>,
    ) -> Preflight {
        let (Some(origin), Some(method)) = (origin, method) else {
            return Preflight::NotPreflight;
        };
        if !self.listed(origin) && !self.any {
            return Preflight::Refused(format!("origin {origin:?} is not allowed"));
        }
        if !METHODS.split(", ").any(|m| m == method.trim()) {
            return Preflight::Refused(format!("method {method:?} is not allowed"));
        }
        for name in request_headers
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            if !ALLOWED_HEADERS.iter().any(|a| a.eq_ignore_ascii_case(name)) {
                return Preflight::Refused(format!("header {name:?} is not allowed"));
            }
        }
        let mut h: Vec<_> = self
            .headers(Some(origin))
            .into_iter()
            .filter(|(n, _)| *n != "access-control-expose-headers")
            .collect();
        h.push(("access-control-allow-methods", METHODS.into()));
        h.push((
            "access-control-allow-headers",
            "Authorization, Content-Type, X-CSRF-Token".into(),
        ));
        h.push(("access-control-max-age", MAX_AGE.into()));
        Preflight::Allowed(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(h: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
        h.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn parsing() {
        assert_eq!(Cors::parse(""), Ok(Cors::default()));
        let c = Cors::parse(" https://A.example , http://localhost:5173,*").unwrap();
        assert!(c.any && c.listed("https://a.example") && c.listed("http://localhost:5173"));
        for bad in [
            "a.example",
            "https://a.example/",
            "ftp://x",
            "https://",
            "https://a b",
        ] {
            assert!(Cors::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_only_for_listed_origins_never_with_star() {
        let c = Cors::parse("https://app.example,*").unwrap();
        let listed = c.headers(Some("https://app.example"));
        assert_eq!(
            get(&listed, "access-control-allow-origin"),
            Some("https://app.example")
        );
        assert_eq!(
            get(&listed, "access-control-allow-credentials"),
            Some("true")
        );
        let other = c.headers(Some("https://other.example"));
        assert_eq!(get(&other, "access-control-allow-origin"), Some("*"));
        assert_eq!(get(&other, "access-control-allow-credentials"), None);
        for h in [&listed, &other, &c.headers(None)] {
            assert_eq!(get(h, "vary"), Some("Origin"));
        }
        let strict = Cors::parse("https://app.example").unwrap();
        let h = strict.headers(Some("https://evil.example"));
        assert_eq!(get(&h, "access-control-allow-origin"), None);
        assert_eq!(strict.headers(None).len(), 1);
    }

    #[test]
    fn preflights() {
        let c = Cors::parse("https://app.example").unwrap();
        let ok = c.preflight(
            Some("https://app.example"),
            Some("POST"),
            Some("authorization, content-type, x-csrf-token"),
        );
        let Preflight::Allowed(h) = ok else {
            panic!("{ok:?}")
        };
        assert_eq!(
            get(&h, "access-control-allow-origin"),
            Some("https://app.example")
        );
        assert_eq!(get(&h, "access-control-allow-methods"), Some(METHODS));
        assert_eq!(get(&h, "access-control-max-age"), Some(MAX_AGE));
        for (o, m, hd) in [
            ("https://evil.example", "POST", None),
            ("https://app.example", "DELETE", None),
            ("https://app.example", "POST", Some("x-pylon-auth")),
        ] {
            assert!(
                matches!(c.preflight(Some(o), Some(m), hd), Preflight::Refused(_)),
                "{o} {m} {hd:?}"
            );
        }
        assert_eq!(
            c.preflight(None, Some("POST"), None),
            Preflight::NotPreflight
        );
        assert_eq!(
            c.preflight(Some("https://app.example"), None, None),
            Preflight::NotPreflight
        );
    }
}
