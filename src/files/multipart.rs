//! Multipart uploads, for files larger than one request body through the
//! Worker (100 MB on most plans): the file is cut into parts of
//! `part_bytes` (the last may be shorter), each PUT on its own, and R2
//! joins them when the upload is completed. R2 wants every part but the
//! last at least 5 MiB and all of them the same size, and at most 10,000
//! parts; a part must fit in one request body.
//!
//! ```
//! use pylon_workers::files::multipart::{PartPlan, MIN_PART_BYTES};
//! let p = PartPlan::for_size(12 * 1024 * 1024).unwrap();
//! assert_eq!((p.part_bytes, p.parts), (MIN_PART_BYTES, 3));
//! assert_eq!(p.part_len(3).unwrap(), 2 * 1024 * 1024);
//! assert_eq!(p.check_part(3, 5).unwrap_err().code(), "BAD_PART_SIZE");
//! ```

use super::FileError;

/// R2's smallest part (all but the last).
pub const MIN_PART_BYTES: u64 = 5 * 1024 * 1024;
/// The largest part: under the 100 MB (decimal) request-body limit.
pub const MAX_PART_BYTES: u64 = 95 * 1024 * 1024;
/// R2's most parts per upload.
pub const MAX_PARTS: u64 = 10_000;
/// The largest file a multipart upload takes: 10,000 parts of 95 MiB.
pub const MAX_MULTIPART_BYTES: u64 = MAX_PARTS * MAX_PART_BYTES;

/// How a file of `size` bytes is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartPlan {
    pub size: u64,
    /// Every part's size but the last's.
    pub part_bytes: u64,
    /// How many parts, numbered 1 to `parts`.
    pub parts: u16,
}

impl PartPlan {
    /// Parts of 5 MiB, or larger (whole MiB) when 10,000 of 5 MiB would
    /// not hold `size`.
    pub fn for_size(size: u64) -> Result<PartPlan, FileError> {
        if size == 0 {
            return Err(FileError::BadRequest("a multipart upload is at least 1 byte".into()));
        }
        if size > MAX_MULTIPART_BYTES {
            return Err(FileError::TooLarge { size, limit: MAX_MULTIPART_BYTES });
        }
        const MIB: u64 = 1024 * 1024;
        let least = size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
        let part_bytes = least.max(MIN_PART_BYTES);
        let parts = size.div_ceil(part_bytes);
        Ok(PartPlan { size, part_bytes, parts: parts as u16 })
    }

    /// The size of part `n` (1-based): `part_bytes`, or what is left for
    /// the last.
    pub fn part_len(&self, n: u16) -> Result<u64, FileError> {
        if n == 0 || n > self.parts {
            return Err(FileError::BadPartNumber { part: n.to_string(), parts: self.parts });
        }
        Ok(if n == self.parts {
            self.size - self.part_bytes * (u64::from(self.parts) - 1)
        } else {
            self.part_bytes
        })
    }

    /// Checks part `n`'s declared length.
    pub fn check_part(&self, n: u16, length: u64) -> Result<(), FileError> {
        let want = self.part_len(n)?;
        if length != want {
            return Err(FileError::BadPartSize { part: n, size: length, want });
        }
        Ok(())
    }

    /// The parts a completion lists, in order, if they are each of
    /// `1..=parts` exactly once.
    pub fn check_complete(&self, listed: &[(u16, String)]) -> Result<Vec<(u16, String)>, FileError> {
        let mut sorted = listed.to_vec();
        sorted.sort_by_key(|(n, _)| *n);
        for (i, (n, etag)) in sorted.iter().enumerate() {
            self.part_len(*n)?;
            if i > 0 && sorted[i - 1].0 == *n {
                return Err(FileError::MissingParts(format!("part {n} is listed twice")));
            }
            if etag.is_empty() {
                return Err(FileError::MissingParts(format!("part {n} has no etag")));
            }
        }
        let missing: Vec<String> = (1..=self.parts)
            .filter(|n| !sorted.iter().any(|(m, _)| m == n))
            .take(10)
            .map(|n| n.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(FileError::MissingParts(format!(
                "the upload has {} parts; missing: {}",
                self.parts,
                missing.join(", ")
            )));
        }
        Ok(sorted)
    }
}

/// A part number from the path: 1 to `parts`.
pub fn parse_part(raw: &str, parts: u16) -> Result<u16, FileError> {
    match raw.parse::<u16>() {
        Ok(n) if (1..=parts).contains(&n) && !raw.starts_with('0') => Ok(n),
        _ => Err(FileError::BadPartNumber { part: raw.chars().take(20).collect(), parts }),
    }
}

