//! What a key, a value and a TTL may be. Checked where a request enters
//! (the router, before any object is asked) and again by the object.

use super::CacheError;

/// A key is 1 to 512 bytes of UTF-8 without control characters.
pub const MAX_KEY_BYTES: usize = 512;
/// A value's JSON text, at most.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// The longest TTL: a year (the shortest is 1 ms).
pub const MAX_TTL_MS: i64 = 365 * 24 * 60 * 60 * 1000;
/// Keys one `DEL` or `EXISTS` may name.
pub const MAX_KEYS_PER_COMMAND: usize = 100;

/// The first characters of a key, for messages.
pub(crate) fn shown(key: &str) -> String {
    let s: String = key.chars().take(40).collect();
    if s.len() < key.len() {
        format!("{s:?}…")
    } else {
        format!("{s:?}")
    }
}

pub fn check_key(key: &str) -> Result<(), CacheError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(CacheError::BadKey(format!(
            "a key is 1 to {MAX_KEY_BYTES} bytes, not {}",
            key.len()
        )));
    }
    if key.chars().any(char::is_control) {
        return Err(CacheError::BadKey(format!(
            "key {} has a control character",
            shown(key)
        )));
    }
    Ok(())
}

/// A TTL in milliseconds: 1 ms to [`MAX_TTL_MS`].
pub fn check_ttl(ttl_ms: i64) -> Result<i64, CacheError> {
    if (1..=MAX_TTL_MS).contains(&ttl_ms) {
        Ok(ttl_ms)
    } else {
        Err(CacheError::BadTtl(format!(
            "a TTL is 1 ms to 365 days ({MAX_TTL_MS} ms), not {ttl_ms} ms"
        )))
    }
}

/// A value's JSON text, refused above [`MAX_VALUE_BYTES`].
pub fn check_value(value: &serde_json::Value) -> Result<String, CacheError> {
    let text = value.to_string();
    if text.len() > MAX_VALUE_BYTES {
        return Err(CacheError::ValueTooLarge { bytes: text.len() });
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(check_key("a").is_ok());
        assert!(check_key("user/1:ä").is_ok());
        assert!(check_key(&"k".repeat(MAX_KEY_BYTES)).is_ok());
        for bad in ["", "a\nb", "\u{7f}", &"k".repeat(MAX_KEY_BYTES + 1)] {
            assert_eq!(check_key(bad).unwrap_err().code(), "BAD_KEY", "{bad:?}");
        }
    }

    #[test]
    fn ttls_and_values() {
        assert!(check_ttl(1).is_ok() && check_ttl(MAX_TTL_MS).is_ok());
        for bad in [0, -5, MAX_TTL_MS + 1] {
            assert_eq!(check_ttl(bad).unwrap_err().code(), "BAD_TTL");
        }
        let big = serde_json::Value::String("x".repeat(MAX_VALUE_BYTES));
        assert_eq!(check_value(&big).unwrap_err().code(), "VALUE_TOO_LARGE");
        let fits = serde_json::Value::String("x".repeat(MAX_VALUE_BYTES - 2));
        assert_eq!(check_value(&fits).unwrap().len(), MAX_VALUE_BYTES);
    }
}
