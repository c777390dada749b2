//! Files on R2 under wrangler dev (docs/files.md): an upload streamed
//! through the Worker and seen by a live query of the file rows; a
//! download whole, by range and answered 304 for its ETag; delete; the
//! board's policies (only the owner deletes); refusals with typed errors
//! and nothing stored (a type not allowed, a path-traversal id, no
//! Content-Length, an oversized body refused before it is sent, an id in
//! use); signed upload URLs, and tampered and expired ones refused; and a
//! `kill -9` of wrangler in the middle of an upload leaving no file; a
//! multipart upload (12 MiB in parts of 5 MiB) resumed after a `kill -9`
//! between its parts, and its refusals.

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use pylon_workers::files::signed_url::{sign, UploadGrant};
use pylon_workers::policy::AuthContext;
use pylon_workers::protocol::Encoding;
use pylon_workers::client::Query;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{client, project_root, unique, wait_rows, within};
use crate::Ctx;

/// The board's `files.maxBytes`.
const MAX_BYTES: u64 = 64 * 1024 * 1024;

fn files_secret() -> Result<String> {
    let text = std::fs::read_to_string(project_root().join(".dev.vars"))?;
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("PYLON_FILES_SECRET="))
        .context("PYLON_FILES_SECRET in .dev.vars")?;
    Ok(line.trim().trim_matches('"').to_owned())
}

/// Bytes that differ at every offset (so a wrong range shows).
pub(crate) fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

struct Files {
    base: String,
    http: reqwest::Client,
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    bytes: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }
    fn code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or("").to_owned()
    }
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

impl Files {
    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Answer> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = within(path, req.send()).await??;
        Ok(Answer {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            bytes: resp.bytes().await?.to_vec(),
        })
    }

    async fn put(&self, path: &str, token: Option<&str>, ty: &str, body: Vec<u8>) -> Result<Answer> {
        self.send(Method::PUT, path, token, &[("Content-Type", ty)], Some(body)).await
    }

    /// A POST of JSON `body`.
    async fn post_json(&self, path: String, token: Option<&str>, body: Value) -> Result<Answer> {
        let ct = [("Content-Type", "application/json")];
        self.send(Method::POST, &path, token, &ct, Some(serde_json::to_vec(&body)?)).await
    }

    /// A PUT of `body` with no credentials (a token in `path`).
    async fn put_owned(&self, path: String, body: Vec<u8>) -> Result<Answer> {
        self.send(Method::PUT, &path, None, &[("Content-Type", "application/octet-stream")], Some(body)).await
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Result<Answer> {
        self.send(Method::GET, path, None, headers, None).await
    }
}

/// Writes a request head and `body` on a raw connection (the rest of the
/// declared body is never sent).
async fn raw_request(port: u16, head: &str, body: &[u8]) -> Result<TcpStream> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(head.as_bytes()).await?;
    s.write_all(body).await?;
    Ok(s)
}

/// The status and body of the answer on a raw connection.
async fn raw_answer(s: &mut TcpStream) -> Result<(u16, String)> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = within("a raw answer", s.read(&mut buf)).await??;
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = &text[..end];
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if n == 0 || text.len() >= end + 4 + len {
                let status = head.split(' ').nth(1).unwrap_or("0").parse()?;
                return Ok((status, text[end + 4..].to_owned()));
            }
        }
        if n == 0 {
            bail!("the connection closed without an answer: {:?}", String::from_utf8_lossy(&got));
        }
    }
}

