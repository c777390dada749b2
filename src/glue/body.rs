//! Request bodies with a cap: refused from `Content-Length` before anything
//! is read, and while streaming as soon as the cap is passed (the stream is
//! then cancelled, so the rest is never read or buffered).

use futures_util::StreamExt;
use worker::Request;

use crate::api_error::ApiError;

/// The body of `req`, at most `max` bytes; 413 `TOO_LARGE` beyond, 400
/// `BAD_REQUEST` if it cannot be read.
pub(crate) async fn read_capped(req: &mut Request, max: usize) -> Result<Vec<u8>, ApiError> {
    let too_large = || {
        ApiError::new(
            413,
            "TOO_LARGE",
            format!("bodies are limited to {max} bytes"),
        )
    };
    let unreadable = || ApiError::bad_request("BAD_REQUEST", "unreadable body");
    let declared = req
        .headers()
        .get("Content-Length")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    if req.inner().body().is_none() {
        return Ok(Vec::new());
    }
    let mut stream = req.stream().map_err(|_| unreadable())?;
    let mut body = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| unreadable())?;
        if body.len() + chunk.len() > max {
            // Dropping the stream cancels it: nothing more is read.
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
