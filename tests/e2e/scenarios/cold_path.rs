use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::support::{card, get_any, get_json, post, unique};
use crate::Ctx;

const SHARDS: usize = 20;
/// Longest wait for D1 to converge.
const CONVERGE: Duration = Duration::from_secs(30);

fn insert(id: &str, i: usize) -> Value {
    json!({"type": "insert", "entity": "Card", "row": card(id, &format!("t{i}"), i as f64 + 0.5)})
}

/// Posts one mutation to a shard and returns its seq.
async fn mutate(ctx: &Ctx, shard: &str, op: &str, ops: Vec<Value>) -> Result<u64> {
    let url = ctx.dev.http(&format!("/v1/shards/{shard}/mutate"));
    let (status, body) = post(&url, &json!({"op": op, "ops": ops})).await?;
    ensure!(status == 200, "mutate {shard} {op}: {status} {body}");
    body["seq"].as_u64().context("seq in the ack")
}

/// A row with its numbers as floats and nulls dropped, so the shard's JSON
/// and D1's compare by value (D1 hands back integral floats as integers).
fn normal(row: &Value) -> BTreeMap<String, Value> {
    row.as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| !v.is_null() && k.as_str() != "_shard")
        .map(|(k, v)| {
            let v = match v.as_f64() {
                Some(f) => json!(f),
                None => v.clone(),
            };
            (k.clone(), v)
        })
        .collect()
}

fn by_id(rows: &Value) -> BTreeMap<String, BTreeMap<String, Value>> {
    rows.as_array()
        .into_iter()
        .flatten()
        .map(|r| (r["id"].as_str().unwrap_or_default().to_owned(), normal(r)))
        .collect()
}

/// The shard's own Card rows (wakes the shard).
async fn shard_rows(ctx: &Ctx, shard: &str) -> Result<BTreeMap<String, BTreeMap<String, Value>>> {
    let url = ctx.dev.http(&format!("/v1/shards/{shard}/query"));
    let (status, body) = post(&url, &json!({"entity": "Card", "limit": 1000})).await?;
    ensure!(status == 200, "query {shard}: {status} {body}");
    Ok(by_id(&body["rows"]))
}

/// The shard's Card rows in D1 (router only, no shard woken).
async fn d1_rows(ctx: &Ctx, shard: &str) -> Result<BTreeMap<String, BTreeMap<String, Value>>> {
    let (status, body) = post(
        &ctx.dev.http("/v1/query"),
        &json!({"entity": "Card", "shard": shard, "limit": 1000}),
    )
    .await?;
    ensure!(status == 200, "cold query {shard}: {status} {body}");
    Ok(by_id(&body["rows"]))
}

/// `lastSeq` per shard of the directory page after `prefix`.
async fn directory(ctx: &Ctx, prefix: &str) -> Result<BTreeMap<String, (u64, u64)>> {
    let body = get_json(
        &ctx.dev
            .http(&format!("/v1/shards?after={prefix}&limit={SHARDS}")),
    )
    .await?;
    Ok(body["shards"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["shard"].as_str().is_some_and(|n| n.starts_with(prefix)))
        .map(|s| {
            (
                s["shard"].as_str().unwrap_or_default().to_owned(),
                (
                    s["lastSeq"].as_u64().unwrap_or(0),
                    s["rows"].as_u64().unwrap_or(0),
                ),
            )
        })
        .collect())
}

