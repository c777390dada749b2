//! The syntax tree of a policy expression.
//!
//! ```
//! use pylon_workers::policy::{Expr, Root};
//! let e: Expr = "data.ownerId == auth.userId".parse().unwrap();
//! assert_eq!(e.paths(), vec![(Root::Data, &["ownerId".to_string()][..])]);
//! ```

/// Where a path starts: the stored/new row (`data`) or the write's input (`input`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Root {
    Data,
    Input,
}

impl Root {
    pub fn name(self) -> &'static str {
        match self {
            Root::Data => "data",
            Root::Input => "input",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// `auth.userId`: text, or null for anonymous callers.
    AuthUserId,
    /// `auth.isAdmin`: bool.
    AuthIsAdmin,
    /// `auth.tenantId`: text or null.
    AuthTenantId,
    /// `auth.hasRole("x")`.
    HasRole(String),
    /// `auth.hasAnyRole("a", "b")`.
    HasAnyRole(Vec<String>),
    /// `data.a.b` / `input.a.0`: a non-empty path of member names or list indexes.
    Path(Root, Vec<String>),
    Not(Box<Expr>),
    Eq(Box<Expr>, Box<Expr>),
    Ne(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

impl Expr {
    /// Every `data.` / `input.` path in the expression, in source order.
    pub fn paths(&self) -> Vec<(Root, &[String])> {
        let mut out = Vec::new();
        self.walk_paths(&mut out);
        out
    }

    fn walk_paths<'a>(&'a self, out: &mut Vec<(Root, &'a [String])>) {
        match self {
            Expr::Path(root, p) => out.push((*root, p)),
            Expr::Not(e) => e.walk_paths(out),
            Expr::Eq(a, b) | Expr::Ne(a, b) | Expr::And(a, b) | Expr::Or(a, b) => {
                a.walk_paths(out);
                b.walk_paths(out);
            }
            _ => {}
        }
    }
}
