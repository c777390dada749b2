//! The simulation client against a scripted in-process server:
//! negotiation in both encodings, seq numbering, acked and pending inputs,
//! typed errors, resends after a reconnect (a named subscriber) and none
//! (anonymous), the closes that stop it (4410, 4403) and the one that
//! backs off (4429), keepalive.
#![cfg(feature = "client")]

mod client_support;

use std::time::Duration;

use client_support::sim::*;
use client_support::*;
use pylon_workers::client::sim::SimEvent;
use pylon_workers::client::{ClientError, ConnState};
use pylon_workers::protocol::{close, Encoding};
use pylon_workers::sim::wire::{close::FINISHED, SimErr, SimServerMsg};
use pylon_workers::sim::SimErrorCode;
use tokio_tungstenite::tungstenite::Message;

fn seqs(pending: &[(u64, pylon_workers::sim::counter::Add)]) -> Vec<u64> {
    pending.iter().map(|(s, _)| *s).collect()
}

fn sim_err(
    code: &str,
    seq: Option<u64>,
    reason: Option<&str>,
) -> SimServerMsg<pylon_workers::sim::counter::Total> {
    SimServerMsg::Err(SimErr {
        code: SimErrorCode::parse(code),
        message: format!("{code} (scripted)"),
        seq,
        reason: reason.map(str::to_owned),
    })
}

#[tokio::test]
async fn both_encodings_negotiate_with_the_token_and_subscriber_offered() {
    for encoding in Encoding::ALL {
        let mut server = FakeServer::start().await;
        let config = server
            .sim_config(encoding)
            .token("tok123")
            .subscriber("ada l");
        let (sim, mut conn) = server.join(config, 0).await;
        assert_eq!(
            conn.offered.as_deref(),
            Some(format!("{}, bearer.tok123", encoding.subprotocol()).as_str())
        );
        assert_eq!(conn.path, "/v1/sims/counter/c-1/ws");
        assert_eq!(conn.query.as_deref(), Some("subscriber=ada%20l"));
        assert_eq!(conn.encoding, encoding);
        let welcome = sim.welcome();
        assert_eq!((welcome.subscriber.as_str(), welcome.tick), ("ada l", 3));
        assert_eq!(
            sim.state(),
            ConnState::Live {
                conn: "c1".into(),
                seq: 0
            }
        );

        // An input and its answers, in this encoding (the fake server
        // refuses the wrong kind of frame).
        let seq = sim.send_input(add(5)).unwrap();
        let input = conn.recv_input().await;
        assert_eq!((input.seq, input.input.add()), (1, 5));
        conn.ack(seq, 4).await;
        conn.snapshot(4, 1, 5, false).await;
        let view = tokio::time::timeout(PATIENCE, sim.wait_acked(seq))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (view.tick, view.acked, view.snapshot.unwrap().total),
            (4, 1, 5)
        );
    }
}

#[tokio::test]
async fn a_welcome_of_another_protocol_or_a_refused_subscriber_fails_the_join() {
    let mut server = FakeServer::start().await;
    let (res, ()) = tokio::join!(Counter::join(server.sim_config(Encoding::Json)), async {
        let mut conn = server.accept().await;
        conn.send_raw_text(
            r#"{"type":"sim_welcome","protocol":"pylon.sim.v9","sim":"c-1","kind":"counter","conn":"c1","subscriber":"c1","tick":0,"acked":0,"tick_hz":0,"encoding":"json"}"#,
        )
        .await;
    });
    assert!(matches!(res, Err(ClientError::Protocol(_))), "{res:?}");

    let config = server.sim_config(Encoding::Postcard).subscriber("eve");
    let (res, ()) = tokio::join!(Counter::join(config), async {
        let mut conn = server.accept().await;
        conn.send_sim(sim_err("FORBIDDEN", None, Some("not you")))
            .await;
        conn.close(close::FORBIDDEN).await;
    });
    let Err(ClientError::Sim(err)) = res else {
        panic!("{res:?}")
    };
    assert_eq!(
        (err.code, err.reason.as_deref()),
        (SimErrorCode::Forbidden, Some("not you"))
    );
}