/// A completion's body: `[{"part": n, "etag": "…"}, …]` (or that list
/// under `"parts"`).
pub fn parse_complete(body: &serde_json::Value) -> Result<Vec<(u16, String)>, FileError> {
    let list = body.as_array().or_else(|| body["parts"].as_array());
    let bad = || FileError::BadRequest("the body is [{\"part\": n, \"etag\": \"…\"}, …]".into());
    let list = list.ok_or_else(bad)?;
    list.iter()
        .map(|p| {
            let n = p["part"].as_u64().and_then(|n| u16::try_from(n).ok());
            let etag = p["etag"].as_str();
            match (n, etag) {
                (Some(n), Some(e)) => Ok((n, e.to_owned())),
                _ => Err(bad()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn part_math() {
        let p = PartPlan::for_size(12 * MIB).unwrap();
        assert_eq!((p.part_bytes, p.parts), (5 * MIB, 3));
        assert_eq!([p.part_len(1).unwrap(), p.part_len(2).unwrap(), p.part_len(3).unwrap()], [5 * MIB, 5 * MIB, 2 * MIB]);
        // Exactly two parts: the last is whole.
        let p = PartPlan::for_size(10 * MIB).unwrap();
        assert_eq!((p.parts, p.part_len(2).unwrap()), (2, 5 * MIB));
        // Small: one part, the whole file.
        let p = PartPlan::for_size(1).unwrap();
        assert_eq!((p.parts, p.part_len(1).unwrap()), (1, 1));
        // 10,000 parts of 5 MiB and one byte more: parts of 6 MiB.
        let p = PartPlan::for_size(MAX_PARTS * 5 * MIB + 1).unwrap();
        assert_eq!(p.part_bytes, 6 * MIB);
        assert!(u64::from(p.parts) <= MAX_PARTS);
        // The largest: 10,000 parts of 95 MiB, the last whole.
        let p = PartPlan::for_size(MAX_MULTIPART_BYTES).unwrap();
        assert_eq!((p.part_bytes, p.parts, p.part_len(10_000).unwrap()), (MAX_PART_BYTES, 10_000, MAX_PART_BYTES));
        assert_eq!(PartPlan::for_size(MAX_MULTIPART_BYTES + 1).unwrap_err().code(), "FILE_TOO_LARGE");
        assert_eq!(PartPlan::for_size(0).unwrap_err().code(), "BAD_REQUEST");
        // Every size in a sweep: parts add up, all but the last equal and
        // at least 5 MiB, the last at most the others.
        for size in [1, 5 * MIB - 1, 5 * MIB, 5 * MIB + 1, 123_456_789, 99 * 1000 * MIB + 7] {
            let p = PartPlan::for_size(size).unwrap();
            let lens: Vec<u64> = (1..=p.parts).map(|n| p.part_len(n).unwrap()).collect();
            assert_eq!(lens.iter().sum::<u64>(), size, "{size}");
            let last = *lens.last().unwrap();
            assert!(last >= 1 && last <= p.part_bytes && p.part_bytes >= MIN_PART_BYTES && p.part_bytes <= MAX_PART_BYTES);
        }
    }

    #[test]
    fn parts_refused() {
        let p = PartPlan::for_size(12 * MIB).unwrap();
        assert!(p.check_part(1, 5 * MIB).is_ok());
        assert!(p.check_part(3, 2 * MIB).is_ok());
        let e = p.check_part(1, 5 * MIB - 1).unwrap_err();
        assert_eq!((e.code(), e.status()), ("BAD_PART_SIZE", 400));
        assert_eq!(p.check_part(3, 5 * MIB).unwrap_err().code(), "BAD_PART_SIZE");
        assert_eq!(p.check_part(4, 1).unwrap_err().code(), "BAD_PART_NUMBER");
        assert_eq!(p.check_part(0, 1).unwrap_err().code(), "BAD_PART_NUMBER");
        assert_eq!(parse_part("2", 3).unwrap(), 2);
        for bad in ["0", "4", "-1", "02", "x", "", "70000"] {
            assert_eq!(parse_part(bad, 3).unwrap_err().code(), "BAD_PART_NUMBER", "{bad:?}");
        }
    }

    #[test]
    fn completions() {
        let p = PartPlan::for_size(12 * MIB).unwrap();
        let body = json!([{"part": 3, "etag": "c"}, {"part": 1, "etag": "a"}, {"part": 2, "etag": "b"}]);
        let listed = parse_complete(&body).unwrap();
        assert_eq!(
            p.check_complete(&listed).unwrap(),
            vec![(1, "a".to_owned()), (2, "b".to_owned()), (3, "c".to_owned())]
        );
        assert_eq!(parse_complete(&json!({"parts": [{"part": 1, "etag": "a"}]})).unwrap().len(), 1);
        let code = |v: serde_json::Value| p.check_complete(&parse_complete(&v).unwrap()).unwrap_err().code();
        assert_eq!(code(json!([{"part": 1, "etag": "a"}, {"part": 3, "etag": "c"}])), "MISSING_PARTS");
        assert_eq!(code(json!([])), "MISSING_PARTS");
        assert_eq!(
            code(json!([{"part": 1, "etag": "a"}, {"part": 1, "etag": "a"}, {"part": 2, "etag": "b"}, {"part": 3, "etag": "c"}])),
            "MISSING_PARTS"
        );
        assert_eq!(code(json!([{"part": 1, "etag": "a"}, {"part": 2, "etag": ""}, {"part": 3, "etag": "c"}])), "MISSING_PARTS");
        assert_eq!(code(json!([{"part": 4, "etag": "a"}])), "BAD_PART_NUMBER");
        assert_eq!(p.check_complete(&[]).unwrap_err().status(), 400);
        for bad in [json!({}), json!([{"part": "1", "etag": "a"}]), json!([{"part": 1}]), json!([{"part": 70000, "etag": "a"}])] {
            assert_eq!(parse_complete(&bad).unwrap_err().code(), "BAD_REQUEST", "{bad}");
        }
    }
}
