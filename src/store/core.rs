//! SQL generation and execution of [`D1DataStore`] and the cold path: the
//! D1 layout, with the shard column, tombstones and the directory. (A
//! shard's own rows are `shard::ShardStore`'s.)
//!
//! Reads reuse the engine's query compiler (`Query::to_sql`): the store
//! adds its own conjuncts to the parsed filter (`_shard = ?`,
//! `_deleted = 0`, a compiled read policy) and `_shard` as the last sort
//! key, so that the order stays total across shards (ids are unique per
//! shard only).
//!
//! [`D1DataStore`]: super::D1DataStore

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use crate::manifest::{
    decode_row, insert_columns, quote_ident, update_columns, Entity, FieldType, Manifest,
};
use crate::query::{CmpOp, Cursor, Filter, OrderKey, Query};
use crate::sql::{from_sql, SqlValue};
use crate::storage::StorageError;
use crate::value::{Row, Value};

use super::error::StoreError;
use super::executor::{D1Executor, Statement};
use super::schema::{DELETED, DIRECTORY, GUARD, SEQ, SHARD};
use super::{limits, Aggregate, AggregateOp, AggregateRow, Page, WriteOp};

/// Which rows of D1 a store sees.
#[derive(Clone, Debug)]
pub(crate) struct Core<E> {
    pub exec: E,
    pub manifest: Arc<Manifest>,
    /// The shard this store is scoped to (reads and writes); `None`: every
    /// shard's rows, and no writes.
    pub shard: Option<String>,
}

/// A guard statement and the error it stands for.
struct Guard {
    code: &'static str,
    error: StoreError,
    /// `SELECT 1 WHERE <failing condition>`, to tell which guard failed.
    check: Statement,
}

/// The statements of one or more writes, run as one batch.
#[derive(Default)]
struct Plan {
    statements: Vec<Statement>,
    guards: Vec<Guard>,
    shards: Vec<String>,
}

impl Plan {
    /// A guard: the batch fails with `code` when `EXISTS (sub)` is `when`.
    fn guard(
        &mut self,
        code: &'static str,
        when: bool,
        sub: String,
        params: Vec<SqlValue>,
        error: StoreError,
    ) {
        let not = if when { "" } else { "NOT " };
        self.statements.push(Statement::new(
            format!(
                "INSERT INTO {} ({}) SELECT NULL WHERE {not}EXISTS ({sub})",
                quote_ident(GUARD),
                quote_ident(code)
            ),
            params.clone(),
        ));
        self.guards.push(Guard {
            code,
            error,
            check: Statement::new(format!("SELECT 1 WHERE {not}EXISTS ({sub})"), params),
        });
    }
}

pub(crate) fn q(name: &str) -> String {
    quote_ident(name)
}

impl<E: D1Executor> Core<E> {
    pub fn entity(&self, name: &str) -> Result<&Entity, StoreError> {
        entity(&self.manifest, name)
    }

    /// `a."_shard" = ? AND a."_deleted" = 0 AND `: the rows this store
    /// sees, as a prefix of a WHERE clause.
    fn scope(&self, alias: &str, params: &mut Vec<SqlValue>) -> String {
        let a = if alias.is_empty() {
            String::new()
        } else {
            format!("{alias}.")
        };
        let mut s = String::new();
        if let Some(shard) = &self.shard {
            let _ = write!(s, "{a}{} = ? AND ", q(SHARD));
            params.push(SqlValue::Text(shard.clone()));
        }
        let _ = write!(s, "{a}{} = 0 AND ", q(DELETED));
        s
    }

    fn write_shard(&self) -> Result<&str, StoreError> {
        self.shard.as_deref().ok_or(StoreError::ShardRequired)
    }

    /// Guards a write on row `id`: the batch fails with `ALREADY_EXISTS`
    /// if the row exists and must not (`insert`), with `NOT_FOUND` if it
    /// does not and must.
    fn guard_row(&self, plan: &mut Plan, e: &Entity, id: &str, insert: bool) {
        let mut params = Vec::new();
        let scope = self.scope("", &mut params);
        params.push(SqlValue::Text(id.to_owned()));
        let sub = format!("SELECT 1 FROM {} WHERE {scope}{} = ?", q(&e.name), q("id"));
        let (entity, id) = (e.name.clone(), id.to_owned());
        if insert {
            let exists = StoreError::AlreadyExists { entity, id };
            plan.guard("ALREADY_EXISTS", true, sub, params, exists);
        } else {
            let missing = StoreError::NotFound { entity, id };
            plan.guard("NOT_FOUND", false, sub, params, missing);
        }
    }

