//! The board's Rust server functions (its TypeScript ones are in
//! `functions/`): registered by name here, called like any other
//! (`call` over the socket, `POST /v1/shards/{room}/fn/{name}`).

use pylon_workers::functions::{Ctx, FnError, Functions};
use pylon_workers::value::{Row, Value};

/// The column of a card that names none.
const FIRST_COLUMN: &str = "todo";

/// Every Rust function of the board.
pub fn all() -> Functions {
    Functions::new()
        .mutation("archiveDone", archive_done)
        .mutation("addTodo", add_todo)
        .mutation("renameCardRust", rename_card)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RenameCard {
    card_id: String,
    title: String,
}

/// `renameCard` (functions/renameCard.ts) in Rust: the benchmark runs both
/// to tell the cost of the TypeScript bridge from the cost of a call.
fn rename_card(ctx: &mut Ctx<'_>, args: Value) -> Result<Value, FnError> {
    let args: RenameCard = Ctx::args(&args)?;
    let title = args.title.trim();
    if title.is_empty() || title.len() > 200 {
        return Err(ctx.error("BAD_TITLE", "a title has 1 to 200 characters"));
    }
    let mut set = Row::new();
    set.insert("title".into(), Value::from(title));
    ctx.db.update("Card", &args.card_id, set)?;
    Ok(Value::Null)
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
    let mut filter = serde_json::json!({ "done": true, "archived": { "$ne": true } });
    match args.column.as_deref() {
        // A card without a column is in the first one (as the TypeScript
        // functions count it).
        Some(FIRST_COLUMN) => {
            filter["$or"] = serde_json::json!([{ "column": FIRST_COLUMN }, { "column": null }]);
        }
        Some(c) => filter["column"] = c.into(),
        None => {}
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
    use pylon_workers::policy::AuthContext;
    use pylon_workers::protocol::Op;
    use pylon_workers::shard::{ShardConfig, ShardEngine};
    use pylon_workers::storage::SqliteConn;
    use pylon_workers::value::Value;
    use serde_json::json;

    #[tokio::test]
    async fn archive_done_archives_the_done_cards_of_a_column_once() {
        let manifest = crate::app().manifest().unwrap();
        let db = SqliteConn::open_in_memory().unwrap();
        let mut shard = ShardEngine::open(db, manifest, "room", ShardConfig::default())
            .unwrap()
            .with_functions(super::all());
        let anyone = AuthContext::anonymous();
        let card = |id: &str, done: bool, column: Option<&str>| {
            let mut row = json!({"id": id, "title": id, "done": done, "position": 0.0,
                                 "createdAt": "2026-12-01T00:00:00Z"});
            if let Some(c) = column {
                row["column"] = c.into();
            }
            let Value::Map(row) = Value::from(row) else {
                unreachable!("an object")
            };
            Op::Insert {
                entity: "Card".into(),
                row,
            }
        };
        let ops = vec![
            card("a", true, None),
            card("b", true, Some("todo")),
            card("c", false, Some("todo")),
            card("d", true, Some("doing")),
        ];
        shard.mutate(None, &anyone, None, ops, 0).await.unwrap();
        let call = |args: serde_json::Value| (Value::from(args), Some(FnKind::Mutation));
        let (args, want) = call(json!({"column": "todo"}));
        let (r, _) = shard
            .call(&anyone, "archiveDone", args, None, want, 0)
            .await
            .unwrap();
        assert_eq!(
            r.value,
            Value::Int(2),
            "the done cards of todo, with or without a column"
        );
        let (args, want) = call(json!({}));
        let (r, _) = shard
            .call(&anyone, "archiveDone", args, None, want, 0)
            .await
            .unwrap();
        assert_eq!(r.value, Value::Int(1), "then only doing's");
        let (args, want) = call(json!({"column": 3}));
        let e = shard
            .call(&anyone, "archiveDone", args, None, want, 0)
            .await
            .unwrap_err();
        assert_eq!(e.code.as_str(), "BAD_ARGS", "{e:?}");
    }

    #[test]
    fn archive_done_is_a_mutation() {
        let f = super::all().lookup("archiveDone").expect("registered");
        assert_eq!(f.kind, FnKind::Mutation);
        assert!(!f.trusted);
    }
}
