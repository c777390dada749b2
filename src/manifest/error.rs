//! Why a manifest does not load: every problem, each with its path.
//!
//! ```
//! use pylon_workers::manifest::Manifest;
//! let e = Manifest::from_json_str(r#"{"entities":[{"name":"T","fields":[
//!     {"name":"a","type":"text"},{"name":"a","type":"int"}]}]}"#).unwrap_err();
//! let codes: Vec<_> = e.problems().iter().map(|p| (p.path(), p.code())).collect();
//! assert_eq!(codes, [
//!     ("entities[0].fields[0].type", "UNKNOWN_TYPE"),
//!     ("entities[0].fields[1].name", "DUPLICATE_NAME"),
//! ]);
//! ```

use std::fmt;

use crate::policy::ParseError;

/// One problem in a manifest. `path` locates it, like `entities[1].fields[2].type`.
#[derive(Clone, Debug, PartialEq)]
pub enum Problem {
    /// A value of the wrong JSON type.
    WrongType {
        path: String,
        expected: &'static str,
        given: &'static str,
    },
    MissingKey {
        path: String,
        key: &'static str,
    },
    /// A key not part of the format (only top-level keys may be unknown).
    UnknownKey {
        path: String,
        key: String,
    },
    /// A name not matching `^[A-Za-z][A-Za-z0-9_]{0,63}$`.
    InvalidName {
        path: String,
        name: String,
    },
    /// A name starting with `_` (or, for an entity, `sqlite_`), kept for the runtime.
    ReservedName {
        path: String,
        name: String,
    },
    /// `kind` is "entity", "field", "index", "index field" or "policy";
    /// names are compared ignoring ASCII case, as SQLite does.
    DuplicateName {
        path: String,
        kind: &'static str,
        name: String,
        first: String,
    },
    UnknownType {
        path: String,
        given: String,
    },
    /// A declared `id` field that is not `{"type":"string"}` and required.
    InvalidIdField {
        path: String,
        reason: &'static str,
    },
    /// `id(X)` or a policy naming an entity that does not exist.
    UnknownEntity {
        path: String,
        name: String,
    },
    /// An index or a policy expression naming a field the entity lacks.
    UnknownField {
        path: String,
        entity: String,
        field: String,
    },
    EmptyIndex {
        path: String,
    },
    PolicyParse {
        path: String,
        error: ParseError,
    },
    /// A policy with none of the `allow*` rules.
    EmptyPolicy {
        path: String,
    },
    /// An `auth.shards[i].pattern` that does not parse.
    InvalidPattern {
        path: String,
        reason: String,
    },
    /// A URL that is not usable (`auth.jwks.url`).
    InvalidUrl {
        path: String,
        reason: String,
    },
    /// A number outside its allowed range.
    OutOfRange {
        path: String,
        min: u64,
        max: u64,
    },
    /// A string that must not be empty.
    EmptyString {
        path: String,
    },
    /// A `jobs`, `crons` or `workflows` entry that does not fit its format.
    InvalidBackground {
        path: String,
        reason: String,
    },
}

impl Problem {
    pub fn path(&self) -> &str {
        match self {
            Problem::WrongType { path, .. }
            | Problem::MissingKey { path, .. }
            | Problem::UnknownKey { path, .. }
            | Problem::InvalidName { path, .. }
            | Problem::ReservedName { path, .. }
            | Problem::DuplicateName { path, .. }
            | Problem::UnknownType { path, .. }
            | Problem::InvalidIdField { path, .. }
            | Problem::UnknownEntity { path, .. }
            | Problem::UnknownField { path, .. }
            | Problem::EmptyIndex { path }
            | Problem::PolicyParse { path, .. }
            | Problem::EmptyPolicy { path }
            | Problem::InvalidPattern { path, .. }
            | Problem::InvalidUrl { path, .. }
            | Problem::OutOfRange { path, .. }
            | Problem::EmptyString { path }
            | Problem::InvalidBackground { path, .. } => path,
        }
    }