    fn plan_insert(&self, plan: &mut Plan, e: &Entity, row: &Row) -> Result<Row, StoreError> {
        let shard = self.write_shard()?;
        let cols = insert_columns(e, row)?;
        let id = match &cols[0].1 {
            SqlValue::Text(t) => t.clone(),
            _ => unreachable!("insert_columns checks the id"),
        };
        self.guard_row(plan, e, &id, true);
        let value = |c: &str| cols.iter().find(|x| x.0 == c).map(|x| &x.1);
        for set in e.unique_constraints() {
            let values: Vec<&SqlValue> = set.iter().filter_map(|c| value(c)).collect();
            if values.iter().any(|v| **v == SqlValue::Null) {
                continue; // nulls never clash
            }
            let mut params = Vec::new();
            let mut sub = format!("SELECT 1 FROM {} WHERE ", q(&e.name));
            sub.push_str(&self.scope("", &mut params));
            let conds: Vec<String> = set.iter().map(|c| format!("{} = ?", q(c))).collect();
            sub.push_str(&conds.join(" AND "));
            params.extend(values.into_iter().cloned());
            let err = StoreError::UniqueViolation {
                entity: e.name.clone(),
                fields: set.clone(),
            };
            plan.guard("UNIQUE_VIOLATION", true, sub, params, err);
        }
        let names: Vec<String> = cols.iter().map(|c| q(c.0)).collect();
        let mut params = vec![SqlValue::Text(shard.to_owned())];
        params.extend(cols.iter().map(|c| c.1.clone()));
        plan.shards.push(shard.to_owned());
        // A tombstone with this id is revived (its _seq kept, so the
        // shard's next change to the row still applies).
        let set = set_row(e, |f| format!("excluded.{f}"), false);
        let sql = format!(
            "INSERT INTO {} ({}, {}, {}, {}) VALUES (?, {}, 0, 0) \
             ON CONFLICT ({}, {}) DO UPDATE SET {}",
            q(&e.name),
            q(SHARD),
            names.join(", "),
            q(SEQ),
            q(DELETED),
            vec!["?"; names.len()].join(", "),
            q(SHARD),
            q("id"),
            set
        );
        check_params(&params)?;
        plan.statements.push(Statement::new(sql, params));
        Ok(decode_row(e, cols))
    }

    fn plan_update(
        &self,
        plan: &mut Plan,
        e: &Entity,
        id: &str,
        set: &Row,
    ) -> Result<(), StoreError> {
        let shard = self.write_shard()?;
        let cols = update_columns(e, set)?;
        self.guard_row(plan, e, id, false);
        if cols.is_empty() {
            return Ok(());
        }
        let value = |c: &str| cols.iter().find(|x| x.0 == c).map(|x| &x.1);
        for uset in e.unique_constraints() {
            if !uset.iter().any(|c| value(c).is_some()) {
                continue;
            }
            if uset.iter().any(|c| value(c) == Some(&SqlValue::Null)) {
                continue;
            }
            // Another row `o` holding the new values; the columns not set
            // keep the updated row's (`me`) values.
            let mut params = Vec::new();
            let me_scope = self.scope("me", &mut params);
            params.push(SqlValue::Text(id.to_owned()));
            let o_scope = self.scope("o", &mut params);
            let mut conds = Vec::new();
            for c in &uset {
                match value(c) {
                    Some(v) => {
                        conds.push(format!("o.{} = ?", q(c)));
                        params.push(v.clone());
                    }
                    None => conds.push(format!("o.{0} = me.{0}", q(c))),
                }
            }
            let sub = format!(
                "SELECT 1 FROM {t} AS me, {t} AS o WHERE {me_scope}me.{id} = ? AND {o_scope}o.{id} <> me.{id} AND {}",
                conds.join(" AND "),
                t = q(&e.name),
                id = q("id"),
            );
            let err = StoreError::UniqueViolation {
                entity: e.name.clone(),
                fields: uset.clone(),
            };
            plan.guard("UNIQUE_VIOLATION", true, sub, params, err);
        }
        let assigns: Vec<String> = cols.iter().map(|c| format!("{} = ?", q(c.0))).collect();
        let mut params: Vec<SqlValue> = cols.iter().map(|c| c.1.clone()).collect();
        let scope = self.scope("", &mut params);
        params.push(SqlValue::Text(id.to_owned()));
        check_params(&params)?;
        plan.statements.push(Statement::new(
            format!(
                "UPDATE {} SET {} WHERE {scope}{} = ?",
                q(&e.name),
                assigns.join(", "),
                q("id")
            ),
            params,
        ));
        plan.shards.push(shard.to_owned());
        Ok(())
    }

