//! Evaluating a policy expression.
//!
//! Semantics:
//! - a missing path (absent field, member of a non-map, index past the end)
//!   is `null`; so is `data.*` / `input.*` when there is no such row;
//! - `==` between an int and a float compares the numbers; lists and maps
//!   compare member by member under the same rule; any other pair of
//!   different types is unequal (`1 != "1"`, `null != false`);
//! - `&&`, `||` and `!` count only `true` as true (anything else, `null`
//!   included, is false); they short-circuit and always give a bool;
//! - the rule allows iff the whole expression evaluates to `true`.
//!
//! Evaluation borrows from the rows and allocates nothing.
//!
//! ```
//! use pylon_workers::policy::{AuthContext, Expr, Scope};
//! use pylon_workers::value::{Row, Value};
//! let e: Expr = "data.ownerId == auth.userId".parse().unwrap();
//! let row: Row = [("ownerId".to_string(), Value::from("u1"))].into();
//! let auth = AuthContext::user("u1");
//! assert!(e.allows(&Scope { auth: &auth, data: Some(&row), input: None }));
//! ```

use super::ast::{Expr, Root};
use super::auth::AuthContext;
use crate::value::{Row, Value};

/// What an expression can see.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    pub auth: &'a AuthContext,
    /// The stored row (read, update, delete) or the new row (insert).
    pub data: Option<&'a Row>,
    /// The input of a write (the new row on insert, the `set` map on update).
    pub input: Option<&'a Row>,
}

/// An evaluated value, borrowed from the expression or the scope.
#[derive(Clone, Copy, Debug)]
enum V<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    /// A list or map.
    Compound(&'a Value),
}

impl<'a> V<'a> {
    fn of(v: &'a Value) -> V<'a> {
        match v {
            Value::Null => V::Null,
            Value::Bool(b) => V::Bool(*b),
            Value::Int(i) => V::Int(*i),
            Value::Float(f) => V::Float(*f),
            Value::Text(s) => V::Str(s),
            Value::List(_) | Value::Map(_) => V::Compound(v),
        }
    }

    fn is_true(self) -> bool {
        matches!(self, V::Bool(true))
    }
}

impl Expr {
    /// Whether the expression evaluates to `true` in `scope`.
    pub fn allows(&self, scope: &Scope<'_>) -> bool {
        self.eval(scope).is_true()
    }

    fn eval<'a>(&'a self, s: &Scope<'a>) -> V<'a> {
        match self {
            Expr::Null => V::Null,
            Expr::Bool(b) => V::Bool(*b),
            Expr::Int(i) => V::Int(*i),
            Expr::Float(f) => V::Float(*f),
            Expr::Str(t) => V::Str(t),
            Expr::AuthUserId => s.auth.user_id.as_deref().map_or(V::Null, V::Str),
            Expr::AuthIsAdmin => V::Bool(s.auth.is_admin),
            Expr::AuthTenantId => s.auth.tenant_id.as_deref().map_or(V::Null, V::Str),
            Expr::HasRole(r) => V::Bool(s.auth.has_role(r)),
            Expr::HasAnyRole(rs) => V::Bool(rs.iter().any(|r| s.auth.has_role(r))),
            Expr::Path(root, segs) => {
                let row = match root {
                    Root::Data => s.data,
                    Root::Input => s.input,
                };
                lookup(row, segs).map_or(V::Null, V::of)
            }
            Expr::Not(e) => V::Bool(!e.eval(s).is_true()),
            Expr::Eq(a, b) => V::Bool(eq(a.eval(s), b.eval(s))),
            Expr::Ne(a, b) => V::Bool(!eq(a.eval(s), b.eval(s))),
            Expr::And(a, b) => V::Bool(a.eval(s).is_true() && b.eval(s).is_true()),
            Expr::Or(a, b) => V::Bool(a.eval(s).is_true() || b.eval(s).is_true()),
        }
    }
}

fn lookup<'a>(row: Option<&'a Row>, segs: &[String]) -> Option<&'a Value> {
    let (first, rest) = segs.split_first()?;
    let mut v = row?.get(first)?;
    for seg in rest {
        v = match v {
            Value::Map(m) => m.get(seg)?,
            Value::List(l) => l.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(v)
}

fn eq(a: V<'_>, b: V<'_>) -> bool {
    match (a, b) {
        (V::Null, V::Null) => true,
        (V::Bool(x), V::Bool(y)) => x == y,
        (V::Int(x), V::Int(y)) => x == y,
        (V::Float(x), V::Float(y)) => x == y,
        (V::Int(i), V::Float(f)) | (V::Float(f), V::Int(i)) => int_eq_float(i, f),
        (V::Str(x), V::Str(y)) => x == y,
        (V::Compound(x), V::Compound(y)) => deep_eq(x, y),
        _ => false,
    }
}

fn deep_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| deep_eq(x, y))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((kx, vx), (ky, vy))| kx == ky && deep_eq(vx, vy))
        }
        (Value::List(_) | Value::Map(_), _) | (_, Value::List(_) | Value::Map(_)) => false,
        _ => eq(V::of(a), V::of(b)),
    }
}

