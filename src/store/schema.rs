//! The D1 schema: one table per entity holding the rows of every shard,
//! the shard directory, and generated, numbered migration files.
//!
//! Per entity `E` (fields in manifest order):
//!
//! ```sql
//! CREATE TABLE IF NOT EXISTS "E" ("_shard" TEXT NOT NULL, "id" TEXT NOT NULL,
//!   <field> <TYPE>, ..., "_seq" INTEGER NOT NULL DEFAULT 0,
//!   "_deleted" INTEGER NOT NULL DEFAULT 0, PRIMARY KEY ("_shard", "id"))
//! ```
//!
//! - The shard column is `_shard`, not `shard`: names starting with `_`
//!   belong to the runtime, so no manifest field can collide with it.
//! - Field columns are all nullable: D1 is a copy of rows the shards
//!   already validated, and a tombstone (`_deleted = 1`) keeps only its key
//!   and `_seq` (its fields are cleared).
//! - Nothing is UNIQUE in D1: uniqueness holds per shard (the shard enforces
//!   it) and a write-behind copy may pass through states that clash
//!   (a swap of two values applied row by row). Manifest indexes and unique
//!   fields become plain indexes for lookups, not prefixed by the shard, so
//!   they serve queries across shards; shard-scoped scans use the primary
//!   key.
//! - `_pylon_guard` is never written: a statement that must fail inserts
//!   NULL into one of its NOT NULL columns, named after the error code, so
//!   that a D1 batch (one transaction) aborts with a recognizable message.
//!
//! ```
//! use pylon_workers::manifest::Manifest;
//! use pylon_workers::store::schema::d1_create_statements;
//! let m = Manifest::from_json_str(r#"{"entities":[{"name":"T","fields":[
//!     {"name":"n","type":"int"}],"indexes":[{"name":"byN","fields":["n"],"unique":true}]}]}"#).unwrap();
//! assert_eq!(d1_create_statements(&m.entities[0]), [
//!     r#"CREATE TABLE IF NOT EXISTS "T" ("_shard" TEXT NOT NULL, "id" TEXT NOT NULL, "n" INTEGER, "_seq" INTEGER NOT NULL DEFAULT 0, "_deleted" INTEGER NOT NULL DEFAULT 0, PRIMARY KEY ("_shard", "id"))"#,
//!     r#"CREATE INDEX IF NOT EXISTS "T:byN" ON "T" ("n")"#,
//! ]);
//! ```

use crate::manifest::{
    column_type, index_name, plan_migration, quote_ident, unique_index_name, Entity, Index,
    Manifest, MigrationError,
};

/// The shard column of every D1 entity table.
pub const SHARD: &str = "_shard";
/// The shard's change sequence number of the row's last applied change.
pub const SEQ: &str = "_seq";
/// 1 for a tombstone.
pub const DELETED: &str = "_deleted";
/// The shard directory (`migrations/0001_shard_directory.sql`).
pub const DIRECTORY: &str = "_pylon_shards";
/// The table a failing guard statement inserts into (never holds rows).
pub const GUARD: &str = "_pylon_guard";
/// The error codes a guard can raise, one NOT NULL column each.
pub const GUARD_CODES: [&str; 3] = ["NOT_FOUND", "ALREADY_EXISTS", "UNIQUE_VIOLATION"];

/// The directory table, exactly as migration 0001 creates it.
pub fn directory_table() -> String {
    "CREATE TABLE IF NOT EXISTS _pylon_shards (\n  shard TEXT PRIMARY KEY NOT NULL,\n  rows INTEGER NOT NULL DEFAULT 0,\n  last_seq INTEGER NOT NULL DEFAULT 0,\n  last_change TEXT\n)".to_owned()
}

/// The guard table (see the module docs).
pub fn guard_table() -> String {
    let cols: Vec<String> = GUARD_CODES
        .iter()
        .map(|c| format!("{} INTEGER NOT NULL DEFAULT 0", quote_ident(c)))
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS {} ({})",
        quote_ident(GUARD),
        cols.join(", ")
    )
}

fn create_table(e: &Entity) -> String {
    let mut cols = vec![
        format!("{} TEXT NOT NULL", quote_ident(SHARD)),
        format!("{} TEXT NOT NULL", quote_ident("id")),
    ];
    cols.extend(
        e.fields
            .iter()
            .map(|f| format!("{} {}", quote_ident(&f.name), column_type(&f.ty))),
    );
    cols.push(format!("{} INTEGER NOT NULL DEFAULT 0", quote_ident(SEQ)));
    cols.push(format!(
        "{} INTEGER NOT NULL DEFAULT 0",
        quote_ident(DELETED)
    ));
    cols.push(format!(
        "PRIMARY KEY ({}, {})",
        quote_ident(SHARD),
        quote_ident("id")
    ));
    format!(
        "CREATE TABLE IF NOT EXISTS {} ({})",
        quote_ident(&e.name),
        cols.join(", ")
    )
}

