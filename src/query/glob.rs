//! SQLite's `GLOB`, in memory.
//!
//! ```
//! use pylon_workers::query::glob;
//! assert!(glob("team:?*", "team:acme"));
//! assert!(!glob("team:?*", "team:"));
//! assert!(!glob("Team:*", "team:acme")); // case matters
//! assert!(glob("[a-c]x[^0-9]", "bxy"));
//! ```
//!
//! `*` matches any sequence of characters, `?` exactly one character (not
//! byte), `[...]` one character of a set (`^` first negates it, `a-z` is a
//! range, a `]` first is literal); everything else matches itself,
//! case-sensitively. A `[` without its `]` matches nothing. As in SQLite,
//! text and pattern end at a NUL character.

/// Whether `text` matches the GLOB `pattern`.
pub fn glob(pattern: &str, text: &str) -> bool {
    let cut = |s: &str| {
        s.split('\0')
            .next()
            .unwrap_or("")
            .chars()
            .collect::<Vec<char>>()
    };
    let (p, t) = (cut(pattern), cut(text));
    let (mut pi, mut ti) = (0, 0);
    // Where to resume after the last `*`: (pattern index after it, text index).
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        let step = match p.get(pi) {
            Some('*') => {
                pi += 1;
                star = Some((pi, ti));
                continue;
            }
            Some('?') => Some(1),
            Some('[') => set(&p[pi..], t[ti]),
            Some(c) if *c == t[ti] => Some(1),
            _ => None,
        };
        match step {
            Some(len) => {
                pi += len;
                ti += 1;
            }
            None => match star {
                Some((sp, st)) => {
                    pi = sp;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A `[...]` set at the start of `p` against `c`: the set's length in the
/// pattern when `c` is in it, `None` when it is not (or the set is
/// unclosed). Mirrors SQLite's `patternCompare`: a `-` is a range only
/// between two characters (not after a range, not before the closing `]`).
fn set(p: &[char], c: char) -> Option<usize> {
    let mut i = 1;
    let invert = p.get(i) == Some(&'^');
    if invert {
        i += 1;
    }
    let mut seen = false;
    if p.get(i) == Some(&']') {
        seen = c == ']';
        i += 1;
    }
    let mut prior: Option<char> = None;
    loop {
        let c2 = *p.get(i)?;
        if c2 == ']' {
            return (seen != invert).then_some(i + 1);
        }
        match (c2, prior, p.get(i + 1)) {
            ('-', Some(lo), Some(&hi)) if hi != ']' => {
                seen |= lo <= c && c <= hi;
                prior = None;
                i += 2;
            }
            _ => {
                seen |= c == c2;
                prior = Some(c2);
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn cases() {
        assert!(glob("", ""));
        assert!(!glob("", "a"));
        assert!(glob("*", ""));
        assert!(glob("a*", "abc"));
        assert!(glob("*b*", "abc"));
        assert!(!glob("?", ""));
        assert!(glob("?", "é"));
        assert!(!glob("ABC", "abc"));
        assert!(glob("[]]", "]"));
        assert!(glob("[^]]", "a"));
        assert!(glob("[a-]", "-"));
        assert!(!glob("[a", "a"));
        assert!(glob("a\0b", "a"));
        assert!(glob("[]-a]", "-")); // `-` after a leading `]` is literal
        assert!(!glob("[]-a]", "Z"));
        assert!(glob("[a-c-e]", "-"));
    }
}
