//! The files bucket (R2): a request body streamed into an object or into
//! a multipart upload's part, an object (or a range of it) as a response
//! body, a delete.

use futures_util::future::join;
use worker::wasm_bindgen_futures::JsFuture;
use worker::worker_sys::FixedLengthStream;
use worker::{Bucket, Data, Env, HttpMetadata, MultipartUpload, Range, Request, ResponseBody, Result};

use crate::files::range::ByteRange;

/// The files bucket's binding (wrangler.toml).
pub(crate) const FILES_BINDING: &str = "FILES";

pub(crate) fn bucket(env: &Env) -> Result<Bucket> {
    env.bucket(FILES_BINDING)
}

/// Streams `req`'s body into object `key`, `size` bytes exactly. The body
/// goes through a `FixedLengthStream` of `size`: R2 needs the length up
/// front, and a body that ends early or runs long errors the stream, so
/// the put fails and no object is written (a put is all or nothing). The
/// Worker never holds more than the runtime's chunk of it.
pub(crate) async fn put_body(
    bucket: &Bucket,
    key: &str,
    req: &Request,
    size: u64,
    content_type: &str,
) -> Result<()> {
    let meta = HttpMetadata {
        content_type: Some(content_type.to_owned()),
        ..HttpMetadata::default()
    };
    let body = match req.inner().body() {
        Some(b) if size > 0 => b,
        _ => {
            bucket
                .put(key, Data::Bytes(Vec::new()))
                .http_metadata(meta)
                .execute()
                .await?;
            return Ok(());
        }
    };
    let fixed = fixed_length(size)?;
    let piped = JsFuture::from(body.pipe_to(&fixed.writable()));
    let put = bucket
        .put(key, Data::ReadableStream(fixed.readable()))
        .http_metadata(meta)
        .execute();
    let (put, piped) = join(put, piped).await;
    put?;
    piped.map_err(worker::Error::from)?;
    Ok(())
}

fn fixed_length(size: u64) -> Result<FixedLengthStream> {
    if size < u32::MAX as u64 {
        FixedLengthStream::new(size as u32)
    } else {
        FixedLengthStream::new_big_int(js_sys::BigInt::from(size))
    }
    .map_err(worker::Error::from)
}

/// Why a part was not stored.
pub(crate) enum PartFailed {
    /// The body ended early or ran long.
    Body(worker::Error),
    /// R2 refused it (no such upload, or it failed).
    R2(worker::Error),
}

/// Streams `req`'s body, `size` bytes exactly (at least 1), into part `n`
/// of `upload` through a `FixedLengthStream`, as [`put_body`] does for an
/// object; answers the part's etag.
pub(crate) async fn put_part(
    upload: &MultipartUpload,
    n: u16,
    req: &Request,
    size: u64,
) -> std::result::Result<String, PartFailed> {
    let Some(body) = req.inner().body() else {
        return Err(PartFailed::Body(worker::Error::RustError("no body".into())));
    };
    let fixed = fixed_length(size).map_err(PartFailed::Body)?;
    let piped = JsFuture::from(body.pipe_to(&fixed.writable()));
    let part = upload.upload_part(n, Data::ReadableStream(fixed.readable()));
    match join(part, piped).await {
        (Err(e), _) if no_such_upload(&e) => Err(PartFailed::R2(e)),
        (_, Err(e)) => Err(PartFailed::Body(worker::Error::from(e))),
        (Err(e), Ok(_)) => Err(PartFailed::R2(e)),
        (Ok(p), Ok(_)) => Ok(p.etag()),
    }
}

/// Whether an R2 error says the multipart upload does not exist (aborted,
/// completed, or never made).
pub(crate) fn no_such_upload(e: &worker::Error) -> bool {
    let s = e.to_string();
    s.contains("does not exist") || s.contains("NoSuchUpload") || s.contains("10024")
}

/// Object `key` (all of it, or `range`) as a response body; `None` when
/// there is no such object.
pub(crate) async fn get_body(
    bucket: &Bucket,
    key: &str,
    range: Option<ByteRange>,
) -> Result<Option<ResponseBody>> {
    let mut get = bucket.get(key);
    if let Some(r) = range {
        get = get.range(Range::OffsetWithLength {
            offset: r.start,
            length: r.len(),
        });
    }
    let Some(object) = get.execute().await? else {
        return Ok(None);
    };
    match object.body() {
        Some(b) => b.response_body().map(Some),
        None => Ok(None),
    }
}