fn create_index(table: &str, name: &str, fields: &[String]) -> String {
    let cols: Vec<String> = fields.iter().map(|f| quote_ident(f)).collect();
    format!(
        "CREATE INDEX IF NOT EXISTS {} ON {} ({})",
        quote_ident(name),
        quote_ident(table),
        cols.join(", ")
    )
}

fn manifest_index(e: &Entity, x: &Index) -> String {
    create_index(&e.name, &index_name(&e.name, &x.name), &x.fields)
}

fn unique_field_index(e: &Entity, field: &str) -> String {
    create_index(
        &e.name,
        &unique_index_name(&e.name, field),
        &[field.to_owned()],
    )
}

/// The D1 table and indexes of one entity.
pub fn d1_create_statements(e: &Entity) -> Vec<String> {
    let mut out = vec![create_table(e)];
    out.extend(e.indexes.iter().map(|x| manifest_index(e, x)));
    out.extend(
        e.fields
            .iter()
            .filter(|f| f.unique)
            .map(|f| unique_field_index(e, &f.name)),
    );
    out
}

/// Everything a fresh D1 database needs for `manifest`: directory, guard,
/// entity tables and indexes.
pub fn d1_schema(manifest: &Manifest) -> Vec<String> {
    let mut out = vec![directory_table(), guard_table()];
    out.extend(manifest.entities.iter().flat_map(d1_create_statements));
    out
}

/// The D1 statements that take a database at `applied` (`None`: only the
/// directory of migration 0001) to `target`. The same changes are allowed
/// as for shards (`plan_migration`, whose refusals are returned as they
/// are); policies do not change the schema.
pub fn plan_d1_migration(
    applied: Option<&Manifest>,
    target: &Manifest,
) -> Result<Vec<String>, MigrationError> {
    plan_migration(applied, target)?;
    let Some(applied) = applied else {
        let mut out = vec![guard_table()];
        out.extend(target.entities.iter().flat_map(d1_create_statements));
        return Ok(out);
    };
    let (mut tables, mut columns, mut drops, mut indexes) = (vec![], vec![], vec![], vec![]);
    for new in &target.entities {
        let Some(old) = applied.entity(&new.name) else {
            tables.extend(d1_create_statements(new));
            continue;
        };
        for f in &new.fields {
            match old.field(&f.name) {
                None => {
                    columns.push(format!(
                        "ALTER TABLE {} ADD COLUMN {} {}",
                        quote_ident(&new.name),
                        quote_ident(&f.name),
                        column_type(&f.ty)
                    ));
                    if f.unique {
                        indexes.push(unique_field_index(new, &f.name));
                    }
                }
                Some(was) if f.unique && !was.unique => {
                    indexes.push(unique_field_index(new, &f.name))
                }
                Some(_) => {}
            }
        }
        // D1 indexes are never unique: only the fields matter.
        for x in &old.indexes {
            match new.indexes.iter().find(|y| y.name == x.name) {
                Some(y) if y.fields == x.fields => {}
                _ => drops.push(format!(
                    "DROP INDEX IF EXISTS {}",
                    quote_ident(&index_name(&old.name, &x.name))
                )),
            }
        }
        for y in &new.indexes {
            match old.indexes.iter().find(|x| x.name == y.name) {
                Some(x) if x.fields == y.fields => {}
                _ => indexes.push(manifest_index(new, y)),
            }
        }
    }
    Ok([tables, columns, drops, indexes].concat())
}

/// The line of a generated migration that records the manifest it brings
/// the database to.
pub const MANIFEST_MARK: &str = "-- pylon:manifest ";

/// The text of a generated migration file.
pub fn render_migration(target: &Manifest, statements: &[String]) -> String {
    let compact = serde_json::from_str::<serde_json::Value>(target.source())
        .map(|v| v.to_string())
        .unwrap_or_else(|_| target.source().replace('\n', " "));
    let mut s = String::from(
        "-- Generated by `cargo run --bin pylon-migrations` from the manifest on the\n\
         -- next line (the schema this migration brings D1 to). Do not edit.\n",
    );
    s.push_str(MANIFEST_MARK);
    s.push_str(&compact);
    s.push('\n');
    for st in statements {
        s.push_str(st);
        s.push_str(";\n");
    }
    s
}

/// The manifest recorded in a generated migration file, if it is one.
pub fn recorded_manifest(file_text: &str) -> Option<Result<Manifest, String>> {
    let line = file_text
        .lines()
        .find_map(|l| l.strip_prefix(MANIFEST_MARK))?;
    Some(Manifest::from_json_str(line).map_err(|e| e.to_string()))
}
