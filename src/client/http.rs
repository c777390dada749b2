//! [`PlainHttp`]: a minimal HTTP/1.1 client over `tokio::net::TcpStream`
//! for `http://` URLs, behind the crate's [`HttpClient`] trait. One request
//! per connection (`Connection: close`), JSON-sized bodies.
//!
//! It speaks no TLS, so `https://` is refused: it is for `wrangler dev`,
//! tests and tools on a trusted network. Against a deployed app, implement
//! [`HttpClient`] over the HTTP client you already use (reqwest, hyper, …)
//! and hand it to the background APIs' `with_http`.
//!
//! ```no_run
//! use pylon_workers::client::PlainHttp;
//! use pylon_workers::http::{HttpClient, HttpRequest};
//! # async fn demo() -> Result<(), pylon_workers::http::HttpError> {
//! let resp = PlainHttp.send(HttpRequest::get("http://127.0.0.1:8787/healthz")).await?;
//! assert!(resp.is_success());
//! # Ok(()) }
//! ```

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::http::{HttpClient, HttpError, HttpRequest, HttpResponse, MAX_RESPONSE_BYTES};

/// The longest status line and headers accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// HTTP/1.1 over plain TCP, `http://` only. Answers larger than
/// [`MAX_RESPONSE_BYTES`] are refused ([`HttpError::TooLarge`]); the whole
/// request, connect included, has the request's `timeout_ms`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlainHttp;

impl HttpClient for PlainHttp {
    async fn send(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let ms = req.timeout_ms;
        tokio::time::timeout(Duration::from_millis(ms.into()), exchange(&req))
            .await
            .map_err(|_| HttpError::Timeout(ms))?
    }
}

/// Where an `http://` URL points.
#[derive(Debug, PartialEq, Eq)]
struct Target<'a> {
    /// As written, for the `Host` header.
    authority: &'a str,
    /// Without an IPv6 literal's brackets, for connecting.
    host: &'a str,
    port: u16,
    /// Path and query, starting with `/`.
    path: String,
}

fn target(url: &str) -> Result<Target<'_>, HttpError> {
    let scheme_end = url.find("://").unwrap_or(0);
    if !url[..scheme_end].eq_ignore_ascii_case("http") {
        return Err(HttpError::Network(format!(
            "PlainHttp speaks http:// only (no TLS), not {:?}: use an HttpClient of your own",
            &url[..scheme_end]
        )));
    }
    let rest = &url[scheme_end + 3..];
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    let bad = || HttpError::Network(format!("not a URL this client can reach: {authority:?}"));
    if authority.is_empty() || authority.contains('@') {
        return Err(bad());
    }
    let (host, port) = match authority.strip_prefix('[') {
        // `[::1]:8787`
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or_else(bad)?;
            (host, after.strip_prefix(':'))
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let port = match port {
        Some(p) => p.parse().map_err(|_| bad())?,
        None => 80,
    };
    let path = match path.strip_prefix('/') {
        Some(_) => path.to_owned(),
        None => format!("/{path}"),
    };
    Ok(Target {
        authority,
        host,
        port,
        path,
    })
}

