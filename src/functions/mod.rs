//! Server functions: queries, mutations and actions that run beside the
//! rows they touch (docs/functions.md). A mutation runs inside its shard's
//! turn: every `ctx.db` write of one call is applied all or nothing as one
//! seq, with the change log, the outbox and its op id, and live queries get
//! one diff for the whole call. A query reads; subscribed to (`watch`), it
//! is re-run when a write touches an entity it read. An action runs outside
//! any transaction, may do I/O, and calls queries and mutations by name.
//!
//! Functions are written in Rust ([`Functions`], registered in one place by
//! the app) or in TypeScript (an app's `functions/` folder, bundled into the
//! Worker; the wasm glue implements [`ScriptFunctions`] over it). Both see
//! the same [`Db`]: this module knows nothing of Workers.
//!
//! ```
//! use pylon_workers::functions::{Ctx, FnError, Functions, FnKind};
//! use pylon_workers::value::Value;
//! let fns = Functions::new().mutation("rename", |ctx: &mut Ctx<'_>, args: Value| {
//!     let id = args.get("id").and_then(Value::as_str).ok_or_else(|| FnError::bad_args("args.id", "expected a string"))?;
//!     let mut set = pylon_workers::value::Row::new();
//!     set.insert("title".into(), args.get("title").cloned().unwrap_or_default());
//!     ctx.db.update("Card", id, set)?;
//!     Ok(Value::Null)
//! });
//! assert_eq!(fns.lookup("rename").map(|f| f.kind), Some(FnKind::Mutation));
//! ```

mod bridge;
mod db;
mod error;
mod registry;
mod run;

pub use bridge::{dispatch_db, envelope, parse_envelope};
pub use db::{Ctx, Db, When};
pub use error::FnError;
pub use registry::{
    ActionCtx, ActionHost, FnKind, Found, FunctionInfo, Functions, RoomOps, RustAction, RustBody,
    RustFn, ScriptFunctions,
};
pub use run::FunctionRun;

/// Longest function name (`^[A-Za-z][A-Za-z0-9_]{0,63}$`).
pub const MAX_NAME: usize = 64;

/// Whether `name` is a valid function name.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && name.len() <= MAX_NAME
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
