//! The shard engine on real SQLite: subscriptions, writes, diffs, resume,
//! restore after a wake, bad input and policies.

use std::sync::Arc;

use pylon_workers::manifest::Manifest;
use pylon_workers::policy::AuthContext;
use pylon_workers::protocol::{Encoding, ErrorCode, FrameRef, ServerMsg};
use pylon_workers::shard::{ConnInfo, Outbound, ShardConfig, ShardEngine};
use pylon_workers::storage::{SqlConn, SqliteConn};
use pylon_workers::value::{Row, Value};
use serde_json::json;

const MANIFEST: &str = r#"{
  "entities": [
    {"name": "Card", "fields": [
      {"name": "title", "type": "string"},
      {"name": "done", "type": "bool"},
      {"name": "n", "type": "int"},
      {"name": "tag", "type": "string", "optional": true, "unique": true}
    ]},
    {"name": "Note", "fields": [
      {"name": "owner", "type": "string"},
      {"name": "body", "type": "string"}
    ]}
  ],
  "policies": [
    {"name": "ownNotes", "entity": "Note",
     "allowRead": "data.owner == auth.userId",
     "allowWrite": "data.owner == auth.userId"}
  ]
}"#;

type Engine = ShardEngine<SqliteConn>;

fn manifest() -> Arc<Manifest> {
    Arc::new(Manifest::from_json_str(MANIFEST).unwrap())
}

fn open(path: &std::path::Path) -> Engine {
    ShardEngine::open(
        SqliteConn::open(path).unwrap(),
        manifest(),
        "room",
        ShardConfig::default(),
    )
    .unwrap()
}

