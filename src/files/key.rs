//! File ids and object keys. A file is named by its shard and an id the
//! client picks (like a row's id); its R2 object's key adds a random
//! part per upload, `{shard}/{id}/{nonce}`, so a new upload never
//! overwrites the bytes a committed row points at, and an object is only
//! reachable once a row names its key.

use super::FileError;
use crate::http::percent_decode_path;

/// Longest file id.
pub const MAX_ID_CHARS: usize = 128;

/// A file id from the path (still percent-encoded): 1 to 128 characters
/// of `A-Z a-z 0-9 . _ -`, not `.` or `..`. No `/` and no `\`, so an id
/// cannot climb out of its shard's prefix.
pub fn check_id(raw: &str) -> Result<String, FileError> {
    let id = percent_decode_path(raw)
        .ok_or_else(|| FileError::BadId(format!("file id {raw:?} is not valid percent-encoding")))?;
    let shown: String = id.chars().take(40).collect();
    if id == "." || id == ".." {
        return Err(FileError::BadId(format!("file id {shown:?} would leave its folder")));
    }
    let ok = !id.is_empty()
        && id.chars().count() <= MAX_ID_CHARS
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(id)
    } else {
        Err(FileError::BadId(format!(
            "file id {shown:?} is invalid: use 1 to {MAX_ID_CHARS} characters of A-Z a-z 0-9 . _ -"
        )))
    }
}

/// The object key of one upload of file `id` in `shard`; `nonce` is
/// random per upload (hex).
pub fn object_key(shard: &str, id: &str, nonce: &str) -> String {
    format!("{shard}/{id}/{nonce}")
}

/// The `ETag` of a stored file: its object key's random part. The bytes
/// under a key never change (a new upload gets a new key), so the key
/// names the content.
pub fn etag_of(object_key: &str) -> String {
    let nonce = object_key.rsplit('/').next().unwrap_or(object_key);
    format!("\"{nonce}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(check_id("report-2026.pdf").unwrap(), "report-2026.pdf");
        assert_eq!(check_id("a%2Eb").unwrap(), "a.b");
        for bad in [
            "", ".", "..", "%2E%2E", "..%2F..%2Fetc", "a/b", "a%2Fb", "a%5Cb", "a b", "é",
            "%ZZ", "a\u{0}",
        ] {
            let e = check_id(bad).unwrap_err();
            assert_eq!(e.code(), "BAD_FILE_ID", "{bad:?}");
        }
        assert!(check_id(&"x".repeat(128)).is_ok());
        assert!(check_id(&"x".repeat(129)).is_err());
    }

    #[test]
    fn keys_and_etags() {
        let k = object_key("board", "f1", "00ff");
        assert_eq!(k, "board/f1/00ff");
        assert_eq!(etag_of(&k), "\"00ff\"");
    }
}
