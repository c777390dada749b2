//! SQLite DDL for the entities of a manifest.
//!
//! Each entity is a table of the same name, with `id TEXT PRIMARY KEY NOT
//! NULL` then one column per field (types per `crate::sql`). SQLite index
//! names share one namespace per database, so an index `byOwner` of `Todo`
//! is named `Todo:byOwner` (`:` cannot occur in manifest names). A field
//! made unique after its table exists gets the index `Todo:email:unique`.
//!
//! ```
//! use pylon_workers::manifest::{create_statements, Manifest};
//! let m = Manifest::from_json_str(r#"{"entities":[{"name":"Todo",
//!     "fields":[{"name":"ownerId","type":"string"},{"name":"n","type":"int","optional":true}],
//!     "indexes":[{"name":"byOwner","fields":["ownerId"]}]}]}"#).unwrap();
//! assert_eq!(create_statements(&m.entities[0]), [
//!     r#"CREATE TABLE IF NOT EXISTS "Todo" ("id" TEXT PRIMARY KEY NOT NULL, "ownerId" TEXT NOT NULL, "n" INTEGER) WITHOUT ROWID"#,
//!     r#"CREATE INDEX IF NOT EXISTS "Todo:byOwner" ON "Todo" ("ownerId")"#,
//! ]);
//! ```

use super::model::{Entity, Field, FieldType, Index};

/// `name` as a quoted SQLite identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The SQLite column type of a field type.
pub fn column_type(ty: &FieldType) -> &'static str {
    match ty {
        FieldType::String | FieldType::Id(_) | FieldType::Datetime | FieldType::Json => "TEXT",
        FieldType::Int | FieldType::Bool => "INTEGER",
        FieldType::Float => "REAL",
    }
}

/// The SQLite name of a declared index.
pub fn index_name(entity: &str, index: &str) -> String {
    format!("{entity}:{index}")
}

/// The SQLite name of the index that makes a field unique after the fact.
pub fn unique_index_name(entity: &str, field: &str) -> String {
    format!("{entity}:{field}:unique")
}

/// A column definition; `with_unique` is false for `ALTER TABLE ADD COLUMN`,
/// which cannot add a UNIQUE column.
pub(super) fn column_def(f: &Field, with_unique: bool) -> String {
    let mut s = format!("{} {}", quote_ident(&f.name), column_type(&f.ty));
    if !f.optional {
        s.push_str(" NOT NULL");
    }
    if f.unique && with_unique {
        s.push_str(" UNIQUE");
    }
    s
}

pub(super) fn create_table(e: &Entity) -> String {
    let mut cols = vec![format!("{} TEXT PRIMARY KEY NOT NULL", quote_ident("id"))];
    cols.extend(e.fields.iter().map(|f| column_def(f, true)));
    // Keyed by `id` itself: an insert or delete is one b-tree entry (plus
    // the declared indexes), not a row and its key index, each billed.
    format!(
        "CREATE TABLE IF NOT EXISTS {} ({}) WITHOUT ROWID",
        quote_ident(&e.name),
        cols.join(", ")
    )
}

pub(super) fn create_index(e: &Entity, x: &Index) -> String {
    let cols: Vec<String> = x.fields.iter().map(|f| quote_ident(f)).collect();
    format!(
        "CREATE {}INDEX IF NOT EXISTS {} ON {} ({})",
        if x.unique { "UNIQUE " } else { "" },
        quote_ident(&index_name(&e.name, &x.name)),
        quote_ident(&e.name),
        cols.join(", ")
    )
}

pub(super) fn create_unique_index(e: &Entity, field: &str) -> String {
    format!(
        "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} ({})",
        quote_ident(&unique_index_name(&e.name, field)),
        quote_ident(&e.name),
        quote_ident(field)
    )
}

pub(super) fn drop_index(e: &Entity, x: &Index) -> String {
    format!(
        "DROP INDEX IF EXISTS {}",
        quote_ident(&index_name(&e.name, &x.name))
    )
}

/// `CREATE TABLE IF NOT EXISTS` and `CREATE INDEX IF NOT EXISTS` for one
/// entity: all it takes to create it in an empty database.
pub fn create_statements(e: &Entity) -> Vec<String> {
    std::iter::once(create_table(e))
        .chain(e.indexes.iter().map(|x| create_index(e, x)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_ident("order"), "\"order\"");
    }

    #[test]
    fn unique_and_types() {
        let e = Entity {
            name: "U".into(),
            fields: vec![
                Field {
                    name: "email".into(),
                    ty: FieldType::String,
                    optional: false,
                    unique: true,
                },
                Field {
                    name: "ok".into(),
                    ty: FieldType::Bool,
                    optional: true,
                    unique: false,
                },
                Field {
                    name: "x".into(),
                    ty: FieldType::Float,
                    optional: true,
                    unique: true,
                },
            ],
            indexes: vec![Index {
                name: "both".into(),
                fields: vec!["email".into(), "ok".into()],
                unique: true,
            }],
        };
        assert_eq!(
            create_statements(&e),
            [
                r#"CREATE TABLE IF NOT EXISTS "U" ("id" TEXT PRIMARY KEY NOT NULL, "email" TEXT NOT NULL UNIQUE, "ok" INTEGER, "x" REAL UNIQUE) WITHOUT ROWID"#,
                r#"CREATE UNIQUE INDEX IF NOT EXISTS "U:both" ON "U" ("email", "ok")"#,
            ]
        );
        assert_eq!(column_def(&e.fields[2], false), r#""x" REAL"#);
    }
}