/// The request's head and body as bytes. Its own `host`, `connection`
/// and `content-length` replace any given; a line break in a header is
/// refused (it would start another header).
fn encode(req: &HttpRequest, t: &Target<'_>) -> Result<Vec<u8>, HttpError> {
    let mut head = format!(
        "{} {} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\ncontent-length: {}\r\n",
        req.method.as_str(),
        t.path,
        t.authority,
        req.body.len()
    );
    for (name, value) in &req.headers {
        if matches!(name.as_str(), "host" | "connection" | "content-length") {
            continue;
        }
        if [name, value].iter().any(|s| s.contains(['\r', '\n'])) {
            return Err(HttpError::Network(format!(
                "header {name:?} holds a line break"
            )));
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&req.body);
    Ok(bytes)
}

async fn exchange(req: &HttpRequest) -> Result<HttpResponse, HttpError> {
    let t = target(&req.url)?;
    let request = encode(req, &t)?;
    let net = |e: std::io::Error| HttpError::Network(format!("{}: {e}", t.authority));
    let mut stream = TcpStream::connect((t.host, t.port)).await.map_err(net)?;
    stream.write_all(&request).await.map_err(net)?;
    read_response(&mut stream).await.map_err(|e| match e {
        ReadError::Io(e) => net(e),
        ReadError::Http(e) => e,
    })
}

enum ReadError {
    Io(std::io::Error),
    Http(HttpError),
}

impl From<HttpError> for ReadError {
    fn from(e: HttpError) -> Self {
        ReadError::Http(e)
    }
}

fn bad_answer(what: impl std::fmt::Display) -> HttpError {
    HttpError::BadBody(format!("not an HTTP/1.1 answer: {what}"))
}

/// Reads one answer: the head, then the body by `content-length`, by
/// chunks, or to the end of the connection.
async fn read_response(
    stream: &mut (impl AsyncReadExt + Unpin),
) -> Result<HttpResponse, ReadError> {
    let mut buf = Vec::with_capacity(8 * 1024);
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err(bad_answer("a head over 64 KiB").into());
        }
        if !fill(stream, &mut buf).await? {
            return Err(bad_answer("the connection closed before the head ended").into());
        }
    };
    let (status, headers) = parse_head(&buf[..head_end])?;
    let mut body = buf.split_off(head_end + 4);
    let header = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    let chunked =
        header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length = match header("content-length") {
        Some(v) => Some(
            v.trim()
                .parse::<usize>()
                .map_err(|_| bad_answer("content-length"))?,
        ),
        None => None,
    };
    let body = if status == 204 || status == 304 || (100..200).contains(&status) {
        Vec::new()
    } else if chunked {
        loop {
            // A whole chunked body ends with the last chunk and a blank
            // line; only then is it worth decoding.
            if body.ends_with(b"\r\n\r\n") {
                if let Some(decoded) = dechunk(&body)? {
                    break decoded;
                }
            }
            if body.len() > MAX_RESPONSE_BYTES + MAX_HEAD_BYTES {
                return Err(HttpError::TooLarge.into());
            }
            if !fill(stream, &mut body).await? {
                return Err(bad_answer("the connection closed in a chunked body").into());
            }
        }
    } else if let Some(n) = length {
        if n > MAX_RESPONSE_BYTES {
            return Err(HttpError::TooLarge.into());
        }
        while body.len() < n {
            if !fill(stream, &mut body).await? {
                return Err(bad_answer("the connection closed before content-length").into());
            }
        }
        body.truncate(n);
        body
    } else {
        while fill(stream, &mut body).await? {
            if body.len() > MAX_RESPONSE_BYTES {
                return Err(HttpError::TooLarge.into());
            }
        }
        body
    };
    if body.len() > MAX_RESPONSE_BYTES {
        return Err(HttpError::TooLarge.into());
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// Appends what the stream has; `false` at its end.
async fn fill(
    stream: &mut (impl AsyncReadExt + Unpin),
    buf: &mut Vec<u8>,
) -> Result<bool, ReadError> {
    let mut chunk = [0u8; 16 * 1024];
    let n = stream.read(&mut chunk).await.map_err(ReadError::Io)?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n > 0)
}

