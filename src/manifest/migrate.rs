//! Planning additive migrations between two manifests.
//!
//! Supported: new entities, new optional fields, new / changed / removed
//! indexes, making a field unique. Refused, all reported at once: dropping
//! an entity or field, changing a type, optional to required or back,
//! adding a required field, dropping `unique`.
//!
//! ```
//! use pylon_workers::manifest::{plan_migration, Manifest};
//! let v1 = Manifest::from_json_str(r#"{"entities":[{"name":"T","fields":[]}]}"#).unwrap();
//! let v2 = Manifest::from_json_str(r#"{"entities":[{"name":"T","fields":[
//!     {"name":"note","type":"string","optional":true}]}]}"#).unwrap();
//! assert_eq!(plan_migration(Some(&v1), &v2).unwrap(), [r#"ALTER TABLE "T" ADD COLUMN "note" TEXT"#]);
//! assert!(plan_migration(Some(&v2), &v2).unwrap().is_empty());
//! assert_eq!(plan_migration(Some(&v2), &v1).unwrap_err().code(), "UNSAFE_MIGRATION");
//! ```

use std::fmt;

use super::ddl::{
    column_def, create_index, create_statements, create_unique_index, drop_index, quote_ident,
};
use super::model::Entity;
use super::Manifest;

/// One change a migration cannot make safely.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MigrationProblem {
    EntityDropped {
        entity: String,
    },
    FieldDropped {
        entity: String,
        field: String,
    },
    TypeChanged {
        entity: String,
        field: String,
        from: String,
        to: String,
    },
    /// An optional field made required (existing rows may hold null).
    MadeRequired {
        entity: String,
        field: String,
    },
    /// A required field made optional (SQLite cannot drop NOT NULL in place).
    MadeOptional {
        entity: String,
        field: String,
    },
    /// A new field that is not optional (existing rows have no value).
    RequiredFieldAdded {
        entity: String,
        field: String,
    },
    /// SQLite cannot drop a UNIQUE column constraint in place.
    UniqueDropped {
        entity: String,
        field: String,
    },
}

impl MigrationProblem {
    pub fn code(&self) -> &'static str {
        match self {
            MigrationProblem::EntityDropped { .. } => "ENTITY_DROPPED",
            MigrationProblem::FieldDropped { .. } => "FIELD_DROPPED",
            MigrationProblem::TypeChanged { .. } => "TYPE_CHANGED",
            MigrationProblem::MadeRequired { .. } => "MADE_REQUIRED",
            MigrationProblem::MadeOptional { .. } => "MADE_OPTIONAL",
            MigrationProblem::RequiredFieldAdded { .. } => "REQUIRED_FIELD_ADDED",
            MigrationProblem::UniqueDropped { .. } => "UNIQUE_DROPPED",
        }
    }
}

impl fmt::Display for MigrationProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use MigrationProblem::*;
        match self {
            EntityDropped { entity } => write!(
                f,
                "entity {entity} was removed; dropping data is not supported"
            ),
            FieldDropped { entity, field } => {
                write!(
                    f,
                    "field {entity}.{field} was removed; dropping data is not supported"
                )
            }
            TypeChanged {
                entity,
                field,
                from,
                to,
            } => {
                write!(f, "field {entity}.{field} changed type from {from} to {to}; existing values may not fit")
            }
            MadeRequired { entity, field } => {
                write!(
                    f,
                    "field {entity}.{field} became required; existing rows may hold null"
                )
            }
            MadeOptional { entity, field } => {
                write!(f, "field {entity}.{field} became optional; SQLite cannot drop NOT NULL without rebuilding the table")
            }
            RequiredFieldAdded { entity, field } => {
                write!(f, "new field {entity}.{field} is required; existing rows have no value (make it optional)")
            }
            UniqueDropped { entity, field } => {
                write!(f, "field {entity}.{field} is no longer unique; SQLite cannot drop UNIQUE without rebuilding the table")
            }
        }
    }
}

