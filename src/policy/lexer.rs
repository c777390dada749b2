//! Tokens of a policy expression.
//!
//! ```
//! use pylon_workers::policy::Expr;
//! assert!("auth.userId == 'u1'".parse::<Expr>().is_ok());
//! ```

use super::error::{ParseError, ParseErrorKind};

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok<'s> {
    Ident(&'s str),
    Str(String),
    Int(i64),
    Float(f64),
    Dot,
    Comma,
    LParen,
    RParen,
    EqEq,
    NotEq,
    AndAnd,
    OrOr,
    Bang,
    Eof,
}

impl Tok<'_> {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("`{s}`"),
            Tok::Str(_) => "a string".into(),
            Tok::Int(_) | Tok::Float(_) => "a number".into(),
            Tok::Dot => "`.`".into(),
            Tok::Comma => "`,`".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::EqEq => "`==`".into(),
            Tok::NotEq => "`!=`".into(),
            Tok::AndAnd => "`&&`".into(),
            Tok::OrOr => "`||`".into(),
            Tok::Bang => "`!`".into(),
            Tok::Eof => "the end of the expression".into(),
        }
    }
}

/// A token and the byte offset where it starts.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Token<'s> {
    pub tok: Tok<'s>,
    pub at: usize,
}

/// Splits `src` into tokens, ending with [`Tok::Eof`].
pub(crate) fn tokenize(src: &str) -> Result<Vec<Token<'_>>, ParseError> {
    let b = src.as_bytes();
    let err = |at: usize, kind| Err(ParseError::new(src, at, kind));
    let mut out: Vec<Token<'_>> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let after_dot = matches!(out.last(), Some(Token { tok: Tok::Dot, .. }));
        let tok = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'.' => {
                i += 1;
                Tok::Dot
            }
            b',' => {
                i += 1;
                Tok::Comma
            }
            b'(' => {
                i += 1;
                Tok::LParen
            }
            b')' => {
                i += 1;
                Tok::RParen
            }
            b'=' if b.get(i + 1) == Some(&b'=') => {
                i += 2;
                Tok::EqEq
            }
            b'!' if b.get(i + 1) == Some(&b'=') => {
                i += 2;
                Tok::NotEq
            }
            b'!' => {
                i += 1;
                Tok::Bang
            }
            b'&' if b.get(i + 1) == Some(&b'&') => {
                i += 2;
                Tok::AndAnd
            }
            b'|' if b.get(i + 1) == Some(&b'|') => {
                i += 2;
                Tok::OrOr
            }
            b'"' | b'\'' => {
                let (s, end) = string(src, i)?;
                i = end;
                Tok::Str(s)
            }
            // After a dot, digits are a path segment (`data.tags.0`), never a fraction.
            b'0'..=b'9' if after_dot => {
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                match src[start..i].parse() {
                    Ok(n) => Tok::Int(n),
                    Err(_) => {
                        return err(start, ParseErrorKind::BadNumber(src[start..i].to_owned()))
                    }
                }
            }
            b'0'..=b'9' | b'-' => {
                let (t, end) = number(src, i)?;
                i = end;
                t
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                Tok::Ident(&src[start..i])
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return err(i, ParseErrorKind::UnexpectedChar(ch));
            }
        };
        out.push(Token { tok, at: start });
    }
    out.push(Token {
        tok: Tok::Eof,
        at: src.len(),
    });
    Ok(out)
}

/// A quoted string starting at `start`; returns it unescaped and the offset after it.
fn string(src: &str, start: usize) -> Result<(String, usize), ParseError> {
    let quote = src.as_bytes()[start] as char;
    let mut out = String::new();
    let mut chars = src[start + 1..].char_indices();
    let abs = |rel: usize| start + 1 + rel;
    while let Some((rel, c)) = chars.next() {
        match c {
            c if c == quote => return Ok((out, abs(rel) + 1)),
            '\\' => {
                let bad = || ParseError::new(src, abs(rel), ParseErrorKind::BadEscape);
                let (_, e) = chars.next().ok_or_else(bad)?;
                out.push(match e {
                    '"' => '"',
                    '\'' => '\'',
                    '\\' => '\\',
                    '/' => '/',
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    'u' => {
                        let mut code = 0u32;
                        for _ in 0..4 {
                            let d = chars
                                .next()
                                .and_then(|(_, h)| h.to_digit(16))
                                .ok_or_else(bad)?;
                            code = code * 16 + d;
                        }
                        char::from_u32(code).ok_or_else(bad)?
                    }
                    _ => return Err(bad()),
                });
            }
            c => out.push(c),
        }
    }
    Err(ParseError::new(
        src,
        start,
        ParseErrorKind::UnterminatedString,
    ))
}

