//! What a refused write tells its caller about rows it cannot read:
//! nothing beyond what a policy refusal of the same write would tell
//! (docs/policies.md, "What write errors reveal").
//!
//! - an `update` or `delete` the policies refuse on a row the caller
//!   cannot read is answered like a row that does not exist (`NOT_FOUND`);
//! - an `insert` (or an `upsert` that would insert) whose id is taken by
//!   such a row, or whose unique value clashes with such a row, is
//!   answered with [`refused`]: `FORBIDDEN`, the same words whichever it
//!   was, naming no row and no value;
//! - a unique clash with a row the caller may read is `UNIQUE_VIOLATION`
//!   naming the constraint's field(s) only, never SQLite's text.

use crate::protocol::{ErrorCode, ErrorMsg};

fn msg(code: ErrorCode, message: String) -> ErrorMsg {
    ErrorMsg {
        code,
        message,
        op: None,
        sub: None,
    }
}

/// The generic refusal of `action` (`insert`, `update`) on `entity`.
pub(super) fn refused(action: &str, entity: &str) -> ErrorMsg {
    msg(
        ErrorCode::Forbidden,
        format!("{action} on {entity} refused for this caller"),
    )
}

/// Row `id` of `entity` does not exist, or the caller cannot tell.
pub(super) fn not_found(entity: &str, id: &str) -> ErrorMsg {
    msg(
        ErrorCode::NotFound,
        format!("{entity} {id:?} does not exist"),
    )
}

/// A unique constraint over `fields` already holds the written value in a
/// row the caller may read.
pub(super) fn unique_violation(entity: &str, fields: &[String]) -> ErrorMsg {
    let spelled: Vec<String> = fields.iter().map(|f| format!("{entity}.{f}")).collect();
    msg(
        ErrorCode::UniqueViolation,
        format!(
            "another row already holds this value of {} (unique)",
            spelled.join(" + ")
        ),
    )
}
