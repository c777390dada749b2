//! One op of a mutation applied to the rows under the write policies; a
//! refusal says no more than the caller may read (see `shard::refusal`).

use super::errors::{err, row_err, storage_err};
use super::ShardEngine;
use crate::live::Change;
use crate::manifest::{self, Entity};
use crate::policy::AuthContext;
use crate::protocol::{ErrorCode, ErrorMsg, Op};
use crate::shard::refusal;
use crate::sql::SqlValue;
use crate::storage::{SqlConn, StorageError};
use crate::value::{Row, Value};

/// A row's encoded columns, as `manifest::insert_columns` gives them.
type Columns<'e> = Vec<(&'e str, SqlValue)>;

pub(super) fn id_of(row: &Row) -> &str {
    row.get("id").and_then(|v| v.as_str()).unwrap_or_default()
}

impl<C: SqlConn> ShardEngine<C> {
    /// `earlier`: the changes this mutation (or call) has applied so far,
    /// which no window has seen yet.
    pub(super) fn apply_op(
        &self,
        auth: &AuthContext,
        op: Op,
        seq: u64,
        idx: usize,
        earlier: &[Change],
    ) -> Result<Change, ErrorMsg> {
        let entity = self.entity(op.entity())?;
        let policies = self.manifest.policies();
        let denied = |d: crate::policy::Denial<'_>| err(ErrorCode::Forbidden, d.to_string());
        let store = &self.store;
        let name = entity.name.clone();
        // Rows the caller cannot read are answered for as if absent, unless
        // a policy lets the caller write them (see `refusal`).
        let can_see = |row: &Row| policies.can_read(&name, auth, row).is_allowed();
        match op {
            Op::Insert { mut row, .. } => {
                if !row.contains_key("id") {
                    // Ids the server makes are unique within the shard.
                    row.insert("id".into(), Value::Text(format!("s{seq}.{idx}")));
                }
                let (new, cols) = self.insertable(entity, auth, &row)?;
                let id = id_of(&new).to_owned();
                let inserted = store
                    .insert_new_row(entity, &cols)
                    .map_err(|e| self.write_failed(entity, auth, "insert", &id, &cols, &e))?;
                if !inserted {
                    let existing = store.get_row(entity, &id).map_err(|e| storage_err(&e))?;
                    return Err(if existing.as_ref().is_some_and(can_see) {
                        err(
                            ErrorCode::AlreadyExists,
                            format!("{name} {id:?} already exists"),
                        )
                    } else {
                        refusal::refused("insert", &name)
                    });
                }
                Ok(Change {
                    entity: name,
                    before: None,
                    after: Some(new),
                })
            }
            Op::Update { id, set, .. } => {
                let cols = manifest::update_columns(entity, &set).map_err(|e| row_err(&e))?;
                let before = self
                    .stored_row(entity, &id, earlier)?
                    .ok_or_else(|| refusal::not_found(&name, &id))?;
                self.update(entity, auth, before, &id, &set, &cols)
            }
            Op::Upsert { row, .. } => {
                let id = match row.get("id") {
                    Some(Value::Text(id)) if !id.is_empty() => id.clone(),
                    _ => return Err(err(ErrorCode::BadMessage, "upsert needs the row's id")),
                };
                let Some(before) = self.stored_row(entity, &id, earlier)? else {
                    let insert = Op::Insert { entity: name, row };
                    return self.apply_op(auth, insert, seq, idx, earlier);
                };
                let mut set = row.clone();
                set.remove("id");
                if !can_see(&before)
                    && !policies.can_update(&name, auth, &before, &set).is_allowed()
                {
                    // Answered as the insert it would be were the row absent.
                    self.insertable(entity, auth, &row)?;
                    return Err(refusal::refused("insert", &name));
                }
                let cols = manifest::update_columns(entity, &set).map_err(|e| row_err(&e))?;
                self.update(entity, auth, before, &id, &set, &cols)
            }
            Op::Delete { id, .. } => {
                let before = self
                    .stored_row(entity, &id, earlier)?
                    .ok_or_else(|| refusal::not_found(&name, &id))?;
                if let crate::policy::Decision::Deny(d) = policies.can_delete(&name, auth, &before)
                {
                    return Err(if can_see(&before) {
                        denied(d)
                    } else {
                        refusal::not_found(&name, &id)
                    });
                }
                store.delete_row(entity, &id).map_err(|e| storage_err(&e))?;
                Ok(Change {
                    entity: name,
                    before: Some(before),
                    after: None,
                })
            }
        }
    }

