use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Function calls made through the kill -9.
const CALLS: usize = 30;

use anyhow::{ensure, Result};
use pylon_workers::protocol::{Encoding, Op};
use serde_json::json;

use crate::support::{card, cards, client, get_json, ids, post, unique, wait_rows, within};
use crate::Ctx;

fn insert(i: usize) -> Result<Op> {
    Ok(Op::Insert {
        entity: "Card".into(),
        row: serde_json::from_value(card(&format!("k{i:02}"), "t", i as f64))?,
    })
}

/// kill -9 of wrangler dev while clients are subscribed, then a start on the
/// same persist dir and port: the clients reconnect, resume with `since`,
/// and converge to exactly the rows the shard holds (none lost, none twice);
/// writes after the restart keep flowing; the shard's counters survived,
/// and so did an object of the app's own kind.
pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let shard = unique("restart");
    let port = ctx.dev.port;
    let writer = client(port, &shard, Encoding::Json).await?;
    let reader = client(port, &shard, Encoding::Postcard).await?;
    let mut sub = reader.subscribe(cards()).await?;
    for i in 0..10 {
        within("a write", writer.mutate(vec![insert(i)?])).await??;
    }
    wait_rows(&mut sub, "ten rows", |v| v.rows.len() == 10).await?;
    let before = get_json(&ctx.dev.http(&format!("/v1/shards/{shard}/stats"))).await?;
    ensure!(before["seq"] == 10, "{before}");
    // An app's own kind keeps its state too (the board's Tally).
    let tally = ctx.dev.http(&format!("/v1/objects/Tally/{shard}"));
    let (status, body) = post(&tally, &json!({"by": 7})).await?;
    ensure!(status == 200 && body["total"] == 7, "{status} {body}");
    // And a simulation shard its acknowledged inputs (the input log).
    let counter = ctx.dev.http(&format!("/v1/sims/counter/{shard}"));
    for _ in 0..5 {
        let (status, body) = post(&counter, &json!({"add": 2})).await?;
        ensure!(status == 200, "{status} {body}");
    }

    // Server functions called one after another through the kill: each
    // unanswered call is resent with its op id after the reconnect, so
    // every call is applied exactly once (docs/functions.md).
    let calls_shard = unique("restart-fn");
    let caller = client(port, &calls_shard, Encoding::Postcard).await?;
    let done = Arc::new(AtomicUsize::new(0));
    let counted = done.clone();
    let calls = tokio::spawn(async move {
        let mut ids = Vec::new();
        for i in 0..CALLS {
            let args = json!({"title": format!("call {i}"), "column": "calls"});
            let id = caller.call("addCardChecked", args.into()).await?;
            ids.push(id);
            counted.fetch_add(1, Ordering::SeqCst);
        }
        anyhow::Ok(ids)
    });
    within("calls before the kill", async {
        while done.load(Ordering::SeqCst) < 5 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await?;

    // A call scheduled to run right after the kill: the restarted runtime
    // runs it from the shard's alarm.
    let (status, body) = post(
        &ctx.dev
            .http(&format!("/v1/shards/{calls_shard}/fn/addCardLater")),
        &json!({"title": "after the kill", "column": "scheduled", "delayMs": 1_500}),
    )
    .await?;
    ensure!(status == 200, "{status} {body}");

    ctx.restart().await?;

    let made = within("the calls through the restart", calls).await???;
    let distinct: HashSet<_> = made.iter().map(|v| format!("{v:?}")).collect();
    ensure!(
        distinct.len() == CALLS,
        "{} distinct answers of {CALLS}",
        distinct.len()
    );
    let count_url = ctx.dev.http(&format!("/v1/shards/{calls_shard}/query"));
    let (status, body) = post(
        &count_url,
        &json!({"entity": "Card", "where": {"column": "calls"}, "count": true}),
    )
    .await?;
    ensure!(
        status == 200 && body["count"] == CALLS,
        "cards made by the calls: {status} {body}"
    );
    let scheduled = json!({"entity": "Card", "where": {"column": "scheduled"}, "count": true});
    let mut ran = false;
    for _ in 0..100 {
        let (_, body) = post(&count_url, &scheduled).await?;
        if body["count"] == 1 {
            ran = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    ensure!(
        ran,
        "the call scheduled before the kill did not run after the restart"
    );

    let kept = get_json(&tally).await?;
    ensure!(kept["total"] == 7, "the tally after the restart: {kept}");
    let kept = get_json(&counter).await?;
    ensure!(
        kept["total"] == 10 && kept["alarm_pending"] == false,
        "the counter after the restart: {kept}"
    );

    // Written while the reader is still reconnecting: it must arrive once.
    let (status, body) = post(&ctx.dev.http(&format!("/v1/shards/{shard}/mutate")),
        &json!({"op": "after-restart", "ops": [{"type": "insert", "entity": "Card", "row": card("k10", "t", 10.0)}]})).await?;
    ensure!(status == 200 && body["seq"] == 11, "{status} {body}");
    within(
        "a write after the restart",
        writer.mutate(vec![insert(11)?]),
    )
    .await??;
    let v = wait_rows(&mut sub, "the reader to converge", |v| {
        v.rows.len() >= 12 && v.seq == Some(12)
    })
    .await?;
    let got = ids(&v);
    let unique_ids: HashSet<_> = got.iter().collect();
    ensure!(
        unique_ids.len() == got.len(),
        "duplicates after resume: {got:?}"
    );
    let want: Vec<String> = (0..12).map(|i| format!("k{i:02}")).collect();
    ensure!(got == want, "rows after resume: {got:?}");

    let after = get_json(&ctx.dev.http(&format!("/v1/shards/{shard}/stats"))).await?;
    ensure!(after["seq"] == 12, "seq lost in the restart: {after}");
    ensure!(after["rows"]["Card"] == 12, "{after}");
    ensure!(
        after["wakes"].as_u64() > before["wakes"].as_u64(),
        "wakes: {before} -> {after}"
    );
    Ok(())
}