    fn plan_delete(&self, plan: &mut Plan, e: &Entity, id: &str) -> Result<(), StoreError> {
        let shard = self.write_shard()?;
        self.guard_row(plan, e, id, false);
        let mut params = Vec::new();
        let scope = self.scope("", &mut params);
        params.push(SqlValue::Text(id.to_owned()));
        plan.shards.push(shard.to_owned());
        // A tombstone: see `D1DataStore`.
        let set = set_row(e, |_| "NULL".to_owned(), true);
        let sql = format!(
            "UPDATE {} SET {} WHERE {scope}{} = ?",
            q(&e.name),
            set,
            q("id")
        );
        plan.statements.push(Statement::new(sql, params));
        Ok(())
    }

    fn plan_op(&self, plan: &mut Plan, op: &WriteOp) -> Result<(), StoreError> {
        match op {
            WriteOp::Insert { entity, row } => {
                self.plan_insert(plan, self.entity(entity)?, row).map(drop)
            }
            WriteOp::Update { entity, id, set } => {
                self.plan_update(plan, self.entity(entity)?, id, set)
            }
            WriteOp::Delete { entity, id } => self.plan_delete(plan, self.entity(entity)?, id),
        }
    }

    /// Runs a plan as one batch, adding the directory refresh.
    async fn run(&self, mut plan: Plan) -> Result<Vec<u64>, StoreError> {
        plan.shards.sort();
        plan.shards.dedup();
        for s in &plan.shards {
            plan.statements
                .push(directory_upsert(&self.manifest, s, 0, None));
        }
        match self.exec.batch(plan.statements).await {
            Ok(n) => Ok(n),
            Err(e) => Err(self.explain(e, plan.guards).await),
        }
    }

    /// Turns a failed batch into the error of the guard that failed.
    async fn explain(&self, e: StorageError, guards: Vec<Guard>) -> StoreError {
        let Some(code) = guard_code(&e.message) else {
            return StoreError::Storage(e);
        };
        let mut first = None;
        for g in guards.into_iter().filter(|g| g.code == code) {
            // Best effort: checked against the state before the batch.
            if let Ok(rows) = self.exec.query(&g.check.sql, &g.check.params).await {
                if !rows.is_empty() {
                    return g.error;
                }
            }
            first.get_or_insert(g.error);
        }
        first.unwrap_or(StoreError::Storage(e))
    }

    pub async fn insert(&self, entity: &str, row: Row) -> Result<Row, StoreError> {
        let e = self.entity(entity)?;
        let mut plan = Plan::default();
        let stored = self.plan_insert(&mut plan, e, &row)?;
        self.run(plan).await?;
        Ok(stored)
    }

    /// Sets the fields of `set` (the caller reads the row after).
    pub async fn update(&self, entity: &str, id: &str, set: Row) -> Result<(), StoreError> {
        let e = self.entity(entity)?;
        let mut plan = Plan::default();
        self.plan_update(&mut plan, e, id, &set)?;
        self.run(plan).await.map(drop)
    }

    pub async fn delete(&self, entity: &str, id: &str) -> Result<(), StoreError> {
        let e = self.entity(entity)?;
        let mut plan = Plan::default();
        self.plan_delete(&mut plan, e, id)?;
        self.run(plan).await.map(drop)
    }

