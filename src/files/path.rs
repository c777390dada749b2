//! The path after `/v1/files/`: `{shard}/{id}` (the file),
//! `{shard}/{id}/upload-url` (a signed upload URL for it), and a
//! multipart upload's: `{shard}/{id}/uploads`,
//! `…/uploads/{uploadId}`, `…/uploads/{uploadId}/parts/{n}`,
//! `…/uploads/{uploadId}/complete`.

use super::key::check_id;
use crate::api_error::ApiError;
use crate::http::percent_decode_path;
use crate::route::validate_shard_name;

/// Longest upload id (R2's, decoded).
pub const MAX_UPLOAD_ID_CHARS: usize = 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tail {
    /// `{shard}/{id}`.
    File,
    /// `…/upload-url`.
    UploadUrl,
    /// `…/uploads`: start a multipart upload.
    Uploads,
    /// `…/uploads/{uploadId}`: abort it.
    Upload(String),
    /// `…/uploads/{uploadId}/parts/{n}` (`n` as written, checked later
    /// against the upload's parts).
    Part(String, String),
    /// `…/uploads/{uploadId}/complete`.
    Complete(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilePath {
    pub shard: String,
    /// Decoded and checked (`check_id`).
    pub id: String,
    pub tail: Tail,
}

/// Parses `rest` (still percent-encoded).
pub fn parse(rest: &str) -> Result<FilePath, ApiError> {
    let parts: Vec<&str> = rest.split('/').collect();
    let no_route = || ApiError::not_found(format!("no route for /v1/files/{rest}"));
    if parts.len() < 2 {
        return Err(ApiError::not_found("a file is /v1/files/{shard}/{id}".to_owned()));
    }
    let upload_id = |raw: &str| -> Result<String, ApiError> {
        let id = percent_decode_path(raw).filter(|u| {
            !u.is_empty() && u.chars().count() <= MAX_UPLOAD_ID_CHARS && !u.chars().any(char::is_control)
        });
        id.ok_or_else(|| ApiError::new(404, "UPLOAD_NOT_FOUND", format!("upload id {raw:?} is not valid")))
    };
    let tail = match parts[2..] {
        [] => Tail::File,
        ["upload-url"] => Tail::UploadUrl,
        ["uploads"] => Tail::Uploads,
        ["uploads", u] => Tail::Upload(upload_id(u)?),
        ["uploads", u, "complete"] => Tail::Complete(upload_id(u)?),
        ["uploads", u, "parts", n] => Tail::Part(upload_id(u)?, n.to_owned()),
        _ => return Err(no_route()),
    };
    validate_shard_name(parts[0])?;
    let id = check_id(parts[1])?;
    Ok(FilePath {
        shard: parts[0].to_owned(),
        id,
        tail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let p = parse("board/f1").unwrap();
        assert_eq!((p.shard.as_str(), p.id.as_str(), p.tail), ("board", "f1", Tail::File));
        assert_eq!(parse("team:a/f%2E1/upload-url").unwrap().tail, Tail::UploadUrl);
        assert_eq!(parse("").unwrap_err().code, "NOT_FOUND");
        assert_eq!(parse("board").unwrap_err().code, "NOT_FOUND");
        assert_eq!(parse("board/f1/x").unwrap_err().code, "NOT_FOUND");
        assert_eq!(parse("board/f1/upload-url/x").unwrap_err().code, "NOT_FOUND");
        assert_eq!(parse("bad%20shard/f1").unwrap_err().code, "BAD_SHARD_NAME");
        assert_eq!(parse("board/..").unwrap_err().code, "BAD_FILE_ID");
        assert_eq!(parse("board/..%2F..%2Fsecret").unwrap_err().code, "BAD_FILE_ID");
    }

    #[test]
    fn multipart_paths() {
        assert_eq!(parse("board/f1/uploads").unwrap().tail, Tail::Uploads);
        assert_eq!(parse("board/f1/uploads/a%2Bb").unwrap().tail, Tail::Upload("a+b".into()));
        assert_eq!(parse("board/f1/uploads/u1/complete").unwrap().tail, Tail::Complete("u1".into()));
        assert_eq!(parse("board/f1/uploads/u1/parts/3").unwrap().tail, Tail::Part("u1".into(), "3".into()));
        assert_eq!(parse("board/f1/uploads/u1/parts").unwrap_err().code, "NOT_FOUND");
        assert_eq!(parse("board/f1/uploads/u1/parts/3/x").unwrap_err().code, "NOT_FOUND");
        assert_eq!(parse("board/f1/uploads/%ZZ").unwrap_err().code, "UPLOAD_NOT_FOUND");
        assert_eq!(parse("board/f1/uploads/").unwrap_err().code, "UPLOAD_NOT_FOUND");
        assert_eq!(parse("board/../uploads").unwrap_err().code, "BAD_FILE_ID");
    }
}
