//! The Rust simulation client (`client::sim::SimClient`) against the
//! board's `counter` kind under `wrangler dev`, across three `kill -9`s:
//! signed in as `ada` and acting as the subscriber `ada`, it sends a
//! stream of inputs; each kill comes with a burst of inputs in flight; the
//! client reconnects by itself and resends what was not acknowledged with
//! the same seqs. In the end every input was acknowledged, the total is
//! exactly their sum, and the shard's log holds each seq once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use pylon_workers::client::sim::{SimClient, SimClientConfig, SimEvent};
use pylon_workers::client::{Backoff, ConnState};
use pylon_workers::protocol::Encoding;
use pylon_workers::sim::counter::{Add, Total};
use pylon_workers::sim::wire::SimErr;
use serde_json::json;
use tokio::sync::broadcast;

use crate::support::{get_json, unique, within};
use crate::Ctx;

type Counter = SimClient<Add, Total>;
/// seq → the input's add, for every input sent.
type Sent = Arc<Mutex<BTreeMap<u64, i64>>>;

const KILLS: u32 = 3;
/// Inputs sent at once right before each kill.
const BURST: i64 = 12;
/// The stream's pace (under the socket's 100 messages a second).
const PACE: Duration = Duration::from_millis(15);

/// Sends `{"add": n}` and remembers it by its seq.
fn send(sim: &Counter, sent: &Sent, n: i64) -> Result<()> {
    let seq = sim.send_input(Add::new(n).map_err(anyhow::Error::msg)?)?;
    sent.lock().unwrap().insert(seq, n);
    Ok(())
}

/// What the client reported until it closed.
#[derive(Default)]
struct Heard {
    /// seq → the connection its `sim_ack` came on (0: the first).
    acked: BTreeMap<u64, usize>,
    dups: usize,
    errs: Vec<SimErr>,
    /// Each reconnect's welcome: subscriber, acked.
    welcomes: Vec<(String, u64)>,
}