    pub async fn transaction(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        let mut plan = Plan::default();
        for op in &ops {
            self.plan_op(&mut plan, op)?;
        }
        if plan.statements.len() > limits::MAX_BATCH_STATEMENTS {
            return Err(StoreError::TooLarge {
                what: "statements in one batch",
                limit: limits::MAX_BATCH_STATEMENTS,
            });
        }
        self.run(plan).await.map(drop)
    }

    /// The store's version of a parsed query: its scope and `extra` ANDed
    /// to the filter, `_shard` as the last sort key and column, and `after`
    /// decoded against that order.
    pub fn prepare(
        &self,
        query: &Query,
        after: Option<&str>,
        extra: Option<Filter>,
    ) -> Result<Query, StoreError> {
        let mut p = query.clone();
        let mut parts = Vec::new();
        if let Some(s) = &self.shard {
            parts.push(eq(SHARD, FieldType::String, SqlValue::Text(s.clone())));
        }
        parts.push(eq(DELETED, FieldType::Int, SqlValue::Integer(0)));
        parts.push(std::mem::replace(&mut p.filter, Filter::all()));
        parts.extend(extra);
        p.filter = Filter::And(parts);
        p.order.push(OrderKey {
            field: SHARD.into(),
            ty: FieldType::String,
            desc: false,
        });
        p.columns.push((SHARD.into(), FieldType::String));
        if after.is_none() && query.after.is_some() {
            return Err(StoreError::bad(
                "on D1 pass the cursor of a previous page as `after`, not in the query",
            ));
        }
        if let Some(text) = after {
            p.after = Some(Cursor::decode(text, &p.order)?);
        }
        Ok(p)
    }

    /// Runs a prepared query: rows with `_shard`.
    pub async fn fetch(&self, p: &Query) -> Result<Vec<Row>, StoreError> {
        let (sql, params) = p.to_sql();
        check_params(&params)?;
        let rows = self.exec.query(&sql, &params).await?;
        Ok(rows.into_iter().map(|r| p.decode_row(r)).collect())
    }

    /// A page from fetched rows (those `keep` admits), the next cursor after
    /// the last row fetched when the query's limit was reached.
    pub fn page(&self, p: &Query, rows: Vec<Row>, mut keep: impl FnMut(&Row) -> bool) -> Page {
        let full = p.limit.is_some_and(|n| rows.len() >= n);
        let next = if full {
            rows.last().map(|r| p.cursor_after(r))
        } else {
            None
        };
        let mut page = Page {
            rows: Vec::with_capacity(rows.len()),
            shards: Vec::new(),
            next,
        };
        for mut row in rows {
            let shard = row.remove(SHARD);
            if !keep(&row) {
                continue;
            }
            if let Some(Value::Text(s)) = shard {
                page.shards.push(s);
            }
            page.rows.push(row);
        }
        page
    }

    pub async fn query(
        &self,
        query: &Query,
        after: Option<&str>,
        extra: Option<Filter>,
    ) -> Result<Page, StoreError> {
        if query.count {
            return Err(StoreError::bad("a count query is an aggregate"));
        }
        let p = self.prepare(query, after, extra)?;
        let rows = self.fetch(&p).await?;
        Ok(self.page(&p, rows, |_| true))
    }

