//! Deciding a download from the file row and the request's conditional
//! headers: `304` when `If-None-Match` holds the file's `ETag`, `206` for
//! one satisfiable range, `416` for one outside the file, else `200`; and
//! the headers each answer carries.

use super::key::etag_of;
use super::range::{parse_range, ByteRange};
use super::FileError;

/// Files are private to whoever the policies let read them, and a file id
/// may be uploaded again (a new object key, a new ETag): caches may keep
/// a copy for the caller but must ask again before each use, which costs
/// a 304 when nothing changed.
pub const CACHE_CONTROL: &str = "private, no-cache";

/// The parts of a file row a download needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFile {
    pub key: String,
    pub size: u64,
    pub content_type: String,
}

impl StoredFile {
    /// From a file row as the shard answers it (JSON).
    pub fn from_row(row: &serde_json::Value) -> Option<StoredFile> {
        Some(StoredFile {
            key: row["key"].as_str()?.to_owned(),
            size: row["size"].as_u64()?,
            content_type: row["type"].as_str()?.to_owned(),
        })
    }
}

/// The answer to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Download {
    pub status: u16,
    /// The bytes to read from R2: `None` for none (304) or all (200).
    pub range: Option<ByteRange>,
    /// Whether the answer has a body.
    pub body: bool,
    pub headers: Vec<(&'static str, String)>,
}

/// Whether an `If-None-Match` value lists `etag` (weak comparison).
pub fn none_match_hits(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(|t| t.trim())
        .any(|t| t == "*" || t.trim_start_matches("W/") == etag)
}

pub fn plan_download(
    file: &StoredFile,
    if_none_match: Option<&str>,
    range: Option<&str>,
) -> Result<Download, FileError> {
    let etag = etag_of(&file.key);
    let mut headers = vec![
        ("ETag", etag.clone()),
        ("Cache-Control", CACHE_CONTROL.to_owned()),
        ("Accept-Ranges", "bytes".to_owned()),
    ];
    if if_none_match.is_some_and(|h| none_match_hits(h, &etag)) {
        return Ok(Download {
            status: 304,
            range: None,
            body: false,
            headers,
        });
    }
    headers.push(("Content-Type", file.content_type.clone()));
    match parse_range(range, file.size)? {
        Some(r) => {
            headers.push(("Content-Range", r.content_range(file.size)));
            headers.push(("Content-Length", r.len().to_string()));
            Ok(Download {
                status: 206,
                range: Some(r),
                body: true,
                headers,
            })
        }
        None => {
            headers.push(("Content-Length", file.size.to_string()));
            Ok(Download {
                status: 200,
                range: None,
                body: true,
                headers,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn file() -> StoredFile {
        StoredFile::from_row(&json!({"key": "b/f/abc", "size": 10, "type": "text/plain"})).unwrap()
    }

    fn header<'a>(d: &'a Download, name: &str) -> Option<&'a str> {
        d.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn whole_partial_and_not_modified() {
        let d = plan_download(&file(), None, None).unwrap();
        assert_eq!((d.status, d.range, d.body), (200, None, true));
        assert_eq!(header(&d, "ETag"), Some("\"abc\""));
        assert_eq!(header(&d, "Content-Length"), Some("10"));
        assert_eq!(header(&d, "Cache-Control"), Some(CACHE_CONTROL));
        let d = plan_download(&file(), Some("\"old\""), Some("bytes=2-4")).unwrap();
        assert_eq!((d.status, d.range), (206, Some(ByteRange { start: 2, end: 4 })));
        assert_eq!(header(&d, "Content-Range"), Some("bytes 2-4/10"));
        assert_eq!(header(&d, "Content-Length"), Some("3"));
        for inm in ["\"abc\"", "W/\"abc\"", "\"x\", \"abc\"", "*"] {
            let d = plan_download(&file(), Some(inm), Some("bytes=0-1")).unwrap();
            assert_eq!((d.status, d.body), (304, false), "{inm}");
            assert_eq!(header(&d, "Content-Type"), None);
        }
        let e = plan_download(&file(), None, Some("bytes=10-")).unwrap_err();
        assert_eq!(e.status(), 416);
    }

    #[test]
    fn rows_without_the_fields() {
        assert_eq!(StoredFile::from_row(&json!({"key": "k", "size": -1, "type": "t"})), None);
        assert_eq!(StoredFile::from_row(&json!({"size": 1, "type": "t"})), None);
    }
}