/// Exact: `2^53 + 1` is not equal to the float `2^53`.
fn int_eq_float(i: i64, f: f64) -> bool {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    f.fract() == 0.0 && (-TWO_63..TWO_63).contains(&f) && f as i64 == i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(json: &str) -> Row {
        match serde_json::from_str::<Value>(json).unwrap() {
            Value::Map(m) => m,
            _ => panic!("not an object"),
        }
    }

    fn check(src: &str, auth: &AuthContext, data: Option<&Row>, input: Option<&Row>) -> bool {
        let e: Expr = src.parse().unwrap_or_else(|e| panic!("{src}: {e}"));
        e.allows(&Scope { auth, data, input })
    }

    #[test]
    fn auth_members() {
        let a = AuthContext::user("u1")
            .with_tenant("t1")
            .with_roles(["editor", "viewer"]);
        let t = |s| check(s, &a, None, None);
        assert!(t("auth.userId == 'u1'"));
        assert!(t("auth.tenantId == \"t1\""));
        assert!(t("!auth.isAdmin"));
        assert!(t("auth.hasRole('editor')"));
        assert!(!t("auth.hasRole('admin')"));
        assert!(t("auth.hasAnyRole('admin', 'viewer')"));
        assert!(!t("auth.hasAnyRole('admin', 'root')"));
        let anon = AuthContext::anonymous();
        assert!(check(
            "auth.userId == null && auth.tenantId == null",
            &anon,
            None,
            None
        ));
        assert!(check("auth.isAdmin", &AuthContext::admin(), None, None));
    }

    #[test]
    fn paths() {
        let a = AuthContext::user("u1");
        let d = row(r#"{"ownerId":"u1","meta":{"tags":["x","y"],"n":2},"done":false}"#);
        let i = row(r#"{"done":true}"#);
        let t = |s| check(s, &a, Some(&d), Some(&i));
        assert!(t("data.ownerId == auth.userId"));
        assert!(t("data.meta.tags.1 == 'y'"));
        assert!(t("data.meta.n == 2.0"));
        assert!(t("data.done == false && input.done == true"));
        // Missing paths are null.
        assert!(t("data.nope == null"));
        assert!(t("data.meta.tags.7 == null"));
        assert!(t("data.ownerId.deeper == null"));
        assert!(t("data.meta.tags.x == null"));
        assert!(t("input.ownerId == null"));
        assert!(check("data.x == null && input.x == null", &a, None, None));
    }

    #[test]
    fn equality_rules() {
        let a = AuthContext::anonymous();
        let d = row(r#"{"l":[1,{"a":2}],"m":{"a":1},"l2":[1.0,{"a":2.0}],"s":"1"}"#);
        let t = |s| check(s, &a, Some(&d), None);
        assert!(t("1 == 1.0"));
        assert!(t("-3 == -3.0"));
        assert!(!t("1 == 1.5"));
        assert!(t("1 != '1'"));
        assert!(t("data.s != 1"));
        assert!(t("null != false"));
        assert!(t("null == null"));
        assert!(t("'a' == \"a\""));
        assert!(t("data.l == data.l2"));
        assert!(t("data.l != data.m"));
        assert!(t("data.m != 1"));
        assert!(!int_eq_float(
            9_007_199_254_740_993,
            9_007_199_254_740_992.0
        ));
        assert!(!int_eq_float(i64::MAX, 9_223_372_036_854_775_808.0));
    }

    #[test]
    fn logic_counts_only_true() {
        let a = AuthContext::anonymous();
        let d = row(r#"{"one":1,"yes":true,"s":"true"}"#);
        let t = |s| check(s, &a, Some(&d), None);
        assert!(!t("data.one"));
        assert!(!t("data.s"));
        assert!(t("data.yes"));
        assert!(t("!data.one"));
        assert!(t("!null"));
        assert!(!t("data.one && true"));
        assert!(t("data.one || true"));
        assert!(t("(1 && 1) == false"));
        assert!(!t("'x'"));
        assert!(!t("null"));
    }
}