#[tokio::test]
async fn seqs_start_after_the_welcome_and_pending_follows_the_snapshots() {
    let mut server = FakeServer::start().await;
    let (sim, mut conn) = server
        .join(server.sim_config(Encoding::Json).subscriber("ada"), 4)
        .await;
    assert_eq!(sim.acked(), 4);
    let taken: Vec<u64> = (1..=3).map(|n| sim.send_input(add(n)).unwrap()).collect();
    assert_eq!(taken, [5, 6, 7]);
    assert_eq!(sim.last_seq(), 7);
    assert_eq!(conn.recv_seqs(3).await, [5, 6, 7]);
    assert_eq!(seqs(&sim.pending()), [5, 6, 7]);

    // Acknowledged is durable, not yet processed: still pending.
    conn.ack(5, 4).await;
    conn.ack(6, 4).await;
    conn.snapshot(4, 5, 1, false).await;
    let view = tokio::time::timeout(PATIENCE, sim.wait_acked(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((view.acked, sim.acked(), sim.tick()), (5, 5, 4));
    assert_eq!(seqs(&sim.pending()), [6, 7]);
    conn.snapshot(5, 6, 3, false).await;
    sim.wait_acked(6).await.unwrap();
    assert_eq!(seqs(&sim.pending()), [7]);
    assert_eq!(sim.snapshot().unwrap().total, 3);
}

#[tokio::test]
async fn errors_are_typed_and_matched_to_their_input() {
    for encoding in Encoding::ALL {
        let mut server = FakeServer::start().await;
        let (sim, mut conn) = server.join(server.sim_config(encoding), 0).await;
        let mut events = sim.events();
        for n in 1..=4 {
            sim.send_input(add(n)).unwrap();
        }
        assert_eq!(conn.recv_seqs(4).await, [1, 2, 3, 4]);
        let errs = |e: &SimEvent<_>| matches!(e, SimEvent::Err(_));
        let err_of = |e| match e {
            SimEvent::Err(e) => e,
            other => panic!("{other:?}"),
        };

        // Refusals that name no seq answer the oldest unanswered input.
        conn.send_sim(sim_err("BAD_INPUT", None, None)).await;
        let e = err_of(next_event(&mut events, errs).await);
        assert_eq!((e.code, e.seq), (SimErrorCode::BadInput, Some(1)));
        // One that names its input, with the hook's reason.
        conn.send_sim(sim_err("FORBIDDEN", Some(3), Some("not your turn")))
            .await;
        let e = err_of(next_event(&mut events, errs).await);
        assert_eq!(
            (e.code, e.seq, e.reason.as_deref()),
            (SimErrorCode::Forbidden, Some(3), Some("not your turn"))
        );
        conn.ack(2, 1).await;
        conn.send_sim(sim_err("RATE_LIMITED", None, None)).await;
        let e = err_of(next_event(&mut events, errs).await);
        assert_eq!((e.code, e.seq), (SimErrorCode::RateLimited, Some(4)));
        // Refused inputs are not pending; 2 is (durable, not processed).
        assert_eq!(seqs(&sim.pending()), [2]);
        // INPUT_REJECTED comes after the ack: processed, without effect.
        conn.send_sim(sim_err("INPUT_REJECTED", Some(2), Some("overflow")))
            .await;
        let e = err_of(next_event(&mut events, errs).await);
        assert_eq!((e.code, e.seq), (SimErrorCode::InputRejected, Some(2)));
        assert_eq!(seqs(&sim.pending()), [2], "left for the snapshot to clear");
        // A code newer than this build is kept apart, not fatal.
        conn.send_sim(sim_err("SOMETHING_NEW", None, None)).await;
        let e = err_of(next_event(&mut events, errs).await);
        assert_eq!((e.code, e.seq), (SimErrorCode::Unknown, None));
        assert!(matches!(sim.state(), ConnState::Live { .. }));
    }
}

#[tokio::test]
async fn a_named_subscriber_resends_unacknowledged_inputs_with_their_seqs() {
    for encoding in Encoding::ALL {
        let mut server = FakeServer::start().await;
        let (sim, mut conn) = server
            .join(server.sim_config(encoding).subscriber("ada"), 0)
            .await;
        for n in 1..=3 {
            sim.send_input(add(n)).unwrap();
        }
        assert_eq!(conn.recv_seqs(3).await, [1, 2, 3]);
        conn.ack(1, 1).await;
        conn.snapshot(1, 1, 1, false).await;
        sim.wait_acked(1).await.unwrap();
        conn.kill();

        // While reconnecting, a named subscriber's input waits.
        let mut state = sim.state_watch();
        state
            .wait_for(|s| !matches!(s, ConnState::Live { .. }))
            .await
            .unwrap();
        assert_eq!(sim.send_input(add(4)).unwrap(), 4);
        let mut conn = server.accept().await;
        assert_eq!(conn.named_subscriber().as_deref(), Some("ada"));
        // The server had logged 2 (its ack was lost) and processed it.
        conn.sim_welcome(2, 2).await;
        assert_eq!(conn.recv_seqs(2).await, [3, 4], "same seqs, nothing twice");
        assert_eq!(sim.send_input(add(5)).unwrap(), 5);
        assert_eq!(conn.recv_seqs(1).await, [5]);
        assert_eq!(seqs(&sim.pending()), [3, 4, 5]);
    }
}

#[tokio::test]
async fn an_anonymous_subscriber_drops_unacknowledged_inputs_and_restarts_its_seqs() {
    let mut server = FakeServer::start().await;
    let (sim, mut conn) = server.join(server.sim_config(Encoding::Postcard), 0).await;
    assert_eq!(sim.welcome().subscriber, "c1");
    let mut events = sim.events();
    for n in 1..=3 {
        sim.send_input(add(n)).unwrap();
    }
    assert_eq!(conn.recv_seqs(3).await, [1, 2, 3]);
    conn.ack(1, 1).await;
    next_event(&mut events, |e| matches!(e, SimEvent::Ack(_))).await;
    conn.kill();

    // Not connected: an input now would go out as another subscriber.
    let mut state = sim.state_watch();
    state
        .wait_for(|s| !matches!(s, ConnState::Live { .. }))
        .await
        .unwrap();
    assert_eq!(sim.send_input(add(9)), Err(ClientError::NotConnected));
    let mut conn = server.accept().await;
    assert_eq!(conn.named_subscriber(), None);
    conn.sim_welcome(5, 0).await;
    let dropped = next_event(&mut events, |e| matches!(e, SimEvent::Dropped { .. })).await;
    assert_eq!(dropped, SimEvent::Dropped { seqs: vec![2, 3] });
    conn.expect_silence(Duration::from_millis(200)).await;
    assert!(sim.pending().is_empty());
    assert_eq!(sim.welcome().subscriber, "c2");
    assert_eq!(sim.send_input(add(4)).unwrap(), 1);
    assert_eq!(conn.recv_seqs(1).await, [1]);
}

#[tokio::test]
async fn close_4410_after_the_final_snapshot_stops_the_client() {
    let mut server = FakeServer::start().await;
    let (sim, mut conn) = server
        .join(server.sim_config(Encoding::Json).subscriber("ada"), 0)
        .await;
    let mut events = sim.events();
    conn.snapshot(9, 0, 40, true).await;
    conn.close(FINISHED).await;
    let closed = next_event(&mut events, |e| {
        matches!(e, SimEvent::State(ConnState::Closed { .. }))
    })
    .await;
    assert_eq!(
        closed,
        SimEvent::State(ConnState::Closed {
            code: Some(FINISHED)
        })
    );
    let view = sim.view();
    assert!(view.is_final && view.snapshot.unwrap().total == 40);
    assert!(
        server
            .try_accept(Duration::from_millis(300))
            .await
            .is_none(),
        "no reconnect"
    );
    assert_eq!(
        sim.send_input(add(1)),
        Err(ClientError::Closed {
            code: Some(FINISHED)
        })
    );
    assert_eq!(
        sim.wait_acked(1).await.unwrap_err(),
        ClientError::Closed {
            code: Some(FINISHED)
        }
    );
}

#[tokio::test]
async fn close_4403_stops_the_client() {
    let mut server = FakeServer::start().await;
    let (sim, conn) = server.join(server.sim_config(Encoding::Json), 0).await;
    conn.close(close::FORBIDDEN).await;
    let err = tokio::time::timeout(PATIENCE, sim.wait_for(|_| false))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        err,
        ClientError::Closed {
            code: Some(close::FORBIDDEN)
        }
    );
    assert!(
        server
            .try_accept(Duration::from_millis(300))
            .await
            .is_none(),
        "no reconnect"
    );
}

#[tokio::test]
async fn close_4429_backs_off_longer_each_time_in_a_row() {
    let mut server = FakeServer::start().await;
    let (sim, mut conn) = server
        .join(server.sim_config(Encoding::Json).subscriber("ada"), 0)
        .await;
    let mut events = sim.events();
    let waiting = |e: &SimEvent<_>| matches!(e, SimEvent::State(ConnState::Waiting { .. }));
    // The config's backoff: attempt n waits between d/2 and d, d = 20 ms · 2^n (at most 100 ms).
    for expected in [1u32, 2, 3] {
        conn.close(close::RATE_LIMITED).await;
        let SimEvent::State(ConnState::Waiting { attempt, delay }) =
            next_event(&mut events, waiting).await
        else {
            unreachable!()
        };
        let floor = Duration::from_millis((10u64 << expected).min(50));
        assert_eq!(attempt, expected);
        assert!(delay >= floor, "attempt {attempt}: {delay:?}");
        conn = server.accept().await;
        conn.sim_welcome(1, 0).await;
    }
    // Any other drop starts again from the shortest wait.
    conn.close(close::GOING_AWAY).await;
    let e = next_event(&mut events, waiting).await;
    assert!(
        matches!(e, SimEvent::State(ConnState::Waiting { attempt: 0, .. })),
        "{e:?}"
    );
    let mut conn = server.accept().await;
    conn.sim_welcome(1, 0).await;
    sim.wait_live().await.unwrap();
}

#[tokio::test]
async fn keepalive_frames_go_out_after_silence() {
    let mut server = FakeServer::start().await;
    let config = server
        .sim_config(Encoding::Postcard)
        .keepalive(Some(Duration::from_millis(100)));
    let (_sim, mut conn) = server.join(config, 0).await;
    // Postcard or not, the keepalive is the text frame of the live protocol.
    assert_eq!(conn.recv_frame().await, Message::text("pylon.keepalive"));
    conn.send_raw_text("pylon.keepalive.ack").await;
    assert_eq!(conn.recv_frame().await, Message::text("pylon.keepalive"));
}