    /// Row `id` as stored now (the before-image of an update, upsert or
    /// delete): a window's copy when one holds it, which saves the write
    /// a statement, else a read. A row among `earlier` is always read: the
    /// windows have not seen this mutation's own writes yet.
    fn stored_row(
        &self,
        entity: &Entity,
        id: &str,
        earlier: &[Change],
    ) -> Result<Option<Row>, ErrorMsg> {
        let written = earlier
            .iter()
            .any(|c| c.entity == entity.name && c.id() == Some(id));
        if !written {
            if let Some(row) = self.held_row(&entity.name, id) {
                return Ok(Some(row.clone()));
            }
        }
        self.store.get_row(entity, id).map_err(|e| storage_err(&e))
    }

    /// A row to insert, checked against the manifest and the insert
    /// policies: the row as it will be stored, and its encoded columns.
    fn insertable<'e>(
        &self,
        entity: &'e Entity,
        auth: &AuthContext,
        row: &Row,
    ) -> Result<(Row, Columns<'e>), ErrorMsg> {
        let cols = manifest::insert_columns(entity, row).map_err(|e| row_err(&e))?;
        let new = manifest::decode_row(entity, cols.iter().map(|(c, v)| (*c, v.clone())));
        if let crate::policy::Decision::Deny(d) =
            self.manifest
                .policies()
                .can_insert(&entity.name, auth, &new)
        {
            return Err(err(ErrorCode::Forbidden, d.to_string()));
        }
        Ok((new, cols))
    }

    /// The answer to an `action` that storage refused: a unique clash names
    /// its field(s) when the caller may read the row it clashes with, and
    /// is the generic refusal otherwise; anything else is `INTERNAL`.
    /// `cols`: the row's columns as written (all of them).
    fn write_failed(
        &self,
        entity: &Entity,
        auth: &AuthContext,
        action: &str,
        id: &str,
        cols: &[(&str, SqlValue)],
        e: &StorageError,
    ) -> ErrorMsg {
        if !e.is_unique_violation() {
            return storage_err(e);
        }
        match self.store.unique_clash(entity, id, cols) {
            Ok(Some((fields, row))) => {
                let policies = self.manifest.policies();
                if policies.can_read(&entity.name, auth, &row).is_allowed() {
                    refusal::unique_violation(&entity.name, &fields)
                } else {
                    refusal::refused(action, &entity.name)
                }
            }
            Ok(None) => refusal::refused(action, &entity.name),
            Err(e) => storage_err(&e),
        }
    }

    fn update(
        &self,
        entity: &Entity,
        auth: &AuthContext,
        before: Row,
        id: &str,
        set: &Row,
        cols: &[(&str, SqlValue)],
    ) -> Result<Change, ErrorMsg> {
        let policies = self.manifest.policies();
        if let crate::policy::Decision::Deny(d) =
            policies.can_update(&entity.name, auth, &before, set)
        {
            return Err(
                if policies.can_read(&entity.name, auth, &before).is_allowed() {
                    err(ErrorCode::Forbidden, d.to_string())
                } else {
                    refusal::not_found(&entity.name, id)
                },
            );
        }
        self.store.set_columns(entity, id, cols).map_err(|e| {
            // The whole row as it would be, to find what it clashes with.
            let mut whole = manifest::insert_columns(entity, &before).unwrap_or_default();
            for (c, v) in cols {
                match whole.iter_mut().find(|(w, _)| w == c) {
                    Some(slot) => slot.1 = v.clone(),
                    None => whole.push((c, v.clone())),
                }
            }
            self.write_failed(entity, auth, "update", id, &whole, &e)
        })?;
        let after = updated(entity, &before, cols);
        Ok(Change {
            entity: entity.name.clone(),
            before: Some(before),
            after: Some(after),
        })
    }
}

/// `before` (the row as stored) with `cols` written: the row as a read
/// would now give it, since written columns decode to what storage gives
/// back (as an insert's row does, `insertable`).
fn updated(entity: &Entity, before: &Row, cols: &[(&str, SqlValue)]) -> Row {
    let mut after = before.clone();
    after.extend(manifest::decode_row(
        entity,
        cols.iter().map(|(c, v)| (*c, v.clone())),
    ));
    after
}
