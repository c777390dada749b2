//! The client against a scripted in-process server: negotiation, snapshots
//! and diffs, errors, presence, broadcast, ping, server functions (calls
//! and watches), and the raw connection.
#![cfg(feature = "client")]

mod client_support;

use client_support::*;
use pylon_workers::client::{
    Client, ClientConfig, ClientError, ConnState, Event, Query, RawConnection, Received, SubStatus,
};
use pylon_workers::protocol::*;
use pylon_workers::value::Value;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn both_encodings_negotiate_with_the_token_offered() {
    for encoding in Encoding::ALL {
        let mut server = FakeServer::start().await;
        let config = server
            .config("team:1", encoding)
            .token("tok123")
            .client_id("test/1");
        let (client, mut conn) = server.connect(config).await;
        assert_eq!(
            conn.offered.as_deref(),
            Some(format!("{}, bearer.tok123", encoding.subprotocol()).as_str())
        );
        assert_eq!(conn.path, "/v1/shards/team:1/ws");
        assert_eq!(conn.encoding, encoding);
        let welcome = client.welcome();
        assert_eq!(
            (welcome.shard.as_str(), welcome.seq, welcome.conn.as_str()),
            ("team:1", 7, "c1")
        );
        assert_eq!(
            client.state(),
            ConnState::Live {
                conn: "c1".into(),
                seq: 7
            }
        );
        // With a client id, a hello follows the welcome.
        let hello = Hello {
            client: Some("test/1".into()),
            token: Some("tok123".into()),
        };
        assert_eq!(conn.recv().await, ClientMsg::Hello(hello));

        // A round trip in this encoding.
        let (rtt, ()) = tokio::join!(client.ping(), async {
            let ClientMsg::Ping(Ping { t }) = conn.recv().await else {
                panic!("expected ping")
            };
            assert!(t.is_some());
            conn.send(ServerMsg::Pong(Pong { t })).await;
        });
        assert!(rtt.unwrap() < PATIENCE);
    }
}

#[tokio::test]
async fn the_echoed_subprotocol_is_checked() {
    for echo in [Echo::Nothing, Echo::Fixed("bearer.tok")] {
        let server = FakeServer::start_with(echo).await;
        let err = Client::connect(server.config("s", Encoding::Postcard).token("tok"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ClientError::Handshake(_)),
            "{echo:?}: {err:?}"
        );
    }
    // A welcome in the wrong encoding is a protocol error.
    let mut server = FakeServer::start().await;
    let (res, ()) = tokio::join!(Client::connect(server.config("s", Encoding::Json)), async {
        let mut conn = server.accept().await;
        let welcome = Welcome {
            protocol: PROTOCOL.into(),
            shard: "s".into(),
            seq: 0,
            conn: "c".into(),
            encoding: Encoding::Postcard,
            window: None,
        };
        conn.send(ServerMsg::Welcome(welcome)).await;
    });
    assert!(matches!(res, Err(ClientError::Protocol(_))), "{res:?}");
    // A bad shard name never reaches the network.
    let config = ClientConfig {
        url: server.url(),
        shard: "no spaces".into(),
        ..ClientConfig::default()
    };
    let err = Client::connect(config).await.unwrap_err();
    assert!(matches!(err, ClientError::InvalidConfig(_)), "{err:?}");
}

