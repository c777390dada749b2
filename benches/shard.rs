//! The shard engine's own cost per acknowledged write, in process, on
//! rusqlite: what a Durable Object spends in Rust (storage statements,
//! live maintenance, encoding every frame) before the runtime sends.
//!
//! `cargo bench --bench shard`
//!
//! The workload is the fan-out bench's rate variant: one shard with 20
//! `Card` rows, N subscribers (9 in 10 postcard, 1 in 10 JSON) each holding
//! `Card` ordered by position, limit 20; one writer updating one of the 20
//! rows per mutation, so every write is a diff for every subscriber. Every
//! outbound message is encoded as the Worker would (per connection). Each
//! figure is the median of 5 runs of `PYLON_SHARD_WRITES` writes (default
//! 2,000). `PYLON_SHARD_BATCH` (default `1,32`) is how many queued writes
//! one flush covers (1: every write sends its own diffs; see
//! `ShardConfig::max_batch`). `PYLON_SHARD_SUBS` (default `0,100,999`: a shard takes 1,000 connections and the writer is one) sets N. Because wall
//! time on a shared machine drifts, the same workload is meant to be run
//! under `valgrind --tool=callgrind` for instruction counts when comparing
//! changes: `PYLON_SHARD_RUNS=1 valgrind --tool=callgrind target/release/deps/shard-*`
//! (per write: the difference between runs of two `PYLON_SHARD_WRITES`,
//! divided by theirs; docs/benchmarks.md, "The engine's work per write").
//! `PYLON_SHARD_WATCHERS` (default `100`): connections that `watch` a Rust
//! query function reading `Card` instead of subscribing, for the cost of
//! re-running watched functions after writes.

use std::sync::Arc;
use std::time::Instant;

use pylon_workers::functions::{Ctx, Functions};
use pylon_workers::manifest::Manifest;
use pylon_workers::policy::AuthContext;
use pylon_workers::protocol::{self, Encoding, FrameRef};
use pylon_workers::shard::{ConnInfo, Outbound, ShardConfig, ShardEngine};
use pylon_workers::storage::SqliteConn;
use pylon_workers::value::Value;
use serde_json::json;

#[path = "../tests/gen_support/mod.rs"]
mod gen_support;
use gen_support::ready;

fn env_list(name: &str, default: &str) -> Vec<usize> {
    std::env::var(name)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .map(|s| s.trim().parse().expect("a number"))
        .collect()
}

/// Encodes every message as the Durable Object would; returns frame bytes.
fn encode_all(out: &[Outbound], encodings: &std::collections::HashMap<String, Encoding>) -> usize {
    let mut bytes = 0;
    for o in out {
        match o {
            Outbound::To(conn, msg) => {
                let enc = encodings.get(conn).copied().unwrap_or_default();
                bytes += match protocol::encode_server(enc, msg) {
                    protocol::Frame::Text(t) => t.len(),
                    protocol::Frame::Binary(b) => b.len(),
                };
            }
            Outbound::Many { conns, msg } => {
                // Encoded once per encoding present, as the Durable Object does.
                let mut seen = Vec::new();
                for c in conns {
                    let enc = encodings.get(c).copied().unwrap_or_default();
                    if !seen.contains(&enc) {
                        seen.push(enc);
                        bytes += match protocol::encode_server(enc, msg) {
                            protocol::Frame::Text(t) => t.len(),
                            protocol::Frame::Binary(b) => b.len(),
                        };
                    }
                }
            }
            Outbound::All { msg, .. } => {
                for enc in [Encoding::Json, Encoding::Postcard] {
                    bytes += match protocol::encode_server(enc, msg) {
                        protocol::Frame::Text(t) => t.len(),
                        protocol::Frame::Binary(b) => b.len(),
                    };
                }
            }
            Outbound::Close { .. } | Outbound::Verify { .. } | Outbound::Attach { .. } => {}
        }
    }
    bytes
}

/// The query function the watchers watch: the done cards among the first
/// 100 (it reads `Card`, so every write re-runs it; its value does not
/// change, so nothing is sent).
fn functions() -> Functions {
    Functions::new().query("doneCount", |ctx: &mut Ctx<'_>, _| {
        let q = json!({"entity": "Card", "where": {"done": true}, "limit": 100});
        Ok(Value::Int(ctx.db.query(&q.into())?.len() as i64))
    })
}

