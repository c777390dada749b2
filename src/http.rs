//! Outbound HTTP behind one small trait, so sign-in, JWKS and email code
//! runs in the Worker (through `fetch()`, `glue::fetch::WorkerFetch`) and in
//! native tests (any [`HttpClient`]) alike. Nothing here knows of Workers.
//!
//! ```
//! use pylon_workers::http::{HttpRequest, Method};
//! let r = HttpRequest::post_form("https://id.example.com/token", &[("grant_type", "authorization_code")])
//!     .header("accept", "application/json");
//! assert_eq!(r.method, Method::Post);
//! assert_eq!(r.body, b"grant_type=authorization_code");
//! assert_eq!(r.header_value("content-type"), Some("application/x-www-form-urlencoded"));
//! ```

use std::future::Future;

/// The largest response body a client accepts (provider answers are small;
/// a bigger one is refused rather than buffered).
pub const MAX_RESPONSE_BYTES: usize = 1 << 20;

/// The default time limit for one request, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u32 = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// One outbound request. Redirects are not followed: a 3xx comes back as
/// the response, so a provider endpoint cannot bounce a secret elsewhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: Method,
    pub url: String,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout_ms: u32,
}

impl HttpRequest {
    pub fn get(url: impl Into<String>) -> Self {
        Self {
            method: Method::Get,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
        }
    }

    /// A POST with an `application/x-www-form-urlencoded` body (OAuth token
    /// endpoints take this).
    pub fn post_form(url: impl Into<String>, fields: &[(&str, &str)]) -> Self {
        let body = form_urlencode(fields).into_bytes();
        Self {
            method: Method::Post,
            url: url.into(),
            headers: Vec::new(),
            body,
            timeout_ms: DEFAULT_TIMEOUT_MS,
        }
        .header("content-type", "application/x-www-form-urlencoded")
    }

    /// A POST with a JSON body.
    pub fn post_json(url: impl Into<String>, body: &serde_json::Value) -> Self {
        Self {
            method: Method::Post,
            url: url.into(),
            headers: Vec::new(),
            body: serde_json::to_vec(body).expect("a JSON value serializes"),
            timeout_ms: DEFAULT_TIMEOUT_MS,
        }
        .header("content-type", "application/json")
    }

    /// Sets a header (replacing one of the same name).
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        let name = name.to_ascii_lowercase();
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.into()));
        self
    }

    pub fn timeout_ms(mut self, ms: u32) -> Self {
        self.timeout_ms = ms;
        self
    }

    pub fn header_value(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// One response, its body read whole (at most [`MAX_RESPONSE_BYTES`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header_value(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| HttpError::BadBody(format!("the response is not the JSON expected: {e}")))
    }
}

/// Why a request got no usable response. Messages never contain request
/// bodies or headers (they carry secrets).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("the request could not be sent: {0}")]
    Network(String),
    #[error("no response within {0} ms")]
    Timeout(u32),
    #[error("the response is larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    #[error("{0}")]
    BadBody(String),
}

/// Sends requests. Implemented by `fetch()` in the Worker and by test
/// servers' clients natively; single-threaded like a Worker, so no `Send`.
pub trait HttpClient {
    fn send(&self, req: HttpRequest) -> impl Future<Output = Result<HttpResponse, HttpError>>;
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// `application/x-www-form-urlencoded` of `fields`, in order.
pub fn form_urlencode(fields: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        percent_encode_into(&mut out, k);
        out.push('=');
        percent_encode_into(&mut out, v);
    }
    out
}

/// Percent-encodes everything but RFC 3986 unreserved characters (so the
/// result is safe in a query string and in a form body).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    percent_encode_into(&mut out, s);
    out
}

fn percent_encode_into(out: &mut String, s: &str) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// Decodes `application/x-www-form-urlencoded` (also a URL's query string):
/// `+` is a space; a bad escape is kept as written.
pub fn form_urldecode(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match hex_byte(bytes[i + 1], bytes[i + 2]) {
                Some(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                None => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes a URL path segment: `%XX` escapes only (`+` is itself).
/// `None` for a bad escape or bytes that are not UTF-8.
pub fn percent_decode_path(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(hex_byte(*bytes.get(i + 1)?, *bytes.get(i + 2)?)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn hex_byte(hi: u8, lo: u8) -> Option<u8> {
    let d = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    Some(d(hi)? << 4 | d(lo)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_decode_strictly() {
        let key = "a/b c+é%";
        assert_eq!(
            percent_decode_path(&percent_encode(key)).as_deref(),
            Some(key)
        );
        assert_eq!(percent_decode_path("a+b%2Fc").as_deref(), Some("a+b/c"));
        for bad in ["%", "%2", "%zz", "%FF"] {
            assert_eq!(percent_decode_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn form_encoding_round_trips() {
        let fields = [("a b", "c&d=e"), ("code_verifier", "x~y.z_-"), ("é", "✓")];
        let enc = form_urlencode(&fields);
        assert_eq!(
            enc,
            "a%20b=c%26d%3De&code_verifier=x~y.z_-&%C3%A9=%E2%9C%93"
        );
        let dec = form_urldecode(&enc);
        let want: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(dec, want);
        assert_eq!(
            form_urldecode("q=a+b&bad=%zz&cut=%4"),
            vec![
                ("q".into(), "a b".into()),
                ("bad".into(), "%zz".into()),
                ("cut".into(), "%4".into()),
            ]
        );
    }

    #[test]
    fn headers_are_case_insensitive_and_replaced() {
        let r = HttpRequest::get("http://127.0.0.1/")
            .header("Accept", "text/plain")
            .header("accept", "application/json");
        assert_eq!(r.headers.len(), 1);
        assert_eq!(r.header_value("ACCEPT"), Some("application/json"));
    }
}