#[tokio::test]
async fn snapshots_and_diffs_apply_in_order() {
    for encoding in Encoding::ALL {
        let mut server = FakeServer::start().await;
        let (client, mut conn) = server.connect(server.config("s", encoding)).await;
        let filter = Value::Map(
            [("done".to_owned(), Value::Bool(false))]
                .into_iter()
                .collect(),
        );
        let query = Query::new("Todo")
            .filter(filter.clone())
            .limit(10)
            .with_count();
        let (sub, ()) = tokio::join!(client.subscribe(query), async {
            let ClientMsg::Sub(sub) = conn.recv().await else {
                panic!("expected sub")
            };
            assert_eq!((sub.id.as_str(), sub.entity.as_str()), ("s1", "Todo"));
            assert_eq!(
                (&sub.r#where, sub.limit, sub.since, sub.count),
                (&filter, Some(10), None, true)
            );
            let rows = vec![
                row("a", &[]),
                row("b", &[]),
                row("c", &[("n", Value::Int(1))]),
            ];
            conn.send(ServerMsg::Snap(Snap {
                id: "s1".into(),
                seq: 3,
                rows,
                count: Some(3),
            }))
            .await;
        });
        let mut sub = sub.unwrap();
        assert_eq!(
            (ids(&sub.rows()), sub.seq(), sub.status()),
            (
                vec!["a".into(), "b".into(), "c".into()],
                Some(3),
                SubStatus::Live
            )
        );

        // b leaves, c changes and moves to the front, d enters last.
        let diff = Diff {
            id: "s1".into(),
            from: 3,
            seq: 5,
            added: vec![Positioned {
                pos: 2,
                row: row("d", &[]),
            }],
            changed: vec![Positioned {
                pos: 0,
                row: row("c", &[("n", Value::Int(2))]),
            }],
            removed: vec!["b".into()],
            count: Some(7),
        };
        conn.send(ServerMsg::Diff(diff)).await;
        let view = sub.wait_seq(5).await.unwrap();
        assert_eq!(ids(&view.rows), ["c", "a", "d"]);
        assert_eq!(view.get("c").unwrap()["n"], Value::Int(2));
        assert_eq!(view.count, Some(7));

        // A diff without count keeps the count; `changed()` wakes up.
        let diff = Diff {
            id: "s1".into(),
            from: 5,
            seq: 6,
            removed: vec!["a".into()],
            ..Diff::default()
        };
        conn.send(ServerMsg::Diff(diff)).await;
        sub.changed().await.unwrap();
        assert_eq!(
            (ids(&sub.rows()), sub.seq(), sub.view().count),
            (vec!["c".into(), "d".into()], Some(6), Some(7))
        );

        // Dropping the handle unsubscribes.
        drop(sub);
        assert_eq!(
            conn.recv().await,
            ClientMsg::Unsub(Unsub { id: "s1".into() })
        );
    }
}

#[tokio::test]
async fn server_errors_reach_the_caller_with_their_code() {
    let mut server = FakeServer::start().await;
    let (client, mut conn) = server.connect(server.config("s", Encoding::Json)).await;
    let mut events = client.events();

    let ops = vec![Op::Delete {
        entity: "Todo".into(),
        id: "t4".into(),
    }];
    let (res, ()) = tokio::join!(client.mutate(ops.clone()), async {
        let ClientMsg::Mut(m) = conn.recv().await else {
            panic!("expected mut")
        };
        assert_eq!(m.ops, ops);
        assert_eq!(m.op.len(), 36, "a UUID: {}", m.op);
        let err = ErrorMsg {
            code: ErrorCode::NotFound,
            message: "no t4".into(),
            op: Some(m.op),
            sub: None,
        };
        conn.send(ServerMsg::Err(err)).await;
    });
    let err = res.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotFound));
    assert_eq!(
        err,
        ClientError::Server {
            code: ErrorCode::NotFound,
            message: "no t4".into()
        }
    );

    let (res, ()) = tokio::join!(client.subscribe(Query::new("Todoo")), async {
        let ClientMsg::Sub(sub) = conn.recv().await else {
            panic!("expected sub")
        };
        let err = ErrorMsg {
            code: ErrorCode::UnknownEntity,
            message: "no Todoo".into(),
            op: None,
            sub: Some(sub.id),
        };
        conn.send(ServerMsg::Err(err)).await;
    });
    assert_eq!(res.unwrap_err().code(), Some(ErrorCode::UnknownEntity));

    // An error that answers nothing pending becomes an event; an unknown code stays usable.
    let err = ErrorMsg {
        code: ErrorCode::Unknown,
        message: "newer".into(),
        op: None,
        sub: None,
    };
    conn.send(ServerMsg::Err(err.clone())).await;
    loop {
        match tokio::time::timeout(PATIENCE, events.recv())
            .await
            .unwrap()
            .unwrap()
        {
            Event::Error(e) => break assert_eq!(e, err),
            _ => continue,
        }
    }
}

