//! What a shard keeps in its SQLite storage, beside the manifest's tables:
//! the change log (`_pylon_log`), applied op ids (`_pylon_ops`), live
//! subscriptions (`_pylon_subs`), presence (`_pylon_presence`), the
//! write-behind outbox to D1 (`_pylon_outbox`) and the jobs mutations
//! enqueued (`_pylon_job_outbox`, [`job_outbox`]). All of it
//! over [`SqlConn`], so it runs on Durable Object storage and rusqlite alike.
//!
//! Every write of a mutation (rows, log, outbox, op id, seq) is made in one event
//! with no I/O await in between, which Durable Objects commit atomically;
//! the output gate holds the acks and diffs until that commit is durable.

use std::collections::HashMap;
use std::fmt::Write;

use crate::live::{Change, WindowSource};
use crate::manifest::{self, Entity, Manifest};
use crate::query::Query;
use crate::sql::SqlValue;
use crate::storage::{SqlConn, StorageError};
use crate::value::{Row, Value};

use crate::storage::meta::Meta;

mod bulk;
mod job_outbox;
mod members;
use bulk::Rows;

/// The columns `record_writes` fills, per table.
const LOG_COLS: &[&str] = &["seq", "idx", "entity", "id", "before", "after", "at"];
const OUTBOX_COLS: &[&str] = &["seq", "idx", "entity", "id", "row", "at"];
const OPS_COLS: &[&str] = &["op", "seq", "at"];
pub use job_outbox::OutboxJob;

/// Meta key of the shard's current seq.
pub const SEQ: &str = "seq";
/// Meta key of the manifest source last applied to the tables.
const SCHEMA: &str = "schema";
/// Meta key of the fingerprint of [`TABLES`] last run.
const LAYOUT: &str = "layout";

// Every table is keyed by its primary key (`WITHOUT ROWID`): a row written
// is then one b-tree entry, where a rowid table with a text or composite key
// writes the row and its key index, and the platform bills each (a log
// entry, an outbox entry and an op id are written per write, and the
// outbox entry deleted again). Tables made before this layout keep theirs
// and work the same, at the old row count.
const TABLES: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS _pylon_log (seq INTEGER NOT NULL, idx INTEGER NOT NULL, \
     entity TEXT NOT NULL, id TEXT NOT NULL, before TEXT, after TEXT, at INTEGER NOT NULL, \
     PRIMARY KEY (seq, idx)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS _pylon_ops (op TEXT PRIMARY KEY NOT NULL, seq INTEGER NOT NULL, \
     at INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS _pylon_ops_at ON _pylon_ops (at)",
    // What a function call with an op id returned, for the answer to its
    // retry (docs/functions.md); dropped with the op id.
    "CREATE TABLE IF NOT EXISTS _pylon_fn_results (op TEXT PRIMARY KEY NOT NULL, \
     value TEXT NOT NULL) WITHOUT ROWID",
    // Mutations scheduled by functions (docs/functions.md, "Scheduled
    // functions"), run on the shard's alarm as the caller that scheduled them.
    "CREATE TABLE IF NOT EXISTS _pylon_scheduled (id TEXT PRIMARY KEY NOT NULL, \
     at INTEGER NOT NULL, name TEXT NOT NULL, args TEXT NOT NULL, auth TEXT NOT NULL) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS _pylon_scheduled_at ON _pylon_scheduled (at)",
    // Watched query functions, rebuilt after a wake like subscriptions:
    // `reads` (a JSON array of entity names) says which writes re-run it.
    "CREATE TABLE IF NOT EXISTS _pylon_watches (key TEXT PRIMARY KEY NOT NULL, \
     conn TEXT NOT NULL, id TEXT NOT NULL, name TEXT NOT NULL, args TEXT NOT NULL, \
     reads TEXT NOT NULL, seq INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS _pylon_subs (key TEXT PRIMARY KEY NOT NULL, conn TEXT NOT NULL, \
     id TEXT NOT NULL, query TEXT NOT NULL, seq INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS _pylon_subs_conn ON _pylon_subs (conn)",
    // The last seq each shared window sent a diff at; a subscription's own
    // row keeps the seq it was answered at. Its next diff's `from` is the
    // larger of the two (see ShardEngine), so a write updates one row per
    // window instead of one per subscriber.
    "CREATE TABLE IF NOT EXISTS _pylon_windows (ident TEXT PRIMARY KEY NOT NULL, \
     seq INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS _pylon_presence (conn TEXT PRIMARY KEY NOT NULL, \
     state TEXT NOT NULL) WITHOUT ROWID",
    // Room members added over HTTP (docs/rooms.md): their presence is in
    // `_pylon_presence` under `member:{id}`; `expires` (ms) NULL = none.
    "CREATE TABLE IF NOT EXISTS _pylon_members (conn TEXT PRIMARY KEY NOT NULL, \
     expires INTEGER) WITHOUT ROWID",
    // Changes not yet copied to D1, in commit order; `row` NULL = deleted.
    "CREATE TABLE IF NOT EXISTS _pylon_outbox (seq INTEGER NOT NULL, idx INTEGER NOT NULL, \
     entity TEXT NOT NULL, id TEXT NOT NULL, row TEXT, at INTEGER NOT NULL, \
     PRIMARY KEY (seq, idx)) WITHOUT ROWID",
    // Jobs committed mutations enqueued, not yet taken by the jobs ledger,
    // in commit order; `request` is a `JobRequest` as JSON.
    "CREATE TABLE IF NOT EXISTS _pylon_job_outbox (seq INTEGER NOT NULL, \
     idx INTEGER NOT NULL, request TEXT NOT NULL, at INTEGER NOT NULL, \
     PRIMARY KEY (seq, idx)) WITHOUT ROWID",
];

/// A fingerprint of [`TABLES`] (FNV-1a): a release that changes them runs
/// them again on the first wake, without a version to bump by hand.
fn layout_fingerprint() -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in TABLES.iter().flat_map(|t| t.bytes().chain([0])) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

/// One entry of the change log: a row of `entity` before and after the
/// change at (`seq`, `idx`). `None` is "did not exist".
#[derive(Clone, Debug, PartialEq)]
pub struct LogEntry {
    pub seq: u64,
    pub entity: String,
    pub id: String,
    pub before: Option<Row>,
    pub after: Option<Row>,
}

/// One change waiting in the outbox: row `id` of `entity` after the
/// mutation `seq` (`None`: deleted), written at `at_ms`.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxEntry {
    pub seq: u64,
    pub idx: u64,
    pub entity: String,
    pub id: String,
    pub row: Option<Row>,
    pub at_ms: i64,
}

