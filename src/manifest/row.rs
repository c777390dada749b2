//! Checking rows against an entity before a write, and converting them to
//! and from their stored form (`crate::sql`).
//!
//! ```
//! use pylon_workers::manifest::{insert_columns, decode_row, validate_update, Manifest};
//! use pylon_workers::sql::SqlValue;
//! use pylon_workers::value::{Row, Value};
//! let m = Manifest::from_json_str(r#"{"entities":[{"name":"Todo","fields":[
//!     {"name":"title","type":"string"},{"name":"done","type":"bool"}]}]}"#).unwrap();
//! let todo = m.entity("Todo").unwrap();
//! let row: Row = serde_json::from_str::<Value>(r#"{"id":"t1","title":"a","done":false}"#)
//!     .map(|v| match v { Value::Map(m) => m, _ => unreachable!() }).unwrap();
//! let cols = insert_columns(todo, &row).unwrap();
//! assert_eq!(cols[2], ("done", SqlValue::Integer(0)));
//! assert_eq!(decode_row(todo, cols.into_iter()), row);
//! let bad: Row = [("done".to_string(), Value::from("yes"))].into();
//! assert_eq!(validate_update(todo, &bad).unwrap_err().code(), "TYPE_MISMATCH");
//! ```

use super::model::{Entity, FieldType};
use crate::sql::{from_sql, to_sql, SqlValue};
use crate::value::{Row, Value};

/// A row that does not fit its entity.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    #[error("{entity} has no field {field:?}")]
    UnknownField { entity: String, field: String },
    #[error("{entity}.{field}: expected {expected}, given {given}")]
    TypeMismatch {
        entity: String,
        field: String,
        expected: String,
        given: &'static str,
    },
    /// A required field absent on insert, or set to null.
    #[error("{entity}.{field} is required")]
    RequiredField { entity: String, field: String },
    /// A row to store without its `id`.
    #[error("{entity} row has no id")]
    MissingId { entity: String },
    /// An `id` that is not a non-empty string.
    #[error("{entity}.id must be a non-empty string, given {given}")]
    InvalidId { entity: String, given: &'static str },
    /// An update that sets `id`.
    #[error("{entity}.id cannot be changed")]
    IdImmutable { entity: String },
}

impl RowError {
    pub fn code(&self) -> &'static str {
        match self {
            RowError::UnknownField { .. } => "UNKNOWN_FIELD",
            RowError::TypeMismatch { .. } => "TYPE_MISMATCH",
            RowError::RequiredField { .. } => "REQUIRED_FIELD",
            RowError::MissingId { .. } => "MISSING_ID",
            RowError::InvalidId { .. } => "INVALID_ID",
            RowError::IdImmutable { .. } => "ID_IMMUTABLE",
        }
    }
}

/// The stored columns of an entity, in table order: `id`, then the fields.
pub fn columns(entity: &Entity) -> Vec<&str> {
    std::iter::once("id")
        .chain(entity.fields.iter().map(|f| f.name.as_str()))
        .collect()
}

/// Checks a row to insert: no unknown fields, every required field present
/// and non-null, every value of its field's type. `id` may be absent (the
/// caller assigns one) but if present must be a non-empty string.
pub fn validate_insert(entity: &Entity, row: &Row) -> Result<(), RowError> {
    encode_insert(entity, row).map(drop)
}

/// Validates a row to insert (see [`validate_insert`]), which must have its
/// `id`, and gives its columns in table order ([`columns`]): absent optional
/// fields are `Null`.
pub fn insert_columns<'e>(
    entity: &'e Entity,
    row: &Row,
) -> Result<Vec<(&'e str, SqlValue)>, RowError> {
    let cols = encode_insert(entity, row)?;
    if cols[0].1 == SqlValue::Null {
        return Err(RowError::MissingId {
            entity: entity.name.clone(),
        });
    }
    Ok(cols)
}