#[tokio::test]
async fn presence_broadcast_and_acks() {
    let mut server = FakeServer::start().await;
    let (client, mut conn) = server.connect(server.config("s", Encoding::Postcard)).await;
    let mut events = client.events();

    let ada = Value::Text("Ada".into());
    client.presence(ada.clone()).unwrap();
    assert_eq!(
        conn.recv().await,
        ClientMsg::Presence(Presence { state: ada.clone() })
    );
    client.broadcast("typing", Value::Int(1)).await.unwrap();
    assert_eq!(
        conn.recv().await,
        ClientMsg::Bcast(SendBcast {
            topic: "typing".into(),
            data: Value::Int(1)
        })
    );

    let member = |c: &str, s: &str| Member {
        conn: c.into(),
        state: text(s),
    };
    conn.send(ServerMsg::PresenceState(PresenceState {
        members: vec![member("c1", "Ada"), member("c2", "Bob")],
    }))
    .await;
    let diff = PresenceDiff {
        joins: vec![member("c3", "Cy")],
        updates: vec![member("c2", "Bo")],
        leaves: vec!["c1".into()],
    };
    conn.send(ServerMsg::PresenceDiff(diff.clone())).await;
    let bcast = Bcast {
        topic: "typing".into(),
        data: Value::Int(2),
        from: "c2".into(),
    };
    conn.send(ServerMsg::Bcast(bcast.clone())).await;

    let mut seen = Vec::new();
    while seen.len() < 3 {
        let e = tokio::time::timeout(PATIENCE, events.recv())
            .await
            .unwrap()
            .unwrap();
        if matches!(
            e,
            Event::PresenceState(_) | Event::PresenceDiff(_) | Event::Bcast(_)
        ) {
            seen.push(e);
        }
    }
    assert_eq!(seen[1], Event::PresenceDiff(diff));
    assert_eq!(seen[2], Event::Bcast(bcast));
    let members = client.presence_members();
    assert_eq!(
        members.into_iter().collect::<Vec<_>>(),
        vec![("c2".into(), text("Bo")), ("c3".into(), text("Cy"))]
    );

    // An ack answers the mutation with the same op id.
    let (res, ()) = tokio::join!(client.mutate(vec![]), async {
        let ClientMsg::Mut(m) = conn.recv().await else {
            panic!("expected mut")
        };
        conn.send(ServerMsg::Ack(Ack {
            op: m.op,
            seq: 9,
            dup: false,
        }))
        .await;
    });
    assert_eq!((res.as_ref().unwrap().seq, res.unwrap().dup), (9, false));
}

