//! Parsing and checking a JSON query against its entity.
//!
//! ```
//! use pylon_workers::manifest::{Entity, Field, FieldType};
//! use pylon_workers::query::Query;
//! let todo = Entity { name: "Todo".into(), indexes: vec![], fields: vec![
//!     Field { name: "n".into(), ty: FieldType::Int, optional: true, unique: false },
//! ]};
//! let bad = Query::parse(&todo, &serde_json::json!({"entity":"Todo","where":{"n":"x"}}).into());
//! assert_eq!(bad.unwrap_err().code(), "TYPE_MISMATCH");
//! ```

use std::collections::BTreeMap;

use crate::manifest::{Entity, FieldType};
use crate::sql::{to_sql, SqlValue};
use crate::value::Value;

use super::ast::{column_type, CmpOp, Filter, Query};
use super::cursor::Cursor;
use super::error::QueryError;
use super::limits::*;
use super::order::OrderKey;

impl Query {
    /// The `entity` named by a JSON query, to find the [`Entity`] to parse
    /// it with.
    pub fn entity_name(json: &Value) -> Option<&str> {
        json.get("entity").and_then(Value::as_str)
    }

    /// Parses and checks a JSON query (see docs/queries.md).
    pub fn parse(entity: &Entity, json: &Value) -> Result<Query, QueryError> {
        let Value::Map(top) = json else {
            return Err(QueryError::bad("", "a query is an object"));
        };
        for key in top.keys() {
            if !matches!(
                key.as_str(),
                "entity" | "where" | "order" | "limit" | "after" | "count"
            ) {
                return Err(QueryError::bad(key, "unknown key"));
            }
        }
        match top.get("entity") {
            Some(Value::Text(name)) if *name == entity.name => {}
            _ => {
                return Err(QueryError::bad(
                    "entity",
                    format!("expected \"{}\"", entity.name),
                ))
            }
        }
        let mut parser = Parser {
            entity,
            predicates: 0,
        };
        let filter = match top.get("where") {
            None => Filter::all(),
            Some(w) => parser.filter(w, "where", 0)?,
        };
        let order = parse_order(entity, top.get("order"))?;
        let limit = match top.get("limit") {
            None | Some(Value::Null) => None,
            Some(Value::Int(n)) if *n >= 1 && *n as u64 <= MAX_LIMIT as u64 => Some(*n as usize),
            Some(Value::Int(n)) if *n > MAX_LIMIT as i64 => {
                return Err(QueryError::TooLarge {
                    what: "limit",
                    limit: MAX_LIMIT,
                })
            }
            Some(_) => return Err(QueryError::bad("limit", "a positive integer")),
        };
        let after = match top.get("after") {
            None | Some(Value::Null) => None,
            Some(Value::Text(t)) => Some(Cursor::decode(t, &order)?),
            Some(_) => return Err(QueryError::bad("after", "a cursor string")),
        };
        let count = match top.get("count") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(QueryError::bad("count", "a boolean")),
        };
        if count && (top.contains_key("order") || limit.is_some() || after.is_some()) {
            return Err(QueryError::bad(
                "count",
                "a count query has no order, limit or after",
            ));
        }
        // Worst case: the filter, a cursor over every sort key, and LIMIT.
        let n = order.len();
        if param_count(&filter) + n * (n + 1) / 2 + 1 > MAX_PARAMS {
            return Err(QueryError::TooLarge {
                what: "bound parameters",
                limit: MAX_PARAMS,
            });
        }
        let mut columns = vec![("id".to_owned(), FieldType::String)];
        columns.extend(entity.fields.iter().map(|f| (f.name.clone(), f.ty.clone())));
        Ok(Query {
            entity: entity.name.clone(),
            filter,
            order,
            limit,
            after,
            count,
            columns,
        })
    }
}

