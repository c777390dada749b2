//! The manifest: a JSON schema of entities, indexes and access policies.
//!
//! ```
//! use pylon_workers::manifest::Manifest;
//! let text = r#"{
//!   "name": "todos",
//!   "entities": [{"name": "Todo", "fields": [
//!     {"name": "title", "type": "string"},
//!     {"name": "ownerId", "type": "string"}]}],
//!   "policies": [{"name": "todoOwner", "entity": "Todo",
//!     "allow": "data.ownerId == auth.userId"}]
//! }"#;
//! let m = Manifest::from_json_str(text).unwrap();
//! assert!(m.entity("Todo").unwrap().has_column("title"));
//! assert_eq!(m.policies().all()[0].name, "todoOwner");
//! assert_eq!(m.source(), text);
//! ```
//!
//! See `docs/manifest.md` for the format.

mod background;
mod ddl;
mod error;
mod load;
mod migrate;
mod model;
pub mod names;
mod row;

pub use background::{Background, CacheConfig, CronEntry, JobsConfig, Who};
pub use ddl::{column_type, create_statements, index_name, quote_ident, unique_index_name};
pub use error::{ManifestError, Problem};
pub use migrate::{plan_migration, MigrationError, MigrationProblem};
pub use model::{Entity, Field, FieldType, Index};
pub use row::{
    columns, decode_row, insert_columns, update_columns, validate_insert, validate_update, RowError,
};

use crate::auth::AuthConfig;
use crate::policy::Policies;

/// A loaded, validated manifest.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub entities: Vec<Entity>,
    name: Option<String>,
    version: Option<String>,
    policies: Policies,
    auth: AuthConfig,
    background: Background,
    source: String,
}

impl Manifest {
    /// Loads a manifest from its JSON text, which is kept as [`source`](Self::source).
    pub fn from_json_str(text: &str) -> Result<Manifest, ManifestError> {
        let json: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ManifestError::Json {
                line: e.line(),
                column: e.column(),
                message: strip_position(&e.to_string()),
            })?;
        Self::load(&json, text.to_owned())
    }

    /// Loads a manifest from parsed JSON; its source text is the compact JSON.
    pub fn from_value(json: serde_json::Value) -> Result<Manifest, ManifestError> {
        let text = json.to_string();
        Self::load(&json, text)
    }

    fn load(json: &serde_json::Value, source: String) -> Result<Manifest, ManifestError> {
        let loaded = load::load(json);
        let background = Background::load(json).map_err(|problems| {
            problems
                .into_iter()
                .map(|(path, reason)| Problem::InvalidBackground { path, reason })
                .collect::<Vec<_>>()
        });
        let (l, background) = match (loaded, background) {
            (Ok(l), Ok(b)) => match b.files.as_ref().map(|f| f.problems(&l.entities)) {
                Some(problems) if !problems.is_empty() => {
                    let problems = problems
                        .into_iter()
                        .map(|(path, reason)| Problem::InvalidBackground { path, reason })
                        .collect();
                    return Err(ManifestError::Invalid { problems });
                }
                _ => (l, b),
            },
            (l, b) => {
                let mut problems = l.err().unwrap_or_default();
                problems.extend(b.err().unwrap_or_default());
                return Err(ManifestError::Invalid { problems });
            }
        };
        Ok(Manifest {
            background,
            entities: l.entities,
            name: l.name,
            version: l.version,
            policies: l.policies,
            auth: l.auth,
            source,
        })
    }

    pub fn entity(&self, name: &str) -> Option<&Entity> {
        self.entities.iter().find(|e| e.name == name)
    }

    /// The optional top-level `name`.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The optional top-level `version` (a number is given as its JSON text).
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// The policies, parsed at load.
    pub fn policies(&self) -> &Policies {
        &self.policies
    }

    /// The `auth` section (its defaults when absent: tokens required).
    pub fn auth(&self) -> &AuthConfig {
        &self.auth
    }

    /// The `jobs`, `crons`, `workflows` and `cache` sections.
    pub fn background(&self) -> &Background {
        &self.background
    }

    /// The text the manifest was loaded from, to store and load again later.
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// serde_json appends " at line L column C"; the error carries those apart.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}
