//! Deciding an upload before its body is read: the declared size against
//! the limit, the content type against the allow-list (or both against a
//! signed URL's grant), and the file row it will commit once the object
//! is complete in R2.

use super::config::{essence, FilesConfig, MAX_SINGLE_BYTES};
use super::key::object_key;
use super::signed_url::UploadGrant;
use super::FileError;
use crate::value::{Row, Value};

/// Longest `name` (the file's original name) and `row` (the id of the
/// row it belongs to).
pub const MAX_NAME_CHARS: usize = 255;
pub const MAX_ROW_ID_CHARS: usize = 128;

/// What the request says about the file.
#[derive(Clone, Debug, Default)]
pub struct Declared<'a> {
    /// `Content-Length`.
    pub length: Option<&'a str>,
    /// `Content-Type`.
    pub content_type: Option<&'a str>,
    /// `?name=`: the file's own name, kept in the row.
    pub name: Option<String>,
    /// `?row=`: the id of the row the file belongs to.
    pub row: Option<String>,
}

/// An upload, decided: where its bytes go and the row that makes them
/// visible.
#[derive(Clone, Debug, PartialEq)]
pub struct Upload {
    pub object_key: String,
    pub size: u64,
    pub content_type: String,
    /// The file row: `id`, `key`, `size`, `type`, `owner`, `createdAt`
    /// (and `name`, `row` when given).
    pub row: Row,
}

/// Checks `name` and `row` (shared by uploads and signed-URL requests).
pub fn check_meta(name: Option<&str>, row: Option<&str>) -> Result<(), FileError> {
    if let Some(n) = name {
        if n.is_empty() || n.chars().count() > MAX_NAME_CHARS || n.chars().any(char::is_control) {
            return Err(FileError::BadRequest(format!(
                "name: 1 to {MAX_NAME_CHARS} characters, no control characters"
            )));
        }
    }
    if let Some(r) = row {
        if r.is_empty() || r.chars().count() > MAX_ROW_ID_CHARS || r.chars().any(char::is_control) {
            return Err(FileError::BadRequest(format!(
                "row: a row id of 1 to {MAX_ROW_ID_CHARS} characters"
            )));
        }
    }
    Ok(())
}

/// Checks a size and type against the manifest's limits.
pub fn check_size_and_type(config: &FilesConfig, size: u64, content_type: &str) -> Result<(), FileError> {
    if size > config.max_bytes {
        return Err(FileError::TooLarge {
            size,
            limit: config.max_bytes,
        });
    }
    if !config.allows_type(content_type) {
        return Err(FileError::UnsupportedType(essence(content_type)));
    }
    Ok(())
}