/// Polls the directory (D1 only) until every shard reached its seq, for at
/// most `limit`; the time it took, or `None`.
async fn wait_directory(
    ctx: &Ctx,
    prefix: &str,
    seqs: &BTreeMap<String, u64>,
    limit: Duration,
) -> Result<Option<Duration>> {
    let started = Instant::now();
    loop {
        let dir = directory(ctx, prefix).await?;
        if seqs
            .iter()
            .all(|(s, seq)| dir.get(s).is_some_and(|d| d.0 >= *seq))
        {
            return Ok(Some(started.elapsed()));
        }
        if started.elapsed() > limit {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// D1 holds exactly each shard's rows, and the directory counts them.
async fn check_exact(ctx: &Ctx, prefix: &str, shards: &[String]) -> Result<()> {
    let dir = directory(ctx, prefix).await?;
    for s in shards {
        let want = shard_rows(ctx, s).await?;
        let got = d1_rows(ctx, s).await?;
        ensure!(
            got == want,
            "D1 differs from shard {s}:\n D1:    {got:?}\n shard: {want:?}"
        );
        let rows = dir.get(s).map(|d| d.1);
        ensure!(
            rows == Some(want.len() as u64),
            "directory rows of {s}: {rows:?}, shard has {}",
            want.len()
        );
    }
    Ok(())
}

/// Writes to 20 shards go to D1 by the shards' outbox alarms: D1 converges
/// to exactly the shards' rows (lag printed). Then a kill -9 right after a
/// burst of writes (drains in flight): after the restart D1 converges
/// again, exactly.
pub async fn run(ctx: &mut Ctx) -> Result<()> {
    // Error shapes of the cold routes.
    let (status, body) = post(&ctx.dev.http("/v1/query"), &json!({"entity": "Nope"})).await?;
    ensure!(
        status == 400 && body["error"]["code"] == "UNKNOWN_ENTITY",
        "{status} {body}"
    );
    let big = json!({"entity": "Card", "pad": "x".repeat(1_100_000)});
    let (status, body) = post(&ctx.dev.http("/v1/query"), &big).await?;
    ensure!(
        status == 413 && body["error"]["code"].is_string(),
        "{status} {body}"
    );
    let (status, body) = get_any(&ctx.dev.http("/v1/shards?limit=0")).await?;
    ensure!(
        status == 400 && body["error"]["code"] == "BAD_QUERY",
        "{status} {body}"
    );
    let (status, body) = get_any(&ctx.dev.http("/v1/query")).await?;
    ensure!(status == 405, "{status} {body}");

    let prefix = format!("{}-", unique("cold"));
    let shards: Vec<String> = (0..SHARDS).map(|i| format!("{prefix}{i:02}")).collect();

    // Inserts, updates and deletes, all shards at once.
    let writes = shards.iter().map(|s| {
        let ctx = &*ctx;
        async move {
            mutate(ctx, s, "a", (0..6).map(|i| insert(&format!("c{i}"), i)).collect()).await?;
            mutate(ctx, s, "b", vec![
                json!({"type": "update", "entity": "Card", "id": "c1", "set": {"title": "changed", "done": true}}),
                json!({"type": "update", "entity": "Card", "id": "c2", "set": {"position": 9.25}}),
            ]).await?;
            mutate(ctx, s, "c", vec![json!({"type": "delete", "entity": "Card", "id": "c3"})]).await?;
            let seq = mutate(ctx, s, "d", vec![
                insert("c6", 6),
                json!({"type": "delete", "entity": "Card", "id": "c4"}),
            ]).await?;
            anyhow::Ok((s.clone(), seq))
        }
    });
    let seqs: BTreeMap<String, u64> = join_all(writes).await.into_iter().collect::<Result<_>>()?;
    let lag = wait_directory(ctx, &prefix, &seqs, CONVERGE)
        .await?
        .with_context(|| format!("D1 did not reach the shards' seqs within {CONVERGE:?}"))?;
    check_exact(ctx, &prefix, &shards).await?;
    println!(
        "cold_path: D1 converged {:.0} ms after the last write ({SHARDS} shards)",
        lag.as_secs_f64() * 1000.0
    );
    let stats = get_json(&ctx.dev.http(&format!("/v1/shards/{}/stats", shards[0]))).await?;
    ensure!(
        stats["outbox"]["depth"] == 0 && stats["outbox"]["lag_ms"] == 0,
        "outbox not empty after convergence: {stats}"
    );

    // A burst, then kill -9 while the drains are due or running.
    let burst = shards.iter().map(|s| {
        let ctx = &*ctx;
        async move {
            let mut seq = 0;
            for k in 0..5 {
                seq = mutate(ctx, s, &format!("burst{k}"), vec![
                    insert(&format!("b{k}"), 10 + k),
                    json!({"type": "update", "entity": "Card", "id": "c0", "set": {"position": k as f64 + 0.25}}),
                ]).await?;
            }
            anyhow::Ok((s.clone(), seq))
        }
    });
    let seqs: BTreeMap<String, u64> = join_all(burst).await.into_iter().collect::<Result<_>>()?;
    let before = directory(ctx, &prefix).await?;
    let drained_before = seqs
        .iter()
        .filter(|(s, seq)| before.get(*s).is_some_and(|d| d.0 >= **seq))
        .count();
    ctx.restart().await?;
    let restarted = Instant::now();

    // Without touching any shard: do their pending alarms run again?
    let by_alarm = wait_directory(ctx, &prefix, &seqs, Duration::from_secs(10)).await?;
    match by_alarm {
        Some(t) => println!(
            "cold_path: after kill -9 ({drained_before}/{SHARDS} shards drained before it) \
             the pending alarms ran again: D1 converged {:.0} ms after the restart",
            t.as_secs_f64() * 1000.0
        ),
        None => {
            println!(
                "cold_path: after kill -9 the pending alarms did not run within 10 s; \
                 waking the shards re-arms them"
            );
            for s in &shards {
                get_json(&ctx.dev.http(&format!("/v1/shards/{s}/stats"))).await?;
            }
            if wait_directory(ctx, &prefix, &seqs, CONVERGE)
                .await?
                .is_none()
            {
                bail!("D1 did not converge within {CONVERGE:?} after the restart");
            }
            println!(
                "cold_path: D1 converged {:.0} ms after the restart",
                restarted.elapsed().as_secs_f64() * 1000.0
            );
        }
    }
    check_exact(ctx, &prefix, &shards).await?;
    for s in &shards {
        let stats = get_json(&ctx.dev.http(&format!("/v1/shards/{s}/stats"))).await?;
        ensure!(stats["outbox"]["depth"] == 0, "{s}: {stats}");
    }
    Ok(())
}