/// A migration that would lose data or cannot be done in place.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", list(problems))]
pub struct MigrationError {
    pub problems: Vec<MigrationProblem>,
}

fn list(problems: &[MigrationProblem]) -> String {
    let mut s = String::from("unsafe migration:");
    for p in problems {
        s.push_str("\n  ");
        s.push_str(&p.to_string());
    }
    s
}

impl MigrationError {
    pub fn code(&self) -> &'static str {
        "UNSAFE_MIGRATION"
    }
}

/// The SQL that takes a database at `applied` (or empty, for `None`) to
/// `target`. Empty when nothing changes. Every statement but `ALTER TABLE
/// ADD COLUMN` is guarded (`IF [NOT] EXISTS`); run the plan and store the
/// target's source in one transaction.
pub fn plan_migration(
    applied: Option<&Manifest>,
    target: &Manifest,
) -> Result<Vec<String>, MigrationError> {
    let Some(applied) = applied else {
        return Ok(target.entities.iter().flat_map(create_statements).collect());
    };
    let mut problems = Vec::new();
    for old in &applied.entities {
        if target.entity(&old.name).is_none() {
            problems.push(MigrationProblem::EntityDropped {
                entity: old.name.clone(),
            });
        }
    }
    let (mut tables, mut columns, mut drops, mut indexes) = (vec![], vec![], vec![], vec![]);
    for new in &target.entities {
        match applied.entity(&new.name) {
            None => tables.extend(create_statements(new)),
            Some(old) => {
                diff_fields(old, new, &mut problems, &mut columns, &mut indexes);
                diff_indexes(old, new, &mut drops, &mut indexes);
            }
        }
    }
    if !problems.is_empty() {
        return Err(MigrationError { problems });
    }
    Ok([tables, columns, drops, indexes].concat())
}

fn diff_fields(
    old: &Entity,
    new: &Entity,
    problems: &mut Vec<MigrationProblem>,
    columns: &mut Vec<String>,
    indexes: &mut Vec<String>,
) {
    let at = |field: &str| (new.name.clone(), field.to_owned());
    for f in &old.fields {
        if new.field(&f.name).is_none() {
            let (entity, field) = at(&f.name);
            problems.push(MigrationProblem::FieldDropped { entity, field });
        }
    }
    for f in &new.fields {
        let (entity, field) = at(&f.name);
        let Some(was) = old.field(&f.name) else {
            if f.optional {
                columns.push(format!(
                    "ALTER TABLE {} ADD COLUMN {}",
                    quote_ident(&new.name),
                    column_def(f, false)
                ));
                if f.unique {
                    indexes.push(create_unique_index(new, &f.name));
                }
            } else {
                problems.push(MigrationProblem::RequiredFieldAdded { entity, field });
            }
            continue;
        };
        if was.ty != f.ty {
            let (from, to) = (was.ty.name(), f.ty.name());
            problems.push(MigrationProblem::TypeChanged {
                entity: entity.clone(),
                field: field.clone(),
                from,
                to,
            });
        }
        match (was.optional, f.optional) {
            (true, false) => problems.push(MigrationProblem::MadeRequired {
                entity: entity.clone(),
                field: field.clone(),
            }),
            (false, true) => problems.push(MigrationProblem::MadeOptional {
                entity: entity.clone(),
                field: field.clone(),
            }),
            _ => {}
        }
        match (was.unique, f.unique) {
            (false, true) => indexes.push(create_unique_index(new, &f.name)),
            (true, false) => problems.push(MigrationProblem::UniqueDropped { entity, field }),
            _ => {}
        }
    }
}

fn diff_indexes(old: &Entity, new: &Entity, drops: &mut Vec<String>, creates: &mut Vec<String>) {
    for x in &old.indexes {
        match new.indexes.iter().find(|y| y.name == x.name) {
            Some(y) if y == x => {}
            _ => drops.push(drop_index(old, x)),
        }
    }
    for y in &new.indexes {
        if old.indexes.iter().find(|x| x.name == y.name) != Some(y) {
            creates.push(create_index(new, y));
        }
    }
}
