//! Recovery: gaps, dropped connections, resume with `since`, `reset`,
//! retried mutations and function calls, watches sent again, close codes
//! that stop the client, keepalive.
#![cfg(feature = "client")]

mod client_support;

use std::time::Duration;

use client_support::*;
use pylon_workers::client::{
    Client, ClientError, ConnState, Event, Query, SubStatus, Subscription,
};
use pylon_workers::protocol::*;
use pylon_workers::value::Value;

/// Subscribes to `Todo` and answers with a snap of `ids` at `seq`.
async fn subscribe(client: &Client, conn: &mut FakeConn, rows: &[&str], seq: u64) -> Subscription {
    let (sub, ()) = tokio::join!(client.subscribe(Query::new("Todo")), async {
        let ClientMsg::Sub(sub) = conn.recv().await else {
            panic!("expected sub")
        };
        assert_eq!(sub.since, None);
        let rows = rows.iter().map(|id| row(id, &[])).collect();
        conn.send(ServerMsg::Snap(Snap {
            id: sub.id,
            seq,
            rows,
            count: None,
        }))
        .await;
    });
    sub.unwrap()
}

fn added(id: &str, from: u64, seq: u64, pos: u32, row_id: &str) -> ServerMsg {
    let added = vec![Positioned {
        pos,
        row: row(row_id, &[]),
    }];
    ServerMsg::Diff(Diff {
        id: id.into(),
        from,
        seq,
        added,
        ..Diff::default()
    })
}

#[tokio::test]
async fn a_gap_makes_the_client_subscribe_anew() {
    for encoding in Encoding::ALL {
        let mut server = FakeServer::start().await;
        let (client, mut conn) = server.connect(server.config("s", encoding)).await;
        let mut events = client.events();
        let mut sub = subscribe(&client, &mut conn, &["a", "b"], 3).await;

        // from 4, but the client holds 3: refused.
        conn.send(added("s1", 4, 5, 0, "x")).await;
        assert_eq!(
            conn.recv().await,
            ClientMsg::Unsub(Unsub { id: "s1".into() })
        );
        let ClientMsg::Sub(resub) = conn.recv().await else {
            panic!("expected sub")
        };
        assert_eq!(
            (resub.id.as_str(), resub.entity.as_str(), resub.since),
            ("s1.1", "Todo", None)
        );
        let e = next_event(&mut events, |e| matches!(e, Event::Resync { .. })).await;
        assert!(
            matches!(e, Event::Resync { sub: 1, ref reason } if reason.contains("gap")),
            "{e:?}"
        );
        // The last good rows stay visible, marked as resyncing.
        assert_eq!(
            (ids(&sub.rows()), sub.seq(), sub.status()),
            (vec!["a".into(), "b".into()], None, SubStatus::Resyncing)
        );

        // Late messages for the old id are ignored; the fresh snap replaces the rows.
        conn.send(added("s1", 5, 6, 0, "late")).await;
        let rows = vec![row("a", &[]), row("x", &[])];
        conn.send(ServerMsg::Snap(Snap {
            id: "s1.1".into(),
            seq: 6,
            rows,
            count: None,
        }))
        .await;
        conn.send(added("s1.1", 6, 8, 2, "y")).await;
        let view = sub.wait_seq(8).await.unwrap();
        assert_eq!(ids(&view.rows), ["a", "x", "y"]);
        assert_eq!(view.status, SubStatus::Live);

        // A diff whose rows do not match is handled like a gap.
        let bad = Diff {
            id: "s1.1".into(),
            from: 8,
            seq: 9,
            removed: vec!["nope".into()],
            ..Diff::default()
        };
        conn.send(ServerMsg::Diff(bad)).await;
        assert_eq!(
            conn.recv().await,
            ClientMsg::Unsub(Unsub { id: "s1.1".into() })
        );
        let ClientMsg::Sub(resub) = conn.recv().await else {
            panic!("expected sub")
        };
        assert_eq!((resub.id.as_str(), resub.since), ("s1.2", None));
        drop(sub);
    }
}