/// One applied mutation, to be recorded by [`ShardStore::record_writes`]:
/// its seq, op id (empty: none), when, and its changes in order.
#[derive(Clone, Copy, Debug)]
pub struct WriteRecord<'a> {
    pub seq: u64,
    pub op: &'a str,
    pub at_ms: i64,
    pub changes: &'a [Change],
}

/// A subscription as stored: enough to rebuild it after the object wakes.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredSub {
    pub conn: String,
    pub id: String,
    /// The query JSON (as the client sent it, normalised).
    pub query: Value,
    /// The last seq this subscription's client was sent.
    pub seq: u64,
}

/// A mutation a function scheduled: run at `at_ms` as `auth`.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduledCall {
    pub id: String,
    pub at_ms: i64,
    pub name: String,
    pub args: Value,
    pub auth: crate::policy::AuthContext,
}

/// A watched query function as stored: enough to re-run it after a wake
/// when one of the entities it read changes.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredWatch {
    pub conn: String,
    pub id: String,
    pub name: String,
    pub args: Value,
    pub reads: std::collections::BTreeSet<String>,
}

/// A failure to set up the shard's schema.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Migration(#[from] manifest::MigrationError),
    #[error("the manifest stored in this shard no longer loads: {0}")]
    Stored(manifest::ManifestError),
}

pub struct ShardStore<C: SqlConn> {
    conn: C,
    /// The stored seq, once read: only this store writes it, so every
    /// mutation need not read it back.
    seq: std::cell::Cell<Option<u64>>,
    /// Each entity's quoted column list (`"id", "title", …`), built once:
    /// every row read and update returns it (the manifest of a store does
    /// not change while it is open).
    column_lists: std::cell::RefCell<HashMap<String, std::rc::Rc<str>>>,
    /// The text of each `INSERT … VALUES (?1, …), (…)` of the runtime's
    /// tables by (table, parameters), built once: a flush records its
    /// writes in up to three of them.
    bulk_inserts: std::cell::RefCell<HashMap<(&'static str, usize), String>>,
}

fn text(v: &SqlValue) -> Option<&str> {
    match v {
        SqlValue::Text(t) => Some(t),
        _ => None,
    }
}

fn int(v: &SqlValue) -> i64 {
    match v {
        SqlValue::Integer(i) => *i,
        _ => 0,
    }
}

/// A count or seq: never negative.
fn uint(v: &SqlValue) -> u64 {
    int(v).max(0) as u64
}

/// The first column of the first row as a count (0: no row).
fn first_uint(rows: &[Vec<SqlValue>]) -> u64 {
    rows.first().and_then(|r| r.first()).map_or(0, uint)
}

/// `"a", "b", …`: the columns of a SELECT or RETURNING.
fn column_list(cols: &[&str]) -> String {
    let quoted: Vec<String> = cols.iter().map(|c| manifest::quote_ident(c)).collect();
    quoted.join(", ")
}

/// `INSERT INTO entity (cols) VALUES (?1, …)` then `tail`, and its
/// parameters.
fn insert_statement(
    entity: &Entity,
    cols: &[(&str, SqlValue)],
    tail: &str,
) -> (String, Vec<SqlValue>) {
    let names: Vec<String> = cols.iter().map(|(c, _)| manifest::quote_ident(c)).collect();
    let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    let sql = format!(
        "INSERT INTO {} ({}) VALUES ({}){tail}",
        manifest::quote_ident(&entity.name),
        names.join(", "),
        marks.join(", ")
    );
    (sql, cols.iter().map(|(_, v)| v.clone()).collect())
}

/// The first row of `rows` (of the columns `cols`) as a row of `entity`.
fn first_row(entity: &Entity, cols: &[&str], rows: Vec<Vec<SqlValue>>) -> Option<Row> {
    rows.into_iter()
        .next()
        .map(|values| manifest::decode_row(entity, cols.iter().copied().zip(values)))
}

/// `UPDATE entity SET col = ?1, … WHERE "id" = ?n` (the id last).
fn update_sql(entity: &Entity, cols: &[(&str, SqlValue)]) -> String {
    let mut sql = format!("UPDATE {} SET ", manifest::quote_ident(&entity.name));
    for (i, (c, _)) in cols.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        let _ = write!(sql, "{sep}{} = ?{}", manifest::quote_ident(c), i + 1);
    }
    let _ = write!(sql, " WHERE \"id\" = ?{}", cols.len() + 1);
    sql
}

