//! Read policies as SQL: for a known caller, `auth.*` is a constant, so most
//! `allowRead` rules reduce to a filter over the row's own fields, which the
//! query compiler turns into SQL. The cold path then filters in the
//! database and `limit` means what it says.
//!
//! What compiles: literals, `auth.*`, `data.<field>` (one segment, not a
//! json field), `input.*` (null on read), `==`, `!=`, `&&`, `||`, `!`, with
//! the policy semantics (see docs/policies.md): an int and a float compare
//! exactly, values of different types are unequal, only `true` is true.
//! What does not (a comparison of two fields, paths into json, comparing
//! a boolean-valued expression to a field): the caller falls back to
//! checking rows in memory ([`ReadFilter::InMemory`]).
//!
//! ```
//! use pylon_workers::manifest::Manifest;
//! use pylon_workers::policy::AuthContext;
//! use pylon_workers::store::{read_filter, ReadFilter};
//! let m = Manifest::from_json_str(r#"{"entities":[{"name":"Todo","fields":[
//!     {"name":"ownerId","type":"string"}]}],
//!     "policies":[{"name":"own","entity":"Todo","allowRead":"data.ownerId == auth.userId"}]}"#).unwrap();
//! let e = m.entity("Todo").unwrap();
//! assert!(matches!(read_filter(&m, e, &AuthContext::user("u1")), ReadFilter::Sql(_)));
//! assert!(matches!(read_filter(&m, e, &AuthContext::admin()), ReadFilter::All));
//! ```

use crate::manifest::{Entity, FieldType, Manifest};
use crate::policy::{Action, AuthContext, Expr, Root};
use crate::query::{CmpOp, Filter};
use crate::sql::SqlValue;

/// Which rows a caller may read, as the cold path applies it.
#[derive(Clone, Debug, PartialEq)]
pub enum ReadFilter {
    /// Every row (admin, or an entity without policies).
    All,
    /// The rows matching this filter, exactly.
    Sql(Filter),
    /// Check each row with `Policies::can_read`.
    InMemory,
}