    pub async fn aggregate(
        &self,
        query: &Query,
        agg: &Aggregate,
        extra: Option<Filter>,
    ) -> Result<Vec<AggregateRow>, StoreError> {
        let e = self.entity(&query.entity)?;
        let field_ty = |name: &str| -> Result<FieldType, StoreError> {
            let ty = if name == "id" {
                FieldType::String
            } else {
                e.field(name)
                    .ok_or_else(|| StoreError::UnknownField {
                        entity: e.name.clone(),
                        field: name.to_owned(),
                    })?
                    .ty
                    .clone()
            };
            if ty == FieldType::Json {
                return Err(StoreError::bad(format!(
                    "json field {name} cannot be aggregated"
                )));
            }
            Ok(ty)
        };
        let field = agg
            .field
            .as_deref()
            .map(|f| field_ty(f).map(|t| (f, t)))
            .transpose()?;
        let expr = match (agg.op, &field) {
            (AggregateOp::Count, None) => "COUNT(*)".to_owned(),
            (AggregateOp::Count, Some((f, _))) => format!("COUNT({})", q(f)),
            (_, None) => return Err(StoreError::bad(format!("{} needs a field", agg.op.name()))),
            (AggregateOp::Sum, Some((f, FieldType::Int | FieldType::Float))) => {
                format!("SUM({})", q(f))
            }
            (AggregateOp::Sum, Some((f, _))) => {
                return Err(StoreError::bad(format!(
                    "sum needs an int or float field, not {f}"
                )))
            }
            (AggregateOp::Min, Some((f, _))) => format!("MIN({})", q(f)),
            (AggregateOp::Max, Some((f, _))) => format!("MAX({})", q(f)),
        };
        let group = agg
            .group_by
            .as_deref()
            .map(|g| field_ty(g).map(|t| (g, t)))
            .transpose()?;
        let mut p = self.prepare(query, None, extra)?;
        p.count = true;
        p.after = None;
        let (sql, mut params) = p.to_sql();
        let prefix = format!("SELECT COUNT(*) FROM {} WHERE ", q(&e.name));
        let Some(rest) = sql.strip_prefix(&prefix) else {
            return Err(StoreError::bad("unexpected query shape"));
        };
        let sql = match &group {
            None => format!("SELECT {expr} FROM {} WHERE {rest}", q(&e.name)),
            Some((g, _)) => {
                params.push(SqlValue::Integer(limits::MAX_GROUPS as i64 + 1));
                format!(
                    "SELECT {g}, {expr} FROM {t} WHERE {rest} GROUP BY {g} ORDER BY {g} LIMIT ?",
                    g = q(g),
                    t = q(&e.name)
                )
            }
        };
        check_params(&params)?;
        let rows = self.exec.query(&sql, &params).await?;
        if rows.len() > limits::MAX_GROUPS {
            return Err(StoreError::TooLarge {
                what: "groups",
                limit: limits::MAX_GROUPS,
            });
        }
        let decode_value = |v: SqlValue| match (&agg.op, &field) {
            (AggregateOp::Count, _) => from_sql(&FieldType::Int, v),
            (_, Some((_, ty))) => from_sql(ty, v),
            (_, None) => from_sql(&FieldType::Int, v),
        };
        Ok(rows
            .into_iter()
            .map(|mut r| {
                let value = decode_value(r.pop().unwrap_or(SqlValue::Null));
                let group = group
                    .as_ref()
                    .map(|(_, ty)| from_sql(ty, r.pop().unwrap_or(SqlValue::Null)));
                AggregateRow { group, value }
            })
            .collect())
    }
}

/// `"f" = <value("f")>, …, "_deleted" = <deleted>`: every field of a D1
/// row and whether it is a tombstone, as an UPDATE's SET list.
fn set_row(e: &Entity, value: impl Fn(&str) -> String, deleted: bool) -> String {
    let mut set: Vec<String> = e
        .fields
        .iter()
        .map(|f| {
            let f = q(&f.name);
            format!("{f} = {}", value(&f))
        })
        .collect();
    set.push(format!("{} = {}", q(DELETED), u8::from(deleted)));
    set.join(", ")
}

fn eq(field: &str, ty: FieldType, value: SqlValue) -> Filter {
    Filter::Cmp {
        field: field.to_owned(),
        ty,
        op: CmpOp::Eq,
        value,
    }
}

/// D1's limit of bound parameters per statement.
pub(crate) fn check_params(params: &[SqlValue]) -> Result<(), StoreError> {
    if params.len() > limits::MAX_PARAMS {
        return Err(StoreError::TooLarge {
            what: "bound parameters",
            limit: limits::MAX_PARAMS,
        });
    }
    Ok(())
}

/// The guard code in a failed batch's message (`NOT NULL constraint failed:
/// _pylon_guard.NOT_FOUND`, whatever D1 wraps around it).
pub(crate) fn guard_code(message: &str) -> Option<&'static str> {
    let at = message.find(&format!("{GUARD}."))? + GUARD.len() + 1;
    let rest = &message[at..];
    super::schema::GUARD_CODES
        .into_iter()
        .find(|c| rest.starts_with(c))
}