#[tokio::test]
async fn a_dropped_connection_resumes_subscriptions_mutations_and_presence() {
    for encoding in Encoding::ALL {
        let mut server = FakeServer::start().await;
        let (client, mut conn) = server.connect(server.config("s", encoding)).await;
        let mut events = client.events();
        let mut todos = subscribe(&client, &mut conn, &["a"], 3).await;
        conn.send(added("s1", 3, 5, 1, "b")).await;
        todos.wait_seq(5).await.unwrap();
        client.presence(text("here")).unwrap();
        assert_eq!(
            conn.recv().await,
            ClientMsg::Presence(Presence {
                state: text("here")
            })
        );

        // A mutation is sent, then the connection dies before its ack.
        let ops = vec![Op::Insert {
            entity: "Todo".into(),
            row: row("c", &[]),
        }];
        let client2 = client.clone();
        let mutation = tokio::spawn(async move { client2.mutate(ops).await });
        let ClientMsg::Mut(first) = conn.recv().await else {
            panic!("expected mut")
        };
        conn.kill();
        next_event(&mut events, |e| matches!(e, Event::Disconnected { .. })).await;

        // The client comes back: sub with since = held seq, the same mut, presence.
        let mut conn = server.accept().await;
        conn.welcome(6).await;
        let ClientMsg::Sub(resub) = conn.recv().await else {
            panic!("expected sub")
        };
        assert_eq!(
            (resub.id.as_str(), resub.entity.as_str(), resub.since),
            ("s1", "Todo", Some(5))
        );
        assert_eq!(conn.recv().await, ClientMsg::Mut(first.clone()));
        assert_eq!(
            conn.recv().await,
            ClientMsg::Presence(Presence {
                state: text("here")
            })
        );
        client.wait_live().await.unwrap();
        assert_eq!(client.conn_id(), "c2");

        // The server had applied it: the diff for it comes first, then the dup ack.
        conn.send(added("s1", 5, 6, 2, "c")).await;
        conn.send(ServerMsg::Ack(Ack {
            op: first.op.clone(),
            seq: 6,
            dup: true,
        }))
        .await;
        let ack = mutation.await.unwrap().unwrap();
        assert_eq!(
            ack,
            Ack {
                op: first.op,
                seq: 6,
                dup: true
            }
        );
        // Read your writes: the subscription reflects the ack's seq already.
        assert_eq!(
            (todos.seq(), ids(&todos.rows())),
            (Some(6), vec!["a".into(), "b".into(), "c".into()])
        );

        // A resume with nothing new is confirmed by an empty diff (seq = from).
        conn.kill();
        let mut conn = server.accept().await;
        conn.welcome(6).await;
        let ClientMsg::Sub(resub) = conn.recv().await else {
            panic!("expected sub")
        };
        assert_eq!(resub.since, Some(6));
        assert_eq!(
            conn.recv().await,
            ClientMsg::Presence(Presence {
                state: text("here")
            })
        );
        conn.send(ServerMsg::Diff(Diff {
            id: "s1".into(),
            from: 6,
            seq: 6,
            ..Diff::default()
        }))
        .await;
        conn.send(added("s1", 6, 7, 0, "d")).await;
        let view = todos.wait_seq(7).await.unwrap();
        assert_eq!(ids(&view.rows), ["d", "a", "b", "c"]);
    }
}

