//! A recursive-descent parser for policy expressions.
//!
//! Precedence, tightest first: `!`, then `==` `!=`, then `&&`, then `||`;
//! binary operators associate to the left.
//!
//! ```
//! use pylon_workers::policy::Expr;
//! let e: Expr = "!auth.isAdmin && data.done == false".parse().unwrap();
//! assert!(matches!(e, Expr::And(..)));
//! ```

use super::ast::{Expr, Root};
use super::error::{ParseError, ParseErrorKind};
use super::lexer::{tokenize, Tok, Token};

/// The deepest nesting of parentheses and `!` accepted.
pub const MAX_DEPTH: usize = 64;

impl std::str::FromStr for Expr {
    type Err = ParseError;

    fn from_str(src: &str) -> Result<Expr, ParseError> {
        parse(src)
    }
}

/// Parses a whole policy expression.
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    let toks = tokenize(src)?;
    let mut p = Parser {
        src,
        toks,
        pos: 0,
        depth: 0,
    };
    let e = p.or()?;
    p.expect(
        |t| *t == Tok::Eof,
        "an operator or the end of the expression",
    )?;
    Ok(e)
}

struct Parser<'s> {
    src: &'s str,
    toks: Vec<Token<'s>>,
    pos: usize,
    depth: usize,
}

