//! Request bodies read with a cap: refused from `Content-Length` before
//! any byte is read, and while streaming, as soon as the bytes received
//! pass the cap (a chunked body has no length to trust), so an oversized
//! body is never held whole.

use futures_util::StreamExt;
use worker::Request;

use crate::api_error::ApiError;

/// Why a body was not read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Declared or sent more than `limit` bytes.
    TooLarge { limit: usize },
    /// The body stream failed.
    Unreadable,
}

impl BodyError {
    /// The API error, with the caller's code for a body over the cap
    /// (`TOO_LARGE` on the router, `FRAME_TOO_LARGE` on a shard).
    pub(crate) fn to_api_error(&self, too_large: &'static str) -> ApiError {
        match self {
            BodyError::TooLarge { limit } => ApiError::new(
                413,
                too_large,
                format!("bodies are limited to {limit} bytes"),
            ),
            BodyError::Unreadable => ApiError::bad_request("BAD_REQUEST", "unreadable body"),
        }
    }
}

/// The body of `req`, at most `cap` bytes (an absent body is empty).
pub(crate) async fn read_capped(req: &mut Request, cap: usize) -> Result<Vec<u8>, BodyError> {
    let declared = req
        .headers()
        .get("Content-Length")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > cap as u64) {
        return Err(BodyError::TooLarge { limit: cap });
    }
    if req.inner().body().is_none() {
        return Ok(Vec::new());
    }
    let mut stream = req.stream().map_err(|_| BodyError::Unreadable)?;
    let mut body = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| BodyError::Unreadable)?;
        if body.len() + chunk.len() > cap {
            // Stop here: the rest of the upload is never read.
            return Err(BodyError::TooLarge { limit: cap });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