/// A constant value of a policy expression.
#[derive(Clone, Debug, PartialEq)]
enum Lit {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

/// A partially evaluated expression.
enum Term {
    Lit(Lit),
    Field(String, FieldType),
    Filter(Filter),
}

fn yes() -> Filter {
    Filter::And(Vec::new())
}

fn no() -> Filter {
    Filter::Or(Vec::new())
}

/// Which rows of `entity` the caller may read.
pub fn read_filter(manifest: &Manifest, entity: &Entity, auth: &AuthContext) -> ReadFilter {
    let policies = manifest.policies();
    if auth.is_admin || policies.for_entity(&entity.name).is_open() {
        return ReadFilter::All;
    }
    let mut any = Vec::new();
    for p in policies.all().iter().filter(|p| p.entity == entity.name) {
        let Some((_, expr)) = p.rule_for(Action::Read) else {
            continue;
        };
        match compile(expr, entity, auth).map(truth) {
            Some(f) => any.push(f),
            None => return ReadFilter::InMemory,
        }
    }
    ReadFilter::Sql(simplify(Filter::Or(any)))
}

/// Folds constant parts: `And([])` is true, `Or([])` false.
fn simplify(f: Filter) -> Filter {
    match f {
        Filter::And(parts) => {
            let mut out = Vec::new();
            for p in parts.into_iter().map(simplify) {
                match p {
                    Filter::And(ref x) if x.is_empty() => {}
                    Filter::Or(ref x) if x.is_empty() => return no(),
                    p => out.push(p),
                }
            }
            if out.len() == 1 {
                out.pop().unwrap_or_else(yes)
            } else {
                Filter::And(out)
            }
        }
        Filter::Or(parts) => {
            let mut out = Vec::new();
            for p in parts.into_iter().map(simplify) {
                match p {
                    Filter::Or(ref x) if x.is_empty() => {}
                    Filter::And(ref x) if x.is_empty() => return yes(),
                    p => out.push(p),
                }
            }
            if out.len() == 1 {
                out.pop().unwrap_or_else(no)
            } else {
                Filter::Or(out)
            }
        }
        Filter::Not(inner) => match simplify(*inner) {
            Filter::And(x) if x.is_empty() => no(),
            Filter::Or(x) if x.is_empty() => yes(),
            f => Filter::Not(Box::new(f)),
        },
        f => f,
    }
}

fn compile(e: &Expr, entity: &Entity, auth: &AuthContext) -> Option<Term> {
    let text = |s: &Option<String>| s.clone().map_or(Lit::Null, Lit::Str);
    Some(match e {
        Expr::Null => Term::Lit(Lit::Null),
        Expr::Bool(b) => Term::Lit(Lit::Bool(*b)),
        Expr::Int(i) => Term::Lit(Lit::Int(*i)),
        Expr::Float(f) => Term::Lit(Lit::Float(*f)),
        Expr::Str(s) => Term::Lit(Lit::Str(s.clone())),
        Expr::AuthUserId => Term::Lit(text(&auth.user_id)),
        Expr::AuthIsAdmin => Term::Lit(Lit::Bool(auth.is_admin)),
        Expr::AuthTenantId => Term::Lit(text(&auth.tenant_id)),
        Expr::HasRole(r) => Term::Lit(Lit::Bool(auth.has_role(r))),
        Expr::HasAnyRole(rs) => Term::Lit(Lit::Bool(rs.iter().any(|r| auth.has_role(r)))),
        Expr::Path(Root::Input, _) => Term::Lit(Lit::Null),
        Expr::Path(Root::Data, segs) => {
            let [name] = segs.as_slice() else {
                return None;
            };
            let ty = if name == "id" {
                FieldType::String
            } else {
                entity.field(name)?.ty.clone()
            };
            if ty == FieldType::Json {
                return None;
            }
            Term::Field(name.clone(), ty)
        }
        Expr::Not(a) => Term::Filter(simplify(Filter::Not(Box::new(truth(compile(
            a, entity, auth,
        )?))))),
        Expr::And(a, b) => Term::Filter(simplify(Filter::And(vec![
            truth(compile(a, entity, auth)?),
            truth(compile(b, entity, auth)?),
        ]))),
        Expr::Or(a, b) => Term::Filter(simplify(Filter::Or(vec![
            truth(compile(a, entity, auth)?),
            truth(compile(b, entity, auth)?),
        ]))),
        Expr::Eq(a, b) => {
            Term::Filter(equal(compile(a, entity, auth)?, compile(b, entity, auth)?)?)
        }
        Expr::Ne(a, b) => Term::Filter(simplify(Filter::Not(Box::new(equal(
            compile(a, entity, auth)?,
            compile(b, entity, auth)?,
        )?)))),
    })
}

/// Where the term is `true`.
fn truth(t: Term) -> Filter {
    match t {
        Term::Lit(Lit::Bool(true)) => yes(),
        Term::Lit(_) => no(),
        Term::Field(f, FieldType::Bool) => Filter::Cmp {
            field: f,
            ty: FieldType::Bool,
            op: CmpOp::Eq,
            value: SqlValue::Integer(1),
        },
        // Stored values of other types never read as `true`.
        Term::Field(..) => no(),
        Term::Filter(f) => f,
    }
}

fn lit_eq(a: &Lit, b: &Lit) -> bool {
    match (a, b) {
        (Lit::Int(i), Lit::Float(f)) | (Lit::Float(f), Lit::Int(i)) => {
            f.fract() == 0.0 && (-9.2e18..9.2e18).contains(f) && *f as i64 == *i
        }
        _ => a == b,
    }
}

/// Where `a == b` under the policy equality.
fn equal(a: Term, b: Term) -> Option<Filter> {
    let bool_filter = |f: Filter, b: bool| if b { f } else { Filter::Not(Box::new(f)) };
    Some(match (a, b) {
        (Term::Lit(x), Term::Lit(y)) => {
            if lit_eq(&x, &y) {
                yes()
            } else {
                no()
            }
        }
        (Term::Field(f, ty), Term::Lit(l)) | (Term::Lit(l), Term::Field(f, ty)) => {
            field_eq(f, ty, &l)
        }
        (Term::Filter(f), Term::Lit(Lit::Bool(b))) | (Term::Lit(Lit::Bool(b)), Term::Filter(f)) => {
            bool_filter(f, b)
        }
        // A boolean expression never equals a non-bool constant.
        (Term::Filter(_), Term::Lit(_)) | (Term::Lit(_), Term::Filter(_)) => no(),
        (Term::Filter(x), Term::Filter(y)) => Filter::Or(vec![
            Filter::And(vec![x.clone(), y.clone()]),
            Filter::And(vec![Filter::Not(Box::new(x)), Filter::Not(Box::new(y))]),
        ]),
        _ => return None,
    })
}

/// Where stored `field` (of type `ty`) equals the constant `l`.
fn field_eq(field: String, ty: FieldType, l: &Lit) -> Filter {
    let value = match (&ty, l) {
        (_, Lit::Null) => {
            return Filter::Null {
                field,
                is_null: true,
            }
        }
        (FieldType::String | FieldType::Id(_) | FieldType::Datetime, Lit::Str(s)) => {
            SqlValue::Text(s.clone())
        }
        (FieldType::Int, Lit::Int(i)) => SqlValue::Integer(*i),
        (FieldType::Int, Lit::Float(f)) if lit_eq(&Lit::Float(*f), &Lit::Int(*f as i64)) => {
            SqlValue::Integer(*f as i64)
        }
        // SQLite compares an integer with a real exactly.
        (FieldType::Float, Lit::Int(i)) => SqlValue::Integer(*i),
        (FieldType::Float, Lit::Float(f)) => SqlValue::Real(*f),
        (FieldType::Bool, Lit::Bool(b)) => SqlValue::Integer(*b as i64),
        _ => return no(),
    };
    Filter::Cmp {
        field,
        ty,
        op: CmpOp::Eq,
        value,
    }
}
