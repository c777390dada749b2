//! An open connection's identity ends at its token's expiry or its
//! session's revocation (docs/auth.md, "Open sockets"), on real SQLite
//! with a virtual clock: refused messages, no diffs, one notice, renewal
//! by `hello` with the client's view exact afterwards, across a wake too,
//! and the cadence of revocation checks.

use std::sync::Arc;

use pylon_workers::auth::{AuthError, Lease};
use pylon_workers::manifest::Manifest;
use pylon_workers::policy::AuthContext;
use pylon_workers::protocol::{Encoding, ErrorCode, ErrorMsg, FrameRef, ServerMsg};
use pylon_workers::shard::{ConnInfo, Ended, Outbound, ShardConfig, ShardEngine};
use pylon_workers::storage::SqliteConn;
use pylon_workers::value::Row;
use serde_json::json;

/// Cards are open to everyone on the shard; the clock skew is 5 s.
const MANIFEST: &str = r#"{
  "entities": [
    {"name": "Card", "fields": [
      {"name": "title", "type": "string"},
      {"name": "n", "type": "int"}
    ]}
  ],
  "auth": {"clockSkewSeconds": 5, "shards": [{"pattern": "*", "allowAnonymous": true}]}
}"#;

/// ann's token: `exp` 100 s, so with the 5 s skew the router takes it
/// through second 105 and refuses it from 106 000 ms on.
const EXP: i64 = 100;
const ENDS_MS: i64 = 106_000;

type Engine = ShardEngine<SqliteConn>;