/// The status and the headers (names in lower case).
fn parse_head(head: &[u8]) -> Result<(u16, Vec<(String, String)>), HttpError> {
    let text = std::str::from_utf8(head).map_err(|_| bad_answer("a head that is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (version, code) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    if !version.starts_with("HTTP/1.") {
        return Err(bad_answer(format!("the status line {status_line:?}")));
    }
    let status = code
        .parse::<u16>()
        .map_err(|_| bad_answer(format!("the status line {status_line:?}")))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok((status, headers))
}

/// A chunked body decoded; `None` while it is not complete.
fn dechunk(mut b: &[u8]) -> Result<Option<Vec<u8>>, HttpError> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = find(b, b"\r\n") else {
            return Ok(None);
        };
        let size_line = std::str::from_utf8(&b[..eol]).map_err(|_| bad_answer("a chunk size"))?;
        let hex = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(hex, 16).map_err(|_| bad_answer("a chunk size"))?;
        b = &b[eol + 2..];
        if size == 0 {
            // Trailers, if any, up to a blank line.
            loop {
                match find(b, b"\r\n") {
                    None => return Ok(None),
                    Some(0) => return Ok(Some(out)),
                    Some(i) => b = &b[i + 2..],
                }
            }
        }
        if size > MAX_RESPONSE_BYTES - out.len().min(MAX_RESPONSE_BYTES) {
            return Err(HttpError::TooLarge);
        }
        if b.len() < size + 2 {
            return Ok(None);
        }
        if &b[size..size + 2] != b"\r\n" {
            return Err(bad_answer("a chunk without its line end"));
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A one-shot server on 127.0.0.1: reads one request (head and
    /// content-length body), answers `answer` as it is, closes; gives the
    /// request it read.
    async fn serve_once(answer: Vec<u8>) -> (String, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            loop {
                let mut chunk = [0u8; 4096];
                let n = s.read(&mut chunk).await.unwrap();
                got.extend_from_slice(&chunk[..n]);
                if let Some(h) = find(&got, b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&got[..h]).to_ascii_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    if got.len() >= h + 4 + len || n == 0 {
                        break;
                    }
                }
            }
            s.write_all(&answer).await.unwrap();
            s.shutdown().await.unwrap();
            got
        });
        (url, task)
    }

    #[tokio::test]
    async fn posts_json_and_reads_a_content_length_answer() {
        let (url, server) = serve_once(
            b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"id\":\"j1\"}"
                .to_vec(),
        )
        .await;
        let req = HttpRequest::post_json(
            format!("{url}/v1/jobs?x=1"),
            &serde_json::json!({"name": "a"}),
        )
        .header("authorization", "Bearer t");
        let resp = PlainHttp.send(req).await.unwrap();
        assert_eq!(resp.status, 201);
        assert_eq!(resp.header_value("content-type"), Some("application/json"));
        assert_eq!(resp.body, b"{\"id\":\"j1\"}");
        let got = String::from_utf8(server.await.unwrap()).unwrap();
        let host = url.trim_start_matches("http://");
        assert!(got.starts_with("POST /v1/jobs?x=1 HTTP/1.1\r\n"), "{got}");
        for line in [
            format!("host: {host}\r\n"),
            "connection: close\r\n".into(),
            "content-length: 12\r\n".into(),
            "content-type: application/json\r\n".into(),
            "authorization: Bearer t\r\n".into(),
        ] {
            assert!(got.contains(&line), "{line:?} in {got}");
        }
        assert!(got.ends_with("\r\n\r\n{\"name\":\"a\"}"), "{got}");
    }

    #[tokio::test]
    async fn reads_chunked_answers_and_answers_to_the_end_of_the_connection() {
        let (url, _server) = serve_once(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4;x=y\r\n{\"a\"\r\n5\r\n:1}\r\n\r\n0\r\nx-trailer: 1\r\n\r\n".to_vec(),
        )
        .await;
        let resp = PlainHttp
            .send(HttpRequest::get(format!("{url}/")))
            .await
            .unwrap();
        assert_eq!(resp.body, b"{\"a\":1}\r\n");

        let (url, _server) =
            serve_once(b"HTTP/1.0 404 Not Found\r\n\r\nnothing here".to_vec()).await;
        let resp = PlainHttp.send(HttpRequest::get(url)).await.unwrap();
        assert_eq!(
            (resp.status, resp.body.as_slice()),
            (404, &b"nothing here"[..])
        );
    }

    #[tokio::test]
    async fn refusals_timeouts_and_malformed_answers() {
        let e = PlainHttp
            .send(HttpRequest::get("https://example.com/"))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, HttpError::Network(m) if m.contains("http:// only")),
            "{e}"
        );
        let bad_header = HttpRequest::get("http://127.0.0.1:9/").header("x", "a\r\nb: c");
        assert!(matches!(
            PlainHttp.send(bad_header).await,
            Err(HttpError::Network(_))
        ));

        // Nobody listens on a port just freed.
        let port = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = PlainHttp
            .send(HttpRequest::get(format!("http://127.0.0.1:{port}/")))
            .await
            .unwrap_err();
        assert!(matches!(e, HttpError::Network(_)), "{e}");

        // A server that never answers.
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", silent.local_addr().unwrap());
        let e = PlainHttp
            .send(HttpRequest::get(url).timeout_ms(200))
            .await
            .unwrap_err();
        assert_eq!(e, HttpError::Timeout(200));

        let (url, _s) = serve_once(b"SSH-2.0-OpenSSH\r\n\r\n".to_vec()).await;
        assert!(matches!(
            PlainHttp.send(HttpRequest::get(url)).await,
            Err(HttpError::BadBody(_))
        ));
        let (url, _s) =
            serve_once(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort".to_vec()).await;
        assert!(matches!(
            PlainHttp.send(HttpRequest::get(url)).await,
            Err(HttpError::BadBody(_))
        ));
        let huge = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n",
            MAX_RESPONSE_BYTES + 1
        );
        let (url, _s) = serve_once(huge.into_bytes()).await;
        assert_eq!(
            PlainHttp.send(HttpRequest::get(url)).await,
            Err(HttpError::TooLarge)
        );
    }

    #[test]
    fn targets() {
        let t = target("http://127.0.0.1:8787/v1/jobs?limit=5").unwrap();
        assert_eq!(
            t,
            Target {
                authority: "127.0.0.1:8787",
                host: "127.0.0.1",
                port: 8787,
                path: "/v1/jobs?limit=5".into()
            }
        );
        let t = target("HTTP://[::1]:9/").unwrap();
        assert_eq!((t.host, t.port, t.authority), ("::1", 9, "[::1]:9"));
        let t = target("http://localhost").unwrap();
        assert_eq!((t.host, t.port, t.path.as_str()), ("localhost", 80, "/"));
        assert_eq!(target("http://h?q=1").unwrap().path, "/?q=1");
        for bad in ["ws://h/", "h:80/", "http://", "http://u@h/", "http://h:x/"] {
            assert!(target(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn chunks() {
        assert_eq!(
            dechunk(b"3\r\nabc\r\n0\r\n\r\n").unwrap(),
            Some(b"abc".to_vec())
        );
        assert_eq!(dechunk(b"3\r\nabc\r\n").unwrap(), None);
        assert_eq!(dechunk(b"3\r\nab").unwrap(), None);
        assert!(dechunk(b"zz\r\n").is_err());
        assert!(dechunk(b"3\r\nabcd\r\n0\r\n\r\n").is_err());
    }
}