fn encode_insert<'e>(entity: &'e Entity, row: &Row) -> Result<Vec<(&'e str, SqlValue)>, RowError> {
    if let Some(k) = row.keys().find(|k| *k != "id" && entity.field(k).is_none()) {
        return Err(RowError::UnknownField {
            entity: entity.name.clone(),
            field: k.clone(),
        });
    }
    let mut out = Vec::with_capacity(entity.fields.len() + 1);
    out.push((
        "id",
        match row.get("id") {
            None => SqlValue::Null,
            Some(Value::Text(s)) if !s.is_empty() => SqlValue::Text(s.clone()),
            Some(v) => {
                return Err(RowError::InvalidId {
                    entity: entity.name.clone(),
                    given: v.type_name(),
                })
            }
        },
    ));
    for f in &entity.fields {
        let v = row.get(&f.name).unwrap_or(&Value::Null);
        out.push((
            f.name.as_str(),
            encode(entity, &f.name, &f.ty, f.optional, v)?,
        ));
    }
    Ok(out)
}

/// Checks the `set` map of a partial update: only known fields, each of its
/// type, no required field set to null, no `id`.
pub fn validate_update(entity: &Entity, set: &Row) -> Result<(), RowError> {
    update_columns(entity, set).map(drop)
}

/// Validates a `set` map (see [`validate_update`]) and gives the columns to
/// update, in table order. Empty when there is nothing to write.
pub fn update_columns<'e>(
    entity: &'e Entity,
    set: &Row,
) -> Result<Vec<(&'e str, SqlValue)>, RowError> {
    for k in set.keys() {
        if k == "id" {
            return Err(RowError::IdImmutable {
                entity: entity.name.clone(),
            });
        }
        if entity.field(k).is_none() {
            return Err(RowError::UnknownField {
                entity: entity.name.clone(),
                field: k.clone(),
            });
        }
    }
    let mut out = Vec::with_capacity(set.len());
    for f in &entity.fields {
        if let Some(v) = set.get(&f.name) {
            out.push((
                f.name.as_str(),
                encode(entity, &f.name, &f.ty, f.optional, v)?,
            ));
        }
    }
    Ok(out)
}

fn encode(
    entity: &Entity,
    field: &str,
    ty: &FieldType,
    optional: bool,
    v: &Value,
) -> Result<SqlValue, RowError> {
    if v.is_null() && !optional {
        return Err(RowError::RequiredField {
            entity: entity.name.clone(),
            field: field.to_owned(),
        });
    }
    to_sql(ty, v).map_err(|m| RowError::TypeMismatch {
        entity: entity.name.clone(),
        field: field.to_owned(),
        expected: m.expected,
        given: m.got,
    })
}