/// Bound parameters the filter compiles to.
pub(crate) fn param_count(f: &Filter) -> usize {
    match f {
        Filter::And(p) | Filter::Or(p) => p.iter().map(param_count).sum(),
        Filter::Not(inner) => param_count(inner),
        Filter::Cmp { .. } | Filter::Like { .. } => 1,
        Filter::Glob { pattern, .. } => usize::from(!super::compile::inlines_glob(pattern)),
        Filter::In { values, .. } => values.len(),
        Filter::Null { .. } => 0,
    }
}

fn parse_order(entity: &Entity, order: Option<&Value>) -> Result<Vec<OrderKey>, QueryError> {
    let items = match order {
        None | Some(Value::Null) => &[][..],
        Some(Value::List(items)) => items.as_slice(),
        Some(_) => return Err(QueryError::bad("order", "a list of field names")),
    };
    let mut keys: Vec<OrderKey> = Vec::new();
    for item in items {
        let Some(spelled) = item.as_str() else {
            return Err(QueryError::bad("order", "a list of field names"));
        };
        if keys.last().is_some_and(|k| k.field == "id") {
            return Err(QueryError::bad("order", "`id` must be the last sort key"));
        }
        let (field, desc) = match spelled.strip_prefix('-') {
            Some(f) => (f, true),
            None => (spelled, false),
        };
        let ty = column_type(entity, field).ok_or_else(|| QueryError::UnknownField {
            field: field.to_owned(),
        })?;
        if ty == FieldType::Json {
            return Err(QueryError::bad(
                format!("order.{field}"),
                "json fields cannot be sorted",
            ));
        }
        if keys.iter().any(|k| k.field == field) {
            return Err(QueryError::bad(format!("order.{field}"), "sorted twice"));
        }
        keys.push(OrderKey {
            field: field.to_owned(),
            ty,
            desc,
        });
    }
    if keys.last().is_none_or(|k| k.field != "id") {
        keys.push(OrderKey {
            field: "id".into(),
            ty: FieldType::String,
            desc: false,
        });
    }
    if keys.len() > MAX_ORDER + 1 {
        return Err(QueryError::TooLarge {
            what: "sort keys",
            limit: MAX_ORDER,
        });
    }
    Ok(keys)
}

struct Parser<'e> {
    entity: &'e Entity,
    predicates: usize,
}

fn is_text(ty: &FieldType) -> bool {
    matches!(
        ty,
        FieldType::String | FieldType::Id(_) | FieldType::Datetime
    )
}