fn update_params(id: &str, cols: &[(&str, SqlValue)]) -> Vec<SqlValue> {
    let mut params: Vec<SqlValue> = cols.iter().map(|(_, v)| v.clone()).collect();
    params.push(SqlValue::Text(id.into()));
    params
}

/// A row as the JSON text stored in the log and the outbox (null: none).
fn row_text(row: &Option<Row>) -> SqlValue {
    row.as_ref().map_or(SqlValue::Null, |r| {
        SqlValue::Text(serde_json::to_string(r).expect("rows always serialize to JSON"))
    })
}

fn parse_row(v: &SqlValue) -> Option<Row> {
    text(v).and_then(|t| serde_json::from_str(t).ok())
}

/// A value stored as JSON text (null if it is not).
fn json_value(v: &SqlValue) -> Value {
    text(v)
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}

fn sub_key(conn: &str, id: &str) -> String {
    format!("{conn}\u{1f}{id}")
}

impl<C: SqlConn> ShardStore<C> {
    pub fn new(conn: C) -> Self {
        Self {
            conn,
            seq: std::cell::Cell::new(None),
            column_lists: Default::default(),
            bulk_inserts: Default::default(),
        }
    }

    /// [`column_list`] of all of `entity`'s columns ([`manifest::columns`]).
    fn columns_of(&self, entity: &Entity) -> std::rc::Rc<str> {
        if let Some(list) = self.column_lists.borrow().get(&entity.name) {
            return list.clone();
        }
        let list: std::rc::Rc<str> = column_list(&manifest::columns(entity)).into();
        self.column_lists
            .borrow_mut()
            .insert(entity.name.clone(), list.clone());
        list
    }

    pub fn conn(&self) -> &C {
        &self.conn
    }

    /// Runs a statement whose rows, if any, are not wanted.
    fn run(&self, sql: &str, params: &[SqlValue]) -> Result<(), StorageError> {
        self.conn.exec(sql, params).map(drop)
    }

    /// Runs a query and maps each of its rows with `each`.
    fn read<T>(
        &self,
        sql: &str,
        params: &[SqlValue],
        each: impl FnMut(Vec<SqlValue>) -> T,
    ) -> Result<Vec<T>, StorageError> {
        Ok(self.conn.exec(sql, params)?.into_iter().map(each).collect())
    }