    /// A stable code for clients and tests.
    pub fn code(&self) -> &'static str {
        match self {
            Problem::WrongType { .. } => "WRONG_TYPE",
            Problem::MissingKey { .. } => "MISSING_KEY",
            Problem::UnknownKey { .. } => "UNKNOWN_KEY",
            Problem::InvalidName { .. } => "INVALID_NAME",
            Problem::ReservedName { .. } => "RESERVED_NAME",
            Problem::DuplicateName { .. } => "DUPLICATE_NAME",
            Problem::UnknownType { .. } => "UNKNOWN_TYPE",
            Problem::InvalidIdField { .. } => "INVALID_ID_FIELD",
            Problem::UnknownEntity { .. } => "UNKNOWN_ENTITY",
            Problem::UnknownField { .. } => "UNKNOWN_FIELD",
            Problem::EmptyIndex { .. } => "EMPTY_INDEX",
            Problem::PolicyParse { .. } => "POLICY_PARSE",
            Problem::EmptyPolicy { .. } => "EMPTY_POLICY",
            Problem::InvalidPattern { .. } => "INVALID_PATTERN",
            Problem::InvalidUrl { .. } => "INVALID_URL",
            Problem::OutOfRange { .. } => "OUT_OF_RANGE",
            Problem::EmptyString { .. } => "EMPTY_STRING",
            Problem::InvalidBackground { .. } => "INVALID_BACKGROUND",
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.path())?;
        match self {
            Problem::WrongType { expected, given, .. } => write!(f, "expected {expected}, given {given}"),
            Problem::MissingKey { key, .. } => write!(f, "missing `{key}`"),
            Problem::UnknownKey { key, .. } => write!(f, "unknown key `{key}`"),
            Problem::InvalidName { name, .. } => write!(
                f,
                "invalid name {name:?}: use a letter then up to 63 letters, digits or `_`"
            ),
            Problem::ReservedName { name, .. } => {
                write!(f, "name {name:?} is reserved (names starting with `_` or `sqlite_` belong to the runtime)")
            }
            Problem::DuplicateName { kind, name, first, .. } => {
                write!(f, "duplicate {kind} name {name:?} (first at {first}; names ignore case)")
            }
            Problem::UnknownType { given, .. } => write!(
                f,
                "unknown type {given:?} (expected string, int, float, bool, datetime, json or id(<Entity>))"
            ),
            Problem::InvalidIdField { reason, .. } => write!(f, "invalid `id` field: {reason}"),
            Problem::UnknownEntity { name, .. } => write!(f, "unknown entity {name:?}"),
            Problem::UnknownField { entity, field, .. } => {
                write!(f, "entity {entity} has no field {field:?}")
            }
            Problem::EmptyIndex { .. } => f.write_str("an index needs at least one field"),
            Problem::PolicyParse { error, .. } => write!(f, "policy expression does not parse: {error}"),
            Problem::EmptyPolicy { .. } => f.write_str(
                "a policy needs at least one of allowRead, allowInsert, allowUpdate, allowDelete, allowWrite, allow",
            ),
            Problem::InvalidPattern { reason, .. } => write!(f, "invalid shard pattern: {reason}"),
            Problem::InvalidUrl { reason, .. } => write!(f, "invalid URL: {reason}"),
            Problem::OutOfRange { min, max, .. } => {
                write!(f, "expected a whole number from {min} to {max}")
            }
            Problem::EmptyString { .. } => f.write_str("must not be empty"),
            Problem::InvalidBackground { reason, .. } => f.write_str(reason),
        }
    }
}

/// A manifest that could not be loaded.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ManifestError {
    /// The text is not JSON at all.
    #[error("manifest is not valid JSON: {message} at line {line} column {column}")]
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    /// The JSON does not describe a valid manifest; every problem found.
    #[error("{}", list(problems))]
    Invalid { problems: Vec<Problem> },
}

fn list(problems: &[Problem]) -> String {
    let mut s = format!(
        "invalid manifest ({} problem{}):",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        s.push_str("\n  ");
        s.push_str(&p.to_string());
    }
    s
}

impl ManifestError {
    /// `INVALID_JSON` or `INVALID_MANIFEST`.
    pub fn code(&self) -> &'static str {
        match self {
            ManifestError::Json { .. } => "INVALID_JSON",
            ManifestError::Invalid { .. } => "INVALID_MANIFEST",
        }
    }

    /// The problems found (empty for `Json`).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ManifestError::Json { .. } => &[],
            ManifestError::Invalid { problems } => problems,
        }
    }
}
