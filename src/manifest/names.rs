//! The naming rule for entities, fields, indexes and policies.
//!
//! ```
//! use pylon_workers::manifest::names::{check_name, NameCheck};
//! assert_eq!(check_name("createdAt"), NameCheck::Ok);
//! assert_eq!(check_name("_meta"), NameCheck::Reserved);
//! assert_eq!(check_name("9lives"), NameCheck::Invalid);
//! ```

/// The longest name accepted.
pub const MAX_NAME_LEN: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameCheck {
    Ok,
    /// Starts with `_`: such names belong to the runtime (meta tables, columns).
    Reserved,
    /// Does not match `^[A-Za-z][A-Za-z0-9_]{0,63}$`.
    Invalid,
}

/// Checks `^[A-Za-z][A-Za-z0-9_]{0,63}$`, telling reserved names apart.
pub fn check_name(name: &str) -> NameCheck {
    let b = name.as_bytes();
    let body_ok =
        b.len() <= MAX_NAME_LEN && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
    match b.first() {
        Some(b'_') if body_ok => NameCheck::Reserved,
        Some(c) if c.is_ascii_alphabetic() && body_ok => NameCheck::Ok,
        _ => NameCheck::Invalid,
    }
}

/// Whether SQLite refuses `name` as a table name (`sqlite_` prefix, any case).
pub fn is_sqlite_reserved(name: &str) -> bool {
    name.len() >= 7 && name[..7].eq_ignore_ascii_case("sqlite_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule() {
        assert_eq!(check_name("a"), NameCheck::Ok);
        assert_eq!(check_name(&"a".repeat(64)), NameCheck::Ok);
        assert_eq!(check_name(&"a".repeat(65)), NameCheck::Invalid);
        assert_eq!(check_name(""), NameCheck::Invalid);
        assert_eq!(check_name("a-b"), NameCheck::Invalid);
        assert_eq!(check_name("é"), NameCheck::Invalid);
        assert_eq!(check_name("_"), NameCheck::Reserved);
        assert_eq!(check_name("__x"), NameCheck::Reserved);
        assert!(is_sqlite_reserved("SQLite_master") && !is_sqlite_reserved("sqlitex"));
    }
}