    /// The meta table; created by [`ShardStore::ensure_schema`].
    pub fn meta(&self) -> Result<Meta<'_, C>, StorageError> {
        Ok(Meta::existing(&self.conn))
    }

    /// Creates the runtime's tables and brings the manifest's tables up to
    /// `manifest` with an additive migration. Refuses destructive changes.
    ///
    /// On a wake, with the same manifest and the same runtime tables as
    /// when the object was made, this is one read: the first answer after
    /// an eviction waits for nothing it does not need.
    pub fn ensure_schema(&self, manifest: &Manifest) -> Result<(), SchemaError> {
        let layout = SqlValue::Integer(layout_fingerprint());
        let stored = self.stored_schema();
        if let Some((schema, stored_layout)) = &stored {
            if schema.as_deref() == Some(manifest.source()) && *stored_layout == layout {
                return Ok(());
            }
        }
        for sql in TABLES {
            self.conn.exec(sql, &[])?;
        }
        let meta = Meta::open(&self.conn)?;
        meta.set(LAYOUT, layout)?;
        let stored = meta.text(SCHEMA)?;
        if stored.as_deref() == Some(manifest.source()) {
            return Ok(());
        }
        let applied = match &stored {
            Some(src) => Some(Manifest::from_json_str(src).map_err(SchemaError::Stored)?),
            None => None,
        };
        let plan = manifest::plan_migration(applied.as_ref(), manifest)?;
        for sql in &plan {
            self.conn.exec(sql, &[])?;
        }
        meta.set_text(SCHEMA, manifest.source())?;
        Ok(())
    }

    /// The stored manifest source and layout fingerprint, in one read;
    /// `None` when there is no meta table yet (a new object).
    fn stored_schema(&self) -> Option<(Option<String>, SqlValue)> {
        let [schema, layout] = Meta::existing(&self.conn).values([SCHEMA, LAYOUT]).ok()?;
        let schema = match schema {
            Some(SqlValue::Text(s)) => Some(s),
            _ => None,
        };
        Some((schema, layout.unwrap_or(SqlValue::Null)))
    }

    pub fn seq(&self) -> Result<u64, StorageError> {
        if let Some(seq) = self.seq.get() {
            return Ok(seq);
        }
        let seq = self.meta()?.int(SEQ)?.max(0) as u64;
        self.seq.set(Some(seq));
        Ok(seq)
    }

    /// Records the changes of `writes` (in seq order, seqs following the
    /// stored one without gaps): their log entries, their outbox entries,
    /// their op ids and the new seq, in one statement per table however
    /// many writes a flush holds. Made in the same event as the row writes,
    /// so the runtime commits them together.
    pub fn record_writes(&self, writes: &[WriteRecord<'_>]) -> Result<(), StorageError> {
        let Some(last) = writes.last() else {
            return Ok(());
        };
        let mut log = Rows::new("_pylon_log", LOG_COLS);
        let mut outbox = Rows::new("_pylon_outbox", OUTBOX_COLS);
        let mut ops = Rows::new("_pylon_ops", OPS_COLS);
        for w in writes {
            let (seq, at) = (SqlValue::Integer(w.seq as i64), SqlValue::Integer(w.at_ms));
            for (idx, ch) in w.changes.iter().enumerate() {
                let id = ch.id().unwrap_or_default();
                let after = row_text(&ch.after);
                // The outbox gets each row's final state in this mutation (a
                // row written twice in one seq must reach D1 as its last write).
                let last_of_row = !w.changes[idx + 1..]
                    .iter()
                    .any(|later| later.entity == ch.entity && later.id() == Some(id));
                if last_of_row {
                    outbox.push([
                        seq.clone(),
                        SqlValue::Integer(idx as i64),
                        SqlValue::Text(ch.entity.clone()),
                        SqlValue::Text(id.to_owned()),
                        after.clone(),
                        at.clone(),
                    ]);
                }
                log.push([
                    seq.clone(),
                    SqlValue::Integer(idx as i64),
                    SqlValue::Text(ch.entity.clone()),
                    SqlValue::Text(id.to_owned()),
                    row_text(&ch.before),
                    after,
                    at.clone(),
                ]);
            }
            if !w.op.is_empty() {
                ops.push([SqlValue::Text(w.op.to_owned()), seq, at]);
            }
        }
        // Unknown until the record succeeds: a failed one leaves it unread.
        self.seq.set(None);
        let recorded = self
            .insert_records(log, outbox, ops)
            .and_then(|()| self.meta()?.set(SEQ, SqlValue::Integer(last.seq as i64)));
        if let Err(e) = recorded {
            // Nothing of these seqs may stay (the rows are put back by the
            // caller); a failure here too leaves it to the runtime, which
            // discards an event's writes when storage itself broke.
            let first = writes[0].seq as i64;
            for sql in [
                "DELETE FROM _pylon_log WHERE seq >= ?1",
                "DELETE FROM _pylon_outbox WHERE seq >= ?1",
                "DELETE FROM _pylon_ops WHERE seq >= ?1",
            ] {
                let _ = self.conn.exec(sql, &[SqlValue::Integer(first)]);
            }
            return Err(e);
        }
        self.seq.set(Some(last.seq));
        Ok(())
    }

    fn insert_records(&self, log: Rows, outbox: Rows, ops: Rows) -> Result<(), StorageError> {
        self.insert_many(log)?;
        self.insert_many(outbox)?;
        self.insert_many(ops)
    }

    // ---- rows ----

    pub fn get_row(&self, entity: &Entity, id: &str) -> Result<Option<Row>, StorageError> {
        let cols = manifest::columns(entity);
        let sql = format!(
            "SELECT {} FROM {} WHERE \"id\" = ?1",
            self.columns_of(entity),
            manifest::quote_ident(&entity.name)
        );
        let rows = self.conn.exec(&sql, &[SqlValue::Text(id.into())])?;
        Ok(first_row(entity, &cols, rows))
    }

    /// Inserts encoded columns (from `manifest::insert_columns`).
    pub fn insert_row(
        &self,
        entity: &Entity,
        cols: &[(&str, SqlValue)],
    ) -> Result<(), StorageError> {
        let (sql, params) = insert_statement(entity, cols, "");
        self.run(&sql, &params)
    }

    /// Inserts encoded columns unless a row with their id exists: whether
    /// it did insert. One statement where a read for the id and the insert
    /// were two (another unique column's clash is still an error).
    pub fn insert_new_row(
        &self,
        entity: &Entity,
        cols: &[(&str, SqlValue)],
    ) -> Result<bool, StorageError> {
        let tail = " ON CONFLICT(\"id\") DO NOTHING RETURNING 1";
        let (sql, params) = insert_statement(entity, cols, tail);
        Ok(!self.conn.exec(&sql, &params)?.is_empty())
    }

    /// Writes encoded columns (from `manifest::update_columns`) of row `id`,
    /// which the caller knows is there (it holds the row's before-image,
    /// so the row after is that image with these columns): no `RETURNING`,
    /// for which SQLite builds a temporary table on every statement. A
    /// missing row is no error; nothing is written.
    pub fn set_columns(
        &self,
        entity: &Entity,
        id: &str,
        cols: &[(&str, SqlValue)],
    ) -> Result<(), StorageError> {
        if cols.is_empty() {
            return Ok(());
        }
        self.run(&update_sql(entity, cols), &update_params(id, cols))
    }

    pub fn delete_row(&self, entity: &Entity, id: &str) -> Result<(), StorageError> {
        let sql = format!(
            "DELETE FROM {} WHERE \"id\" = ?1",
            manifest::quote_ident(&entity.name)
        );
        self.run(&sql, &[SqlValue::Text(id.into())])
    }

    /// Puts row `id` back as it was (`None`: absent). Used to undo the
    /// earlier ops of a mutation when a later one fails.
    pub fn restore_row(
        &self,
        entity: &Entity,
        id: &str,
        row: Option<&Row>,
    ) -> Result<(), StorageError> {
        self.delete_row(entity, id)?;
        if let Some(row) = row {
            let cols = manifest::insert_columns(entity, row)
                .map_err(|e| StorageError::new(format!("restoring {id}: {e}"), "restore"))?;
            self.insert_row(entity, &cols)?;
        }
        Ok(())
    }

    pub fn count_rows(&self, entity: &Entity) -> Result<u64, StorageError> {
        let sql = format!(
            "SELECT count(*) FROM {}",
            manifest::quote_ident(&entity.name)
        );
        Ok(first_uint(&self.conn.exec(&sql, &[])?))
    }

    /// Runs a compiled query and decodes its rows.
    pub fn query_rows(&self, query: &Query) -> Result<Vec<Row>, StorageError> {
        let (sql, params) = query.to_sql();
        let rows = self.conn.exec(&sql, &params)?;
        if query.count {
            return Ok(Vec::new());
        }
        Ok(rows.into_iter().map(|r| query.decode_row(r)).collect())
    }

    /// The rows matching a query's filter (its `limit` and cursor ignored).
    pub fn count_matching(&self, query: &Query) -> Result<u64, StorageError> {
        let q = Query {
            count: true,
            ..query.clone()
        };
        let (sql, params) = q.to_sql();
        Ok(first_uint(&self.conn.exec(&sql, &params)?))
    }

    /// The first stored row, other than `id`, that holds the same values
    /// as `cols` in every field of one of the entity's unique constraints
    /// (a unique field, or a unique index), with that constraint's fields.
    /// Null values never clash (SQLite's UNIQUE allows many nulls).
    pub fn unique_clash(
        &self,
        entity: &Entity,
        id: &str,
        cols: &[(&str, SqlValue)],
    ) -> Result<Option<(Vec<String>, Row)>, StorageError> {
        let all = manifest::columns(entity);
        for fields in entity.unique_constraints() {
            let values: Option<Vec<SqlValue>> = fields
                .iter()
                .map(|f| {
                    cols.iter()
                        .find(|(c, _)| c == f)
                        .map(|(_, v)| v.clone())
                        .filter(|v| *v != SqlValue::Null)
                })
                .collect();
            let Some(mut params) = values else {
                continue;
            };
            let conds: Vec<String> = fields
                .iter()
                .enumerate()
                .map(|(i, f)| format!("{} = ?{}", manifest::quote_ident(f), i + 1))
                .collect();
            let sql = format!(
                "SELECT {} FROM {} WHERE {} AND \"id\" != ?{} LIMIT 1",
                column_list(&all),
                manifest::quote_ident(&entity.name),
                conds.join(" AND "),
                fields.len() + 1
            );
            params.push(SqlValue::Text(id.into()));
            if let Some(row) = first_row(entity, &all, self.conn.exec(&sql, &params)?) {
                return Ok(Some((fields, row)));
            }
        }
        Ok(None)
    }

    // ---- change log ----

    /// Entries with seq > `since`, in order.
    pub fn log_since(&self, since: u64) -> Result<Vec<LogEntry>, StorageError> {
        self.read(
            "SELECT seq, entity, id, before, after FROM _pylon_log WHERE seq > ?1 ORDER BY seq, idx",
            &[SqlValue::Integer(since as i64)],
            |r| LogEntry {
                seq: int(&r[0]) as u64,
                entity: text(&r[1]).unwrap_or_default().to_owned(),
                id: text(&r[2]).unwrap_or_default().to_owned(),
                before: parse_row(&r[3]),
                after: parse_row(&r[4]),
            },
        )
    }

    /// The oldest and newest seq still in the log, if any.
    pub fn log_range(&self) -> Result<Option<(u64, u64)>, StorageError> {
        let rows = self
            .conn
            .exec("SELECT min(seq), max(seq), count(*) FROM _pylon_log", &[])?;
        Ok(rows.first().and_then(|r| match (&r[0], &r[1]) {
            (SqlValue::Integer(a), SqlValue::Integer(b)) => Some((*a as u64, *b as u64)),
            _ => None,
        }))
    }

    /// Drops log entries older than `keep_seqs` seqs before `seq`, or older
    /// than `min_at_ms`, and op ids older than `ops_min_at_ms`.
    pub fn prune(
        &self,
        seq: u64,
        keep_seqs: u64,
        min_at_ms: i64,
        ops_min_at_ms: i64,
    ) -> Result<(), StorageError> {
        let floor = seq.saturating_sub(keep_seqs) as i64;
        // Entries are appended in seq order as time goes on, so everything
        // before the oldest entry young enough to keep is old: found by
        // walking the key from the start, not by scanning the whole log.
        self.conn.exec(
            "DELETE FROM _pylon_log WHERE seq <= max(?1, coalesce( \
               (SELECT seq FROM _pylon_log WHERE at >= ?2 ORDER BY seq LIMIT 1) - 1, \
               (SELECT max(seq) FROM _pylon_log)))",
            &[SqlValue::Integer(floor), SqlValue::Integer(min_at_ms)],
        )?;
        self.run(
            "DELETE FROM _pylon_ops WHERE at < ?1",
            &[SqlValue::Integer(ops_min_at_ms)],
        )?;
        self.run(
            "DELETE FROM _pylon_fn_results WHERE op NOT IN (SELECT op FROM _pylon_ops)",
            &[],
        )
    }

    // ---- function results (docs/functions.md) ----

    /// Keeps what calls returned, by op id: one statement for a batch.
    pub fn save_fn_results(&self, results: &[(&str, &Value)]) -> Result<(), StorageError> {
        if results.is_empty() {
            return Ok(());
        }
        let rows: Vec<serde_json::Value> = results
            .iter()
            .map(|(op, v)| {
                serde_json::json!([op, serde_json::to_string(v).expect("values serialize")])
            })
            .collect();
        self.run(
            "INSERT OR REPLACE INTO _pylon_fn_results (op, value) \
             SELECT value ->> 0, value ->> 1 FROM json_each(?1)",
            &[SqlValue::Text(serde_json::Value::Array(rows).to_string())],
        )
    }

    /// What the call with op id `op` returned (null when not kept).
    pub fn fn_result(&self, op: &str) -> Result<Value, StorageError> {
        let rows = self.conn.exec(
            "SELECT value FROM _pylon_fn_results WHERE op = ?1",
            &[SqlValue::Text(op.into())],
        )?;
        Ok(rows.first().map_or(Value::Null, |r| json_value(&r[0])))
    }

    // ---- outbox (write-behind to D1) ----

    /// The oldest `limit` entries, in commit order.
    pub fn outbox_oldest(&self, limit: usize) -> Result<Vec<OutboxEntry>, StorageError> {
        self.read(
            "SELECT seq, idx, entity, id, row, at FROM _pylon_outbox ORDER BY seq, idx LIMIT ?1",
            &[SqlValue::Integer(limit as i64)],
            |r| OutboxEntry {
                seq: uint(&r[0]),
                idx: uint(&r[1]),
                entity: text(&r[2]).unwrap_or_default().to_owned(),
                id: text(&r[3]).unwrap_or_default().to_owned(),
                row: parse_row(&r[4]),
                at_ms: int(&r[5]),
            },
        )
    }

    /// Deletes the entries up to and including (`seq`, `idx`): the ones a
    /// drain applied.
    pub fn outbox_delete_through(&self, seq: u64, idx: u64) -> Result<(), StorageError> {
        self.delete_through("_pylon_outbox", seq, idx)
    }

    /// Deletes the rows of an outbox table (`seq`, `idx` keyed: the D1
    /// outbox, the job outbox) up to and including (`seq`, `idx`).
    fn delete_through(&self, table: &'static str, seq: u64, idx: u64) -> Result<(), StorageError> {
        self.run(
            &format!("DELETE FROM {table} WHERE seq < ?1 OR (seq = ?1 AND idx <= ?2)"),
            &[SqlValue::Integer(seq as i64), SqlValue::Integer(idx as i64)],
        )
    }

    /// Entries waiting, and the time of the oldest.
    pub fn outbox_depth(&self) -> Result<(u64, Option<i64>), StorageError> {
        self.depth_of("_pylon_outbox")
    }

    /// The rows of an outbox table, and the `at` of its oldest.
    fn depth_of(&self, table: &'static str) -> Result<(u64, Option<i64>), StorageError> {
        let rows = self
            .conn
            .exec(&format!("SELECT count(*), min(at) FROM {table}"), &[])?;
        Ok(rows
            .first()
            .map(|r| {
                let oldest = match r.get(1) {
                    Some(SqlValue::Integer(t)) => Some(*t),
                    _ => None,
                };
                (r.first().map_or(0, uint), oldest)
            })
            .unwrap_or((0, None)))
    }

    // ---- op ids ----

    /// The seq each of `ops` was first applied at, for those that were
    /// (one statement for a whole flush).
    pub fn op_seqs(&self, ops: &[&str]) -> Result<HashMap<String, u64>, StorageError> {
        if ops.is_empty() {
            return Ok(HashMap::new());
        }
        let rows = if let [op] = ops {
            // A flush of one write: a key lookup, no JSON.
            self.conn.exec(
                "SELECT op, seq FROM _pylon_ops WHERE op = ?1",
                &[SqlValue::Text((*op).to_owned())],
            )?
        } else {
            // Driven from the list, one key lookup each: `op IN (SELECT …)`
            // built a temporary index of the list first.
            let json = serde_json::to_string(ops).expect("strings serialize");
            self.conn.exec(
                "SELECT o.op, o.seq FROM json_each(?1) AS j \
                 CROSS JOIN _pylon_ops AS o ON o.op = j.value",
                &[SqlValue::Text(json)],
            )?
        };
        Ok(rows
            .iter()
            .filter_map(|r| Some((text(&r[0])?.to_owned(), int(&r[1]) as u64)))
            .collect())
    }

    // ---- subscriptions ----

    pub fn put_sub(&self, sub: &StoredSub) -> Result<(), StorageError> {
        let query = serde_json::to_string(&sub.query).expect("values serialize to JSON");
        self.run(
            "INSERT INTO _pylon_subs (key, conn, id, query, seq) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT(key) DO UPDATE SET query = excluded.query, seq = excluded.seq",
            &[
                SqlValue::Text(sub_key(&sub.conn, &sub.id)),
                SqlValue::Text(sub.conn.clone()),
                SqlValue::Text(sub.id.clone()),
                SqlValue::Text(query),
                SqlValue::Integer(sub.seq as i64),
            ],
        )
    }

    /// Sets the seq a subscription was last sent (a paused one's, whose
    /// window goes on without it).
    pub fn set_sub_seq(&self, conn: &str, id: &str, seq: u64) -> Result<(), StorageError> {
        self.run(
            "UPDATE _pylon_subs SET seq = ?2 WHERE key = ?1",
            &[
                SqlValue::Text(sub_key(conn, id)),
                SqlValue::Integer(seq as i64),
            ],
        )
    }

    pub fn delete_sub(&self, conn: &str, id: &str) -> Result<(), StorageError> {
        self.run(
            "DELETE FROM _pylon_subs WHERE key = ?1",
            &[SqlValue::Text(sub_key(conn, id))],
        )
    }

    pub fn delete_conn(&self, conn: &str) -> Result<(), StorageError> {
        let params = [SqlValue::Text(conn.into())];
        self.run("DELETE FROM _pylon_subs WHERE conn = ?1", &params)?;
        self.run("DELETE FROM _pylon_watches WHERE conn = ?1", &params)?;
        self.run("DELETE FROM _pylon_presence WHERE conn = ?1", &params)
    }

    // ---- scheduled functions ----

    pub fn put_scheduled(&self, calls: &[ScheduledCall]) -> Result<(), StorageError> {
        if calls.is_empty() {
            return Ok(());
        }
        let rows: Vec<serde_json::Value> = calls
            .iter()
            .map(|c| {
                serde_json::json!([
                    c.id,
                    c.at_ms,
                    c.name,
                    serde_json::to_string(&c.args).expect("values serialize"),
                    serde_json::to_string(&c.auth).expect("auth serializes")
                ])
            })
            .collect();
        self.run(
            "INSERT OR REPLACE INTO _pylon_scheduled (id, at, name, args, auth) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4 \
             FROM json_each(?1)",
            &[SqlValue::Text(serde_json::Value::Array(rows).to_string())],
        )
    }

    pub fn delete_scheduled(&self, ids: &[String]) -> Result<(), StorageError> {
        if ids.is_empty() {
            return Ok(());
        }
        let json = serde_json::to_string(ids).expect("strings serialize");
        self.run(
            "DELETE FROM _pylon_scheduled WHERE id IN (SELECT value FROM json_each(?1))",
            &[SqlValue::Text(json)],
        )
    }

    /// When the earliest scheduled call is due.
    pub fn next_scheduled(&self) -> Result<Option<i64>, StorageError> {
        let rows = self
            .conn
            .exec("SELECT min(at) FROM _pylon_scheduled", &[])?;
        Ok(rows.first().and_then(|r| match r.first() {
            Some(SqlValue::Integer(at)) => Some(*at),
            _ => None,
        }))
    }

    /// The calls due at `now_ms`, earliest first, at most `limit`.
    pub fn due_scheduled(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<ScheduledCall>, StorageError> {
        self.read(
            "SELECT id, at, name, args, auth FROM _pylon_scheduled WHERE at <= ?1 \
             ORDER BY at, id LIMIT ?2",
            &[SqlValue::Integer(now_ms), SqlValue::Integer(limit as i64)],
            |r| ScheduledCall {
                id: text(&r[0]).unwrap_or_default().to_owned(),
                at_ms: int(&r[1]),
                name: text(&r[2]).unwrap_or_default().to_owned(),
                args: json_value(&r[3]),
                auth: text(&r[4])
                    .and_then(|t| serde_json::from_str(t).ok())
                    .unwrap_or_default(),
            },
        )
    }

    /// Every scheduled call, earliest first, at most `limit`.
    pub fn list_scheduled(&self, limit: usize) -> Result<Vec<ScheduledCall>, StorageError> {
        self.due_scheduled(i64::MAX, limit)
    }

    pub fn count_scheduled(&self) -> Result<u64, StorageError> {
        Ok(first_uint(
            &self
                .conn
                .exec("SELECT count(*) FROM _pylon_scheduled", &[])?,
        ))
    }

    // ---- watched query functions ----

    pub fn put_watch(&self, w: &StoredWatch) -> Result<(), StorageError> {
        let reads = serde_json::to_string(&w.reads).expect("names serialize");
        let args = serde_json::to_string(&w.args).expect("values serialize");
        self.run(
            "INSERT OR REPLACE INTO _pylon_watches (key, conn, id, name, args, reads, seq) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)",
            &[
                SqlValue::Text(sub_key(&w.conn, &w.id)),
                SqlValue::Text(w.conn.clone()),
                SqlValue::Text(w.id.clone()),
                SqlValue::Text(w.name.clone()),
                SqlValue::Text(args),
                SqlValue::Text(reads),
            ],
        )
    }

    pub fn delete_watch(&self, conn: &str, id: &str) -> Result<(), StorageError> {
        self.run(
            "DELETE FROM _pylon_watches WHERE key = ?1",
            &[SqlValue::Text(sub_key(conn, id))],
        )
    }

    pub fn all_watches(&self) -> Result<Vec<StoredWatch>, StorageError> {
        self.read(
            "SELECT conn, id, name, args, reads FROM _pylon_watches",
            &[],
            |r| StoredWatch {
                conn: text(&r[0]).unwrap_or_default().to_owned(),
                id: text(&r[1]).unwrap_or_default().to_owned(),
                name: text(&r[2]).unwrap_or_default().to_owned(),
                args: json_value(&r[3]),
                reads: text(&r[4])
                    .and_then(|t| serde_json::from_str(t).ok())
                    .unwrap_or_default(),
            },
        )
    }

    /// Records that the windows `idents` sent a diff at `seq`: one
    /// statement, however many there are.
    pub fn advance_windows(&self, idents: &[&str], seq: u64) -> Result<(), StorageError> {
        if idents.is_empty() {
            return Ok(());
        }
        if let [ident] = idents {
            // One window (the common flush): bound directly, no JSON.
            return self.run(
                "INSERT INTO _pylon_windows (ident, seq) VALUES (?1, ?2) \
                 ON CONFLICT (ident) DO UPDATE SET seq = excluded.seq",
                &[
                    SqlValue::Text((*ident).to_owned()),
                    SqlValue::Integer(seq as i64),
                ],
            );
        }
        self.run(
            "INSERT INTO _pylon_windows (ident, seq) SELECT value, ?1 FROM json_each(?2) \
             WHERE true ON CONFLICT (ident) DO UPDATE SET seq = excluded.seq",
            &[
                SqlValue::Integer(seq as i64),
                SqlValue::Text(serde_json::to_string(idents).expect("strings serialize")),
            ],
        )
    }

    /// The seq window `ident` last sent a diff at (0: never).
    pub fn window_seq(&self, ident: &str) -> Result<u64, StorageError> {
        let rows = self.conn.exec(
            "SELECT seq FROM _pylon_windows WHERE ident = ?1",
            &[SqlValue::Text(ident.into())],
        )?;
        Ok(first_uint(&rows))
    }

    /// Forgets a window nobody reads any more.
    pub fn forget_window(&self, ident: &str) -> Result<(), StorageError> {
        self.run(
            "DELETE FROM _pylon_windows WHERE ident = ?1",
            &[SqlValue::Text(ident.into())],
        )
    }

    pub fn all_subs(&self) -> Result<Vec<StoredSub>, StorageError> {
        self.read("SELECT conn, id, query, seq FROM _pylon_subs", &[], |r| {
            StoredSub {
                conn: text(&r[0]).unwrap_or_default().to_owned(),
                id: text(&r[1]).unwrap_or_default().to_owned(),
                query: json_value(&r[2]),
                seq: uint(&r[3]),
            }
        })
    }

    pub fn count_subs(&self) -> Result<u64, StorageError> {
        Ok(first_uint(
            &self.conn.exec("SELECT count(*) FROM _pylon_subs", &[])?,
        ))
    }

    // ---- presence ----

    pub fn set_presence(&self, conn: &str, state: &Value) -> Result<(), StorageError> {
        if state.is_null() {
            return self.run(
                "DELETE FROM _pylon_presence WHERE conn = ?1",
                &[SqlValue::Text(conn.into())],
            );
        }
        self.run(
            "INSERT INTO _pylon_presence (conn, state) VALUES (?1, ?2) \
             ON CONFLICT(conn) DO UPDATE SET state = excluded.state",
            &[
                SqlValue::Text(conn.into()),
                SqlValue::Text(serde_json::to_string(state).expect("values serialize")),
            ],
        )
    }

    /// Each stored presence's size in bytes (of its JSON text).
    pub fn presence_sizes(&self) -> Result<Vec<(String, usize)>, StorageError> {
        self.read(
            "SELECT conn, length(CAST(state AS BLOB)) FROM _pylon_presence",
            &[],
            |r| {
                (
                    text(&r[0]).unwrap_or_default().to_owned(),
                    uint(&r[1]) as usize,
                )
            },
        )
    }

    pub fn presence(&self) -> Result<Vec<(String, Value)>, StorageError> {
        self.read(
            "SELECT conn, state FROM _pylon_presence ORDER BY conn",
            &[],
            |r| {
                (
                    text(&r[0]).unwrap_or_default().to_owned(),
                    json_value(&r[1]),
                )
            },
        )
    }
}

/// Live-query refills read the shard's own tables.
impl<C: SqlConn> WindowSource for ShardStore<C> {
    type Error = StorageError;

    async fn rows_after(
        &self,
        query: &Query,
        after: Option<&Row>,
        n: usize,
    ) -> Result<Vec<Row>, StorageError> {
        self.query_rows(&query.page(after, n))
    }
}