fn temp_db(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("pylon-shard-{name}-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

fn info(user: Option<&str>) -> ConnInfo {
    ConnInfo {
        auth: user.map(AuthContext::user).unwrap_or_default(),
        encoding: Encoding::Json,
        client: None,
        lease: Default::default(),
        ended: None,
    }
}

/// One message, then a flush, as the Durable Object does when nothing else
/// is queued.
async fn send(e: &mut Engine, conn: &str, msg: serde_json::Value) -> Vec<Outbound> {
    let mut out = e.message(conn, FrameRef::Text(&msg.to_string()), 0).await;
    out.extend(e.flush().await);
    out
}

/// Messages addressed to `conn` (directly or to all).
fn to(out: &[Outbound], conn: &str) -> Vec<ServerMsg> {
    out.iter()
        .filter_map(|o| match o {
            Outbound::To(c, m) if c == conn => Some(m.clone()),
            Outbound::Many { conns, msg } if conns.iter().any(|c| c == conn) => Some(msg.clone()),
            Outbound::All { except, msg } if except.as_deref() != Some(conn) => Some(msg.clone()),
            _ => None,
        })
        .collect()
}

fn card(id: &str, title: &str, n: i64) -> serde_json::Value {
    json!({"id": id, "title": title, "done": false, "n": n})
}

fn insert(op: &str, rows: Vec<serde_json::Value>) -> serde_json::Value {
    let ops: Vec<_> = rows
        .into_iter()
        .map(|r| json!({"type":"insert","entity":"Card","row": r}))
        .collect();
    json!({"type":"mut","op": op, "ops": ops})
}

fn rows_of(msg: &ServerMsg) -> Vec<Row> {
    match msg {
        ServerMsg::Snap(s) => s.rows.clone(),
        other => panic!("expected a snap, got {other:?}"),
    }
}

/// Applies a wire diff the way docs/protocol.md says a client does.
fn apply(held: &mut Vec<Row>, msg: &ServerMsg) {
    let ServerMsg::Diff(d) = msg else {
        panic!("expected a diff, got {msg:?}")
    };
    let gone: Vec<&str> = d
        .removed
        .iter()
        .map(String::as_str)
        .chain(d.changed.iter().map(|p| p.row["id"].as_str().unwrap()))
        .collect();
    held.retain(|r| !gone.contains(&r["id"].as_str().unwrap()));
    let mut ins: Vec<_> = d.added.iter().chain(d.changed.iter()).collect();
    ins.sort_by_key(|p| p.pos);
    for p in ins {
        held.insert(p.pos as usize, p.row.clone());
    }
}

fn err_code(msgs: &[ServerMsg]) -> Option<ErrorCode> {
    msgs.iter().find_map(|m| match m {
        ServerMsg::Err(e) => Some(e.code),
        _ => None,
    })
}

#[tokio::test]
async fn writes_reach_every_subscriber_before_the_ack() {
    let mut e = open(&temp_db("fanout"));
    e.connect("a", info(None), 0).unwrap();
    e.connect("b", info(None), 0).unwrap();
    let sub = json!({"type":"sub","id":"s","entity":"Card","order":["n"],"limit":10});
    let snap_a = to(&send(&mut e, "a", sub.clone()).await, "a");
    let snap_b = to(&send(&mut e, "b", sub).await, "b");
    let (mut held_a, mut held_b) = (rows_of(&snap_a[0]), rows_of(&snap_b[0]));
    assert!(held_a.is_empty());

    let out = send(
        &mut e,
        "a",
        insert("op1", vec![card("k1", "one", 1), card("k2", "two", 2)]),
    )
    .await;
    let for_a = to(&out, "a");
    assert!(matches!(&for_a[0], ServerMsg::Diff(d) if d.from == 0 && d.seq == 1));
    assert!(matches!(&for_a[1], ServerMsg::Ack(a) if a.seq == 1 && !a.dup && a.op == "op1"));
    apply(&mut held_a, &for_a[0]);
    apply(&mut held_b, &to(&out, "b")[0]);
    assert_eq!(held_a, held_b);
    assert_eq!(
        held_a
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["k1", "k2"]
    );
}

#[tokio::test]
async fn retried_op_ids_apply_once() {
    let mut e = open(&temp_db("dedup"));
    e.connect("a", info(None), 0).unwrap();
    let first = to(
        &send(&mut e, "a", insert("same", vec![card("k1", "x", 1)])).await,
        "a",
    );
    let again = to(
        &send(&mut e, "a", insert("same", vec![card("k1", "x", 1)])).await,
        "a",
    );
    assert!(matches!(&first[..], [ServerMsg::Ack(a)] if a.seq == 1 && !a.dup));
    assert!(
        matches!(&again[..], [ServerMsg::Ack(a)] if a.seq == 1 && a.dup),
        "{again:?}"
    );
    assert_eq!(e.store().seq().unwrap(), 1);
}

#[tokio::test]
async fn a_failing_op_undoes_the_whole_mutation() {
    let mut e = open(&temp_db("atomic"));
    e.connect("a", info(None), 0).unwrap();
    send(&mut e, "a", insert("o1", vec![card("k1", "x", 1)])).await;
    // The second insert clashes with k1: nothing of this mutation stays.
    let out = to(
        &send(
            &mut e,
            "a",
            insert("o2", vec![card("k2", "y", 2), card("k1", "dup", 3)]),
        )
        .await,
        "a",
    );
    assert_eq!(err_code(&out), Some(ErrorCode::AlreadyExists));
    assert!(matches!(&out[0], ServerMsg::Err(er) if er.op.as_deref() == Some("o2")));
    let q = e
        .query(&AuthContext::anonymous(), &json!({"entity":"Card"}).into())
        .unwrap();
    assert_eq!(q["rows"].as_array().unwrap().len(), 1, "{q}");
    assert_eq!(e.store().seq().unwrap(), 1);
    // A unique clash found by SQLite itself is undone too.
    let mut a = card("k3", "a", 1);
    a["tag"] = json!("t");
    let mut b = card("k4", "b", 1);
    b["tag"] = json!("t");
    let out = to(&send(&mut e, "a", insert("o3", vec![a, b])).await, "a");
    assert_eq!(err_code(&out), Some(ErrorCode::UniqueViolation));
    let q = e
        .query(&AuthContext::anonymous(), &json!({"entity":"Card"}).into())
        .unwrap();
    assert_eq!(q["rows"].as_array().unwrap().len(), 1, "{q}");
}

/// A mutation's every change reaches the windows it affects, not only its
/// last change's (the fan-out once kept the windows of the last change
/// alone: a write to a Card then a Note left the Card windows behind).
#[tokio::test]
async fn every_change_of_a_mutation_reaches_its_windows() {
    let mut e = open(&temp_db("every-change"));
    e.connect("a", info(Some("u")), 0).unwrap();
    for sub in [
        json!({"type":"sub","id":"c","entity":"Card"}),
        json!({"type":"sub","id":"x","entity":"Card","where":{"title":"x"}}),
    ] {
        send(&mut e, "a", sub).await;
    }
    send(
        &mut e,
        "a",
        insert("o1", vec![card("k1", "a", 1), card("k2", "b", 2)]),
    )
    .await;
    // k1 enters `x`; k2 (another title) changes in `c` only; the last
    // change is of another entity.
    let ops = json!([
        {"type":"update","entity":"Card","id":"k1","set":{"title":"x"}},
        {"type":"update","entity":"Card","id":"k2","set":{"n":5}},
        {"type":"insert","entity":"Note","row":{"id":"n1","owner":"u","body":"b"}},
    ]);
    let out = send(&mut e, "a", json!({"type":"mut","op":"o2","ops":ops})).await;
    let diff = |id: &str| {
        to(&out, "a").into_iter().find_map(|m| match m {
            ServerMsg::Diff(d) if d.id == id => Some(d),
            _ => None,
        })
    };
    let x = diff("x").expect("k1 entered `x`");
    assert_eq!(x.added.len(), 1, "{x:?}");
    assert_eq!(x.added[0].row["id"], Value::from("k1"));
    let c = diff("c").expect("k1 and k2 changed in `c`");
    assert_eq!(c.changed.len(), 2, "{c:?}");
}

#[tokio::test]
async fn bad_input_gets_typed_errors_and_the_shard_keeps_serving() {
    let mut e = open(&temp_db("bad"));
    e.connect("a", info(None), 0).unwrap();
    let cases: Vec<(&str, ErrorCode)> = vec![
        ("{not json", ErrorCode::BadFrame),
        (r#"{"type":"launch"}"#, ErrorCode::UnknownType),
        (
            r#"{"type":"sub","id":"s1","entity":"Nope"}"#,
            ErrorCode::UnknownEntity,
        ),
        (
            r#"{"type":"sub","id":"s1","entity":"Card","where":{"nope":1}}"#,
            ErrorCode::UnknownField,
        ),
        (
            r#"{"type":"sub","id":"s1","entity":"Card","where":{"n":"x"}}"#,
            ErrorCode::TypeMismatch,
        ),
        (
            r#"{"type":"mut","op":"o","ops":[{"type":"insert","entity":"Card","row":{"id":"k","title":5,"done":true,"n":1}}]}"#,
            ErrorCode::TypeMismatch,
        ),
        (
            r#"{"type":"mut","op":"o","ops":[{"type":"insert","entity":"Card","row":{"id":"k","done":true,"n":1}}]}"#,
            ErrorCode::RequiredField,
        ),
        (
            r#"{"type":"mut","op":"o","ops":[{"type":"update","entity":"Card","id":"missing","set":{"n":1}}]}"#,
            ErrorCode::NotFound,
        ),
        (
            r#"{"type":"unsub","id":"never"}"#,
            ErrorCode::UnknownSubscription,
        ),
    ];
    for (frame, code) in cases {
        let mut out = e.message("a", FrameRef::Text(frame), 0).await;
        out.extend(e.flush().await);
        assert_eq!(err_code(&to(&out, "a")), Some(code), "{frame}");
        assert!(
            !out.iter().any(|o| matches!(o, Outbound::Close { .. })),
            "{frame} closed the socket"
        );
    }
    let huge = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(2 << 20));
    let out = e.message("a", FrameRef::Text(&huge), 0).await;
    assert_eq!(err_code(&to(&out, "a")), Some(ErrorCode::FrameTooLarge));
    assert!(out
        .iter()
        .any(|o| matches!(o, Outbound::Close { code: 1009, .. })));
    // Still serving, and nothing was stored by the bad frames.
    let out = to(
        &send(&mut e, "a", insert("ok", vec![card("k1", "x", 1)])).await,
        "a",
    );
    assert!(
        matches!(&out[..], [ServerMsg::Ack(a)] if a.seq == 1),
        "{out:?}"
    );
}

#[tokio::test]
async fn subscriptions_and_rate_are_limited() {
    let mut cfg = ShardConfig::default();
    cfg.limits.max_subs_per_conn = 2;
    cfg.limits.msg_burst = 5;
    cfg.limits.msgs_per_sec = 1;
    cfg.limits.max_conns_per_shard = 1;
    let mut e =
        ShardEngine::open(SqliteConn::open_in_memory().unwrap(), manifest(), "r", cfg).unwrap();
    e.connect("a", info(None), 0).unwrap();
    let refused = e.connect("b", info(None), 0).unwrap();
    assert!(refused
        .iter()
        .any(|o| matches!(o, Outbound::Close { code: 4503, .. })));
    for i in 0..2 {
        let out = send(
            &mut e,
            "a",
            json!({"type":"sub","id": format!("s{i}"),"entity":"Card"}),
        )
        .await;
        assert!(matches!(&to(&out, "a")[0], ServerMsg::Snap(_)));
    }
    let out = send(&mut e, "a", json!({"type":"sub","id":"s9","entity":"Card"})).await;
    assert_eq!(
        err_code(&to(&out, "a")),
        Some(ErrorCode::TooManySubscriptions)
    );
    let out = send(&mut e, "a", json!({"type":"sub","id":"s0","entity":"Card"})).await;
    assert_eq!(
        err_code(&to(&out, "a")),
        Some(ErrorCode::DuplicateSubscription)
    );
    // Burst of 5 used up (4 messages so far + this one); the next is dropped.
    send(&mut e, "a", json!({"type":"ping"})).await;
    let out = send(&mut e, "a", json!({"type":"ping"})).await;
    assert_eq!(err_code(&to(&out, "a")), Some(ErrorCode::RateLimited));
    assert!(!out.iter().any(|o| matches!(o, Outbound::Close { .. })));
    // Ignoring the errors for a whole burst gets the socket closed (4429).
    let mut closed = false;
    for _ in 0..5 {
        let out = send(&mut e, "a", json!({"type":"ping"})).await;
        closed |= out
            .iter()
            .any(|o| matches!(o, Outbound::Close { code: 4429, .. }));
    }
    assert!(closed, "a client that keeps flooding is not cut off");
}

#[tokio::test]
async fn a_result_over_the_frame_limit_is_refused() {
    let mut cfg = ShardConfig::default();
    cfg.limits.max_frame_bytes = 2_000;
    let mut e =
        ShardEngine::open(SqliteConn::open_in_memory().unwrap(), manifest(), "r", cfg).unwrap();
    e.connect("a", info(None), 0).unwrap();
    for i in 0..40 {
        let out = send(
            &mut e,
            "a",
            insert(
                &format!("o{i}"),
                vec![card(&format!("k{i}"), &"t".repeat(60), i)],
            ),
        )
        .await;
        assert!(matches!(&to(&out, "a")[..], [ServerMsg::Ack(_)]), "{out:?}");
    }
    let out = to(
        &send(
            &mut e,
            "a",
            json!({"type":"sub","id":"all","entity":"Card"}),
        )
        .await,
        "a",
    );
    assert_eq!(err_code(&out), Some(ErrorCode::ResultTooLarge));
    let out = to(
        &send(
            &mut e,
            "a",
            json!({"type":"sub","id":"few","entity":"Card","limit":3}),
        )
        .await,
        "a",
    );
    assert!(
        matches!(&out[0], ServerMsg::Snap(s) if s.rows.len() == 3),
        "{out:?}"
    );
}

#[tokio::test]
async fn read_policies_filter_snapshots_and_diffs() {
    let mut e = open(&temp_db("policy"));
    e.connect("alice", info(Some("alice")), 0).unwrap();
    e.connect("bob", info(Some("bob")), 0).unwrap();
    let sub = json!({"type":"sub","id":"n","entity":"Note"});
    send(&mut e, "alice", sub.clone()).await;
    send(&mut e, "bob", sub).await;
    let note = |id: &str, owner: &str| json!({"type":"insert","entity":"Note","row":{"id":id,"owner":owner,"body":"hi"}});
    let out = send(
        &mut e,
        "alice",
        json!({"type":"mut","op":"n1","ops":[note("n1","alice")]}),
    )
    .await;
    assert!(matches!(&to(&out, "alice")[0], ServerMsg::Diff(d) if d.added.len() == 1));
    assert!(to(&out, "bob").is_empty(), "bob saw alice's note: {out:?}");
    // Bob cannot write a note as alice.
    let out = send(
        &mut e,
        "bob",
        json!({"type":"mut","op":"n2","ops":[note("n2","alice")]}),
    )
    .await;
    assert_eq!(err_code(&to(&out, "bob")), Some(ErrorCode::Forbidden));
    // Alice gives the note to bob: it leaves her view and enters his.
    let out = send(&mut e, "alice", json!({"type":"mut","op":"n3","ops":[{"type":"update","entity":"Note","id":"n1","set":{"owner":"bob"}}]})).await;
    assert!(
        matches!(&to(&out, "alice")[0], ServerMsg::Diff(d) if d.removed == ["n1"]),
        "{out:?}"
    );
    assert!(matches!(&to(&out, "bob")[0], ServerMsg::Diff(d) if d.added.len() == 1));
}

#[tokio::test]
async fn resume_sends_exactly_what_was_missed() {
    let path = temp_db("resume");
    let mut e = open(&path);
    e.connect("w", info(None), 0).unwrap();
    e.connect("r", info(None), 0).unwrap();
    let sub = json!({"type":"sub","id":"s","entity":"Card","where":{"done":false},"order":["-n","title"],"limit":5});
    let snap = to(&send(&mut e, "r", sub.clone()).await, "r");
    let mut held = rows_of(&snap[0]);
    let mut rng = 7u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    // The reader holds its window at some seq, goes away, writes happen, it
    // resumes with `since`: the one diff must land it on the current window.
    for round in 0..40 {
        let since = e.store().seq().unwrap();
        e.close("r").unwrap();
        for i in 0..(next() % 6) {
            let id = format!("k{}", next() % 12);
            let op = match next() % 3 {
                0 => {
                    json!({"type":"upsert","entity":"Card","row":{"id":id,"title":format!("t{}", next()%4),"done":next()%3==0,"n":(next()%5) as i64}})
                }
                1 => json!({"type":"update","entity":"Card","id":id,"set":{"n":(next()%5) as i64}}),
                _ => json!({"type":"delete","entity":"Card","id":id}),
            };
            send(
                &mut e,
                "w",
                json!({"type":"mut","op":format!("r{round}.{i}"),"ops":[op]}),
            )
            .await;
        }
        e.connect("r", info(None), 0).unwrap();
        let mut resume = sub.clone();
        resume["since"] = json!(since);
        let out = to(&send(&mut e, "r", resume).await, "r");
        let ServerMsg::Diff(d) = &out[0] else {
            panic!("round {round}: expected a diff, got {out:?}")
        };
        assert_eq!((d.from, d.seq), (since, e.store().seq().unwrap()));
        apply(&mut held, &out[0]);
        let fresh = to(&send(&mut e, "r", json!({"type":"sub","id":"check","entity":"Card","where":{"done":false},"order":["-n","title"],"limit":5})).await, "r");
        assert_eq!(held, rows_of(&fresh[0]), "round {round}");
        send(&mut e, "r", json!({"type":"unsub","id":"check"})).await;
    }
}

#[tokio::test]
async fn a_resume_older_than_the_log_gets_a_reset_and_snapshot() {
    let mut cfg = ShardConfig::default();
    cfg.log_keep_seqs = 5;
    let mut e =
        ShardEngine::open(SqliteConn::open_in_memory().unwrap(), manifest(), "r", cfg).unwrap();
    e.connect("w", info(None), 0).unwrap();
    for i in 0..120 {
        send(
            &mut e,
            "w",
            insert(&format!("o{i}"), vec![card(&format!("k{i}"), "t", i)]),
        )
        .await;
    }
    let out = to(
        &send(
            &mut e,
            "w",
            json!({"type":"sub","id":"s","entity":"Card","since":3}),
        )
        .await,
        "w",
    );
    assert!(
        matches!(&out[0], ServerMsg::Reset(r) if r.id == "s"),
        "{out:?}"
    );
    assert!(matches!(&out[1], ServerMsg::Snap(s) if s.seq == 120 && s.rows.len() == 120));
}

#[tokio::test]
async fn subscriptions_survive_a_wake_from_storage() {
    let path = temp_db("wake");
    let mut e = open(&path);
    e.connect("a", info(None), 0).unwrap();
    let out = to(
        &send(
            &mut e,
            "a",
            json!({"type":"sub","id":"s","entity":"Card","order":["n"]}),
        )
        .await,
        "a",
    );
    let mut held = rows_of(&out[0]);
    let out = to(
        &send(&mut e, "a", insert("o1", vec![card("k1", "x", 1)])).await,
        "a",
    );
    apply(&mut held, &out[0]);
    drop(e);

    // A new instance over the same storage, told which sockets survived.
    let mut e = open(&path);
    e.restore(vec![("a".into(), info(None))], 0).await.unwrap();
    let out = to(
        &send(&mut e, "a", insert("o2", vec![card("k0", "y", 0)])).await,
        "a",
    );
    let ServerMsg::Diff(d) = &out[0] else {
        panic!("no diff after the wake: {out:?}")
    };
    assert_eq!((d.from, d.seq), (1, 2));
    apply(&mut held, &out[0]);
    let ids: Vec<_> = held.iter().map(|r| r["id"].clone()).collect();
    assert_eq!(ids, [Value::from("k0"), Value::from("k1")]);
    // A retry of an op applied before the wake is still recognised.
    let out = to(
        &send(&mut e, "a", insert("o1", vec![card("k1", "x", 1)])).await,
        "a",
    );
    assert!(
        matches!(&out[..], [ServerMsg::Ack(a)] if a.dup && a.seq == 1),
        "{out:?}"
    );
}

#[tokio::test]
async fn presence_joins_updates_and_leaves() {
    let mut e = open(&temp_db("presence"));
    e.connect("a", info(None), 0).unwrap();
    let out = e.connect("b", info(None), 0).unwrap();
    assert!(matches!(&to(&out, "b")[1], ServerMsg::PresenceState(p) if p.members.is_empty()));
    let out = send(&mut e, "a", json!({"type":"presence","state":{"cursor":1}})).await;
    assert!(
        matches!(&to(&out, "b")[0], ServerMsg::PresenceDiff(d) if d.joins.len() == 1 && d.joins[0].conn == "a")
    );
    let out = send(&mut e, "a", json!({"type":"presence","state":{"cursor":2}})).await;
    assert!(matches!(&to(&out, "b")[0], ServerMsg::PresenceDiff(d) if d.updates.len() == 1));
    let out = e.connect("c", info(None), 0).unwrap();
    assert!(matches!(&to(&out, "c")[1], ServerMsg::PresenceState(p) if p.members.len() == 1));
    let out = e.close("a").unwrap();
    assert!(matches!(&to(&out, "b")[0], ServerMsg::PresenceDiff(d) if d.leaves == ["a"]));
    let out = send(&mut e, "b", json!({"type":"bcast","topic":"t","data":1})).await;
    assert!(
        to(&out, "b").is_empty()
            && matches!(&to(&out, "c")[0], ServerMsg::Bcast(b) if b.from == "b")
    );
}

#[tokio::test]
async fn hello_with_a_token_keeps_the_identity_unless_it_is_the_same_caller() {
    use pylon_workers::auth::AuthError;
    let path = temp_db("hello-token");
    let mut e = open(&path);
    e.connect("c1", info(Some("ann")), 0).unwrap();
    // The token goes to the runtime to verify, never back to a socket.
    let out = send(&mut e, "c1", json!({"type": "hello", "token": "t.o.k"})).await;
    assert_eq!(
        out,
        vec![Outbound::Verify {
            conn: "c1".into(),
            token: "t.o.k".into()
        }]
    );
    let ann = AuthContext::user("ann");
    let welcome = e
        .hello_verified("c1", Ok((ann.clone(), Default::default())), 0)
        .await;
    assert!(matches!(to(&welcome, "c1")[..], [ServerMsg::Welcome(_)]));
    // The renewed lease goes to the attachment.
    assert!(welcome
        .iter()
        .any(|o| matches!(o, Outbound::Attach { conn, .. } if conn == "c1")));
    let refused = [
        (Err(AuthError::Expired), ErrorCode::Unauthorized, "EXPIRED"),
        (
            Err(AuthError::BadSignature),
            ErrorCode::Unauthorized,
            "BAD_SIGNATURE",
        ),
        (
            Err(AuthError::JwksUnavailable),
            ErrorCode::Unavailable,
            "JWKS_UNAVAILABLE",
        ),
        (
            Ok(AuthContext::user("bob")),
            ErrorCode::Forbidden,
            "IDENTITY_CHANGED",
        ),
        (
            Ok(ann.clone().with_roles(["moderator"])),
            ErrorCode::Forbidden,
            "IDENTITY_CHANGED",
        ),
    ];
    for (verified, code, reason) in refused {
        let verified = verified.map(|a| (a, Default::default()));
        let out = to(&e.hello_verified("c1", verified, 0).await, "c1");
        match &out[..] {
            [ServerMsg::Err(m)] => {
                assert_eq!(m.code, code, "{reason}");
                assert!(m.message.starts_with(reason), "{}", m.message);
            }
            other => panic!("{reason}: {other:?}"),
        }
    }
    // Still ann: her own note is writable, bob's is not.
    let note = |id: &str, owner: &str| {
        json!({"type": "mut", "op": id, "ops": [{"type": "insert", "entity": "Note",
               "row": {"id": id, "owner": owner, "body": "x"}}]})
    };
    let out = send(&mut e, "c1", note("n1", "ann")).await;
    assert!(to(&out, "c1")
        .iter()
        .any(|m| matches!(m, ServerMsg::Ack(_))));
    let out = send(&mut e, "c1", note("n2", "bob")).await;
    assert_eq!(err_code(&to(&out, "c1")), Some(ErrorCode::Forbidden));
    // An anonymous connection cannot become someone over hello.
    e.connect("c2", info(None), 0).unwrap();
    let out = to(
        &e.hello_verified("c2", Ok((ann, Default::default())), 0)
            .await,
        "c2",
    );
    assert_eq!(err_code(&out), Some(ErrorCode::Forbidden));
    // A hello without a token is answered at once.
    let out = send(&mut e, "c2", json!({"type": "hello", "client": "t/1"})).await;
    assert!(matches!(to(&out, "c2")[..], [ServerMsg::Welcome(_)]));
}

#[tokio::test]
async fn a_user_over_the_runtime_limit_gets_rate_limited_without_a_close() {
    let path = temp_db("user-limit");
    let mut e = open(&path);
    e.connect("c1", info(Some("ann")), 0).unwrap();
    let m = json!({"type": "mut", "op": "o1", "ops": [{"type": "insert", "entity": "Card",
                   "row": card("k1", "t", 1)}]});
    // Over the user's limit: dropped before decoding (so the err names no
    // op), many times, never closed.
    for _ in 0..500 {
        let out = e
            .message_within("c1", FrameRef::Text(&m.to_string()), 0, false)
            .await;
        assert!(!out.iter().any(|o| matches!(o, Outbound::Close { .. })));
        match &to(&out, "c1")[..] {
            [ServerMsg::Err(err)] => {
                assert_eq!(err.code, ErrorCode::RateLimited);
                assert_eq!(err.op, None);
                assert!(err.message.contains("user"), "{}", err.message);
            }
            other => panic!("{other:?}"),
        }
    }
    // Within it again: applied (the ack comes with the flush).
    let mut out = e
        .message_within("c1", FrameRef::Text(&m.to_string()), 0, true)
        .await;
    out.extend(e.flush().await);
    assert!(to(&out, "c1")
        .iter()
        .any(|m| matches!(m, ServerMsg::Ack(_))));
}

/// Subscriptions with the same query and visibility share one window: each
/// still gets diffs with its own id and `from`, before and after a wake, and
/// a member leaving does not disturb the others.
#[tokio::test]
async fn shared_windows_keep_each_subscription_exact() {
    let path = temp_db("shared");
    let mut e = open(&path);
    for c in ["a", "b", "c"] {
        e.connect(c, info(None), 0).unwrap();
    }
    let sub = |id: &str| json!({"type":"sub","id": id,"entity":"Card","order":["n"],"limit":2});
    let mut held_a = rows_of(&to(&send(&mut e, "a", sub("s")).await, "a")[0]);
    let out = to(
        &send(&mut e, "a", insert("o1", vec![card("k5", "x", 5)])).await,
        "a",
    );
    apply(&mut held_a, &out[0]);
    // b joins the same window later (seq 1), with another id; c uses a's id.
    let mut held_b = rows_of(&to(&send(&mut e, "b", sub("other")).await, "b")[0]);
    let mut held_c = rows_of(&to(&send(&mut e, "c", sub("s")).await, "c")[0]);
    assert_eq!(held_b, held_a);

    let out = send(&mut e, "a", insert("o2", vec![card("k1", "y", 1)])).await;
    // a and c share id and from (both at seq 1): one message for both.
    assert!(
        out.iter()
            .any(|o| matches!(o, Outbound::Many { conns, .. } if conns.len() == 2)),
        "{out:?}"
    );
    for (conn, held, id) in [
        ("a", &mut held_a, "s"),
        ("b", &mut held_b, "other"),
        ("c", &mut held_c, "s"),
    ] {
        let msgs = to(&out, conn);
        let ServerMsg::Diff(d) = &msgs[0] else {
            panic!("{conn}: {msgs:?}")
        };
        assert_eq!((d.id.as_str(), d.from, d.seq), (id, 1, 2), "{conn}");
        apply(held, &msgs[0]);
    }
    assert_eq!(held_a, held_b);
    assert_eq!(held_a, held_c);

    // c leaves; a and b keep receiving.
    send(&mut e, "c", json!({"type":"unsub","id":"s"})).await;
    let out = send(&mut e, "b", insert("o3", vec![card("k0", "z", 0)])).await;
    assert!(to(&out, "c").is_empty(), "{out:?}");
    apply(&mut held_a, &to(&out, "a")[0]);
    apply(&mut held_b, &to(&out, "b")[0]);
    // d subscribes at seq 3 and then nothing changes its window before a wake.
    e.connect("d", info(None), 0).unwrap();
    let mut held_d = rows_of(&to(&send(&mut e, "d", sub("s")).await, "d")[0]);
    drop(e);

    let mut e = open(&path);
    e.restore(
        vec![
            ("a".into(), info(None)),
            ("b".into(), info(None)),
            ("d".into(), info(None)),
        ],
        0,
    )
    .await
    .unwrap();
    let out = send(&mut e, "a", insert("o4", vec![card("k00", "w", -1)])).await;
    for (conn, held) in [("a", &mut held_a), ("b", &mut held_b), ("d", &mut held_d)] {
        let msgs = to(&out, conn);
        let ServerMsg::Diff(d) = &msgs[0] else {
            panic!("{conn}: {msgs:?}")
        };
        // Everyone last heard of seq 3 (a and b by diff, d by its snapshot).
        assert_eq!((d.from, d.seq), (3, 4), "{conn}");
        apply(held, &msgs[0]);
    }
    let ids: Vec<_> = held_a.iter().map(|r| r["id"].clone()).collect();
    assert_eq!(ids, [Value::from("k00"), Value::from("k0")]);
    assert_eq!(held_a, held_b);
    assert_eq!(held_a, held_d);
}

/// Under a read policy, callers with different identities never share a
/// window, even with the same query and subscription id.
#[tokio::test]
async fn windows_are_not_shared_across_visibility() {
    let mut e = open(&temp_db("shared-policy"));
    e.connect("alice", info(Some("alice")), 0).unwrap();
    e.connect("alice2", info(Some("alice")), 0).unwrap();
    e.connect("bob", info(Some("bob")), 0).unwrap();
    let sub = json!({"type":"sub","id":"n","entity":"Note"});
    for c in ["alice", "alice2", "bob"] {
        send(&mut e, c, sub.clone()).await;
    }
    let note = json!({"type":"mut","op":"n1","ops":[{"type":"insert","entity":"Note","row":{"id":"n1","owner":"alice","body":"hi"}}]});
    let out = send(&mut e, "alice", note).await;
    assert!(matches!(&to(&out, "alice")[0], ServerMsg::Diff(d) if d.added.len() == 1));
    assert!(matches!(&to(&out, "alice2")[0], ServerMsg::Diff(d) if d.added.len() == 1));
    assert!(to(&out, "bob").is_empty(), "bob saw alice's note: {out:?}");
}

/// One message from `w`, without the flush.
async fn raw(e: &mut Engine, msg: serde_json::Value) -> Vec<Outbound> {
    e.message("w", FrameRef::Text(&msg.to_string()), 0).await
}

/// Writes queued together are flushed as one diff per subscription that
/// spans all their seqs, followed by their acks and errors in order; a
/// `sub` flushes first; `max_batch` writes force a flush.
#[tokio::test]
async fn queued_writes_coalesce_into_one_diff_per_subscription() {
    let mut e = ShardEngine::open(
        SqliteConn::open(temp_db("coalesce")).unwrap(),
        manifest(),
        "room",
        ShardConfig {
            max_batch: 3,
            ..ShardConfig::default()
        },
    )
    .unwrap();
    e.connect("w", info(None), 0).unwrap();
    e.connect("r", info(None), 0).unwrap();
    let sub = json!({"type":"sub","id":"s","entity":"Card","order":["n"]});
    let mut held = rows_of(&to(&send(&mut e, "r", sub.clone()).await, "r")[0]);
    // Two writes and a failing one: nothing is sent until the flush.
    assert!(raw(&mut e, insert("o1", vec![card("k1", "a", 1)]))
        .await
        .is_empty());
    assert!(raw(&mut e, insert("o2", vec![card("k2", "b", 2)]))
        .await
        .is_empty());
    assert!(e.has_unflushed());
    let out = e.flush().await;
    assert!(!e.has_unflushed());
    let r = to(&out, "r");
    assert_eq!(r.len(), 1, "{out:?}");
    let ServerMsg::Diff(d) = &r[0] else {
        panic!("{r:?}")
    };
    assert_eq!((d.from, d.seq, d.added.len()), (0, 2, 2));
    apply(&mut held, &r[0]);
    let w = to(&out, "w");
    assert!(
        matches!(&w[..], [ServerMsg::Ack(a), ServerMsg::Ack(b)] if a.op == "o1" && a.seq == 1 && b.op == "o2" && b.seq == 2),
        "{w:?}"
    );

    // A write, then an update of the same row, then a failing write: the
    // subscriber sees the net change; the writer, ack, ack, err in order.
    raw(&mut e, insert("o3", vec![card("k3", "c", 3)])).await;
    raw(&mut e, json!({"type":"mut","op":"o4","ops":[{"type":"update","entity":"Card","id":"k3","set":{"title":"c2"}}]})).await;
    // The third write reaches max_batch: the flush comes with it.
    let out = raw(&mut e, insert("o5", vec![card("k3", "dup", 9)])).await;
    let r = to(&out, "r");
    let ServerMsg::Diff(d) = &r[0] else {
        panic!("{out:?}")
    };
    assert_eq!((d.from, d.seq), (2, 4));
    assert_eq!(d.added.len(), 1);
    assert_eq!(d.added[0].row["title"], Value::from("c2"));
    apply(&mut held, &r[0]);
    let w = to(&out, "w");
    assert!(matches!(&w[0], ServerMsg::Ack(a) if a.op == "o3"), "{w:?}");
    assert!(matches!(&w[1], ServerMsg::Ack(a) if a.op == "o4"), "{w:?}");
    assert!(
        matches!(&w[2], ServerMsg::Err(x) if x.op.as_deref() == Some("o5") && x.code == ErrorCode::AlreadyExists),
        "{w:?}"
    );

    // A queued write, then a new subscription: it is flushed first, so the
    // new member's snapshot already holds it and the old member gets its diff.
    raw(&mut e, insert("o6", vec![card("k0", "z", 0)])).await;
    e.connect("late", info(None), 0).unwrap();
    let out = e.message("late", FrameRef::Text(&sub.to_string()), 0).await;
    let r = to(&out, "r");
    assert!(
        matches!(&r[0], ServerMsg::Diff(d) if (d.from, d.seq) == (4, 5)),
        "{out:?}"
    );
    apply(&mut held, &r[0]);
    let late = to(&out, "late");
    let snap = late
        .iter()
        .find(|m| matches!(m, ServerMsg::Snap(_)))
        .unwrap();
    assert_eq!(rows_of(snap), held);
    let ids: Vec<_> = held.iter().map(|r| r["id"].clone()).collect();
    assert_eq!(
        ids,
        [
            Value::from("k0"),
            Value::from("k1"),
            Value::from("k2"),
            Value::from("k3")
        ]
    );
    assert!(to(&out, "w")
        .iter()
        .any(|m| matches!(m, ServerMsg::Ack(a) if a.op == "o6")));
}

/// The same writes, flushed as one batch or applied one at a time, leave
/// the same rows, log, outbox, op ids and seq; a retried op id inside the
/// batch gets the first one's ack, a failing write takes no seq.
#[tokio::test]
async fn a_batch_records_exactly_what_single_writes_record() {
    let writes = [
        insert("a", vec![card("k1", "one", 1), card("k2", "two", 2)]),
        json!({"type":"mut","op":"b","ops":[
            {"type":"update","entity":"Card","id":"k1","set":{"title":"one'"}},
            {"type":"update","entity":"Card","id":"k1","set":{"title":"one''"}},
            {"type":"delete","entity":"Card","id":"k2"}]}),
        insert("a", vec![card("k9", "retried", 9)]),
        insert("c", vec![card("k1", "clash", 0)]),
        json!({"type":"mut","op":"d","ops":[]}),
        json!({"type":"mut","op":"e","ops":[{"type":"upsert","entity":"Card","row":card("k2","back",2)}]}),
    ];
    let mut answers = Vec::new();
    let mut stores = Vec::new();
    for max_batch in [256, 1] {
        let mut e = ShardEngine::open(
            SqliteConn::open_in_memory().unwrap(),
            manifest(),
            "room",
            ShardConfig {
                max_batch,
                ..ShardConfig::default()
            },
        )
        .unwrap();
        e.connect("w", info(None), 0).unwrap();
        let mut out = Vec::new();
        for (i, w) in writes.iter().enumerate() {
            out.extend(
                e.message("w", FrameRef::Text(&w.to_string()), 1000 + i as i64)
                    .await,
            );
        }
        out.extend(e.flush().await);
        let got: Vec<String> = to(&out, "w")
            .iter()
            .map(|m| match m {
                ServerMsg::Ack(a) => format!("ack {} {} {}", a.op, a.seq, a.dup),
                ServerMsg::Err(x) => format!("err {:?} {:?}", x.op, x.code),
                other => format!("{other:?}"),
            })
            .collect();
        answers.push(got);
        let s = e.store();
        let log: Vec<_> = s.log_since(0).unwrap();
        let outbox: Vec<_> = s
            .outbox_oldest(100)
            .unwrap()
            .into_iter()
            .map(|o| (o.seq, o.idx, o.entity, o.id, o.row))
            .collect();
        let rows = s
            .conn()
            .exec("SELECT id, title FROM \"Card\" ORDER BY id", &[])
            .unwrap();
        let ops = s.op_seqs(&["a", "b", "c", "d", "e"]).unwrap();
        stores.push((log, outbox, rows, ops, s.seq().unwrap()));
    }
    assert_eq!(
        answers[0],
        [
            "ack a 1 false",
            "ack b 2 false",
            "ack a 1 true",
            "err Some(\"c\") AlreadyExists",
            "ack d 2 false",
            "ack e 3 false"
        ]
    );
    assert_eq!(answers[0], answers[1]);
    assert_eq!(stores[0], stores[1]);
    let (log, outbox, rows, ops, seq) = &stores[0];
    assert_eq!(*seq, 3);
    assert_eq!(log.len(), 2 + 3 + 1);
    // Row k1 written twice in seq 2: the outbox holds only its last state.
    let k1_in_2: Vec<_> = outbox.iter().filter(|o| o.0 == 2 && o.3 == "k1").collect();
    assert_eq!(k1_in_2.len(), 1);
    assert_eq!(
        k1_in_2[0].4.as_ref().unwrap()["title"],
        Value::from("one''")
    );
    assert_eq!(rows.len(), 2);
    // Only ops that applied something are remembered.
    assert_eq!(ops.len(), 3, "{ops:?}");
    assert_eq!((ops["a"], ops["b"], ops["e"]), (1, 2, 3));
}

/// Fails every statement that starts with a given text while `fail` is set.
struct FailingConn {
    inner: SqliteConn,
    fail: std::rc::Rc<std::cell::Cell<Option<&'static str>>>,
}

impl SqlConn for FailingConn {
    fn exec(
        &self,
        sql: &str,
        params: &[pylon_workers::sql::SqlValue],
    ) -> Result<Vec<Vec<pylon_workers::sql::SqlValue>>, pylon_workers::storage::StorageError> {
        if let Some(prefix) = self.fail.get() {
            if sql.starts_with(prefix) {
                return Err(pylon_workers::storage::StorageError::new(
                    "disk I/O error",
                    sql,
                ));
            }
        }
        self.inner.exec(sql, params)
    }
}

/// A flush whose record cannot be written undoes every write of the batch,
/// answers each with an error, and reloads the windows they touched; the
/// shard then goes on from the same seq.
#[tokio::test]
async fn a_batch_that_cannot_be_recorded_is_undone_and_answered_with_errors() {
    for failing in [
        "INSERT INTO _pylon_log",
        "INSERT INTO _pylon_outbox",
        "INSERT INTO _pylon_ops",
        "INSERT INTO _pylon_meta",
    ] {
        record_fails_at(failing).await;
    }
}

async fn record_fails_at(failing: &'static str) {
    let fail = std::rc::Rc::new(std::cell::Cell::new(None));
    let conn = FailingConn {
        inner: SqliteConn::open_in_memory().unwrap(),
        fail: fail.clone(),
    };
    let mut e = ShardEngine::open(conn, manifest(), "room", ShardConfig::default()).unwrap();
    e.connect("w", info(None), 0).unwrap();
    e.connect("r", info(None), 0).unwrap();
    let sub = json!({"type":"sub","id":"s","entity":"Card","order":["n"]});
    e.message(
        "w",
        FrameRef::Text(&insert("o1", vec![card("k1", "a", 1)]).to_string()),
        0,
    )
    .await;
    e.flush().await;
    let out = e.message("r", FrameRef::Text(&sub.to_string()), 0).await;
    let before = rows_of(&to(&out, "r")[0]);
    assert_eq!(before.len(), 1);

    for (op, id, n) in [("o2", "k2", 2), ("o3", "k3", 3)] {
        let w = insert(op, vec![card(id, "x", n)]);
        e.message("w", FrameRef::Text(&w.to_string()), 0).await;
    }
    let update = json!({"type":"mut","op":"o4","ops":[{"type":"update","entity":"Card","id":"k1","set":{"title":"changed"}}]});
    e.message("w", FrameRef::Text(&update.to_string()), 0).await;
    fail.set(Some(failing));
    let out = e.flush().await;
    fail.set(None);
    let w = to(&out, "w");
    assert_eq!(w.len(), 3, "{failing}: {w:?}");
    for (m, op) in w.iter().zip(["o2", "o3", "o4"]) {
        assert!(
            matches!(m, ServerMsg::Err(x) if x.op.as_deref() == Some(op) && x.code == ErrorCode::Internal),
            "{m:?}"
        );
    }
    // The subscriber is told to reload and gets the rows as they were.
    let r = to(&out, "r");
    assert!(matches!(&r[0], ServerMsg::Reset(x) if x.id == "s"), "{r:?}");
    assert_eq!(rows_of(&r[1]), before);
    let s = e.store();
    assert_eq!(s.seq().unwrap(), 1);
    assert_eq!(s.log_since(0).unwrap().len(), 1);
    assert!(s.op_seqs(&["o2", "o3", "o4"]).unwrap().is_empty());

    // Retried, they apply from the same seq on.
    e.message(
        "w",
        FrameRef::Text(&insert("o2", vec![card("k2", "x", 2)]).to_string()),
        0,
    )
    .await;
    let out = e.flush().await;
    assert!(
        matches!(&to(&out, "w")[..], [ServerMsg::Ack(a)] if a.op == "o2" && a.seq == 2 && !a.dup),
        "{out:?}"
    );
}

/// Retention by age drops every entry older than the limit (and keeps the
/// rest), found without scanning the log; retention by count still holds.
#[tokio::test]
async fn the_log_keeps_entries_by_age_and_by_count() {
    // Seq i + 1 is written at i seconds; retention runs every 100 seqs.
    let by_age = ShardConfig {
        log_keep_ms: 50_000,
        ..ShardConfig::default()
    };
    let e = write_cards(by_age, 200, |i| i * 1000, true).await;
    // At seq 200 (t = 199 s) everything before t = 149 s is gone.
    assert_eq!(e.store().log_range().unwrap(), Some((150, 200)));

    // One flush of 100 writes, all at t = 0.
    let by_count = ShardConfig {
        log_keep_seqs: 30,
        ..ShardConfig::default()
    };
    let e = write_cards(by_count, 100, |_| 0, false).await;
    assert_eq!(e.store().log_range().unwrap(), Some((71, 100)));
}

/// A fresh in-memory shard after `n` single-card inserts, the i-th at
/// `at(i)` ms, flushed after each or once at the end.
async fn write_cards(
    cfg: ShardConfig,
    n: i64,
    at: impl Fn(i64) -> i64,
    flush_each: bool,
) -> Engine {
    let mut e =
        ShardEngine::open(SqliteConn::open_in_memory().unwrap(), manifest(), "r", cfg).unwrap();
    e.connect("w", info(None), 0).unwrap();
    for i in 0..n {
        let w = insert(&format!("o{i}"), vec![card(&format!("k{i}"), "t", i)]);
        e.message("w", FrameRef::Text(&w.to_string()), at(i)).await;
        if flush_each {
            e.flush().await;
        }
    }
    e.flush().await;
    e
}