#[tokio::test]
async fn calls_are_answered_by_result_or_err_with_their_op() {
    for encoding in Encoding::ALL {
        let mut server = FakeServer::start().await;
        let (client, mut conn) = server.connect(server.config("s", encoding)).await;
        let args = Value::Map([("id".to_owned(), text("k1"))].into_iter().collect());

        let (res, ()) = tokio::join!(client.call("addCard", args.clone()), async {
            let ClientMsg::Call(c) = conn.recv().await else {
                panic!("expected call")
            };
            assert_eq!((c.name.as_str(), &c.args), ("addCard", &args));
            assert_eq!(c.op.len(), 36, "a UUID: {}", c.op);
            // An answer to another op first: not this call's.
            conn.send(ServerMsg::Returned(Returned {
                op: "someone-else".into(),
                seq: 1,
                value: text("no"),
                dup: false,
            }))
            .await;
            conn.send(ServerMsg::Returned(Returned {
                op: c.op,
                seq: 4,
                value: text("added"),
                dup: false,
            }))
            .await;
        });
        assert_eq!(res.unwrap(), text("added"));

        // The whole result with a chosen op id.
        let (res, ()) = tokio::join!(
            client.call_with_id("op-7".into(), "addCard", Value::Null),
            async {
                let ClientMsg::Call(c) = conn.recv().await else {
                    panic!("expected call")
                };
                assert_eq!((c.op.as_str(), &c.args), ("op-7", &Value::Null));
                conn.send(ServerMsg::Returned(Returned {
                    op: c.op,
                    seq: 4,
                    value: text("added"),
                    dup: true,
                }))
                .await;
            }
        );
        let r = res.unwrap();
        assert_eq!((r.seq, r.dup, r.value), (4, true, text("added")));

        let (res, ()) = tokio::join!(client.call("sell", Value::Null), async {
            let ClientMsg::Call(c) = conn.recv().await else {
                panic!("expected call")
            };
            let err = ErrorMsg {
                code: ErrorCode::FunctionError,
                message: "OUT_OF_STOCK: none left".into(),
                op: Some(c.op),
                sub: None,
            };
            conn.send(ServerMsg::Err(err)).await;
        });
        assert_eq!(
            res.unwrap_err(),
            ClientError::Server {
                code: ErrorCode::FunctionError,
                message: "OUT_OF_STOCK: none left".into()
            }
        );
    }
}

#[tokio::test]
async fn a_watch_holds_the_latest_value_until_dropped() {
    let mut server = FakeServer::start().await;
    let (client, mut conn) = server.connect(server.config("s", Encoding::Postcard)).await;
    let args = Value::Map([("board".to_owned(), text("b1"))].into_iter().collect());
    let (w, ()) = tokio::join!(client.watch("summary", args.clone()), async {
        let ClientMsg::Watch(w) = conn.recv().await else {
            panic!("expected watch")
        };
        assert_eq!(
            (w.id.as_str(), w.name.as_str(), &w.args),
            ("w1", "summary", &args)
        );
        conn.send(ServerMsg::FnValue(FnValue {
            id: w.id,
            seq: 3,
            value: Value::Int(1),
        }))
        .await;
    });
    let mut w = w.unwrap();
    assert_eq!(
        (w.value(), w.seq(), w.status()),
        (Value::Int(1), Some(3), SubStatus::Live)
    );

    // Each value replaces the last; one for another id changes nothing.
    for (id, seq, n) in [("w9", 4, 100), ("w1", 5, 2)] {
        conn.send(ServerMsg::FnValue(FnValue {
            id: id.into(),
            seq,
            value: Value::Int(n),
        }))
        .await;
    }
    let view = w.wait_seq(5).await.unwrap();
    assert_eq!(view.value, Value::Int(2));

    // Subscriptions and watches share the id counter, not the id space.
    let sub = client.subscribe_lazy(Query::new("Todo")).unwrap();
    let ClientMsg::Sub(s) = conn.recv().await else {
        panic!("expected sub")
    };
    assert_eq!(s.id, "s2");
    drop(sub);
    assert_eq!(
        conn.recv().await,
        ClientMsg::Unsub(Unsub { id: "s2".into() })
    );

    w.unwatch();
    assert_eq!(
        conn.recv().await,
        ClientMsg::Unsub(Unsub { id: "w1".into() })
    );

    // A refused watch fails, and is not unsubscribed.
    let (res, ()) = tokio::join!(client.watch("moveCard", Value::Null), async {
        let ClientMsg::Watch(w) = conn.recv().await else {
            panic!("expected watch")
        };
        let err = ErrorMsg {
            code: ErrorCode::WrongKind,
            message: "a mutation".into(),
            op: None,
            sub: Some(w.id),
        };
        conn.send(ServerMsg::Err(err)).await;
    });
    assert_eq!(res.unwrap_err().code(), Some(ErrorCode::WrongKind));
    conn.expect_silence(std::time::Duration::from_millis(100))
        .await;
}