/// Decides the upload of file `id` in `shard` by `owner` (a user id, or
/// none) at `now_ms`; `nonce` is the upload's random key part. With a
/// `grant` (a signed URL), its size must be the length and its type the
/// content type; the manifest's limits were checked when it was made.
/// A `single` upload (one request body, not multipart) is at most
/// [`MAX_SINGLE_BYTES`].
#[allow(clippy::too_many_arguments)]
pub fn plan_upload(
    config: &FilesConfig,
    shard: &str,
    id: &str,
    declared: &Declared<'_>,
    grant: Option<&UploadGrant>,
    single: bool,
    owner: Option<&str>,
    now_ms: i64,
    nonce: &str,
) -> Result<Upload, FileError> {
    let size: u64 = match declared.length {
        None => return Err(FileError::LengthRequired),
        Some(l) => l
            .trim()
            .parse()
            .map_err(|_| FileError::BadRequest(format!("Content-Length {l:?} is not a size")))?,
    };
    let content_type = essence(declared.content_type.unwrap_or(""));
    let (name, row) = match grant {
        Some(g) => {
            if size > g.size {
                return Err(FileError::TooLarge { size, limit: g.size });
            }
            if size != g.size {
                return Err(FileError::BadRequest(format!(
                    "the upload URL is for {} bytes, not {size}",
                    g.size
                )));
            }
            if content_type != g.content_type {
                return Err(FileError::UnsupportedType(content_type));
            }
            (g.name.clone(), g.row.clone())
        }
        None => {
            check_size_and_type(config, size, &content_type)?;
            if single && size > MAX_SINGLE_BYTES {
                return Err(FileError::TooLarge { size, limit: MAX_SINGLE_BYTES });
            }
            check_meta(declared.name.as_deref(), declared.row.as_deref())?;
            (declared.name.clone(), declared.row.clone())
        }
    };
    let key = object_key(shard, id, nonce);
    let mut r = Row::new();
    r.insert("id".into(), Value::from(id));
    r.insert("key".into(), Value::from(key.as_str()));
    r.insert("size".into(), Value::Int(size as i64));
    r.insert("type".into(), Value::from(content_type.as_str()));
    r.insert(
        "owner".into(),
        owner.map(Value::from).unwrap_or(Value::Null),
    );
    r.insert(
        "createdAt".into(),
        Value::from(crate::time::rfc3339_from_ms(now_ms).as_str()),
    );
    if let Some(n) = name {
        r.insert("name".into(), Value::from(n.as_str()));
    }
    if let Some(row_id) = row {
        r.insert("row".into(), Value::from(row_id.as_str()));
    }
    Ok(Upload {
        object_key: key,
        size,
        content_type,
        row: r,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::AuthContext;
    use serde_json::json;

    fn config() -> FilesConfig {
        serde_json::from_value(json!({"entity": "F", "types": ["image/*", "text/plain"], "maxBytes": 1000}))
            .unwrap()
    }

    fn plan(len: Option<&str>, ty: Option<&str>, grant: Option<&UploadGrant>) -> Result<Upload, FileError> {
        let d = Declared {
            length: len,
            content_type: ty,
            name: Some("a.png".into()),
            row: Some("card-1".into()),
        };
        plan_upload(&config(), "board", "f1", &d, grant, true, Some("u1"), 0, "ab12")
    }

    #[test]
    fn an_upload() {
        let u = plan(Some("1000"), Some("image/PNG; x=y"), None).unwrap();
        assert_eq!((u.object_key.as_str(), u.size, u.content_type.as_str()), ("board/f1/ab12", 1000, "image/png"));
        let row = serde_json::to_value(&u.row).unwrap();
        assert_eq!(
            row,
            json!({"id": "f1", "key": "board/f1/ab12", "size": 1000, "type": "image/png",
                   "owner": "u1", "createdAt": "1970-01-01T00:00:00.000Z", "name": "a.png", "row": "card-1"})
        );
    }

    #[test]
    fn refusals() {
        let code = |r: Result<Upload, FileError>| r.unwrap_err().code();
        assert_eq!(code(plan(None, Some("image/png"), None)), "LENGTH_REQUIRED");
        assert_eq!(code(plan(Some("1001"), Some("image/png"), None)), "FILE_TOO_LARGE");
        assert_eq!(code(plan(Some("-1"), Some("image/png"), None)), "BAD_REQUEST");
        assert_eq!(code(plan(Some("10"), Some("text/html"), None)), "UNSUPPORTED_TYPE");
        assert_eq!(code(plan(Some("10"), None, None)), "UNSUPPORTED_TYPE");
        assert_eq!(plan(Some("1001"), Some("image/png"), None).unwrap_err().status(), 413);
        let bad_name = Declared { length: Some("1"), content_type: Some("text/plain"), name: Some("a\nb".into()), row: None };
        assert_eq!(
            plan_upload(&config(), "b", "f", &bad_name, None, true, None, 0, "n").unwrap_err().code(),
            "BAD_REQUEST"
        );
    }

    #[test]
    fn with_a_grant() {
        let g = UploadGrant {
            shard: "board".into(),
            id: "f1".into(),
            content_type: "image/png".into(),
            size: 5000,
            expires_at: 10,
            caller: AuthContext::anonymous(),
            name: None,
            row: Some("card-9".into()),
            multipart: None,
        };
        // Beyond the manifest's 1000 bytes: the grant decides.
        let u = plan(Some("5000"), Some("image/png"), Some(&g)).unwrap();
        assert_eq!(u.row.get("row"), Some(&Value::from("card-9")));
        assert!(!u.row.contains_key("name"));
        assert_eq!(plan(Some("5001"), Some("image/png"), Some(&g)).unwrap_err().code(), "FILE_TOO_LARGE");
        assert_eq!(plan(Some("4999"), Some("image/png"), Some(&g)).unwrap_err().code(), "BAD_REQUEST");
        assert_eq!(plan(Some("5000"), Some("image/gif"), Some(&g)).unwrap_err().code(), "UNSUPPORTED_TYPE");
    }

    #[test]
    fn single_and_multipart_sizes() {
        let big: FilesConfig =
            serde_json::from_value(json!({"entity": "F", "types": ["video/*"], "maxBytes": 1_000_000_000u64})).unwrap();
        let d = |len: &'static str| Declared { length: Some(len), content_type: Some("video/mp4"), ..Declared::default() };
        let plan = |len, single| plan_upload(&big, "b", "f", &d(len), None, single, None, 0, "n");
        // Over the Worker's request-body limit: multipart only.
        assert_eq!(plan("100000001", true).unwrap_err().code(), "FILE_TOO_LARGE");
        assert!(plan("100000000", true).is_ok());
        assert_eq!(plan("999999999", false).unwrap().size, 999_999_999);
        assert_eq!(plan("1000000001", false).unwrap_err().code(), "FILE_TOO_LARGE");
    }
}