/// Decodes stored columns (name, value) into a row. `id` and every field
/// given are included (null ones as `Null`); unknown columns are skipped.
pub fn decode_row<S: AsRef<str>>(
    entity: &Entity,
    cols: impl IntoIterator<Item = (S, SqlValue)>,
) -> Row {
    let mut row = Row::new();
    for (name, v) in cols {
        let name = name.as_ref();
        let ty = if name == "id" {
            &FieldType::String
        } else {
            match entity.field(name) {
                Some(f) => &f.ty,
                None => continue,
            }
        };
        row.insert(name.to_owned(), from_sql(ty, v));
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;

    fn todo() -> Entity {
        Manifest::from_json_str(
            r#"{"entities":[{"name":"Todo","fields":[
                {"name":"title","type":"string"},
                {"name":"done","type":"bool"},
                {"name":"createdAt","type":"datetime"},
                {"name":"order","type":"float","optional":true},
                {"name":"tags","type":"json","optional":true}]}]}"#,
        )
        .unwrap()
        .entities
        .remove(0)
    }

    fn row(json: &str) -> Row {
        match serde_json::from_str::<Value>(json).unwrap() {
            Value::Map(m) => m,
            _ => panic!(),
        }
    }

    const OK: &str = r#"{"id":"t1","title":"a","done":true,"createdAt":"2026-01-02T03:04:05Z"}"#;

    fn with(extra: &str) -> Row {
        let mut r = row(OK);
        r.extend(row(extra));
        r
    }

    #[test]
    fn insert_ok_and_columns() {
        let e = todo();
        let r = with(r#"{"order":2,"tags":["x"]}"#);
        validate_insert(&e, &r).unwrap();
        let cols = insert_columns(&e, &r).unwrap();
        let names: Vec<_> = cols.iter().map(|c| c.0).collect();
        assert_eq!(names, columns(&e));
        assert_eq!(cols[4].1, SqlValue::Real(2.0));
        assert_eq!(cols[5].1, SqlValue::Text("[\"x\"]".into()));
        // Absent optionals are Null columns, decoded as null members.
        let cols = insert_columns(&e, &row(OK)).unwrap();
        assert_eq!(cols[4].1, SqlValue::Null);
        let back = decode_row(&e, cols);
        assert_eq!(back.get("order"), Some(&Value::Null));
        assert_eq!(back.get("done"), Some(&Value::Bool(true)));
        // id may be absent when validating only.
        let mut no_id = row(OK);
        no_id.remove("id");
        validate_insert(&e, &no_id).unwrap();
    }

    #[test]
    fn insert_errors() {
        let e = todo();
        let err = |r: &Row| insert_columns(&e, r).unwrap_err();
        let x = err(&with(r#"{"colour":"red"}"#));
        assert_eq!(
            x,
            RowError::UnknownField {
                entity: "Todo".into(),
                field: "colour".into()
            }
        );
        assert_eq!(x.code(), "UNKNOWN_FIELD");
        let x = err(&with(r#"{"done":1}"#));
        assert_eq!(x.code(), "TYPE_MISMATCH");
        assert_eq!(x.to_string(), "Todo.done: expected bool, given int");
        assert_eq!(
            err(&with(r#"{"createdAt":"yesterday"}"#)).code(),
            "TYPE_MISMATCH"
        );
        let mut r = row(OK);
        r.remove("title");
        assert_eq!(
            err(&r),
            RowError::RequiredField {
                entity: "Todo".into(),
                field: "title".into()
            }
        );
        assert_eq!(err(&with(r#"{"title":null}"#)).code(), "REQUIRED_FIELD");
        let mut r = row(OK);
        r.remove("id");
        assert_eq!(
            err(&r),
            RowError::MissingId {
                entity: "Todo".into()
            }
        );
        assert_eq!(
            err(&with(r#"{"id":7}"#)),
            RowError::InvalidId {
                entity: "Todo".into(),
                given: "int"
            }
        );
        assert_eq!(err(&with(r#"{"id":""}"#)).code(), "INVALID_ID");
        assert_eq!(
            validate_insert(&e, &with(r#"{"id":null}"#))
                .unwrap_err()
                .code(),
            "INVALID_ID"
        );
    }

    #[test]
    fn updates() {
        let e = todo();
        let cols = update_columns(&e, &row(r#"{"order":null,"done":false}"#)).unwrap();
        assert_eq!(
            cols,
            vec![("done", SqlValue::Integer(0)), ("order", SqlValue::Null)]
        );
        assert!(update_columns(&e, &Row::new()).unwrap().is_empty());
        let err = |j: &str| validate_update(&e, &row(j)).unwrap_err();
        assert_eq!(
            err(r#"{"id":"t2"}"#),
            RowError::IdImmutable {
                entity: "Todo".into()
            }
        );
        assert_eq!(err(r#"{"id":"t2"}"#).code(), "ID_IMMUTABLE");
        assert_eq!(err(r#"{"nope":1}"#).code(), "UNKNOWN_FIELD");
        assert_eq!(
            err(r#"{"title":null}"#),
            RowError::RequiredField {
                entity: "Todo".into(),
                field: "title".into()
            }
        );
        assert_eq!(err(r#"{"order":"high"}"#).code(), "TYPE_MISMATCH");
    }

    #[test]
    fn decode_skips_unknown_columns() {
        let e = todo();
        let r = decode_row(
            &e,
            [
                ("id", SqlValue::Text("t".into())),
                ("gone", SqlValue::Integer(1)),
            ],
        );
        assert_eq!(r, row(r#"{"id":"t"}"#));
    }
}
