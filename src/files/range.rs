//! `Range: bytes=…` (RFC 9110 §14) against a file of known size: one
//! range is served as 206; a header that does not parse, or asks for
//! several ranges, is ignored (the whole file, 200, as the RFC allows);
//! a range wholly outside the file is 416.

use super::FileError;

/// The bytes to send: `start..=end` of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    /// `Content-Range` of this range in a file of `size` bytes.
    pub fn content_range(&self, size: u64) -> String {
        format!("bytes {}-{}/{size}", self.start, self.end)
    }
}

/// The range `header` asks for in a file of `size` bytes: `Ok(None)` for
/// the whole file.
pub fn parse_range(header: Option<&str>, size: u64) -> Result<Option<ByteRange>, FileError> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let unsatisfiable = || FileError::RangeNotSatisfiable {
        range: spec.to_owned(),
        size,
    };
    match (first.trim(), last.trim()) {
        // bytes=-n: the last n bytes.
        ("", n) => match num(n) {
            None => Ok(None),
            Some(0) => Err(unsatisfiable()),
            Some(_) if size == 0 => Err(unsatisfiable()),
            Some(n) => Ok(Some(ByteRange {
                start: size.saturating_sub(n),
                end: size - 1,
            })),
        },
        (a, b) => {
            let Some(start) = num(a) else { return Ok(None) };
            let end = if b.is_empty() {
                u64::MAX
            } else {
                match num(b) {
                    Some(e) if e >= start => e,
                    _ => return Ok(None),
                }
            };
            if start >= size {
                return Err(unsatisfiable());
            }
            Ok(Some(ByteRange {
                start,
                end: end.min(size - 1),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(h: &str, size: u64) -> Result<Option<(u64, u64)>, &'static str> {
        parse_range(Some(h), size)
            .map(|o| o.map(|r| (r.start, r.end)))
            .map_err(|e| e.code())
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), Ok(None));
        assert_eq!(r("bytes=0-3", 10), Ok(Some((0, 3))));
        assert_eq!(r("bytes=4-", 10), Ok(Some((4, 9))));
        assert_eq!(r("bytes=5-100", 10), Ok(Some((5, 9))));
        assert_eq!(r("bytes=-3", 10), Ok(Some((7, 9))));
        assert_eq!(r("bytes=-30", 10), Ok(Some((0, 9))));
        assert_eq!(r("bytes=9-9", 10), Ok(Some((9, 9))));
        let one = parse_range(Some("bytes=2-5"), 10).unwrap().unwrap();
        assert_eq!((one.len(), one.content_range(10)), (4, "bytes 2-5/10".to_owned()));
    }

    #[test]
    fn unsatisfiable_and_ignored() {
        assert_eq!(r("bytes=10-", 10), Err("RANGE_NOT_SATISFIABLE"));
        assert_eq!(r("bytes=10-20", 10), Err("RANGE_NOT_SATISFIABLE"));
        assert_eq!(r("bytes=-0", 10), Err("RANGE_NOT_SATISFIABLE"));
        assert_eq!(r("bytes=0-", 0), Err("RANGE_NOT_SATISFIABLE"));
        // Ignored: the whole file.
        for h in ["items=0-1", "bytes=0-1,4-5", "bytes=5-2", "bytes=a-b", "bytes=", "bytes=-", "bytes=+1-2"] {
            assert_eq!(r(h, 10), Ok(None), "{h}");
        }
    }
}
