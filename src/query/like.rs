//! SQLite's `LIKE` (no `ESCAPE`, `case_sensitive_like` off), in memory.
//!
//! ```
//! use pylon_workers::query::like;
//! assert!(like("a%_c", "ABxC"));
//! assert!(!like("é", "É")); // case folding is ASCII only
//! ```
//!
//! `%` matches any sequence of characters, `_` exactly one character (not
//! byte); other characters match themselves, ASCII letters case-insensitively.
//! As in SQLite, text and pattern end at a NUL character.

/// Whether `text` matches the LIKE `pattern`.
pub fn like(pattern: &str, text: &str) -> bool {
    let cut = |s: &str| {
        s.split('\0')
            .next()
            .unwrap_or("")
            .chars()
            .collect::<Vec<char>>()
    };
    let (p, t) = (cut(pattern), cut(text));
    let same = |a: char, b: char| a == b || (a.is_ascii() && a.eq_ignore_ascii_case(&b));
    let (mut pi, mut ti) = (0, 0);
    // Where to resume after the last `%`: (pattern index after it, text index).
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '%' {
            pi += 1;
            star = Some((pi, ti));
        } else if pi < p.len() && (p[pi] == '_' || same(p[pi], t[ti])) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '%')
}

#[cfg(test)]
mod tests {
    use super::like;

    #[test]
    fn cases() {
        assert!(like("", ""));
        assert!(!like("", "a"));
        assert!(like("%", ""));
        assert!(like("a%", "abc"));
        assert!(like("%b%", "abc"));
        assert!(!like("_", ""));
        assert!(like("_", "é"));
        assert!(like("%a_", "xxaay"));
        assert!(like("ABC", "abc"));
        assert!(!like("a", "ä"));
        assert!(like("a%", "a\0zzz"));
        assert!(like("a", "a\0b"));
    }
}
