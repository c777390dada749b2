//! The path after `/v1/files/`: `{shard}/{id}` (the file) or
//! `{shard}/{id}/upload-url` (a signed upload URL for it).

use super::key::check_id;
use crate::api_error::ApiError;
use crate::route::validate_shard_name;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilePath {
    pub shard: String,
    /// Decoded and checked (`check_id`).
    pub id: String,
    /// `…/upload-url`.
    pub upload_url: bool,
}

/// Parses `rest` (still percent-encoded).
pub fn parse(rest: &str) -> Result<FilePath, ApiError> {
    let mut parts = rest.split('/');
    let (shard, id, tail) = (parts.next(), parts.next(), parts.next());
    let upload_url = match tail {
        None => false,
        Some("upload-url") => true,
        Some(_) => return Err(ApiError::not_found(format!("no route for /v1/files/{rest}"))),
    };
    let (Some(shard), Some(id), None) = (shard, id, parts.next()) else {
        return Err(ApiError::not_found(
            "a file is /v1/files/{shard}/{id}".to_owned(),
        ));
    };
    validate_shard_name(shard)?;
    let id = check_id(id)?;
    Ok(FilePath {
        shard: shard.to_owned(),
        id,
        upload_url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let p = parse("board/f1").unwrap();
        assert_eq!((p.shard.as_str(), p.id.as_str(), p.upload_url), ("board", "f1", false));
        assert!(parse("team:a/f%2E1/upload-url").unwrap().upload_url);
        assert_eq!(parse("").unwrap_err().code, "NOT_FOUND");
        assert_eq!(parse("board").unwrap_err().code, "NOT_FOUND");
        assert_eq!(parse("board/f1/x").unwrap_err().code, "NOT_FOUND");
        assert_eq!(parse("board/f1/upload-url/x").unwrap_err().code, "NOT_FOUND");
        assert_eq!(parse("bad%20shard/f1").unwrap_err().code, "BAD_SHARD_NAME");
        assert_eq!(parse("board/..").unwrap_err().code, "BAD_FILE_ID");
        assert_eq!(parse("board/..%2F..%2Fsecret").unwrap_err().code, "BAD_FILE_ID");
    }
}