fn attachments() -> Query {
    Query::new("Attachment").order(json!(["id"]).into())
}

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let f = Files {
        base: ctx.dev.http("/v1/files"),
        http: reqwest::Client::new(),
    };
    let port = ctx.dev.port;
    let shard = unique("files");
    let u1 = super::background::token("files-u1", false)?;
    let u2 = super::background::token("files-u2", false)?;
    let watcher = client(port, &shard, Encoding::Json).await?;
    let mut live = watcher.subscribe(attachments()).await?;

    // An upload, seen by the live query of the file rows.
    let bytes = pattern(300 * 1024 + 7);
    let a = f.put(&format!("/{shard}/pic.png?name=cat%20pic.png&row=card-1"), Some(&u1), "image/png", bytes.clone()).await?;
    ensure!(a.status == 201, "upload: {} {}", a.status, a.json());
    let row = a.json()["file"].clone();
    ensure!(
        row["id"] == "pic.png" && row["size"] == bytes.len() && row["type"] == "image/png"
            && row["owner"] == "files-u1" && row["name"] == "cat pic.png" && row["row"] == "card-1",
        "{row}"
    );
    ensure!(row["key"].as_str().unwrap_or("").starts_with(&format!("{shard}/pic.png/")), "{row}");
    let view = wait_rows(&mut live, "the upload's row", |v| v.rows.len() == 1).await?;
    ensure!(view.rows[0].get("size") == Some(&json!(bytes.len()).into()), "{:?}", view.rows);

    // Download: whole, ranges, 304.
    let path = format!("/{shard}/pic.png");
    let a = f.get(&path, &[]).await?;
    ensure!(a.status == 200 && a.bytes == bytes, "whole: {} ({} bytes)", a.status, a.bytes.len());
    let etag = a.header("etag").to_owned();
    ensure!(etag.starts_with('"') && etag.len() > 2, "etag {etag:?}");
    ensure!(a.header("cache-control") == "private, no-cache", "{:?}", a.headers);
    ensure!(a.header("accept-ranges") == "bytes" && a.header("content-type") == "image/png");
    let a = f.get(&path, &[("Range", "bytes=1000-1999")]).await?;
    ensure!(a.status == 206 && a.bytes == bytes[1000..2000], "range: {} {}", a.status, a.bytes.len());
    ensure!(a.header("content-range") == format!("bytes 1000-1999/{}", bytes.len()), "{:?}", a.headers);
    let a = f.get(&path, &[("Range", "bytes=-10")]).await?;
    ensure!(a.status == 206 && a.bytes == bytes[bytes.len() - 10..], "suffix: {}", a.status);
    let a = f.get(&path, &[("Range", "bytes=999999999-")]).await?;
    ensure!(a.status == 416 && a.code() == "RANGE_NOT_SATISFIABLE", "416: {} {}", a.status, a.json());
    let a = f.get(&path, &[("If-None-Match", &etag)]).await?;
    ensure!(a.status == 304 && a.bytes.is_empty() && a.header("etag") == etag, "304: {}", a.status);
    let a = f.get(&path, &[("If-None-Match", "\"other\"")]).await?;
    ensure!(a.status == 200 && a.bytes.len() == bytes.len(), "another etag: {}", a.status);

    // Refusals, each typed and storing nothing.
    let a = f.put(&format!("/{shard}/page.html"), Some(&u1), "text/html", b"<p>".to_vec()).await?;
    ensure!(a.status == 415 && a.code() == "UNSUPPORTED_TYPE", "type: {} {}", a.status, a.json());
    let a = f.get(&format!("/{shard}/page.html"), &[]).await?;
    ensure!(a.status == 404 && a.code() == "NOT_FOUND", "after 415: {} {}", a.status, a.json());
    for id in ["..%2F..%2Fetc%2Fpasswd", "a%5Cb", "a%2Fb"] {
        let a = f.put(&format!("/{shard}/{id}"), Some(&u1), "text/plain", b"x".to_vec()).await?;
        ensure!(a.status == 400 && a.code() == "BAD_FILE_ID", "{id}: {} {}", a.status, a.json());
    }
    // `%2E%2E` as sent (an HTTP client library would resolve it): URL
    // parsing in the runtime resolves it as `..` before the Worker runs,
    // so the request is for `/v1/files/`, which names no file.
    let head = format!(
        "PUT /v1/files/{shard}/%2E%2E HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {u1}\r\n\
         Content-Type: text/plain\r\nContent-Length: 1\r\nConnection: close\r\n\r\n"
    );
    let mut s = raw_request(port, &head, b"x").await?;
    let (status, body) = raw_answer(&mut s).await?;
    ensure!(status == 404 && body.contains("NOT_FOUND"), "%2E%2E: {status} {body}");
    let a = f.put(&path, Some(&u1), "image/png", b"again".to_vec()).await?;
    ensure!(a.status == 409 && a.code() == "ALREADY_EXISTS", "in use: {} {}", a.status, a.json());
    ensure!(f.get(&path, &[]).await?.bytes == bytes, "the first upload is intact");
    // No Content-Length (chunked): refused before reading.
    let head = format!(
        "PUT /v1/files/{shard}/chunked.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {u1}\r\n\
         Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let mut s = raw_request(port, &head, b"5\r\nhello\r\n0\r\n\r\n").await?;
    let (status, body) = raw_answer(&mut s).await?;
    ensure!(status == 411 && body.contains("LENGTH_REQUIRED"), "chunked: {status} {body}");
    // Oversized, declared 96 MiB: the Worker answers on the headers and
    // never reads the body. (Under wrangler dev its local proxy takes the
    // whole body from the client before it passes the answer on, so the
    // test sends it all; deployed, the answer comes first.)
    let declared = MAX_BYTES + 32 * 1024 * 1024;
    let head = format!(
        "PUT /v1/files/{shard}/huge.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {u1}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n"
    );
    let mut s = raw_request(port, &head, &[]).await?;
    let chunk = pattern(1024 * 1024);
    for _ in 0..declared / chunk.len() as u64 {
        within("sending the oversized body", s.write_all(&chunk)).await??;
    }
    let (status, body) = raw_answer(&mut s).await?;
    ensure!(status == 413 && body.contains("FILE_TOO_LARGE"), "oversized: {status} {body}");
    drop(s);
    ensure!(f.get(&format!("/{shard}/huge.bin"), &[]).await?.status == 404);

    // Policies (the board's attachmentOwners): another user may read but
    // not delete u1's file; anonymous callers neither.
    let a = f.send(Method::DELETE, &path, Some(&u2), &[], None).await?;
    ensure!(a.status == 403 && a.code() == "FORBIDDEN", "u2 delete: {} {}", a.status, a.json());
    let a = f.send(Method::DELETE, &path, None, &[], None).await?;
    ensure!(a.status == 403, "anonymous delete: {} {}", a.status, a.json());
    // An upload as someone else (u2 writing a row owned by u1) is not
    // possible: the owner is always the caller; anonymous uploads are
    // owned by no one.
    let a = f.put(&format!("/{shard}/anon.txt"), None, "text/plain", b"anon".to_vec()).await?;
    ensure!(a.status == 201 && a.json()["file"]["owner"] == Value::Null, "anon: {} {}", a.status, a.json());

    // Signed upload URLs.
    let a = f
        .send(Method::POST, &format!("/{shard}/signed.txt/upload-url"), Some(&u1),
              &[("Content-Type", "application/json")],
              Some(serde_json::to_vec(&json!({"type": "text/plain", "size": 11, "name": "s.txt"}))?))
        .await?;
    ensure!(a.status == 200, "upload-url: {} {}", a.status, a.json());
    let url = a.json()["url"].as_str().context("url")?.to_owned();
    let signed_path = url.strip_prefix("/v1/files").context("a files url")?.to_owned();
    let mut tampered = signed_path.clone();
    let flip_at = tampered.len() - 2;
    let c = tampered.as_bytes()[flip_at];
    tampered.replace_range(flip_at..flip_at + 1, if c == b'A' { "B" } else { "A" });
    let a = f.put(&tampered, None, "text/plain", b"hello world".to_vec()).await?;
    ensure!(a.status == 403 && a.code() == "BAD_SIGNATURE", "tampered: {} {}", a.status, a.json());
    let other = signed_path.replace("/signed.txt?", "/other.txt?");
    let a = f.put(&other, None, "text/plain", b"hello world".to_vec()).await?;
    ensure!(a.status == 403 && a.code() == "BAD_SIGNATURE", "other file: {} {}", a.status, a.json());
    let a = f.put(&signed_path, None, "text/plain", b"hello world!".to_vec()).await?;
    ensure!(a.status == 413 && a.code() == "FILE_TOO_LARGE", "longer: {} {}", a.status, a.json());
    let a = f.put(&signed_path, None, "image/png", b"hello world".to_vec()).await?;
    ensure!(a.status == 415, "other type: {} {}", a.status, a.json());
    let expired = sign(
        &UploadGrant {
            shard: shard.clone(),
            id: "late.txt".into(),
            content_type: "text/plain".into(),
            size: 2,
            expires_at: pylon_workers::time::now_secs() - 1,
            caller: AuthContext { user_id: Some("files-u1".into()), ..AuthContext::default() },
            name: None,
            row: None,
            multipart: None,
        },
        files_secret()?.as_bytes(),
    );
    let a = f.put(&format!("/{shard}/late.txt?token={expired}"), None, "text/plain", b"hi".to_vec()).await?;
    ensure!(a.status == 403 && a.code() == "URL_EXPIRED", "expired: {} {}", a.status, a.json());
    ensure!(f.get(&format!("/{shard}/late.txt"), &[]).await?.status == 404);
    let a = f.put(&signed_path, None, "text/plain", b"hello world".to_vec()).await?;
    ensure!(a.status == 201 && a.json()["file"]["owner"] == "files-u1", "signed: {} {}", a.status, a.json());
    let a = f.get(&format!("/{shard}/signed.txt"), &[]).await?;
    ensure!(a.status == 200 && a.bytes == b"hello world", "signed read: {}", a.status);
    wait_rows(&mut live, "three rows", |v| v.rows.len() == 3).await?;

    // Delete by the owner: gone from R2's route and from the live query.
    let a = f.send(Method::DELETE, &path, Some(&u1), &[], None).await?;
    ensure!(a.status == 200 && a.json()["deleted"] == true, "delete: {} {}", a.status, a.json());
    let a = f.get(&path, &[]).await?;
    ensure!(a.status == 404 && a.code() == "NOT_FOUND", "after delete: {} {}", a.status, a.json());
    wait_rows(&mut live, "the row gone", |v| v.rows.len() == 2).await?;
    drop(live);
    drop(watcher);

    // kill -9 in the middle of an upload: 1 MiB of a declared 8 MiB sent.
    let head = format!(
        "PUT /v1/files/{shard}/cut.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {u1}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        8 * 1024 * 1024
    );
    let s = raw_request(port, &head, &pattern(1024 * 1024)).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    ctx.restart().await?;
    drop(s);
    let a = f.get(&format!("/{shard}/cut.bin"), &[]).await?;
    ensure!(a.status == 404 && a.code() == "NOT_FOUND", "half file: {} {}", a.status, a.json());
    let watcher = client(port, &shard, Encoding::Json).await?;
    let mut live = watcher.subscribe(attachments()).await?;
    let view = wait_rows(&mut live, "the rows after the restart", |v| !v.rows.is_empty()).await?;
    let ids: Vec<_> = view.rows.iter().filter_map(|r| r.get("id").and_then(|v| v.as_str()).map(str::to_owned)).collect();
    ensure!(ids == ["anon.txt", "signed.txt"], "rows after the restart: {ids:?}");
    // The id is free: the same upload again, whole, succeeds.
    let again = pattern(8 * 1024 * 1024);
    let a = f.put(&format!("/{shard}/cut.bin"), Some(&u1), "application/octet-stream", again.clone()).await?;
    ensure!(a.status == 201, "upload after the restart: {} {}", a.status, a.json());
    ensure!(f.get(&format!("/{shard}/cut.bin"), &[]).await?.bytes == again);
    wait_rows(&mut live, "cut.bin's row", |v| v.rows.len() == 3).await?;

    drop(live);
    drop(watcher);
    multipart(ctx, &shard, &u1, &signed_path).await
}

