//! The board's Rust server functions (its TypeScript ones are in
//! `functions/`): registered by name here, called like any other
//! (`call` over the socket, `POST /v1/shards/{room}/fn/{name}`).

use pylon_workers::functions::{Ctx, FnError, Functions};
use pylon_workers::value::{Row, Value};

/// Every Rust function of the board.
pub fn all() -> Functions {
    Functions::new()
        .mutation("archiveDone", archive_done)
        .mutation("addTodo", add_todo)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AddTodo {
    title: String,
    owner_id: String,
}

/// Adds a todo for `ownerId`. The Todo policies apply to the function's
/// write as to a client's: only the owner may insert it.
fn add_todo(ctx: &mut Ctx<'_>, args: Value) -> Result<Value, FnError> {
    let args: AddTodo = Ctx::args(&args)?;
    if args.title.trim().is_empty() {
        return Err(ctx.error("EMPTY_TITLE", "a todo needs a title"));
    }
    let mut row = Row::new();
    row.insert("title".into(), Value::from(args.title));
    row.insert("done".into(), Value::Bool(false));
    row.insert("ownerId".into(), Value::from(args.owner_id));
    row.insert(
        "createdAt".into(),
        Value::from(pylon_workers::time::rfc3339_from_ms(
            pylon_workers::time::now_ms(),
        )),
    );
    let id = ctx.db.insert("Todo", row)?;
    Ok(Value::from(id))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ArchiveDone {
    /// Only this column's cards (all columns when absent).
    column: Option<String>,
}

/// Archives every done card (of one column) that is not archived yet, all
/// or nothing; returns how many it archived.
fn archive_done(ctx: &mut Ctx<'_>, args: Value) -> Result<Value, FnError> {
    let args: ArchiveDone = if args.is_null() {
        ArchiveDone { column: None }
    } else {
        Ctx::args(&args)?
    };
    let mut filter = serde_json::json!({ "done": true });
    if let Some(c) = &args.column {
        filter["column"] = c.as_str().into();
    }
    let query = Value::from(serde_json::json!({ "entity": "Card", "where": filter, "limit": 500 }));
    let cards = ctx.db.query(&query)?;
    let mut archived = 0;
    for card in cards {
        if card.get("archived") == Some(&Value::Bool(true)) {
            continue;
        }
        let id = card
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut set = Row::new();
        set.insert("archived".into(), Value::Bool(true));
        ctx.db.update("Card", &id, set)?;
        archived += 1;
    }
    Ok(Value::Int(archived))
}

#[cfg(test)]
mod tests {
    use pylon_workers::functions::FnKind;

    #[test]
    fn archive_done_is_a_mutation() {
        let f = super::all().lookup("archiveDone").expect("registered");
        assert_eq!(f.kind, FnKind::Mutation);
        assert!(!f.trusted);
    }
}