#[tokio::test]
async fn unanswered_calls_and_watches_are_sent_again_after_a_reconnect() {
    let mut server = FakeServer::start().await;
    let (client, mut conn) = server.connect(server.config("s", Encoding::Json)).await;
    let mut events = client.events();
    let watching = client.watch_lazy("summary", Value::Null).unwrap();
    let ClientMsg::Watch(watch) = conn.recv().await else {
        panic!("expected watch")
    };
    conn.send(ServerMsg::FnValue(FnValue {
        id: watch.id.clone(),
        seq: 1,
        value: Value::Int(1),
    }))
    .await;

    // A mutation's call, then a plain mut, both sent; the connection dies.
    let (c2, c3) = (client.clone(), client.clone());
    let call = tokio::spawn(async move { c2.call("addCard", text("k1")).await });
    let ClientMsg::Call(first) = conn.recv().await else {
        panic!("expected call")
    };
    let mutation = tokio::spawn(async move { c3.mutate(vec![]).await });
    let ClientMsg::Mut(m) = conn.recv().await else {
        panic!("expected mut")
    };
    conn.kill();
    next_event(&mut events, |e| matches!(e, Event::Disconnected { .. })).await;

    // Sent again: the watch, then the call and the mut in the order made.
    let mut conn = server.accept().await;
    conn.welcome(2).await;
    assert_eq!(conn.recv().await, ClientMsg::Watch(watch.clone()));
    assert_eq!(conn.recv().await, ClientMsg::Call(first.clone()));
    assert_eq!(conn.recv().await, ClientMsg::Mut(m.clone()));
    conn.send(ServerMsg::Returned(Returned {
        op: first.op,
        seq: 2,
        value: text("added"),
        dup: true,
    }))
    .await;
    conn.send(ServerMsg::Ack(Ack {
        op: m.op,
        seq: 3,
        dup: false,
    }))
    .await;
    conn.send(ServerMsg::FnValue(FnValue {
        id: watch.id,
        seq: 3,
        value: Value::Int(2),
    }))
    .await;
    assert_eq!(call.await.unwrap().unwrap(), text("added"));
    assert_eq!(mutation.await.unwrap().unwrap().seq, 3);
    let mut watching = watching;
    assert_eq!(watching.wait_seq(3).await.unwrap().value, Value::Int(2));

    // A call made while disconnected waits for the connection.
    conn.kill();
    let mut state = client.state_watch();
    state
        .wait_for(|s| !matches!(s, ConnState::Live { .. }))
        .await
        .unwrap();
    let c4 = client.clone();
    let call = tokio::spawn(async move { c4.call("countCards", Value::Null).await });
    let mut conn = server.accept().await;
    conn.welcome(3).await;
    assert!(matches!(conn.recv().await, ClientMsg::Watch(_)));
    let ClientMsg::Call(c) = conn.recv().await else {
        panic!("expected call")
    };
    assert_eq!(c.name, "countCards");
    // The client closes: the call fails, the watch is closed.
    client.close().await;
    assert_eq!(call.await.unwrap(), Err(ClientError::Closed { code: None }));
    assert_eq!(watching.status(), SubStatus::Closed);
}

#[tokio::test]
async fn reset_then_snap_replaces_the_set() {
    let mut server = FakeServer::start().await;
    let (client, mut conn) = server.connect(server.config("s", Encoding::Json)).await;
    let mut todos = subscribe(&client, &mut conn, &["a", "b"], 3).await;
    conn.kill();

    let mut conn = server.accept().await;
    conn.welcome(90).await;
    let ClientMsg::Sub(resub) = conn.recv().await else {
        panic!("expected sub")
    };
    assert_eq!(resub.since, Some(3));
    conn.send(ServerMsg::Reset(Reset {
        id: "s1".into(),
        reason: reset_reason::TOO_OLD.into(),
    }))
    .await;
    // A diff between reset and snap would be a gap; the snap replaces everything.
    let rows = vec![row("z", &[])];
    conn.send(ServerMsg::Snap(Snap {
        id: "s1".into(),
        seq: 90,
        rows,
        count: None,
    }))
    .await;
    let view = todos.wait_seq(90).await.unwrap();
    assert_eq!(
        (ids(&view.rows), view.status),
        (vec!["z".into()], SubStatus::Live)
    );
}

