//! Write-behind: applying a shard's outbox to D1.
//!
//! A shard records each committed change as an [`OutboxChange`] with its
//! shard-wide sequence number, and an alarm drains them to D1 in
//! [`OutboxBatch`]es. [`apply_outbox_batch`] writes one batch with ONE D1
//! `batch` call (one transaction): per entity, multi-row upserts keyed by
//! `(_shard, id)` with a seq guard
//!
//! ```sql
//! INSERT INTO "E" ("_shard", "id", <fields>, "_seq", "_deleted") VALUES (...), (...)
//! ON CONFLICT ("_shard", "id") DO UPDATE SET <field> = excluded.<field>, ...,
//!   "_seq" = excluded."_seq", "_deleted" = excluded."_deleted"
//! WHERE excluded."_seq" > "E"."_seq"
//! ```
//!
//! so a retried, duplicated or out-of-order batch never moves a row
//! backwards; a delete is a tombstone (fields null, `_deleted = 1`) under
//! the same guard, so a late upsert of an older seq cannot resurrect it.
//! Then per shard the directory row: live rows recounted, `last_seq` raised
//! (never lowered), `last_change` = the batch's `at` when it raised it.
//!
//! Limits (`store::limits`): at most 100 bound parameters per statement, so
//! an upsert statement carries `100 / (fields + 4)` rows; at most 50
//! statements per batch (directory rows included). [`OutboxBatch::split`]
//! cuts a long outbox into batches that fit; each applies on its own, in
//! any order, any number of times.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::manifest::{insert_columns, Entity, Manifest};
use crate::sql::SqlValue;
use crate::value::{Row, Value};

use super::core::{directory_upsert, q};
use super::error::StoreError;
use super::executor::{D1Executor, Statement};
use super::limits;
use super::schema::{DELETED, SEQ, SHARD};

/// One committed change of a shard's row: its state after the change
/// (`None`: deleted).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutboxChange {
    pub shard: String,
    pub entity: String,
    pub id: String,
    /// The shard's change sequence number; greater is newer.
    pub seq: i64,
    pub row: Option<Row>,
}

/// Changes drained together, and when (`last_change` of the directory,
/// RFC 3339; the engine has no clock).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OutboxBatch {
    pub at: Option<String>,
    pub changes: Vec<OutboxChange>,
    /// The shard's member count for the room list, when it changed
    /// (docs/rooms.md); written after the directory rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<super::rooms::RoomCount>,
}

/// What one application wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboxReport {
    /// Changes after keeping the newest per row.
    pub changes: usize,
    pub statements: usize,
    /// Rows the upserts changed (excluding directory rows); a retried
    /// batch changes none.
    pub rows_changed: u64,
}

/// Rows of `e` one upsert statement can carry.
fn rows_per_statement(e: &Entity) -> Result<usize, StoreError> {
    let cols = e.fields.len() + 4; // _shard, id, _seq, _deleted
    if cols > limits::MAX_PARAMS {
        return Err(StoreError::TooLarge {
            what: "columns of an entity on D1",
            limit: limits::MAX_PARAMS - 4,
        });
    }
    Ok(limits::MAX_PARAMS / cols)
}

impl OutboxBatch {
    pub fn new(at: Option<String>, changes: Vec<OutboxChange>) -> Self {
        OutboxBatch {
            at,
            changes,
            room: None,
        }
    }

    /// Cuts the changes, in their order, into batches that each fit one D1
    /// batch (see the module docs).
    pub fn split(&self, manifest: &Manifest) -> Result<Vec<OutboxBatch>, StoreError> {
        let mut out = Vec::new();
        let mut current = OutboxBatch::new(self.at.clone(), Vec::new());
        let mut per_entity: BTreeMap<&str, usize> = BTreeMap::new();
        let mut shards: Vec<&str> = Vec::new();
        let mut statements = 0;
        for c in &self.changes {
            let e = entity(manifest, &c.entity)?;
            let per = rows_per_statement(e)?;
            let n = per_entity.get(c.entity.as_str()).copied().unwrap_or(0);
            let new_statement = n % per == 0;
            let new_shard = !shards.contains(&c.shard.as_str());
            let cost = new_statement as usize + new_shard as usize;
            if statements + cost > limits::MAX_BATCH_STATEMENTS && !current.changes.is_empty() {
                out.push(std::mem::replace(
                    &mut current,
                    OutboxBatch::new(self.at.clone(), Vec::new()),
                ));
                per_entity.clear();
                shards.clear();
                per_entity.insert(&c.entity, 1);
                shards.push(&c.shard);
                statements = 2;
                current.changes.push(c.clone());
                continue;
            }
            per_entity.insert(&c.entity, n + 1);
            if new_shard {
                shards.push(&c.shard);
            }
            statements += cost;
            current.changes.push(c.clone());
        }
        if !current.changes.is_empty() {
            out.push(current);
        }
        Ok(out)
    }