impl<'s> Parser<'s> {
    fn peek(&self) -> &Tok<'s> {
        &self.toks[self.pos].tok
    }

    fn at(&self) -> usize {
        self.toks[self.pos].at
    }

    fn bump(&mut self) -> Tok<'s> {
        let t = self.toks[self.pos].tok.clone();
        if t != Tok::Eof {
            self.pos += 1;
        }
        t
    }

    fn error(&self, kind: ParseErrorKind) -> ParseError {
        ParseError::new(self.src, self.at(), kind)
    }

    fn unexpected(&self, expected: &'static str) -> ParseError {
        self.error(ParseErrorKind::Unexpected {
            found: self.peek().describe(),
            expected,
        })
    }

    fn expect(
        &mut self,
        ok: impl Fn(&Tok<'s>) -> bool,
        expected: &'static str,
    ) -> Result<Tok<'s>, ParseError> {
        if ok(self.peek()) {
            Ok(self.bump())
        } else {
            Err(self.unexpected(expected))
        }
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.and()?;
        while *self.peek() == Tok::OrOr {
            self.bump();
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.equality()?;
        while *self.peek() == Tok::AndAnd {
            self.bump();
            e = Expr::And(Box::new(e), Box::new(self.equality()?));
        }
        Ok(e)
    }

    fn equality(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.unary()?;
        loop {
            let eq = match self.peek() {
                Tok::EqEq => true,
                Tok::NotEq => false,
                _ => return Ok(e),
            };
            self.bump();
            let rhs = Box::new(self.unary()?);
            e = if eq {
                Expr::Eq(Box::new(e), rhs)
            } else {
                Expr::Ne(Box::new(e), rhs)
            };
        }
    }

    fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, ParseError>,
    ) -> Result<T, ParseError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error(ParseErrorKind::TooDeep));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if *self.peek() == Tok::Bang {
            self.bump();
            return self.nested(|p| Ok(Expr::Not(Box::new(p.unary()?))));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        const OPERAND: &str = "a value (auth.…, data.…, input.…, a literal or `(`)";
        let at = self.at();
        if matches!(self.peek(), Tok::RParen | Tok::Comma | Tok::Dot | Tok::Eof)
            || matches!(
                self.peek(),
                Tok::EqEq | Tok::NotEq | Tok::AndAnd | Tok::OrOr
            )
        {
            return Err(self.unexpected(OPERAND));
        }
        match self.bump() {
            Tok::LParen => {
                let e = self.nested(|p| p.or())?;
                self.expect(|t| *t == Tok::RParen, "`)`")?;
                Ok(e)
            }
            Tok::Str(s) => Ok(Expr::Str(s)),
            Tok::Int(i) => Ok(Expr::Int(i)),
            Tok::Float(f) => Ok(Expr::Float(f)),
            Tok::Ident("null") => Ok(Expr::Null),
            Tok::Ident("true") => Ok(Expr::Bool(true)),
            Tok::Ident("false") => Ok(Expr::Bool(false)),
            Tok::Ident("auth") => self.auth(),
            Tok::Ident("data") => self.path(Root::Data),
            Tok::Ident("input") => self.path(Root::Input),
            Tok::Ident(name) => Err(ParseError::new(
                self.src,
                at,
                ParseErrorKind::UnknownName(name.to_owned()),
            )),
            _ => unreachable!("checked above"),
        }
    }

    fn auth(&mut self) -> Result<Expr, ParseError> {
        self.expect(|t| *t == Tok::Dot, "`.` after `auth`")?;
        let at = self.at();
        let Tok::Ident(member) =
            self.expect(|t| matches!(t, Tok::Ident(_)), "a member of `auth`")?
        else {
            unreachable!()
        };
        match member {
            "userId" => Ok(Expr::AuthUserId),
            "isAdmin" => Ok(Expr::AuthIsAdmin),
            "tenantId" => Ok(Expr::AuthTenantId),
            "hasRole" => {
                let mut roles = self.string_args()?;
                if roles.len() != 1 {
                    return Err(ParseError::new(
                        self.src,
                        at,
                        ParseErrorKind::Unexpected {
                            found: format!("{} arguments", roles.len()),
                            expected: "exactly one role name",
                        },
                    ));
                }
                Ok(Expr::HasRole(roles.remove(0)))
            }
            "hasAnyRole" => Ok(Expr::HasAnyRole(self.string_args()?)),
            other => Err(ParseError::new(
                self.src,
                at,
                ParseErrorKind::UnknownAuthMember(other.to_owned()),
            )),
        }
    }

    /// `( "a", 'b', ... )`: one or more string literals.
    fn string_args(&mut self) -> Result<Vec<String>, ParseError> {
        self.expect(|t| *t == Tok::LParen, "`(`")?;
        let mut out = Vec::new();
        loop {
            match self.expect(|t| matches!(t, Tok::Str(_)), "a role name in quotes")? {
                Tok::Str(s) => out.push(s),
                _ => unreachable!(),
            }
            match self.expect(|t| matches!(t, Tok::Comma | Tok::RParen), "`,` or `)`")? {
                Tok::Comma => continue,
                _ => return Ok(out),
            }
        }
    }

    fn path(&mut self, root: Root) -> Result<Expr, ParseError> {
        if *self.peek() != Tok::Dot {
            return Err(self.error(ParseErrorKind::MissingPath(root.name().to_owned())));
        }
        let mut segs = Vec::new();
        while *self.peek() == Tok::Dot {
            self.bump();
            let seg = self.expect(
                |t| matches!(t, Tok::Ident(_) | Tok::Int(0..)),
                "a field name or list index",
            )?;
            segs.push(match seg {
                Tok::Ident(s) => s.to_owned(),
                Tok::Int(i) => i.to_string(),
                _ => unreachable!(),
            });
        }
        Ok(Expr::Path(root, segs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Expr {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> (usize, &'static str) {
        let e = parse(s).unwrap_err();
        (e.column, e.code())
    }

    fn path(root: Root, segs: &[&str]) -> Box<Expr> {
        Box::new(Expr::Path(
            root,
            segs.iter().map(|s| s.to_string()).collect(),
        ))
    }

    #[test]
    fn precedence() {
        use Expr::*;
        let b = Box::new;
        // ! > ==,!= > && > ||
        assert_eq!(
            p("!true == false && null != 1 || data.x"),
            Or(
                b(And(
                    b(Eq(b(Not(b(Bool(true)))), b(Bool(false)))),
                    b(Ne(b(Null), b(Int(1))))
                )),
                path(Root::Data, &["x"])
            )
        );
        assert_eq!(
            p("true || false && false"),
            Or(b(Bool(true)), b(And(b(Bool(false)), b(Bool(false)))))
        );
        assert_eq!(
            p("!(true || false)"),
            Not(b(Or(b(Bool(true)), b(Bool(false)))))
        );
        // Left associative.
        assert_eq!(
            p("1 == 1 == true"),
            Eq(b(Eq(b(Int(1)), b(Int(1)))), b(Bool(true)))
        );
    }

    #[test]
    fn atoms() {
        assert_eq!(p("null"), Expr::Null);
        assert_eq!(p("true"), Expr::Bool(true));
        assert_eq!(p("-2.5"), Expr::Float(-2.5));
        assert_eq!(p("'x'"), Expr::Str("x".into()));
        assert_eq!(p("auth.userId"), Expr::AuthUserId);
        assert_eq!(p("auth.isAdmin"), Expr::AuthIsAdmin);
        assert_eq!(p("auth.tenantId"), Expr::AuthTenantId);
        assert_eq!(p("auth.hasRole('x')"), Expr::HasRole("x".into()));
        assert_eq!(
            p("auth.hasAnyRole(\"a\", 'b')"),
            Expr::HasAnyRole(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            p("data.meta.tags.0"),
            *path(Root::Data, &["meta", "tags", "0"])
        );
        assert_eq!(p("input.title"), *path(Root::Input, &["title"]));
        assert_eq!(p("((true))"), Expr::Bool(true));
    }

    #[test]
    fn errors() {
        assert_eq!(err(""), (1, "UNEXPECTED_TOKEN"));
        assert_eq!(err("data.a =="), (10, "UNEXPECTED_TOKEN"));
        assert_eq!(err("true true"), (6, "UNEXPECTED_TOKEN"));
        assert_eq!(err("(true"), (6, "UNEXPECTED_TOKEN"));
        assert_eq!(err("user.id"), (1, "UNKNOWN_NAME"));
        assert_eq!(err("auth.email"), (6, "UNKNOWN_AUTH_MEMBER"));
        assert_eq!(err("auth"), (5, "UNEXPECTED_TOKEN"));
        assert_eq!(err("data == 1"), (6, "MISSING_PATH"));
        assert_eq!(err("data."), (6, "UNEXPECTED_TOKEN"));
        assert_eq!(err("auth.hasRole()"), (14, "UNEXPECTED_TOKEN"));
        assert_eq!(err("auth.hasRole('a','b')"), (6, "UNEXPECTED_TOKEN"));
        assert_eq!(err("auth.hasRole(x)"), (14, "UNEXPECTED_TOKEN"));
        assert_eq!(err("auth.hasAnyRole('a' 'b')"), (21, "UNEXPECTED_TOKEN"));
        let deep = format!(
            "{}true{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(err(&deep), (MAX_DEPTH + 2, "TOO_DEEP"));
        let nots = format!("{}true", "!".repeat(MAX_DEPTH + 1));
        assert_eq!(err(&nots).1, "TOO_DEEP");
        assert!(parse(&format!(
            "{}true{}",
            "(".repeat(MAX_DEPTH),
            ")".repeat(MAX_DEPTH)
        ))
        .is_ok());
    }

    #[test]
    fn messages_read_well() {
        let e = parse("data.a == ").unwrap_err();
        assert_eq!(
            e.to_string(),
            "expected a value (auth.…, data.…, input.…, a literal or `(`), found the end of the expression at column 11"
        );
    }
}
