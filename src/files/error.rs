//! The file routes' errors: each with its HTTP status and a stable code.

use crate::api_error::ApiError;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// 400 `BAD_FILE_ID`: not 1 to 128 characters of `A-Z a-z 0-9 . _ -`,
    /// or `.` / `..` (a path-traversal attempt), or a bad percent-encoding.
    #[error("{0}")]
    BadId(String),
    /// 411 `LENGTH_REQUIRED`: an upload without `Content-Length` (the size
    /// is checked before the body is read, and R2 needs it up front).
    #[error("an upload needs a Content-Length header")]
    LengthRequired,
    /// 413 `FILE_TOO_LARGE`: over the manifest's `files.maxBytes` (or the
    /// size a signed upload URL was made for), refused before the body.
    #[error("the file is {size} bytes, over the {limit} bytes allowed")]
    TooLarge { size: u64, limit: u64 },
    /// 415 `UNSUPPORTED_TYPE`: a content type not in `files.types`.
    #[error("content type {0:?} is not allowed here")]
    UnsupportedType(String),
    /// 416 `RANGE_NOT_SATISFIABLE`: a range outside the file.
    #[error("range {range:?} is outside the file's {size} bytes")]
    RangeNotSatisfiable { range: String, size: u64 },
    /// 403 `BAD_SIGNATURE`: a signed upload URL that was changed, or made
    /// for another file, size or type.
    #[error("{0}")]
    BadSignature(String),
    /// 403 `URL_EXPIRED`: a signed upload URL past its expiry.
    #[error("the upload URL expired at {expired_at} (now {now})")]
    UrlExpired { expired_at: i64, now: i64 },
    /// 404 `NOT_FOUND`: no file, or one the caller may not read.
    #[error("no file {0}")]
    NotFound(String),
    /// 400 `BAD_REQUEST`: a body or query that does not fit the route.
    #[error("{0}")]
    BadRequest(String),
    /// 400 `BAD_PART_NUMBER`: a multipart upload's part outside `1..=parts`.
    #[error("part {part:?} is not a part of this upload (1 to {parts})")]
    BadPartNumber { part: String, parts: u16 },
    /// 400 `BAD_PART_SIZE`: a part whose `Content-Length` is not its size
    /// (`partBytes`, or the remainder for the last).
    #[error("part {part} is {want} bytes, not {size}")]
    BadPartSize { part: u16, size: u64, want: u64 },
    /// 400 `MISSING_PARTS`: a completion that does not list every part
    /// exactly once, with its etag.
    #[error("{0}")]
    MissingParts(String),
    /// 404 `UPLOAD_NOT_FOUND`: R2 has no such multipart upload (aborted,
    /// completed, or never made).
    #[error("no multipart upload {0} (aborted, completed, or never made)")]
    UploadNotFound(String),
    /// 503 `FILES_NOT_CONFIGURED`: no `files` section in the manifest, or
    /// no `PYLON_FILES_SECRET` for signed URLs.
    #[error("{0}")]
    NotConfigured(String),
}

impl FileError {
    pub fn code(&self) -> &'static str {
        match self {
            FileError::BadId(_) => "BAD_FILE_ID",
            FileError::LengthRequired => "LENGTH_REQUIRED",
            FileError::TooLarge { .. } => "FILE_TOO_LARGE",
            FileError::UnsupportedType(_) => "UNSUPPORTED_TYPE",
            FileError::RangeNotSatisfiable { .. } => "RANGE_NOT_SATISFIABLE",
            FileError::BadSignature(_) => "BAD_SIGNATURE",
            FileError::UrlExpired { .. } => "URL_EXPIRED",
            FileError::NotFound(_) => "NOT_FOUND",
            FileError::BadRequest(_) => "BAD_REQUEST",
            FileError::NotConfigured(_) => "FILES_NOT_CONFIGURED",
            FileError::BadPartNumber { .. } => "BAD_PART_NUMBER",
            FileError::BadPartSize { .. } => "BAD_PART_SIZE",
            FileError::MissingParts(_) => "MISSING_PARTS",
            FileError::UploadNotFound(_) => "UPLOAD_NOT_FOUND",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            FileError::LengthRequired => 411,
            FileError::TooLarge { .. } => 413,
            FileError::UnsupportedType(_) => 415,
            FileError::RangeNotSatisfiable { .. } => 416,
            FileError::BadSignature(_) | FileError::UrlExpired { .. } => 403,
            FileError::NotFound(_) | FileError::UploadNotFound(_) => 404,
            FileError::NotConfigured(_) => 503,
            FileError::BadId(_)
            | FileError::BadRequest(_)
            | FileError::BadPartNumber { .. }
            | FileError::BadPartSize { .. }
            | FileError::MissingParts(_) => 400,
        }
    }
}

impl From<FileError> for ApiError {
    fn from(e: FileError) -> ApiError {
        ApiError::new(e.status(), e.code(), e.to_string())
    }
}