    /// The statements of the batch: upserts per entity (rows in order of
    /// entity, shard, id; the newest change per row), then directory rows.
    pub fn statements(&self, manifest: &Manifest) -> Result<Vec<Statement>, StoreError> {
        // Newest change per (entity, shard, id).
        let mut newest: BTreeMap<(&str, &str, &str), &OutboxChange> = BTreeMap::new();
        let mut shard_seq: BTreeMap<&str, i64> = BTreeMap::new();
        for c in &self.changes {
            entity(manifest, &c.entity)?;
            let key = (c.entity.as_str(), c.shard.as_str(), c.id.as_str());
            match newest.get(&key) {
                Some(old) if old.seq >= c.seq => {}
                _ => {
                    newest.insert(key, c);
                }
            }
            let s = shard_seq.entry(&c.shard).or_insert(c.seq);
            *s = (*s).max(c.seq);
        }
        let mut out = Vec::new();
        let mut by_entity: BTreeMap<&str, Vec<&OutboxChange>> = BTreeMap::new();
        for ((e, _, _), c) in newest {
            by_entity.entry(e).or_default().push(c);
        }
        for (name, changes) in by_entity {
            let e = entity(manifest, name)?;
            let per = rows_per_statement(e)?;
            for chunk in changes.chunks(per) {
                out.push(upsert(e, chunk)?);
            }
        }
        for (shard, seq) in shard_seq {
            out.push(directory_upsert(manifest, shard, seq, self.at.as_deref()));
        }
        if let Some(room) = &self.room {
            out.extend(room.statements(self.at.as_deref()));
        }
        Ok(out)
    }
}

fn entity<'m>(manifest: &'m Manifest, name: &str) -> Result<&'m Entity, StoreError> {
    manifest
        .entity(name)
        .ok_or_else(|| StoreError::UnknownEntity {
            entity: name.to_owned(),
        })
}

/// One multi-row upsert with the seq guard.
fn upsert(e: &Entity, changes: &[&OutboxChange]) -> Result<Statement, StoreError> {
    let width = e.fields.len() + 4;
    let mut params = Vec::with_capacity(changes.len() * width);
    for c in changes {
        params.push(SqlValue::Text(c.shard.clone()));
        match &c.row {
            Some(row) => {
                let mut row = row.clone();
                match row.get("id") {
                    None => {
                        row.insert("id".into(), Value::from(c.id.as_str()));
                    }
                    Some(Value::Text(id)) if *id == c.id => {}
                    Some(_) => {
                        return Err(StoreError::bad(format!(
                            "outbox change of {} {:?} carries another id",
                            e.name, c.id
                        )))
                    }
                }
                params.extend(insert_columns(e, &row)?.into_iter().map(|c| c.1));
                params.push(SqlValue::Integer(c.seq));
                params.push(SqlValue::Integer(0));
            }
            None => {
                params.push(SqlValue::Text(c.id.clone()));
                params.extend(e.fields.iter().map(|_| SqlValue::Null));
                params.push(SqlValue::Integer(c.seq));
                params.push(SqlValue::Integer(1));
            }
        }
    }
    let mut names = vec![q(SHARD), q("id")];
    names.extend(e.fields.iter().map(|f| q(&f.name)));
    names.push(q(SEQ));
    names.push(q(DELETED));
    let tuple = format!("({})", vec!["?"; width].join(", "));
    let mut set: Vec<String> = e
        .fields
        .iter()
        .map(|f| format!("{0} = excluded.{0}", q(&f.name)))
        .collect();
    set.push(format!("{0} = excluded.{0}", q(SEQ)));
    set.push(format!("{0} = excluded.{0}", q(DELETED)));
    let sql = format!(
        "INSERT INTO {t} ({}) VALUES {} ON CONFLICT ({}, {}) DO UPDATE SET {} WHERE excluded.{seq} > {t}.{seq}",
        names.join(", "),
        vec![tuple; changes.len()].join(", "),
        q(SHARD),
        q("id"),
        set.join(", "),
        t = q(&e.name),
        seq = q(SEQ),
    );
    Ok(Statement::new(sql, params))
}

/// Applies one outbox batch to D1 in one `batch` call (see the module
/// docs). `TOO_LARGE` if it needs more than `limits::MAX_BATCH_STATEMENTS`
/// statements: [`OutboxBatch::split`] it first. On error nothing was
/// applied; retrying the same batch is always safe.
pub async fn apply_outbox_batch<E: D1Executor>(
    executor: &E,
    manifest: &Manifest,
    batch: &OutboxBatch,
) -> Result<OutboxReport, StoreError> {
    let statements = batch.statements(manifest)?;
    if statements.len() > limits::MAX_BATCH_STATEMENTS {
        return Err(StoreError::TooLarge {
            what: "statements in one batch",
            limit: limits::MAX_BATCH_STATEMENTS,
        });
    }
    if statements.is_empty() {
        return Ok(OutboxReport::default());
    }
    let upserts = statements
        .iter()
        .filter(|s| !s.sql.starts_with("INSERT INTO _pylon_shards"))
        // The room list's statements come last, like the directory's.
        .filter(|s| !s.sql.contains(super::rooms::ROOMS))
        .count();
    let n = statements.len();
    let changed = executor.batch(statements).await?;
    let changes = {
        let mut keys: Vec<(&str, &str, &str)> = batch
            .changes
            .iter()
            .map(|c| (c.entity.as_str(), c.shard.as_str(), c.id.as_str()))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys.len()
    };
    Ok(OutboxReport {
        changes,
        statements: n,
        rows_changed: changed.iter().take(upserts).sum(),
    })
}