/// `watch`: the N connections watch `doneCount` instead of subscribing.
fn run(manifest: &Arc<Manifest>, subs: usize, writes: usize, batch: usize, watch: bool) -> f64 {
    // In memory: a file would make every statement its own fsync'd commit,
    // which a Durable Object does not do (it commits once per event).
    let mut engine = ShardEngine::open(
        SqliteConn::open_in_memory().unwrap(),
        manifest.clone(),
        "bench",
        ShardConfig::default(),
    )
    .unwrap()
    .with_functions(functions());
    let mut encodings = std::collections::HashMap::new();
    let writer = "w".to_string();
    let info = |encoding| ConnInfo {
        auth: AuthContext::user("bench"),
        encoding,
        client: None,
        lease: Default::default(),
        ended: None,
    };
    engine.connect(&writer, info(Encoding::Json), 0).unwrap();
    encodings.insert(writer.clone(), Encoding::Json);
    let rows: Vec<_> = (0..20)
        .map(|i| {
            json!({"type": "insert", "entity": "Card", "row": {
            "id": format!("c{i}"), "title": format!("card {i}"), "done": false,
            "position": i as f64, "createdAt": "2026-11-23T00:00:00Z"}})
        })
        .collect();
    let seed = json!({"type": "mut", "op": "seed", "ops": rows}).to_string();
    ready(engine.message(&writer, FrameRef::Text(&seed), 0));
    ready(engine.flush());
    for i in 0..subs {
        let conn = format!("s{i}");
        let enc = if i % 10 == 0 {
            Encoding::Json
        } else {
            Encoding::Postcard
        };
        engine.connect(&conn, info(enc), 0).unwrap();
        encodings.insert(conn.clone(), enc);
        let sub = if watch {
            json!({"type": "watch", "id": "q", "name": "doneCount"})
        } else {
            json!({"type": "sub", "id": "q", "entity": "Card", "order": ["position"], "limit": 20})
        }
        .to_string();
        let msg = protocol::decode_client(Encoding::Json, sub.as_bytes()).unwrap();
        let out = match protocol::encode_client(enc, &msg) {
            protocol::Frame::Text(t) => ready(engine.message(&conn, FrameRef::Text(&t), 0)),
            protocol::Frame::Binary(b) => ready(engine.message(&conn, FrameRef::Binary(&b), 0)),
        };
        assert!(
            matches!(
                out.first(),
                Some(Outbound::To(
                    _,
                    protocol::ServerMsg::Snap(_) | protocol::ServerMsg::FnValue(_)
                ))
            ),
            "{out:?}"
        );
    }
    let frames: Vec<String> = (0..writes)
        .map(|i| {
            json!({"type": "mut", "op": format!("op{i}"), "ops": [{"type": "update",
                "entity": "Card", "id": format!("c{}", i % 20), "set": {"title": format!("t{i}")}}]})
            .to_string()
        })
        .collect();
    let start = Instant::now();
    let mut bytes = 0usize;
    for (i, f) in frames.iter().enumerate() {
        // Spread over time so the per-connection rate limit does not bite.
        let mut out = ready(engine.message(&writer, FrameRef::Text(f), i as i64 * 1000));
        if (i + 1) % batch != 0 && i + 1 != writes {
            continue; // queued, as in a Durable Object with messages waiting
        }
        out.extend(ready(engine.flush()));
        let delivered: usize = out
            .iter()
            .map(|o| match o {
                Outbound::To(..) => 1,
                Outbound::Many { conns, .. } => conns.len(),
                _ => 0,
            })
            .sum();
        if watch {
            // Every watch ran again; none changed, so only the acks went.
            assert!(delivered <= batch, "values sent: {delivered}");
        } else {
            assert!(
                delivered > subs,
                "every subscriber gets a diff: {delivered}"
            );
        }
        bytes += encode_all(&out, &encodings);
    }
    let per = start.elapsed().as_secs_f64() * 1e6 / writes as f64;
    std::hint::black_box(bytes);
    drop(engine);
    per
}

fn main() {
    let manifest = Arc::new(
        Manifest::from_json_str(include_str!("../examples/board/schema.json"))
            .expect("the example manifest loads"),
    );
    let writes = env_list("PYLON_SHARD_WRITES", "2000")[0];
    let runs = env_list("PYLON_SHARD_RUNS", "5")[0];
    println!("shard engine, {writes} single-row updates per run, median of {runs} runs");
    for batch in env_list("PYLON_SHARD_BATCH", "1,32") {
        for subs in env_list("PYLON_SHARD_SUBS", "0,100,999") {
            let mut t: Vec<f64> = (0..runs)
                .map(|_| run(&manifest, subs, writes, batch, false))
                .collect();
            t.sort_by(f64::total_cmp);
            let med = t[t.len() / 2];
            println!(
                "  flush every {batch:>2} writes, {subs:>3} subscribers: {med:>7.1} µs per write ({:.0} writes/s of engine time)",
                1e6 / med
            );
        }
        // Watched query functions (docs/functions.md, "Live queries"): each
        // flush re-runs every watch whose entity a write touched.
        for watchers in env_list("PYLON_SHARD_WATCHERS", "100") {
            let mut t: Vec<f64> = (0..runs)
                .map(|_| run(&manifest, watchers, writes, batch, true))
                .collect();
            t.sort_by(f64::total_cmp);
            let med = t[t.len() / 2];
            println!(
                "  flush every {batch:>2} writes, {watchers:>3} watchers of a Rust query function: {med:>7.1} µs per write ({:.1} µs per re-run per flush)",
                med * batch as f64 / watchers.max(1) as f64
            );
        }
    }
}