fn entity<'m>(manifest: &'m Manifest, name: &str) -> Result<&'m Entity, StoreError> {
    manifest
        .entity(name)
        .ok_or_else(|| StoreError::UnknownEntity {
            entity: name.to_owned(),
        })
}

/// The query of the row of `entity` whose `field` equals `value` (a
/// `get` or `lookup_unique`).
pub(crate) fn row_query(
    manifest: &Manifest,
    entity: &str,
    field: &str,
    value: Value,
) -> Result<Query, StoreError> {
    let e = self::entity(manifest, entity)?;
    Ok(Query::parse(
        e,
        &query_json(e, Some((field, value)), &[], Some(1)),
    )?)
}

/// The query of a `list`: the first `limit` rows in `order`.
pub(crate) fn list_query(
    manifest: &Manifest,
    entity: &str,
    order: &[&str],
    limit: usize,
) -> Result<Query, StoreError> {
    let e = self::entity(manifest, entity)?;
    Ok(Query::parse(e, &query_json(e, None, order, Some(limit)))?)
}

/// Refuses a `lookup_unique` on a field that is not unique: `id`, a
/// unique field or a one-field unique index.
pub(crate) fn check_unique(
    manifest: &Manifest,
    entity: &str,
    field: &str,
) -> Result<(), StoreError> {
    let e = self::entity(manifest, entity)?;
    let unique = field == "id"
        || e.unique_constraints()
            .iter()
            .any(|c| c.len() == 1 && c[0] == field);
    match (unique, e.field(field)) {
        (true, _) => Ok(()),
        (false, None) => Err(StoreError::UnknownField {
            entity: entity.to_owned(),
            field: field.to_owned(),
        }),
        (false, Some(_)) => Err(StoreError::bad(format!("{entity}.{field} is not unique"))),
    }
}

/// A JSON query on `e`.
fn query_json(
    e: &Entity,
    eq: Option<(&str, Value)>,
    order: &[&str],
    limit: Option<usize>,
) -> Value {
    let mut m = BTreeMap::new();
    m.insert("entity".to_owned(), Value::from(e.name.as_str()));
    if let Some((f, v)) = eq {
        m.insert("where".to_owned(), Value::Map([(f.to_owned(), v)].into()));
    }
    if !order.is_empty() {
        m.insert(
            "order".to_owned(),
            Value::List(order.iter().map(|o| Value::from(*o)).collect()),
        );
    }
    if let Some(n) = limit {
        m.insert("limit".to_owned(), Value::Int(n as i64));
    }
    Value::Map(m)
}

/// Upserts the directory row of `shard`: its live row count (recounted over
/// every entity table), `last_seq` raised to `seq` (never lowered) and
/// `last_change` set to `at` when `seq` raised it.
pub(crate) fn directory_upsert(
    manifest: &Manifest,
    shard: &str,
    seq: i64,
    at: Option<&str>,
) -> Statement {
    let counts: Vec<String> = manifest
        .entities
        .iter()
        .map(|e| {
            format!(
                "(SELECT COUNT(*) FROM {} WHERE {} = ?1 AND {} = 0)",
                q(&e.name),
                q(SHARD),
                q(DELETED)
            )
        })
        .collect();
    let rows = if counts.is_empty() {
        "0".to_owned()
    } else {
        counts.join(" + ")
    };
    Statement::new(
        format!(
            "INSERT INTO {DIRECTORY} (shard, \"rows\", last_seq, last_change) VALUES (?1, {rows}, ?2, ?3) \
             ON CONFLICT (shard) DO UPDATE SET \"rows\" = excluded.\"rows\", \
             last_change = CASE WHEN excluded.last_seq > last_seq THEN excluded.last_change ELSE last_change END, \
             last_seq = max(last_seq, excluded.last_seq)"
        ),
        vec![
            SqlValue::Text(shard.to_owned()),
            SqlValue::Integer(seq),
            at.map_or(SqlValue::Null, |t| SqlValue::Text(t.to_owned())),
        ],
    )
}
