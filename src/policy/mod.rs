//! Access policies: the Pylon manifest expression language and the checks
//! that the shard runs before every read and write.
//!
//! ```
//! use pylon_workers::policy::{AuthContext, Policies, Policy, Rule};
//! use pylon_workers::value::{Row, Value};
//! let own = Policy::new("todoOwner", "Todo", vec![
//!     (Rule::AllowRead, "auth.userId != null".parse().unwrap()),
//!     (Rule::AllowWrite, "data.ownerId == auth.userId".parse().unwrap()),
//! ]);
//! let policies = Policies::new(vec![own]);
//! let todo: Row = [("ownerId".to_string(), Value::from("alice"))].into();
//! let bob = AuthContext::user("bob");
//! assert!(policies.can_read("Todo", &bob, &todo).is_allowed());
//! assert!(!policies.can_delete("Todo", &bob, &todo).is_allowed());
//! ```
//!
//! See `docs/policies.md` for the grammar, the semantics and the rule that
//! combines several policies.

mod ast;
mod auth;
mod check;
mod error;
mod eval;
mod lexer;
mod parser;
mod rule;

pub use ast::{Expr, Root};
pub use auth::AuthContext;
pub use check::{Decision, Denial, EntityPolicies, Policies};
pub use error::{ParseError, ParseErrorKind};
pub use eval::Scope;
pub use parser::{parse, MAX_DEPTH};
pub use rule::{Action, Policy, Rule};
