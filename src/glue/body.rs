//! Bodies read with a cap, the requests the Worker answers and the
//! responses it fetches alike: refused from `Content-Length` before any
//! byte is read, and while streaming, as soon as the bytes received pass
//! the cap (a chunked body has no length to trust), so an oversized body
//! is never held whole.

use futures_util::StreamExt;
use worker::{ByteStream, Headers, Request, Response, ResponseBody};

use crate::api_error::ApiError;

/// Why a body was not read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    /// Declared or sent more than `limit` bytes.
    #[error("bodies are limited to {limit} bytes")]
    TooLarge { limit: usize },
    /// The body stream failed (the runtime's words, for the log).
    #[error("unreadable body")]
    Unreadable(String),
}

impl BodyError {
    /// The API error, with the caller's code for a body over the cap
    /// (`TOO_LARGE` on the router, `FRAME_TOO_LARGE` on a shard).
    pub(crate) fn to_api_error(&self, too_large: &'static str) -> ApiError {
        match self {
            BodyError::TooLarge { .. } => ApiError::new(413, too_large, self.to_string()),
            BodyError::Unreadable(_) => ApiError::bad_request("BAD_REQUEST", self.to_string()),
        }
    }
}

fn unreadable(e: worker::Error) -> BodyError {
    BodyError::Unreadable(e.to_string())
}

/// The `Content-Length`, refused when over `cap`.
fn declared(headers: &Headers, cap: usize) -> Result<Option<u64>, BodyError> {
    let declared = headers
        .get("Content-Length")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(n) if n > cap as u64 => Err(BodyError::TooLarge { limit: cap }),
        n => Ok(n),
    }
}

/// The body of `req`, at most `cap` bytes (an absent body is empty).
pub(crate) async fn read_capped(req: &mut Request, cap: usize) -> Result<Vec<u8>, BodyError> {
    let declared = declared(req.headers(), cap)?;
    if req.inner().body().is_none() {
        return Ok(Vec::new());
    }
    read_stream(req.stream().map_err(unreadable)?, declared, cap).await
}

/// The body of a fetched `resp`, at most `cap` bytes.
pub(crate) async fn read_response_capped(
    resp: &mut Response,
    cap: usize,
) -> Result<Vec<u8>, BodyError> {
    let declared = declared(resp.headers(), cap)?;
    match resp.body() {
        ResponseBody::Empty => Ok(Vec::new()),
        ResponseBody::Body(b) if b.len() > cap => Err(BodyError::TooLarge { limit: cap }),
        ResponseBody::Body(b) => Ok(b.clone()),
        ResponseBody::Stream(_) => {
            read_stream(resp.stream().map_err(unreadable)?, declared, cap).await
        }
    }
}

async fn read_stream(
    mut stream: ByteStream,
    declared: Option<u64>,
    cap: usize,
) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(unreadable)?;
        if body.len() + chunk.len() > cap {
            // Stop here: the rest is never read.
            return Err(BodyError::TooLarge { limit: cap });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