async fn listen(mut events: broadcast::Receiver<SimEvent<Total>>) -> Result<Heard> {
    let mut heard = Heard::default();
    loop {
        match events.recv().await.context("the event stream")? {
            SimEvent::Ack(a) => {
                heard.dups += usize::from(a.dup);
                heard.acked.insert(a.seq, heard.welcomes.len());
            }
            SimEvent::Err(e) => heard.errs.push(e),
            SimEvent::Welcome(w) => heard.welcomes.push((w.subscriber, w.acked)),
            SimEvent::State(ConnState::Closed { .. }) => return Ok(heard),
            _ => {}
        }
    }
}

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let id = unique("simclient");
    let token = super::cold_access::token(&super::auth::dev_secret()?, "ada", json!({}));
    let mut config =
        SimClientConfig::new(format!("ws://127.0.0.1:{}", ctx.dev.port), "counter", &id)
            .subscriber("ada")
            .token(token)
            .encoding(Encoding::Postcard)
            .backoff(Backoff {
                initial: Duration::from_millis(100),
                max: Duration::from_millis(500),
                factor: 2.0,
            });
    // A connection attempt made while wrangler is still starting can hang.
    config.connection.connect_timeout = Duration::from_secs(3);
    let sim = within("join", Counter::join(config)).await??;
    let welcome = sim.welcome();
    ensure!(
        welcome.subscriber == "ada" && welcome.acked == 0,
        "{welcome:?}"
    );

    let listener = tokio::spawn(listen(sim.events()));
    let sent: Sent = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let stream = tokio::spawn({
        let (sim, sent, stop) = (sim.clone(), sent.clone(), stop.clone());
        async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                // Paused while reconnecting, so a resend stays a short burst.
                if matches!(sim.state(), ConnState::Live { .. }) {
                    n += 1;
                    send(&sim, &sent, 1 + n % 9)?;
                }
                tokio::time::sleep(PACE).await;
            }
            anyhow::Ok(())
        }
    });

    // Inputs no snapshot had reflected when the process died.
    let mut in_flight = 0;
    // The last seq given out before each kill.
    let mut before_kill = Vec::new();
    for kill in 1..=KILLS {
        // Mid-stream: some inputs processed on this connection, a burst
        // still in flight when the process dies.
        let target = sim.last_seq() + 10;
        within("the stream", sim.wait_for(|v| v.acked >= target)).await??;
        for n in 1..=BURST {
            send(&sim, &sent, n)?;
        }
        let conn = sim.welcome().conn;
        in_flight += sim.pending().len();
        before_kill.push(sim.last_seq());
        ctx.restart().await?;
        within(
            &format!("the reconnect after kill {kill}"),
            sim.wait_for(|v| v.welcome.conn != conn),
        )
        .await??;
    }
    let target = sim.last_seq() + 10;
    within(
        "the stream after the kills",
        sim.wait_for(|v| v.acked >= target),
    )
    .await??;
    stop.store(true, Ordering::Relaxed);
    stream.await??;
    let last = sim.last_seq();
    let view = within("every input processed", sim.wait_acked(last)).await??;
    ensure!(sim.pending().is_empty(), "pending: {:?}", sim.pending());
    sim.close().await;
    let heard = listener.await??;

    let sent = sent.lock().unwrap().clone();
    let seqs: BTreeSet<u64> = sent.keys().copied().collect();
    let sum: i64 = sent.values().sum();
    ensure!(heard.errs.is_empty(), "refused: {:?}", heard.errs);
    ensure!(
        seqs == (1..=last).collect::<BTreeSet<u64>>(),
        "seqs given out: {seqs:?}"
    );
    // Each input was acknowledged: by its `sim_ack`, or, when that was
    // lost in a kill, by the next welcome's `acked` (processed before the
    // kill, so not resent).
    let covered = heard.welcomes.iter().map(|(_, acked)| *acked).max();
    let unacked: Vec<u64> = (seqs.iter().copied())
        .filter(|s| !heard.acked.contains_key(s) && Some(*s) > covered)
        .collect();
    ensure!(unacked.is_empty(), "never acknowledged: {unacked:?}");
    ensure!(
        heard.welcomes.len() >= KILLS as usize && heard.welcomes.iter().all(|(s, _)| s == "ada"),
        "welcomes after the kills: {:?}",
        heard.welcomes
    );
    // Every acknowledged input exactly once: in the client's snapshot, the
    // shard's stats and its log.
    let total = view.snapshot.context("a snapshot")?.total;
    ensure!(total == sum, "total {total}, sum of the inputs {sum}");
    let url = ctx.dev.http(&format!("/v1/sims/counter/{id}"));
    let stats = get_json(&url).await?;
    ensure!(stats["total"] == sum, "{stats}");
    let replay = get_json(&format!("{url}/replay")).await?;
    let logged: Vec<u64> = (replay["inputs"].as_array())
        .context("replay inputs")?
        .iter()
        .filter(|i| i["subscriber"] == "ada")
        .filter_map(|i| i["seq"].as_u64())
        .collect();
    ensure!(
        replay["complete"] == true && logged == seqs.iter().copied().collect::<Vec<_>>(),
        "logged seqs: {logged:?}"
    );
    // Sent before a kill, acknowledged on a later connection: resent.
    let resent = (heard.acked.iter())
        .filter(|&(seq, &conn)| before_kill[..conn].iter().any(|&last| *seq <= last))
        .count();
    ensure!(
        in_flight > 0 && resent > 0,
        "{in_flight} inputs in flight at the kills, {resent} resent"
    );
    println!(
        "  sim_client: {} inputs over {KILLS} kills, {in_flight} in flight at the kills, \
         {resent} resent; {} sim_acks ({} duplicates), {} acknowledged by a welcome",
        seqs.len(),
        heard.acked.len(),
        heard.dups,
        seqs.len() - heard.acked.len()
    );
    Ok(())
}