#[tokio::test]
async fn mutations_sent_while_disconnected_wait_for_the_connection() {
    let mut server = FakeServer::start().await;
    let (client, conn) = server.connect(server.config("s", Encoding::Json)).await;
    conn.kill();
    let mut state = client.state_watch();
    state
        .wait_for(|s| !matches!(s, ConnState::Live { .. }))
        .await
        .unwrap();
    assert_eq!(client.ping().await, Err(ClientError::NotConnected));

    let client2 = client.clone();
    let mutation = tokio::spawn(async move { client2.mutate(vec![]).await });
    let mut conn = server.accept().await;
    conn.welcome(1).await;
    let ClientMsg::Mut(m) = conn.recv().await else {
        panic!("expected mut")
    };
    conn.send(ServerMsg::Ack(Ack {
        op: m.op,
        seq: 1,
        dup: false,
    }))
    .await;
    assert_eq!(mutation.await.unwrap().unwrap().seq, 1);
}

#[tokio::test]
async fn close_4403_stops_the_client_and_fails_pending_work() {
    let mut server = FakeServer::start().await;
    let (client, mut conn) = server.connect(server.config("s", Encoding::Postcard)).await;
    let mut todos = subscribe(&client, &mut conn, &["a"], 1).await;
    let client2 = client.clone();
    let mutation = tokio::spawn(async move { client2.mutate(vec![]).await });
    let ClientMsg::Mut(_) = conn.recv().await else {
        panic!("expected mut")
    };
    conn.close(close::FORBIDDEN).await;

    assert_eq!(
        mutation.await.unwrap(),
        Err(ClientError::Closed { code: Some(4403) })
    );
    let mut state = client.state_watch();
    state
        .wait_for(|s| matches!(s, ConnState::Closed { .. }))
        .await
        .unwrap();
    assert_eq!(client.state(), ConnState::Closed { code: Some(4403) });
    assert_eq!(
        todos.changed().await,
        Err(ClientError::Closed { code: None })
    );
    assert_eq!(
        client.mutate(vec![]).await,
        Err(ClientError::Closed { code: Some(4403) })
    );
    assert!(
        server
            .try_accept(Duration::from_millis(300))
            .await
            .is_none(),
        "no reconnect after 4403"
    );
}

#[tokio::test]
async fn other_close_codes_reconnect_and_close_is_clean() {
    let mut server = FakeServer::start().await;
    let (client, conn) = server.connect(server.config("s", Encoding::Json)).await;
    conn.close(close::GOING_AWAY).await;
    let mut conn = server.accept().await;
    conn.welcome(1).await;
    client.wait_live().await.unwrap();

    client.close().await;
    assert_eq!(client.state(), ConnState::Closed { code: None });
    assert!(
        matches!(conn.recv_frame().await, tokio_tungstenite::tungstenite::Message::Close(Some(f)) if u16::from(f.code) == 1000)
    );
}

#[tokio::test]
async fn keepalive_sends_the_keepalive_frame_then_gives_up_on_a_silent_server() {
    let mut server = FakeServer::start().await;
    let config = server
        .config("s", Encoding::Postcard)
        .keepalive(Some(Duration::from_millis(100)));
    let (client, mut conn) = server.connect(config).await;
    let keepalive =
        || tokio_tungstenite::tungstenite::Message::text(pylon_workers::protocol::KEEPALIVE);
    // A text frame even on a postcard connection: the platform matches it
    // byte for byte.
    assert_eq!(conn.recv_frame().await, keepalive());
    // The ack is a sign of life, not a message or an error: the client
    // stays live and keeps sending keepalives.
    conn.send_raw_text(pylon_workers::protocol::KEEPALIVE_ACK)
        .await;
    assert_eq!(conn.recv_frame().await, keepalive());
    assert!(
        matches!(client.state(), ConnState::Live { .. }),
        "{:?}",
        client.state()
    );
    // No answer: after twice the keepalive the client reconnects.
    let mut conn2 = server.accept().await;
    conn2.welcome(1).await;
    drop(conn);
}