#[tokio::test]
async fn raw_connection_sends_whatever_it_is_told() {
    let mut server = FakeServer::start().await;
    let config = server.config("s", Encoding::Json);
    let (raw, mut conn) = tokio::join!(RawConnection::connect(&config), server.accept());
    let mut raw = raw.unwrap();
    conn.welcome(1).await;
    assert_eq!(raw.recv_welcome().await.unwrap().seq, 1);

    raw.send_text("{not json").await.unwrap();
    raw.send_binary(vec![0xff, 0x00]).await.unwrap();
    raw.send(&ClientMsg::Ping(Ping { t: Some(3) }))
        .await
        .unwrap();
    assert_eq!(conn.recv_frame().await, Message::text("{not json"));
    assert_eq!(conn.recv_frame().await, Message::binary(vec![0xff, 0x00]));
    assert_eq!(conn.recv().await, ClientMsg::Ping(Ping { t: Some(3) }));

    // A newer message type is reported, not fatal; then a close with its code.
    conn.send_raw_text(r#"{"type":"from_the_future"}"#).await;
    conn.send(ServerMsg::Pong(Pong { t: Some(3) })).await;
    assert!(matches!(
        raw.recv().await.unwrap(),
        Received::Undecodable(DecodeError::UnknownType { .. })
    ));
    assert_eq!(
        raw.recv().await.unwrap(),
        Received::Msg(ServerMsg::Pong(Pong { t: Some(3) }))
    );
    conn.close(close::FORBIDDEN).await;
    assert!(matches!(
        raw.recv().await.unwrap(),
        Received::Closed {
            code: Some(4403),
            ..
        }
    ));

    // Offering nothing at all: the server picks JSON and echoes nothing.
    let url = config.ws_url().unwrap();
    let (raw, _conn) = tokio::join!(
        RawConnection::connect_offering(&url, &[], Encoding::Json, 1 << 20),
        server.accept()
    );
    assert_eq!(raw.unwrap().encoding(), Encoding::Json);
}

/// The raw connection (under `Client` too) receipts each quarter of the
/// window its JSON `welcome` announced, and each 256 KiB without one.
#[tokio::test]
async fn raw_connection_sizes_its_receipts_from_the_welcome_window() {
    let filler = format!(r#"{{"type":"pong","pad":"{}"}}"#, "x".repeat(100 * 1024));
    for (window, step) in [(None, 256 * 1024), (Some(2u64 << 20), 512 * 1024)] {
        let mut server = FakeServer::start().await;
        let config = server.config("s", Encoding::Json);
        let (raw, mut conn) = tokio::join!(RawConnection::connect(&config), server.accept());
        let mut raw = raw.unwrap();
        let welcome = ServerMsg::Welcome(Welcome {
            protocol: PROTOCOL.into(),
            shard: "s".into(),
            seq: 1,
            conn: "c1".into(),
            encoding: Encoding::Json,
            window,
        });
        let mut received = encode_server(Encoding::Json, &welcome).len();
        conn.send(welcome).await;
        raw.recv_welcome().await.unwrap();
        while received < step {
            conn.send_raw_text(&filler).await;
            raw.recv().await.unwrap();
            received += filler.len();
            if received < step {
                conn.expect_silence(std::time::Duration::from_millis(30))
                    .await;
            }
        }
        // The next read sends the receipt first.
        conn.send(ServerMsg::Pong(Pong { t: None })).await;
        raw.recv().await.unwrap();
        let want = format!(r#"{{"type":"recv","bytes":{received}}}"#);
        assert_eq!(conn.recv_frame().await, Message::text(want), "{window:?}");
    }
}