impl Parser<'_> {
    fn filter(&mut self, v: &Value, at: &str, depth: usize) -> Result<Filter, QueryError> {
        let Value::Map(m) = v else {
            return Err(QueryError::bad(at, "a filter is an object"));
        };
        let mut parts = Vec::with_capacity(m.len());
        for (key, val) in m {
            let here = format!("{at}.{key}");
            let part = match key.as_str() {
                "$and" | "$or" | "$not" if depth + 1 > MAX_DEPTH => {
                    return Err(QueryError::TooLarge {
                        what: "nesting depth",
                        limit: MAX_DEPTH,
                    })
                }
                "$and" | "$or" => {
                    let Value::List(items) = val else {
                        return Err(QueryError::bad(here, "a list of filters"));
                    };
                    let fs = items
                        .iter()
                        .map(|f| self.filter(f, &here, depth + 1))
                        .collect::<Result<Vec<_>, _>>()?;
                    if key == "$and" {
                        Filter::And(fs)
                    } else {
                        Filter::Or(fs)
                    }
                }
                "$not" => Filter::Not(Box::new(self.filter(val, &here, depth + 1)?)),
                k if k.starts_with('$') => return Err(QueryError::bad(here, "unknown operator")),
                field => {
                    let ty = column_type(self.entity, field).ok_or_else(|| {
                        QueryError::UnknownField {
                            field: field.to_owned(),
                        }
                    })?;
                    match val {
                        Value::Map(ops) => self.field_ops(field, &ty, ops, &here)?,
                        v => self.leaf(field, &ty, "$eq", v, &here)?,
                    }
                }
            };
            parts.push(part);
        }
        Ok(if parts.len() == 1 {
            parts.pop().unwrap_or_else(Filter::all)
        } else {
            Filter::And(parts)
        })
    }

    fn field_ops(
        &mut self,
        field: &str,
        ty: &FieldType,
        ops: &BTreeMap<String, Value>,
        at: &str,
    ) -> Result<Filter, QueryError> {
        if ops.is_empty() || ops.keys().any(|k| !k.starts_with('$')) {
            return Err(QueryError::bad(
                at,
                "an object of operators such as {\"$gt\": 3}",
            ));
        }
        let mut parts = ops
            .iter()
            .map(|(op, v)| self.leaf(field, ty, op, v, &format!("{at}.{op}")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(if parts.len() == 1 {
            parts.pop().unwrap_or_else(Filter::all)
        } else {
            Filter::And(parts)
        })
    }

    fn leaf(
        &mut self,
        field: &str,
        ty: &FieldType,
        op: &str,
        v: &Value,
        at: &str,
    ) -> Result<Filter, QueryError> {
        self.predicates += 1;
        if self.predicates > MAX_PREDICATES {
            return Err(QueryError::TooLarge {
                what: "predicates",
                limit: MAX_PREDICATES,
            });
        }
        let field_s = field.to_owned();
        let null_check = |is_null| Filter::Null {
            field: field.to_owned(),
            is_null,
        };
        match (op, v) {
            ("$eq", Value::Null) => return Ok(null_check(true)),
            ("$ne", Value::Null) => return Ok(null_check(false)),
            ("$exists", Value::Bool(b)) => return Ok(null_check(!b)),
            ("$exists", _) => return Err(QueryError::bad(at, "true or false")),
            _ => {}
        }
        if *ty == FieldType::Json {
            return Err(QueryError::bad(at, "json fields support only null checks"));
        }
        let literal = |v: &Value| -> Result<SqlValue, QueryError> {
            if v.is_null() {
                return Err(QueryError::bad(
                    at,
                    "null only in {\"$eq\": null} or {\"$ne\": null}",
                ));
            }
            to_sql(ty, v).map_err(|e| QueryError::TypeMismatch {
                field: field.to_owned(),
                expected: e.expected,
                got: e.got.to_owned(),
            })
        };
        let cmp = |op| -> Result<Filter, QueryError> {
            Ok(Filter::Cmp {
                field: field.to_owned(),
                ty: ty.clone(),
                op,
                value: literal(v)?,
            })
        };
        match op {
            "$eq" => cmp(CmpOp::Eq),
            "$ne" => cmp(CmpOp::Ne),
            "$gt" => cmp(CmpOp::Gt),
            "$gte" => cmp(CmpOp::Gte),
            "$lt" => cmp(CmpOp::Lt),
            "$lte" => cmp(CmpOp::Lte),
            "$in" | "$nin" => {
                let Value::List(items) = v else {
                    return Err(QueryError::bad(at, "a list of values"));
                };
                if items.len() > MAX_IN {
                    return Err(QueryError::TooLarge {
                        what: "$in list",
                        limit: MAX_IN,
                    });
                }
                let values = items.iter().map(literal).collect::<Result<Vec<_>, _>>()?;
                Ok(Filter::In {
                    field: field_s,
                    ty: ty.clone(),
                    values,
                    negated: op == "$nin",
                })
            }
            "$like" => {
                if !is_text(ty) {
                    return Err(QueryError::bad(at, "$like needs a text field"));
                }
                let Value::Text(p) = v else {
                    return Err(QueryError::bad(at, "a pattern string"));
                };
                if p.len() > MAX_LIKE_PATTERN {
                    return Err(QueryError::TooLarge {
                        what: "$like pattern",
                        limit: MAX_LIKE_PATTERN,
                    });
                }
                if p.contains('\0') {
                    return Err(QueryError::bad(at, "a pattern has no NUL character"));
                }
                Ok(Filter::Like {
                    field: field_s,
                    pattern: p.clone(),
                })
            }
            _ => Err(QueryError::bad(at, "unknown operator")),
        }
    }
}
