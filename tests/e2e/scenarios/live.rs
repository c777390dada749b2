use anyhow::{ensure, Result};
use pylon_workers::protocol::{Encoding, Op};
use serde_json::json;

use crate::support::{card, cards, client, ids, post, unique, wait_rows};
use crate::Ctx;

fn insert(row: serde_json::Value) -> Op {
    Op::Insert {
        entity: "Card".into(),
        row: serde_json::from_value(row).expect("a row"),
    }
}

/// Live queries end to end: a JSON and a postcard client on one shard see
/// each other's writes and HTTP writes as diffs; a client on another shard
/// sees none of them; one-shot HTTP queries agree.
pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let (room, other) = (unique("room"), unique("other"));
    let port = ctx.dev.port;
    let a = client(port, &room, Encoding::Json).await?;
    let b = client(port, &room, Encoding::Postcard).await?;
    let c = client(port, &other, Encoding::Json).await?;
    let mut sub_a = a.subscribe(cards()).await?;
    let mut sub_b = b.subscribe(cards()).await?;
    let mut sub_c = c.subscribe(cards()).await?;

    let ack = a.mutate(vec![insert(card("k2", "second", 2.0))]).await?;
    ensure!(ack.seq == 1 && !ack.dup, "{ack:?}");
    // The writer already holds its own write when the ack arrives.
    ensure!(ids(&sub_a.view()) == ["k2"], "a: {:?}", sub_a.rows());
    wait_rows(&mut sub_b, "b to see k2", |v| ids(v) == ["k2"]).await?;

    let url = ctx.dev.http(&format!("/v1/shards/{room}/mutate"));
    let (status, body) = post(
        &url,
        &json!({"op": "http-1", "ops": [
        {"type": "insert", "entity": "Card", "row": card("k1", "first", 1.0)}]}),
    )
    .await?;
    ensure!(
        status == 200 && body["seq"] == 2 && body["dup"] == false,
        "{status} {body}"
    );
    for (who, sub) in [("a", &mut sub_a), ("b", &mut sub_b)] {
        wait_rows(sub, &format!("{who} to see the HTTP write"), |v| {
            ids(v) == ["k1", "k2"]
        })
        .await?;
    }
    // The same op id again applies nothing and answers the first seq.
    let (status, body) = post(
        &url,
        &json!({"op": "http-1", "ops": [
        {"type": "insert", "entity": "Card", "row": card("k1", "first", 1.0)}]}),
    )
    .await?;
    ensure!(
        status == 200 && body["seq"] == 2 && body["dup"] == true,
        "{status} {body}"
    );

    // An update moves k1 after k2: both clients follow.
    b.mutate(vec![Op::Update {
        entity: "Card".into(),
        id: "k1".into(),
        set: serde_json::from_value(json!({"position": 3.0}))?,
    }])
    .await?;
    wait_rows(&mut sub_a, "a to see the move", |v| ids(v) == ["k2", "k1"]).await?;

    // The other shard saw none of it.
    c.mutate(vec![insert(card("mine", "c's own", 0.0))]).await?;
    let v = wait_rows(&mut sub_c, "c to see its own card", |v| !v.rows.is_empty()).await?;
    ensure!(
        ids(&v) == ["mine"],
        "another shard's rows leaked: {:?}",
        ids(&v)
    );

    let (status, body) = post(
        &ctx.dev.http(&format!("/v1/shards/{room}/query")),
        &json!({"entity": "Card", "order": ["position"]}),
    )
    .await?;
    ensure!(status == 200, "{status} {body}");
    let got: Vec<_> = body["rows"]
        .as_array()
        .map(|r| r.iter().map(|r| r["id"].clone()).collect())
        .unwrap_or_default();
    ensure!(got == [json!("k2"), json!("k1")], "{body}");
    ensure!(body["seq"] == 3, "{body}");
    Ok(())
}