/// `-?digits(.digits)?([eE][+-]?digits)?` starting at `start`.
fn number(src: &str, start: usize) -> Result<(Tok<'static>, usize), ParseError> {
    let b = src.as_bytes();
    let mut i = start;
    let digits = |mut i: usize| {
        let from = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        (i, i > from)
    };
    if b[i] == b'-' {
        i += 1;
    }
    let (mut end, any) = digits(i);
    let mut float = false;
    if any && b.get(end) == Some(&b'.') {
        let (e, frac) = digits(end + 1);
        if frac {
            end = e;
            float = true;
        }
    }
    if any && matches!(b.get(end), Some(b'e' | b'E')) {
        let mut j = end + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let (e, exp) = digits(j);
        if exp {
            end = e;
            float = true;
        }
    }
    // A number may not run into a name: `1abc` is an error, not `1` then `abc`.
    let glued = b
        .get(end)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_');
    let text = &src[start..end];
    let bad = || {
        ParseError::new(
            src,
            start,
            ParseErrorKind::BadNumber(src[start..end.max(start + 1)].to_owned()),
        )
    };
    if !any || glued {
        return Err(bad());
    }
    let tok = if float {
        Tok::Float(
            text.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .ok_or_else(bad)?,
        )
    } else {
        Tok::Int(text.parse::<i64>().map_err(|_| bad())?)
    };
    Ok((tok, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok<'_>> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn operators_and_names() {
        assert_eq!(
            toks("!a.b_1 == x && (y || z) != w,"),
            vec![
                Tok::Bang,
                Tok::Ident("a"),
                Tok::Dot,
                Tok::Ident("b_1"),
                Tok::EqEq,
                Tok::Ident("x"),
                Tok::AndAnd,
                Tok::LParen,
                Tok::Ident("y"),
                Tok::OrOr,
                Tok::Ident("z"),
                Tok::RParen,
                Tok::NotEq,
                Tok::Ident("w"),
                Tok::Comma,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn strings_with_escapes() {
        assert_eq!(
            toks(r#""a\"b\n""#),
            vec![Tok::Str("a\"b\n".into()), Tok::Eof]
        );
        assert_eq!(
            toks(r"'it\'s \u00e9'"),
            vec![Tok::Str("it's é".into()), Tok::Eof]
        );
        assert_eq!(
            toks(r#"'say "hi"'"#),
            vec![Tok::Str("say \"hi\"".into()), Tok::Eof]
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(
            toks("12 -3 1.5 2e3"),
            vec![
                Tok::Int(12),
                Tok::Int(-3),
                Tok::Float(1.5),
                Tok::Float(2000.0),
                Tok::Eof
            ]
        );
        assert_eq!(
            toks("a.0.1"),
            vec![
                Tok::Ident("a"),
                Tok::Dot,
                Tok::Int(0),
                Tok::Dot,
                Tok::Int(1),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn errors_have_positions() {
        let e = tokenize("a = b").unwrap_err();
        assert_eq!((e.column, e.kind.code()), (3, "UNEXPECTED_CHAR"));
        let e = tokenize("x == 'abc").unwrap_err();
        assert_eq!((e.column, e.kind.code()), (6, "UNTERMINATED_STRING"));
        let e = tokenize(r"'\q'").unwrap_err();
        assert_eq!((e.column, e.kind.code()), (2, "BAD_ESCAPE"));
        let e = tokenize("1 == 99999999999999999999").unwrap_err();
        assert_eq!((e.column, e.kind.code()), (6, "BAD_NUMBER"));
        assert_eq!(tokenize("- 1").unwrap_err().kind.code(), "BAD_NUMBER");
        assert_eq!(tokenize("1x").unwrap_err().kind.code(), "BAD_NUMBER");
        // Columns count characters, not bytes.
        let e = tokenize("'é' # 1").unwrap_err();
        assert_eq!(e.column, 5);
    }
}