/// A multipart upload: 12 MiB in parts of 5 MiB, `wrangler dev` killed
/// with `kill -9` in the middle of part 2 (part 1 stored), the rest sent
/// after the restart on the same upload, completed, seen by the live
/// query and read back whole; and its refusals, nothing stored by any.
async fn multipart(ctx: &mut Ctx, shard: &str, u1: &str, signed_path: &str) -> Result<()> {
    const MIB: usize = 1024 * 1024;
    let f = Files { base: ctx.dev.http("/v1/files"), http: reqwest::Client::new() };
    // Refused at the start, as a single upload would be.
    let a = f.post_json(format!("/{shard}/big.bin/uploads"), Some(u1), json!({"type": "text/html", "size": 12 * MIB})).await?;
    ensure!(a.status == 415 && a.code() == "UNSUPPORTED_TYPE", "start, type: {} {}", a.status, a.json());
    let a = f.post_json(format!("/{shard}/big.bin/uploads"), Some(u1), json!({"type": "application/octet-stream", "size": MAX_BYTES + 1})).await?;
    ensure!(a.status == 413 && a.code() == "FILE_TOO_LARGE", "start, size: {} {}", a.status, a.json());
    let a = f.post_json(format!("/{shard}/big.bin/uploads"), Some(u1), json!({"type": "application/octet-stream", "size": 0})).await?;
    ensure!(a.status == 400 && a.code() == "BAD_REQUEST", "start, empty: {} {}", a.status, a.json());
    let a = f.post_json(format!("/{shard}/anon.txt/uploads"), Some(u1), json!({"type": "text/plain", "size": 12 * MIB})).await?;
    ensure!(a.status == 409 && a.code() == "ALREADY_EXISTS", "start, id in use: {} {}", a.status, a.json());

    let big = pattern(12 * MIB);
    let a = f.post_json(format!("/{shard}/big.bin/uploads"), Some(u1), json!({"type": "application/octet-stream", "size": big.len(), "name": "big.bin"})).await?;
    ensure!(a.status == 201, "start: {} {}", a.status, a.json());
    let up = a.json();
    ensure!(up["partBytes"] == 5 * MIB && up["parts"] == 3 && up["size"] == 12 * MIB, "the plan: {up}");
    let token = up["token"].as_str().context("token")?.to_owned();
    let base = up["url"].as_str().context("url")?.strip_prefix("/v1/files").context("a files url")?.to_owned();
    let part_path = |n: &str, t: &str| format!("{base}/parts/{n}?token={t}");
    let part = |n: usize| big[(n - 1) * 5 * MIB..(n * 5 * MIB).min(big.len())].to_vec();

    // Refused parts.
    let a = f.put_owned(part_path("1", &token), big[..5 * MIB - 1].to_vec()).await?;
    ensure!(a.status == 400 && a.code() == "BAD_PART_SIZE", "short part: {} {}", a.status, a.json());
    let a = f.put_owned(part_path("3", &token), part(1)).await?;
    ensure!(a.status == 400 && a.code() == "BAD_PART_SIZE", "last part too long: {} {}", a.status, a.json());
    let a = f.put_owned(part_path("4", &token), part(3)).await?;
    ensure!(a.status == 400 && a.code() == "BAD_PART_NUMBER", "part 4: {} {}", a.status, a.json());
    let a = f.put_owned(part_path("0", &token), part(3)).await?;
    ensure!(a.status == 400 && a.code() == "BAD_PART_NUMBER", "part 0: {} {}", a.status, a.json());
    let mut tampered = token.clone();
    let flip_at = tampered.len() - 2;
    let c = tampered.as_bytes()[flip_at];
    tampered.replace_range(flip_at..flip_at + 1, if c == b'A' { "B" } else { "A" });
    let a = f.put_owned(part_path("1", &tampered), part(1)).await?;
    ensure!(a.status == 403 && a.code() == "BAD_SIGNATURE", "tampered token: {} {}", a.status, a.json());
    let a = f.put_owned(format!("/{shard}/big.bin/uploads/another/parts/1?token={token}"), part(1)).await?;
    ensure!(a.status == 403 && a.code() == "BAD_SIGNATURE", "another upload: {} {}", a.status, a.json());
    let a = f.put_owned(format!("{base}/parts/1"), part(1)).await?;
    ensure!(a.status == 403 && a.code() == "BAD_SIGNATURE", "no token: {} {}", a.status, a.json());
    let single = signed_path.split("token=").nth(1).context("a single upload's token")?;
    let a = f.put_owned(part_path("1", single), part(1)).await?;
    ensure!(a.status == 403 && a.code() == "BAD_SIGNATURE", "a single upload's token: {} {}", a.status, a.json());
    let a = f.put(&format!("/{shard}/big.bin?token={token}"), None, "application/octet-stream", big.clone()).await?;
    ensure!(a.status == 403 && a.code() == "BAD_SIGNATURE", "the parts' token for a PUT: {} {}", a.status, a.json());
    let a = f.send(Method::PUT, &part_path("1", &token), None, &[], None).await?;
    ensure!(
        (a.status == 400 && a.code() == "BAD_PART_SIZE") || (a.status == 411 && a.code() == "LENGTH_REQUIRED"),
        "no body: {} {}",
        a.status,
        a.json()
    );

    // Part 1, then a complete that lacks parts.
    let a = f.put_owned(part_path("1", &token), part(1)).await?;
    ensure!(a.status == 200 && a.json()["part"] == 1, "part 1: {} {}", a.status, a.json());
    let etag1 = a.json()["etag"].as_str().context("etag")?.to_owned();
    let a = f.post_json(format!("{base}/complete?token={token}"), None, json!([{"part": 1, "etag": etag1}])).await?;
    ensure!(a.status == 400 && a.code() == "MISSING_PARTS", "complete, parts missing: {} {}", a.status, a.json());
    ensure!(f.get(&format!("/{shard}/big.bin"), &[]).await?.status == 404, "visible before complete");

    // kill -9 with part 2 one MiB in.
    let head = format!(
        "PUT /v1/files{} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {}\r\n\r\n",
        part_path("2", &token),
        5 * MIB
    );
    let s = raw_request(ctx.dev.port, &head, &part(2)[..MIB]).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    ctx.restart().await?;
    drop(s);
    let a = f.get(&format!("/{shard}/big.bin"), &[]).await?;
    ensure!(a.status == 404 && a.code() == "NOT_FOUND", "half a multipart file: {} {}", a.status, a.json());

    // The same upload goes on after the restart.
    let f = Files { base: ctx.dev.http("/v1/files"), http: reqwest::Client::new() };
    let watcher = client(ctx.dev.port, shard, Encoding::Json).await?;
    let mut live2 = watcher.subscribe(attachments()).await?;
    let view = wait_rows(&mut live2, "the rows after the second restart", |v| !v.rows.is_empty()).await?;
    ensure!(view.rows.len() == 3, "rows after the second restart: {}", view.rows.len());
    let mut etags = vec![etag1];
    for n in [2, 3] {
        let a = f.put_owned(part_path(&n.to_string(), &token), part(n)).await?;
        ensure!(a.status == 200 && a.json()["part"] == n, "part {n}: {} {}", a.status, a.json());
        etags.push(a.json()["etag"].as_str().context("etag")?.to_owned());
    }
    // A part's etag that is not its own: R2 refuses, nothing stored.
    let a = f.post_json(format!("{base}/complete?token={token}"), None, json!([{"part": 1, "etag": etags[1]}, {"part": 2, "etag": etags[1]}, {"part": 3, "etag": etags[2]}])).await?;
    ensure!(a.status == 400 && a.code() == "UPLOAD_INCOMPLETE", "complete, wrong etag: {} {}", a.status, a.json());
    ensure!(f.get(&format!("/{shard}/big.bin"), &[]).await?.status == 404, "visible after a refused complete");
    let listed = json!([{"part": 3, "etag": etags[2]}, {"part": 1, "etag": etags[0]}, {"part": 2, "etag": etags[1]}]);
    let a = f.post_json(format!("{base}/complete?token={token}"), None, listed.clone()).await?;
    ensure!(a.status == 201, "complete: {} {}", a.status, a.json());
    let row = a.json()["file"].clone();
    ensure!(
        row["id"] == "big.bin" && row["size"] == big.len() && row["owner"] == "files-u1" && row["name"] == "big.bin",
        "the row: {row}"
    );
    wait_rows(&mut live2, "big.bin's row", |v| {
        v.rows.iter().any(|r| r.get("id").and_then(|v| v.as_str()) == Some("big.bin"))
    })
    .await?;
    let a = f.get(&format!("/{shard}/big.bin"), &[]).await?;
    ensure!(a.status == 200 && a.bytes.len() == big.len() && a.bytes == big, "download: {} {} bytes", a.status, a.bytes.len());
    let a = f.get(&format!("/{shard}/big.bin"), &[("Range", "bytes=5242870-5242889")]).await?;
    ensure!(a.status == 206 && a.bytes == big[5_242_870..5_242_890], "a range across parts: {}", a.status);
    let a = f.post_json(format!("{base}/complete?token={token}"), None, listed).await?;
    ensure!(a.status == 409 && a.code() == "ALREADY_EXISTS", "complete again: {} {}", a.status, a.json());

    // An expired token.
    let mut late = serde_json::from_slice::<UploadGrant>(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, token.split('.').next().unwrap_or(""))?,
    )?;
    late.expires_at = pylon_workers::time::now_secs() - 1;
    let late = sign(&late, files_secret()?.as_bytes());
    let a = f.put_owned(part_path("1", &late), part(1)).await?;
    ensure!(a.status == 403 && a.code() == "URL_EXPIRED", "expired token: {} {}", a.status, a.json());

    // Aborted: R2 drops the parts, the upload is gone, nothing visible.
    let a = f.post_json(format!("/{shard}/gone.bin/uploads"), Some(u1), json!({"type": "application/octet-stream", "size": 6 * MIB})).await?;
    ensure!(a.status == 201 && a.json()["parts"] == 2, "start gone.bin: {} {}", a.status, a.json());
    let gone = a.json();
    let gone_token = gone["token"].as_str().context("token")?.to_owned();
    let gone_base = gone["url"].as_str().context("url")?.strip_prefix("/v1/files").context("url")?.to_owned();
    let a = f.put_owned(format!("{gone_base}/parts/2?token={gone_token}"), vec![7u8; MIB]).await?;
    ensure!(a.status == 200, "gone.bin part 2: {} {}", a.status, a.json());
    let a = f.send(Method::DELETE, &format!("{gone_base}?token={gone_token}"), None, &[], None).await?;
    ensure!(a.status == 200 && a.json()["aborted"] == true, "abort: {} {}", a.status, a.json());
    let a = f.put_owned(format!("{gone_base}/parts/1?token={gone_token}"), vec![7u8; 5 * MIB]).await?;
    ensure!(a.status == 404 && a.code() == "UPLOAD_NOT_FOUND", "part after abort: {} {}", a.status, a.json());
    let body = json!([{"part": 1, "etag": "x"}, {"part": 2, "etag": "y"}]);
    let a = f.post_json(format!("{gone_base}/complete?token={gone_token}"), None, body).await?;
    ensure!(a.status == 404 && a.code() == "UPLOAD_NOT_FOUND", "complete after abort: {} {}", a.status, a.json());
    ensure!(f.get(&format!("/{shard}/gone.bin"), &[]).await?.status == 404, "an aborted file visible");
    let view = wait_rows(&mut live2, "the rows at the end", |v| v.rows.len() == 4).await?;
    ensure!(view.rows.len() == 4, "rows: {}", view.rows.len());
    Ok(())
}
