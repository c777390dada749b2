//! Errors of parsing a policy expression, with the position of the problem.
//!
//! ```
//! use pylon_workers::policy::Expr;
//! let e = "auth.userId = 'u'".parse::<Expr>().unwrap_err();
//! assert_eq!((e.column, e.code()), (13, "UNEXPECTED_CHAR"));
//! ```

use std::fmt;

/// What went wrong while parsing a policy expression.
#[derive(Clone, Debug, PartialEq)]
pub enum ParseErrorKind {
    /// A character that starts no token (`=`, `&`, `#`, ...).
    UnexpectedChar(char),
    UnterminatedString,
    /// An escape other than `\" \' \\ \/ \n \t \r \uXXXX`.
    BadEscape,
    /// A malformed number, or one out of range.
    BadNumber(String),
    /// A token where another was expected.
    Unexpected {
        found: String,
        expected: &'static str,
    },
    /// A name that is not `auth`, `data`, `input`, `null`, `true`, `false`.
    UnknownName(String),
    /// `auth.<member>` with an unknown member.
    UnknownAuthMember(String),
    /// `data` or `input` without a path.
    MissingPath(String),
    /// Deeper nesting than [`MAX_DEPTH`](super::MAX_DEPTH).
    TooDeep,
}

impl ParseErrorKind {
    /// A stable code for clients and tests.
    pub fn code(&self) -> &'static str {
        match self {
            ParseErrorKind::UnexpectedChar(_) => "UNEXPECTED_CHAR",
            ParseErrorKind::UnterminatedString => "UNTERMINATED_STRING",
            ParseErrorKind::BadEscape => "BAD_ESCAPE",
            ParseErrorKind::BadNumber(_) => "BAD_NUMBER",
            ParseErrorKind::Unexpected { .. } => "UNEXPECTED_TOKEN",
            ParseErrorKind::UnknownName(_) => "UNKNOWN_NAME",
            ParseErrorKind::UnknownAuthMember(_) => "UNKNOWN_AUTH_MEMBER",
            ParseErrorKind::MissingPath(_) => "MISSING_PATH",
            ParseErrorKind::TooDeep => "TOO_DEEP",
        }
    }
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseErrorKind::UnexpectedChar(c) => write!(f, "unexpected character `{c}`"),
            ParseErrorKind::UnterminatedString => f.write_str("unterminated string"),
            ParseErrorKind::BadEscape => f.write_str("invalid escape in string"),
            ParseErrorKind::BadNumber(s) => write!(f, "invalid number `{s}`"),
            ParseErrorKind::Unexpected { found, expected } => {
                write!(f, "expected {expected}, found {found}")
            }
            ParseErrorKind::UnknownName(n) => write!(
                f,
                "unknown name `{n}` (expected auth, data, input, null, true or false)"
            ),
            ParseErrorKind::UnknownAuthMember(m) => write!(
                f,
                "unknown `auth.{m}` (expected userId, isAdmin, tenantId, hasRole or hasAnyRole)"
            ),
            ParseErrorKind::MissingPath(root) => {
                write!(f, "`{root}` needs a field path, like `{root}.ownerId`")
            }
            ParseErrorKind::TooDeep => {
                write!(f, "expression nested deeper than {}", super::MAX_DEPTH)
            }
        }
    }
}

/// A policy expression that does not parse. `column` is 1-based and counts
/// characters.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{kind} at column {column}")]
pub struct ParseError {
    pub column: usize,
    pub kind: ParseErrorKind,
}

impl ParseError {
    /// An error at byte offset `at` of `src`.
    pub(crate) fn new(src: &str, at: usize, kind: ParseErrorKind) -> Self {
        let at = at.min(src.len());
        let column = src.char_indices().take_while(|(i, _)| *i < at).count() + 1;
        ParseError { column, kind }
    }

    pub fn code(&self) -> &'static str {
        self.kind.code()
    }
}