fn temp_db(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("pylon-identity-{name}-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

fn open(path: &std::path::Path, max_batch: u32) -> Engine {
    let config = ShardConfig {
        max_batch,
        ..ShardConfig::default()
    };
    let manifest = Arc::new(Manifest::from_json_str(MANIFEST).unwrap());
    ShardEngine::open(SqliteConn::open(path).unwrap(), manifest, "room", config).unwrap()
}

fn info(user: &str, lease: Lease) -> ConnInfo {
    ConnInfo {
        auth: AuthContext::user(user),
        encoding: Encoding::Json,
        client: None,
        lease,
        ended: None,
    }
}

fn expiring(exp: i64) -> Lease {
    Lease {
        exp: Some(exp),
        sid: None,
    }
}

/// One message at `now`, then a flush, as the Durable Object does.
async fn send(e: &mut Engine, conn: &str, msg: serde_json::Value, now: i64) -> Vec<Outbound> {
    let mut out = e.message(conn, FrameRef::Text(&msg.to_string()), now).await;
    out.extend(e.flush().await);
    out
}

/// The messages sent to `conn`.
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

/// What `conn`'s attachment was last set to in `out`.
fn attached(out: &[Outbound], conn: &str) -> Option<ConnInfo> {
    out.iter().rev().find_map(|o| match o {
        Outbound::Attach { conn: c, info } if c == conn => Some(info.clone()),
        _ => None,
    })
}

fn errors(msgs: &[ServerMsg]) -> Vec<ErrorMsg> {
    msgs.iter()
        .filter_map(|m| match m {
            ServerMsg::Err(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn insert(op: &str, id: &str, n: i64) -> serde_json::Value {
    json!({"type": "mut", "op": op, "ops": [{"type": "insert", "entity": "Card",
           "row": {"id": id, "title": id, "n": n}}]})
}

fn sub(id: &str) -> serde_json::Value {
    json!({"type": "sub", "id": id, "entity": "Card", "order": ["n"], "limit": 3})
}

/// A client's copy of one subscription, kept the way docs/protocol.md
/// says: a diff applies only from the seq held; a reset waits for its snap.
#[derive(Default, Debug)]
struct Held {
    rows: Vec<Row>,
    seq: Option<u64>,
}

impl Held {
    fn take(&mut self, msgs: &[ServerMsg], id: &str) {
        for m in msgs {
            match m {
                ServerMsg::Snap(s) if s.id == id => {
                    self.rows = s.rows.clone();
                    self.seq = Some(s.seq);
                }
                ServerMsg::Reset(r) if r.id == id => self.seq = None,
                ServerMsg::Diff(d) if d.id == id => {
                    assert_eq!(Some(d.from), self.seq, "a diff from a seq not held: {d:?}");
                    let gone: Vec<&str> = d
                        .removed
                        .iter()
                        .map(String::as_str)
                        .chain(d.changed.iter().map(|p| p.row["id"].as_str().unwrap()))
                        .collect();
                    self.rows
                        .retain(|r| !gone.contains(&r["id"].as_str().unwrap()));
                    let mut ins: Vec<_> = d.added.iter().chain(d.changed.iter()).collect();
                    ins.sort_by_key(|p| p.pos);
                    for p in ins {
                        self.rows.insert(p.pos as usize, p.row.clone());
                    }
                    self.seq = Some(d.seq);
                }
                _ => {}
            }
        }
    }
}

/// The rows the subscription must hold now, asked afresh.
fn truth(e: &Engine) -> Vec<Row> {
    let v = e
        .query(
            &AuthContext::user("ann"),
            &json!({"entity": "Card", "order": ["n"], "limit": 3}).into(),
        )
        .unwrap();
    serde_json::from_value(v["rows"].clone()).unwrap()
}

fn is_diff(m: &ServerMsg) -> bool {
    matches!(
        m,
        ServerMsg::Diff(_) | ServerMsg::Snap(_) | ServerMsg::Reset(_)
    )
}

/// ann's identity ends at `ENDS_MS` by the clock of bob's writes: no diff,
/// one pushed notice; her messages are refused (ping still answered);
/// a `hello` renews it and the missed change arrives as one diff.
async fn expiry_then_renewal(max_batch: u32) {
    let mut e = open(&temp_db(&format!("expiry-{max_batch}")), max_batch);
    e.connect("ann", info("ann", expiring(EXP)), 0).unwrap();
    e.connect("bob", info("bob", Lease::default()), 0).unwrap();
    let mut held = Held::default();
    held.take(&to(&send(&mut e, "ann", sub("s"), 0).await, "ann"), "s");

    // Up to the last millisecond of second 105 she is served.
    let out = send(&mut e, "bob", insert("o1", "k1", 5), ENDS_MS - 1).await;
    held.take(&to(&out, "ann"), "s");
    assert_eq!(held.rows, truth(&e));
    assert_eq!(held.seq, Some(1));

    // The next write after that: no diff for ann, one notice.
    let out = send(&mut e, "bob", insert("o2", "k2", 1), ENDS_MS).await;
    let for_ann = to(&out, "ann");
    assert!(!for_ann.iter().any(is_diff), "{for_ann:?}");
    let errs = errors(&for_ann);
    assert_eq!(errs.len(), 1, "{for_ann:?}");
    assert_eq!(errs[0].code, ErrorCode::Unauthorized);
    assert!(errs[0].message.starts_with("TOKEN_EXPIRED: "));
    assert!(errs[0].op.is_none() && errs[0].sub.is_none());
    assert_eq!(
        attached(&out, "ann").and_then(|i| i.ended),
        Some(Ended::Expired)
    );
    // bob still gets his ack; later writes tell ann nothing at all.
    assert!(to(&out, "bob")
        .iter()
        .any(|m| matches!(m, ServerMsg::Ack(_))));
    let out = send(&mut e, "bob", insert("o3", "k3", 2), ENDS_MS + 5_000).await;
    assert!(to(&out, "ann").is_empty(), "{:?}", to(&out, "ann"));
    let out = send(
        &mut e,
        "bob",
        json!({"type": "bcast", "topic": "t", "data": 1}),
        ENDS_MS + 5_000,
    )
    .await;
    assert!(
        to(&out, "ann").is_empty(),
        "a broadcast reached an ended connection"
    );

    // Her messages are refused with their ids; nothing is written.
    let out = to(
        &send(&mut e, "ann", insert("a1", "x1", 0), ENDS_MS + 6_000).await,
        "ann",
    );
    assert!(
        matches!(&out[..], [ServerMsg::Err(m)] if m.code == ErrorCode::Unauthorized
            && m.op.as_deref() == Some("a1") && m.message.starts_with("TOKEN_EXPIRED")),
        "{out:?}"
    );
    let out = to(
        &send(&mut e, "ann", sub("s2"), ENDS_MS + 6_000).await,
        "ann",
    );
    assert!(
        matches!(&out[..], [ServerMsg::Err(m)] if m.sub.as_deref() == Some("s2")),
        "{out:?}"
    );
    let out = to(
        &send(
            &mut e,
            "ann",
            json!({"type": "ping", "t": 7}),
            ENDS_MS + 6_000,
        )
        .await,
        "ann",
    );
    assert!(matches!(&out[..], [ServerMsg::Pong(_)]), "{out:?}");
    assert!(!truth(&e).iter().any(|r| r["id"].as_str() == Some("x1")));

    // Renewal: a fresh token for the same caller.
    let out = send(
        &mut e,
        "ann",
        json!({"type": "hello", "token": "fresh"}),
        ENDS_MS + 7_000,
    )
    .await;
    assert!(matches!(&out[..], [Outbound::Verify { .. }]), "{out:?}");
    let renewed = (AuthContext::user("ann"), expiring(1_000));
    let out = e.hello_verified("ann", Ok(renewed), ENDS_MS + 7_000).await;
    let info = attached(&out, "ann").expect("the renewed lease is attached");
    assert_eq!((info.ended, info.lease.exp), (None, Some(1_000)));
    let for_ann = to(&out, "ann");
    assert!(matches!(for_ann[0], ServerMsg::Welcome(_)), "{for_ann:?}");
    assert!(
        matches!(for_ann[1], ServerMsg::PresenceState(_)),
        "{for_ann:?}"
    );
    held.take(&for_ann, "s");
    assert_eq!(held.rows, truth(&e), "the missed changes in one diff");
    assert_eq!(held.seq, Some(e.store().seq().unwrap()));

    // Diffs flow again, and her writes are taken.
    let out = send(&mut e, "bob", insert("o4", "k4", 0), ENDS_MS + 8_000).await;
    held.take(&to(&out, "ann"), "s");
    assert_eq!(held.rows, truth(&e));
    let out = to(
        &send(&mut e, "ann", insert("a2", "x2", 9), ENDS_MS + 8_000).await,
        "ann",
    );
    assert!(
        out.iter().any(|m| matches!(m, ServerMsg::Ack(_))),
        "{out:?}"
    );
}

#[tokio::test]
async fn an_expired_connection_is_refused_and_paused_until_renewed() {
    expiry_then_renewal(256).await; // writes coalesced into flushes
    expiry_then_renewal(1).await; // each write's diffs at once
}

#[tokio::test]
async fn an_end_noticed_at_the_next_message_is_told_once() {
    let mut e = open(&temp_db("next-message"), 256);
    e.connect("ann", info("ann", expiring(EXP)), 0).unwrap();
    e.connect("bob", info("bob", Lease::default()), 0).unwrap();
    send(&mut e, "ann", sub("s"), 0).await;
    // Nothing happened on the shard since the expiry: her own message is
    // where it is noticed, and its refusal is the notice.
    let out = send(&mut e, "ann", insert("a1", "x1", 0), ENDS_MS + 1).await;
    assert_eq!(errors(&to(&out, "ann")).len(), 1);
    assert_eq!(
        attached(&out, "ann").and_then(|i| i.ended),
        Some(Ended::Expired)
    );
    // A write after that is no news to her.
    let out = send(&mut e, "bob", insert("o1", "k1", 1), ENDS_MS + 2).await;
    assert!(to(&out, "ann").is_empty(), "{:?}", to(&out, "ann"));
}

#[tokio::test]
async fn renewal_needs_a_valid_token_for_the_same_caller() {
    let mut e = open(&temp_db("renewal"), 256);
    e.connect("ann", info("ann", expiring(EXP)), 0).unwrap();
    e.connect("bob", info("bob", Lease::default()), 0).unwrap();
    send(&mut e, "ann", sub("s"), 0).await;
    send(&mut e, "bob", insert("o1", "k1", 1), ENDS_MS).await;
    let refused = [
        (
            Ok((AuthContext::user("bob"), expiring(1_000))),
            ErrorCode::Forbidden,
            "IDENTITY_CHANGED",
        ),
        (Err(AuthError::Expired), ErrorCode::Unauthorized, "EXPIRED"),
        (
            Err(AuthError::Revoked),
            ErrorCode::Unauthorized,
            "SESSION_REVOKED",
        ),
    ];
    for (verified, code, reason) in refused {
        let out = e.hello_verified("ann", verified, ENDS_MS + 1_000).await;
        assert!(attached(&out, "ann").is_none(), "{reason}: {out:?}");
        match &to(&out, "ann")[..] {
            [ServerMsg::Err(m)] if m.code == code && m.message.starts_with(reason) => {}
            other => panic!("{reason}: {other:?}"),
        }
    }
    // Still ended: refused, and no diffs.
    let out = send(&mut e, "bob", insert("o2", "k2", 2), ENDS_MS + 2_000).await;
    assert!(to(&out, "ann").is_empty());
    let out = to(
        &send(&mut e, "ann", insert("a1", "x1", 0), ENDS_MS + 2_000).await,
        "ann",
    );
    assert!(matches!(&out[..], [ServerMsg::Err(m)] if m.code == ErrorCode::Unauthorized));
}

#[tokio::test]
async fn a_renewal_before_the_end_just_moves_it() {
    let mut e = open(&temp_db("early"), 256);
    e.connect("ann", info("ann", expiring(EXP)), 0).unwrap();
    e.connect("bob", info("bob", Lease::default()), 0).unwrap();
    let mut held = Held::default();
    held.take(&to(&send(&mut e, "ann", sub("s"), 0).await, "ann"), "s");
    let out = e
        .hello_verified("ann", Ok((AuthContext::user("ann"), expiring(200))), 90_000)
        .await;
    assert!(
        matches!(&to(&out, "ann")[..], [ServerMsg::Welcome(_)]),
        "{out:?}"
    );
    // Past the old end, before the new one (205 s + 1): served.
    let out = send(&mut e, "bob", insert("o1", "k1", 1), 150_000).await;
    held.take(&to(&out, "ann"), "s");
    assert!(errors(&to(&out, "ann")).is_empty());
    assert_eq!(held.rows, truth(&e));
    // Past the new one: ended.
    let out = send(&mut e, "bob", insert("o2", "k2", 2), 206_000).await;
    assert_eq!(errors(&to(&out, "ann")).len(), 1);
    assert!(!to(&out, "ann").iter().any(is_diff));
}

/// A wake (new engine on the same storage, connections restored from
/// their attachments) keeps an ended connection ended, and its paused
/// subscription resumes from the seq it was last sent although its shared
/// window went on for bob.
#[tokio::test]
async fn an_ended_connection_stays_ended_across_a_wake() {
    let path = temp_db("wake");
    let mut e = open(&path, 256);
    e.connect("ann", info("ann", expiring(EXP)), 0).unwrap();
    e.connect("bob", info("bob", Lease::default()), 0).unwrap();
    let mut held = Held::default();
    held.take(&to(&send(&mut e, "ann", sub("s"), 0).await, "ann"), "s");
    send(&mut e, "bob", sub("s"), 0).await; // the same window
    let out = send(&mut e, "bob", insert("o1", "k1", 5), 1_000).await;
    held.take(&to(&out, "ann"), "s");
    let out = send(&mut e, "bob", insert("o2", "k2", 1), ENDS_MS).await;
    let ann_info = attached(&out, "ann").unwrap();
    for (i, n) in [3, 4, 0].into_iter().enumerate() {
        send(
            &mut e,
            "bob",
            insert(&format!("p{i}"), &format!("m{i}"), n),
            ENDS_MS + 1,
        )
        .await;
    }
    drop(e);

    let mut e = open(&path, 256);
    let bob_info = info("bob", Lease::default());
    e.restore(
        vec![("ann".into(), ann_info), ("bob".into(), bob_info)],
        ENDS_MS + 60_000,
    )
    .await
    .unwrap();
    let out = send(&mut e, "bob", insert("o9", "k9", 2), ENDS_MS + 61_000).await;
    assert!(to(&out, "ann").is_empty(), "{:?}", to(&out, "ann"));
    let out = to(
        &send(&mut e, "ann", insert("a1", "x1", 0), ENDS_MS + 61_000).await,
        "ann",
    );
    assert!(matches!(&out[..], [ServerMsg::Err(m)] if m.message.starts_with("TOKEN_EXPIRED")));

    let out = e
        .hello_verified(
            "ann",
            Ok((AuthContext::user("ann"), expiring(1_000))),
            ENDS_MS + 62_000,
        )
        .await;
    held.take(&to(&out, "ann"), "s");
    assert_eq!(held.rows, truth(&e));
    let out = send(&mut e, "bob", insert("o10", "k10", -1), ENDS_MS + 63_000).await;
    held.take(&to(&out, "ann"), "s");
    assert_eq!(held.rows, truth(&e));
}

/// Expired while the object slept (nothing noticed it): after the wake the
/// first write notices it, and the client still ends up exact.
#[tokio::test]
async fn an_end_reached_while_asleep_is_noticed_after_the_wake() {
    let path = temp_db("asleep");
    let mut e = open(&path, 256);
    let ann_info = info("ann", expiring(EXP));
    e.connect("ann", ann_info.clone(), 0).unwrap();
    e.connect("bob", info("bob", Lease::default()), 0).unwrap();
    let mut held = Held::default();
    held.take(&to(&send(&mut e, "ann", sub("s"), 0).await, "ann"), "s");
    send(&mut e, "bob", sub("s"), 0).await;
    let out = send(&mut e, "bob", insert("o1", "k1", 1), 1_000).await;
    held.take(&to(&out, "ann"), "s");
    drop(e);

    let mut e = open(&path, 256);
    e.restore(
        vec![
            ("ann".into(), ann_info),
            ("bob".into(), info("bob", Lease::default())),
        ],
        ENDS_MS + 10_000,
    )
    .await
    .unwrap();
    let out = send(&mut e, "bob", insert("o2", "k2", 2), ENDS_MS + 10_000).await;
    let for_ann = to(&out, "ann");
    assert!(
        !for_ann.iter().any(is_diff) && errors(&for_ann).len() == 1,
        "{for_ann:?}"
    );
    let out = e
        .hello_verified(
            "ann",
            Ok((AuthContext::user("ann"), expiring(1_000))),
            ENDS_MS + 11_000,
        )
        .await;
    held.take(&to(&out, "ann"), "s");
    assert_eq!(held.rows, truth(&e));
}

#[tokio::test]
async fn revocation_checks_come_at_most_every_interval() {
    let mut e = open(&temp_db("revocation"), 256);
    let session = Lease {
        exp: Some(10_000),
        sid: Some("s_1".into()),
    };
    e.connect("ann", info("ann", session.clone()), 0).unwrap();
    e.connect("bob", info("bob", Lease::default()), 0).unwrap();
    // The upgrade was just checked by the router: the next check is due
    // one interval later, then one interval after each check.
    let due: Vec<_> = [0, 9_999, 10_000, 10_001, 19_999, 20_000]
        .into_iter()
        .map(|t| e.revocation_due("ann", t, 10_000))
        .collect();
    let s = Some("s_1".to_owned());
    assert_eq!(due, [None, None, s.clone(), None, None, s.clone()]);
    assert_eq!(
        e.revocation_due("bob", 1_000_000, 10_000),
        None,
        "no session, no check"
    );
    // 0: every message.
    assert_eq!(e.revocation_due("ann", 20_000, 0), s);
    assert_eq!(e.revocation_due("ann", 20_000, 0), s);

    // Live, or an answer about a session it no longer has: nothing.
    assert!(e.session_checked("ann", "s_1", true, 20_000).is_empty());
    assert!(e.session_checked("ann", "s_0", false, 20_000).is_empty());
    // Revoked: ended, told once, refused as SESSION_REVOKED.
    let mut held = Held::default();
    held.take(
        &to(&send(&mut e, "ann", sub("s"), 20_000).await, "ann"),
        "s",
    );
    let out = e.session_checked("ann", "s_1", false, 21_000);
    assert_eq!(
        attached(&out, "ann").and_then(|i| i.ended),
        Some(Ended::Revoked)
    );
    let errs = errors(&to(&out, "ann"));
    assert!(errs.len() == 1 && errs[0].message.starts_with("SESSION_REVOKED: "));
    assert!(
        e.session_checked("ann", "s_1", false, 22_000).is_empty(),
        "told once"
    );
    assert_eq!(
        e.revocation_due("ann", 40_000, 10_000),
        None,
        "ended: no more checks"
    );
    let out = send(&mut e, "bob", insert("o1", "k1", 1), 22_000).await;
    assert!(to(&out, "ann").is_empty());
    let out = to(
        &send(&mut e, "ann", insert("a1", "x1", 0), 22_000).await,
        "ann",
    );
    assert!(matches!(&out[..], [ServerMsg::Err(m)] if m.message.starts_with("SESSION_REVOKED")));

    // A new session's token for ann renews it; checks resume from then.
    let fresh = Lease {
        exp: Some(50_000),
        sid: Some("s_2".into()),
    };
    let out = e
        .hello_verified("ann", Ok((AuthContext::user("ann"), fresh)), 23_000)
        .await;
    held.take(&to(&out, "ann"), "s");
    assert_eq!(held.rows, truth(&e));
    assert_eq!(e.revocation_due("ann", 32_999, 10_000), None);
    assert_eq!(e.revocation_due("ann", 33_000, 10_000), Some("s_2".into()));

    // After a wake nothing is known: the first message checks at once.
    let mut woken = open(&temp_db("revocation-wake"), 256);
    woken
        .restore(vec![("ann".into(), info("ann", session))], 5_000)
        .await
        .unwrap();
    assert_eq!(
        woken.revocation_due("ann", 5_000, 10_000),
        Some("s_1".into())
    );
}
