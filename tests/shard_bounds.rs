//! Every answer and every socket of a shard is bounded, and write errors
//! reveal nothing of rows the caller cannot read (issue #12), on real
//! SQLite: the HTTP query's pages (default limit, byte budget, read
//! policies, scan bound, counts), presence per connection and per shard,
//! the existence and value oracles, storage errors without SQLite's text,
//! and a flood that gets its socket closed.

use std::sync::Arc;

use pylon_workers::manifest::Manifest;
use pylon_workers::policy::AuthContext;
use pylon_workers::protocol::{ErrorCode, ErrorMsg, FrameRef, Op, ServerMsg};
use pylon_workers::query::limits::MAX_RESULT_BYTES;
use pylon_workers::shard::http_query::{DEFAULT_LIMIT, MAX_SCAN};
use pylon_workers::shard::{ConnInfo, Outbound, ShardConfig, ShardEngine, REFUSAL_WINDOW_MS};
use pylon_workers::sql::SqlValue;
use pylon_workers::storage::{SqlConn, SqliteConn, StorageError, StorageErrorKind};
use pylon_workers::value::Value;
use serde_json::json;

const MANIFEST: &str = r#"{
  "entities": [
    {"name": "Card", "fields": [
      {"name": "title", "type": "string"},
      {"name": "n", "type": "int"}
    ]},
    {"name": "Note", "fields": [
      {"name": "owner", "type": "string"},
      {"name": "slug", "type": "string", "optional": true, "unique": true},
      {"name": "shelf", "type": "string", "optional": true},
      {"name": "slot", "type": "int", "optional": true}
    ], "indexes": [{"name": "place", "fields": ["shelf", "slot"], "unique": true}]}
  ],
  "policies": [
    {"name": "ownNotes", "entity": "Note",
     "allowRead": "data.owner == auth.userId",
     "allowWrite": "data.owner == auth.userId"}
  ]
}"#;

type Engine = ShardEngine<SqliteConn>;

fn open_with(cfg: ShardConfig) -> Engine {
    let manifest = Arc::new(Manifest::from_json_str(MANIFEST).unwrap());
    ShardEngine::open(SqliteConn::open_in_memory().unwrap(), manifest, "r", cfg).unwrap()
}

fn open() -> Engine {
    open_with(ShardConfig::default())
}

fn user(id: &str) -> AuthContext {
    AuthContext::user(id)
}

fn info(auth: AuthContext) -> ConnInfo {
    ConnInfo {
        auth,
        encoding: pylon_workers::protocol::Encoding::Json,
        client: None,
        lease: Default::default(),
        ended: None,
    }
}

fn row(v: serde_json::Value) -> pylon_workers::value::Row {
    serde_json::from_value(v).unwrap()
}

fn insert(entity: &str, v: serde_json::Value) -> Op {
    Op::Insert {
        entity: entity.into(),
        row: row(v),
    }
}

async fn write<C: SqlConn>(
    e: &mut ShardEngine<C>,
    auth: &AuthContext,
    ops: Vec<Op>,
) -> Result<u64, ErrorMsg> {
    e.mutate(None, auth, None, ops, 0)
        .await
        .map(|(ack, _)| ack.seq)
}

fn query<C: SqlConn>(
    e: &ShardEngine<C>,
    auth: &AuthContext,
    q: serde_json::Value,
) -> Result<serde_json::Value, ErrorMsg> {
    e.query(auth, &Value::from(q))
}

fn ids(answer: &serde_json::Value) -> Vec<String> {
    answer["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Pages through `q` from the start; every page's JSON checked against the
/// budget. The ids in order and the number of pages.
fn all_pages(e: &Engine, auth: &AuthContext, q: serde_json::Value) -> (Vec<String>, usize) {
    let (mut all, mut pages) = (Vec::new(), 0);
    let mut q = q;
    loop {
        let a = query(e, auth, q.clone()).unwrap();
        let size = serde_json::to_string(&a).unwrap().len();
        assert!(size <= MAX_RESULT_BYTES, "a page of {size} bytes");
        pages += 1;
        all.extend(ids(&a));
        match a["next"].as_str() {
            Some(next) => q["after"] = json!(next),
            None => return (all, pages),
        }
        assert!(pages < 10_000, "paging does not end");
    }
}

// ---- HTTP query: limit, budget, policies, scan bound, counts ----

#[tokio::test]
async fn big_rows_come_in_pages_under_the_budget_and_all_are_reachable() {
    let mut e = open();
    let anon = AuthContext::anonymous();
    let big = "x".repeat(900 * 1024);
    for i in 0..3 {
        write(
            &mut e,
            &anon,
            vec![insert(
                "Card",
                json!({"id": format!("b{i}"), "title": big, "n": i}),
            )],
        )
        .await
        .unwrap();
    }
    // Before the budget: one answer of about 2.7 MB.
    let first = query(&e, &anon, json!({"entity": "Card"})).unwrap();
    assert_eq!(ids(&first), ["b0"]);
    assert!(first["next"].is_string());
    let (all, pages) = all_pages(&e, &anon, json!({"entity": "Card"}));
    assert_eq!(all, ["b0", "b1", "b2"]);
    assert_eq!(pages, 3);

    // Smaller rows share pages, still under the budget, in order.
    let mid = "y".repeat(300 * 1024);
    for i in 0..7 {
        write(
            &mut e,
            &anon,
            vec![insert(
                "Card",
                json!({"id": format!("m{i}"), "title": mid, "n": 10 + i}),
            )],
        )
        .await
        .unwrap();
    }
    let (all, pages) = all_pages(&e, &anon, json!({"entity": "Card", "order": ["n"]}));
    assert_eq!(all.len(), 10);
    assert_eq!(&all[3..], ["m0", "m1", "m2", "m3", "m4", "m5", "m6"]);
    assert_eq!(pages, 3 + 3, "three 300 KiB rows per page");
}

#[tokio::test]
async fn a_single_row_over_the_budget_is_result_too_large() {
    let mut e = open();
    let anon = AuthContext::anonymous();
    // Over HTTP a body is at most 1 MiB; the engine itself takes more.
    let huge = "z".repeat(MAX_RESULT_BYTES + 1);
    write(
        &mut e,
        &anon,
        vec![insert("Card", json!({"id": "h", "title": huge, "n": 1}))],
    )
    .await
    .unwrap();
    write(
        &mut e,
        &anon,
        vec![insert("Card", json!({"id": "s", "title": "small", "n": 2}))],
    )
    .await
    .unwrap();
    let e1 = query(&e, &anon, json!({"entity": "Card", "order": ["n"]})).unwrap_err();
    assert_eq!(e1.code, ErrorCode::ResultTooLarge);
    assert!(e1.message.len() < 300, "{}", e1.message);
    // Around it, the rest is readable.
    let a = query(&e, &anon, json!({"entity": "Card", "where": {"n": 2}})).unwrap();
    assert_eq!(ids(&a), ["s"]);
}

#[tokio::test]
async fn the_limit_defaults_to_a_hundred() {
    let mut e = open();
    let anon = AuthContext::anonymous();
    let ops = (0..150)
        .map(|i| {
            insert(
                "Card",
                json!({"id": format!("c{i:03}"), "title": "t", "n": i}),
            )
        })
        .collect();
    write(&mut e, &anon, ops).await.unwrap();
    let a = query(&e, &anon, json!({"entity": "Card"})).unwrap();
    assert_eq!(ids(&a).len(), DEFAULT_LIMIT);
    let b = query(&e, &anon, json!({"entity": "Card", "after": a["next"]})).unwrap();
    assert_eq!(ids(&b).len(), 50);
    assert!(b["next"].is_null());
    let c = query(&e, &anon, json!({"entity": "Card", "limit": 1000})).unwrap();
    assert_eq!(ids(&c).len(), 150);
}

#[tokio::test]
async fn pages_through_read_policies_are_full_and_complete() {
    let mut e = open();
    let (ann, bob) = (user("ann"), user("bob"));
    // 250 of ann's notes sort before bob's 20, and 30 more after them.
    let notes = |who: &str, from: usize, to: usize| -> Vec<Op> {
        (from..to)
            .map(|i| insert("Note", json!({"id": format!("n{i:05}"), "owner": who})))
            .collect()
    };
    write(&mut e, &ann, notes("ann", 0, 250)).await.unwrap();
    write(&mut e, &bob, notes("bob", 250, 270)).await.unwrap();
    write(&mut e, &ann, notes("ann", 270, 300)).await.unwrap();
    // The SQL limit alone would give bob an empty page and `next: null`.
    let a = query(&e, &bob, json!({"entity": "Note", "limit": 10})).unwrap();
    assert_eq!(ids(&a).len(), 10, "{a}");
    assert!(a["next"].is_string());
    let (all, _) = all_pages(&e, &bob, json!({"entity": "Note", "limit": 10}));
    let want: Vec<String> = (250..270).map(|i| format!("n{i:05}")).collect();
    assert_eq!(all, want);

    // The scan bound: more of ann's rows than one request examines.
    let mut e = open();
    for k in 0..6 {
        write(&mut e, &ann, notes("ann", k * 1000, (k + 1) * 1000))
            .await
            .unwrap();
    }
    write(&mut e, &bob, notes("bob", 6000, 6003)).await.unwrap();
    let a = query(&e, &bob, json!({"entity": "Note"})).unwrap();
    assert!(ids(&a).is_empty(), "{a}");
    assert!(a["next"].is_string(), "a short page says where to go on");
    let (all, pages) = all_pages(&e, &bob, json!({"entity": "Note"}));
    assert_eq!(all, ["n06000", "n06001", "n06002"]);
    assert_eq!(pages, 2);
    const { assert!(6000 > MAX_SCAN) };
}

#[tokio::test]
async fn counts_are_exact_and_bounded_through_policies() {
    let mut e = open();
    let (ann, bob) = (user("ann"), user("bob"));
    let notes = |who: &str, from: usize, to: usize| -> Vec<Op> {
        (from..to)
            .map(|i| insert("Note", json!({"id": format!("n{i:05}"), "owner": who})))
            .collect()
    };
    write(&mut e, &bob, notes("bob", 0, 5)).await.unwrap();
    write(&mut e, &ann, notes("ann", 5, 105)).await.unwrap();
    let count =
        |e: &Engine, who: &AuthContext| query(e, who, json!({"entity": "Note", "count": true}));
    assert_eq!(count(&e, &bob).unwrap()["count"], 5);
    assert_eq!(count(&e, &ann).unwrap()["count"], 100);
    for k in 0..5 {
        write(&mut e, &ann, notes("ann", 1000 + k * 1000, 2000 + k * 1000))
            .await
            .unwrap();
    }
    let refused = count(&e, &bob).unwrap_err();
    assert_eq!(refused.code, ErrorCode::ResultTooLarge);
    assert!(!refused.message.contains("5105"), "{}", refused.message);
    // Narrowed, it answers; an admin's count is one SQL COUNT, unbounded.
    let a = query(
        &e,
        &bob,
        json!({"entity": "Note", "count": true, "where": {"owner": "bob"}}),
    )
    .unwrap();
    assert_eq!(a["count"], 5);
    assert_eq!(count(&e, &AuthContext::admin()).unwrap()["count"], 5105);
}

// ---- presence ----

fn presence(size: usize) -> serde_json::Value {
    // {"p":"…"} is 8 bytes of JSON around the string.
    json!({"type": "presence", "state": {"p": "x".repeat(size - 8)}})
}

async fn send(e: &mut Engine, conn: &str, msg: serde_json::Value) -> Vec<Outbound> {
    let mut out = e.message(conn, FrameRef::Text(&msg.to_string()), 0).await;
    out.extend(e.flush().await);
    out
}

fn msgs_to(out: &[Outbound], conn: &str) -> Vec<ServerMsg> {
    out.iter()
        .filter_map(|o| match o {
            Outbound::To(c, m) if c == conn => Some(m.clone()),
            Outbound::Many { conns, msg } if conns.iter().any(|c| c == conn) => Some(msg.clone()),
            Outbound::All { except, msg } if except.as_deref() != Some(conn) => Some(msg.clone()),
            _ => None,
        })
        .collect()
}

fn err_of(out: &[Outbound], conn: &str) -> Option<ErrorMsg> {
    msgs_to(out, conn).into_iter().find_map(|m| match m {
        ServerMsg::Err(e) => Some(e),
        _ => None,
    })
}

fn presence_bytes(msg: &ServerMsg) -> usize {
    match msg {
        ServerMsg::PresenceState(p) => p
            .members
            .iter()
            .map(|m| serde_json::to_string(&m.state).unwrap().len())
            .sum(),
        other => panic!("expected presence_state, got {other:?}"),
    }
}

#[tokio::test]
async fn presence_is_bounded_per_connection_and_per_shard() {
    let path =
        std::env::temp_dir().join(format!("pylon-bounds-presence-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut cfg = ShardConfig::default();
    cfg.limits.max_presence_bytes = 100;
    cfg.limits.max_presence_total_bytes = 250;
    let manifest = Arc::new(Manifest::from_json_str(MANIFEST).unwrap());
    let open = || {
        ShardEngine::open(
            SqliteConn::open(&path).unwrap(),
            manifest.clone(),
            "r",
            cfg.clone(),
        )
        .unwrap()
    };
    let mut e = open();
    for c in ["a", "b", "c"] {
        e.connect(c, info(AuthContext::anonymous()), 0).unwrap();
    }
    assert!(err_of(&send(&mut e, "a", presence(90)).await, "a").is_none());
    // Over the per-connection bound: refused, and nobody hears of it.
    let out = send(&mut e, "b", presence(101)).await;
    assert_eq!(err_of(&out, "b").unwrap().code, ErrorCode::PresenceTooLarge);
    assert!(msgs_to(&out, "a").is_empty(), "{out:?}");
    assert!(err_of(&send(&mut e, "b", presence(90)).await, "b").is_none());
    // Over the total: refused; a smaller one fits.
    let out = send(&mut e, "c", presence(90)).await;
    assert_eq!(err_of(&out, "c").unwrap().code, ErrorCode::PresenceTooLarge);
    assert!(err_of(&send(&mut e, "c", presence(70)).await, "c").is_none());
    // Replacing one's own presence counts it once.
    assert!(err_of(&send(&mut e, "a", presence(90)).await, "a").is_none());
    // A joiner gets everyone's presence, within the total.
    let out = e.connect("d", info(AuthContext::anonymous()), 0).unwrap();
    let state = &msgs_to(&out, "d")[1];
    assert_eq!(presence_bytes(state), 250);
    let out = send(&mut e, "d", presence(9)).await;
    assert_eq!(err_of(&out, "d").unwrap().code, ErrorCode::PresenceTooLarge);

    // After a wake the sizes come back from storage.
    drop(e);
    let mut e = open();
    let open_conns = ["a", "b", "c", "d"].map(|c| (c.to_owned(), info(AuthContext::anonymous())));
    e.restore(open_conns.to_vec(), 0).await.unwrap();
    let out = send(&mut e, "d", presence(9)).await;
    assert_eq!(err_of(&out, "d").unwrap().code, ErrorCode::PresenceTooLarge);
    // Someone leaving makes room.
    e.close("b").unwrap();
    assert!(err_of(&send(&mut e, "d", presence(90)).await, "d").is_none());
    let out = send(&mut e, "a", json!({"type": "presence", "state": null})).await;
    assert!(err_of(&out, "a").is_none());
    let out = e.connect("e", info(AuthContext::anonymous()), 0).unwrap();
    assert_eq!(presence_bytes(&msgs_to(&out, "e")[1]), 160);
}

// ---- existence and value oracles ----

fn is_generic(e: &ErrorMsg) -> bool {
    e.code == ErrorCode::Forbidden && e.message == "insert on Note refused for this caller"
}

#[tokio::test]
async fn writes_do_not_reveal_rows_the_caller_cannot_read() {
    let mut e = open();
    let (ann, bob) = (user("ann"), user("bob"));
    let note = |id: &str, owner: &str, slug: Option<&str>| {
        insert("Note", json!({"id": id, "owner": owner, "slug": slug}))
    };
    write(&mut e, &ann, vec![note("n1", "ann", Some("secret"))])
        .await
        .unwrap();
    write(
        &mut e,
        &ann,
        vec![insert(
            "Note",
            json!({"id": "n2", "owner": "ann", "shelf": "s", "slot": 1}),
        )],
    )
    .await
    .unwrap();
    write(&mut e, &bob, vec![note("b1", "bob", Some("mine"))])
        .await
        .unwrap();

    // The id: ann sees ALREADY_EXISTS, bob only a generic refusal.
    let r = write(&mut e, &ann, vec![note("n1", "ann", None)])
        .await
        .unwrap_err();
    assert_eq!(r.code, ErrorCode::AlreadyExists);
    let r = write(&mut e, &bob, vec![note("n1", "bob", None)])
        .await
        .unwrap_err();
    assert!(is_generic(&r), "{r:?}");
    // An insert the policies refuse reads the same whether the id exists.
    let taken = write(&mut e, &bob, vec![note("n1", "ann", None)])
        .await
        .unwrap_err();
    let free = write(&mut e, &bob, vec![note("zz", "ann", None)])
        .await
        .unwrap_err();
    assert_eq!(taken, free);
    assert_eq!(taken.code, ErrorCode::Forbidden);
    // So do row errors.
    let bad = |id: &str| insert("Note", json!({"id": id, "owner": "bob", "nope": 1}));
    let taken = write(&mut e, &bob, vec![bad("n1")]).await.unwrap_err();
    let free = write(&mut e, &bob, vec![bad("zz")]).await.unwrap_err();
    assert_eq!(taken, free);

    // A unique value: named (field only) for ann, generic for bob.
    let r = write(&mut e, &ann, vec![note("n3", "ann", Some("secret"))])
        .await
        .unwrap_err();
    assert_eq!(r.code, ErrorCode::UniqueViolation);
    assert!(r.message.contains("Note.slug"), "{}", r.message);
    assert!(
        !r.message.contains("constraint failed") && !r.message.contains("secret"),
        "{}",
        r.message
    );
    let r = write(&mut e, &bob, vec![note("b2", "bob", Some("secret"))])
        .await
        .unwrap_err();
    assert!(is_generic(&r), "{r:?}");
    // A unique index over two fields.
    let r = write(
        &mut e,
        &bob,
        vec![insert(
            "Note",
            json!({"id": "b3", "owner": "bob", "shelf": "s", "slot": 1}),
        )],
    )
    .await
    .unwrap_err();
    assert!(is_generic(&r), "{r:?}");
    let r = write(
        &mut e,
        &ann,
        vec![insert(
            "Note",
            json!({"id": "n4", "owner": "ann", "shelf": "s", "slot": 1}),
        )],
    )
    .await
    .unwrap_err();
    assert_eq!(r.code, ErrorCode::UniqueViolation);
    assert!(
        r.message.contains("Note.shelf + Note.slot"),
        "{}",
        r.message
    );
    // Updating into a hidden row's value.
    let set_slug = |id: &str, slug: &str| Op::Update {
        entity: "Note".into(),
        id: id.into(),
        set: row(json!({"slug": slug})),
    };
    let r = write(&mut e, &bob, vec![set_slug("b1", "secret")])
        .await
        .unwrap_err();
    assert_eq!(
        (r.code, r.message.as_str()),
        (
            ErrorCode::Forbidden,
            "update on Note refused for this caller"
        )
    );
    write(&mut e, &ann, vec![note("n5", "ann", None)])
        .await
        .unwrap();
    let r = write(&mut e, &ann, vec![set_slug("n5", "secret")])
        .await
        .unwrap_err();
    assert_eq!(r.code, ErrorCode::UniqueViolation);

    // Update and delete of a hidden row: as if it did not exist.
    for (id, absent) in [("n1", "zz")] {
        let hidden = write(&mut e, &bob, vec![set_slug(id, "x")])
            .await
            .unwrap_err();
        let missing = write(&mut e, &bob, vec![set_slug(absent, "x")])
            .await
            .unwrap_err();
        assert_eq!(hidden.code, ErrorCode::NotFound);
        assert_eq!(hidden.message, missing.message.replace(absent, id));
        let del = |id: &str| Op::Delete {
            entity: "Note".into(),
            id: id.into(),
        };
        let hidden = write(&mut e, &bob, vec![del(id)]).await.unwrap_err();
        let missing = write(&mut e, &bob, vec![del(absent)]).await.unwrap_err();
        assert_eq!(hidden.code, ErrorCode::NotFound);
        assert_eq!(hidden.message, missing.message.replace(absent, id));
    }
    // Upsert over a hidden row: answered as the insert it would be.
    let upsert = |owner: &str| Op::Upsert {
        entity: "Note".into(),
        row: row(json!({"id": "n1", "owner": owner})),
    };
    let r = write(&mut e, &bob, vec![upsert("bob")]).await.unwrap_err();
    assert!(is_generic(&r), "{r:?}");
    let taken = write(&mut e, &bob, vec![upsert("ann")]).await.unwrap_err();
    let free = write(
        &mut e,
        &bob,
        vec![insert("Note", json!({"id": "zz", "owner": "ann"}))],
    )
    .await
    .unwrap_err();
    assert_eq!(taken, free);
    // Nothing of bob's attempts was stored; ann's rows are intact.
    let a = query(&e, &ann, json!({"entity": "Note", "order": ["id"]})).unwrap();
    assert_eq!(ids(&a), ["n1", "n2", "n5"]);
    assert_eq!(a["rows"][0]["slug"], "secret");
    // Over a socket, the same answers.
    e.connect("cb", info(bob.clone()), 0).unwrap();
    let m = json!({"type": "mut", "op": "o1", "ops": [{"type": "insert", "entity": "Note",
                   "row": {"id": "b9", "owner": "bob", "slug": "secret"}}]});
    let out = send(&mut e, "cb", m).await;
    let r = err_of(&out, "cb").unwrap();
    assert!(is_generic(&r) && r.op.as_deref() == Some("o1"), "{r:?}");
}

/// A connection whose statements fail with a message of its own choosing.
struct Broken {
    inner: SqliteConn,
    failing: std::cell::Cell<Option<&'static str>>,
}

impl SqlConn for Broken {
    fn exec(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, StorageError> {
        match self.failing.get() {
            Some(prefix) if sql.starts_with(prefix) => Err(StorageError::new(
                "database disk image is malformed: Note.slug row 7 'secret'",
                sql,
            )),
            _ => self.inner.exec(sql, params),
        }
    }
}

#[tokio::test]
async fn storage_errors_answer_internal_without_sqlite_text() {
    let manifest = Arc::new(Manifest::from_json_str(MANIFEST).unwrap());
    let conn = Broken {
        inner: SqliteConn::open_in_memory().unwrap(),
        failing: std::cell::Cell::new(None),
    };
    let mut e = ShardEngine::open(conn, manifest, "r", ShardConfig::default()).unwrap();
    let ann = user("ann");
    write(
        &mut e,
        &ann,
        vec![insert("Note", json!({"id": "n1", "owner": "ann"}))],
    )
    .await
    .unwrap();
    for (prefix, what) in [("INSERT INTO \"Note\"", "insert"), ("SELECT", "query")] {
        e.store().conn().failing.set(Some(prefix));
        let r = if what == "insert" {
            write(
                &mut e,
                &ann,
                vec![insert("Note", json!({"id": "n2", "owner": "ann"}))],
            )
            .await
            .unwrap_err()
        } else {
            query(&e, &ann, json!({"entity": "Note"})).unwrap_err()
        };
        e.store().conn().failing.set(None);
        assert_eq!(r.code, ErrorCode::Internal, "{what}");
        for leak in ["malformed", "Note.slug", "secret", "SELECT", "INSERT"] {
            assert!(!r.message.contains(leak), "{what}: {}", r.message);
        }
    }
}

#[test]
fn sqlite_failures_are_typed_by_their_code() {
    let db = SqliteConn::open_in_memory().unwrap();
    db.exec("CREATE TABLE t (id TEXT PRIMARY KEY, u TEXT UNIQUE)", &[])
        .unwrap();
    db.exec("INSERT INTO t VALUES ('a', 'x')", &[]).unwrap();
    let unique = db.exec("INSERT INTO t VALUES ('b', 'x')", &[]).unwrap_err();
    let primary = db.exec("INSERT INTO t VALUES ('a', 'y')", &[]).unwrap_err();
    let other = db.exec("INSERT INTO nope VALUES (1)", &[]).unwrap_err();
    assert_eq!(unique.kind, StorageErrorKind::UniqueViolation);
    assert_eq!(primary.kind, StorageErrorKind::UniqueViolation);
    assert_eq!(other.kind, StorageErrorKind::Other);
    // A message that merely mentions it is not one.
    let text = StorageError::new("UNIQUE constraint failed: t.u", "x");
    assert!(!text.is_unique_violation());
}

// ---- floods ----

fn closed(out: &[Outbound]) -> Option<u16> {
    out.iter().find_map(|o| match o {
        Outbound::Close { code, .. } => Some(*code),
        _ => None,
    })
}

#[tokio::test]
async fn a_flood_is_refused_undecoded_and_then_closed() {
    let mut cfg = ShardConfig::default();
    cfg.limits.msgs_per_sec = 1;
    cfg.limits.msg_burst = 5;
    let mut e = open_with(cfg);
    e.connect("f", info(AuthContext::anonymous()), 0).unwrap();
    e.connect("g", info(AuthContext::anonymous()), 0).unwrap();
    let ping = json!({"type": "ping"}).to_string();
    for _ in 0..5 {
        let out = e.message("f", FrameRef::Text(&ping), 0).await;
        assert!(matches!(&msgs_to(&out, "f")[..], [ServerMsg::Pong(_)]));
    }
    // Over the rate: dropped before decoding (garbage is not BAD_FRAME),
    // so the err names no op.
    let m = json!({"type": "mut", "op": "o1", "ops": []}).to_string();
    for frame in ["{not json", m.as_str()] {
        let out = e.message("f", FrameRef::Text(frame), 0).await;
        let r = err_of(&out, "f").unwrap();
        assert_eq!((r.code, r.op, r.sub), (ErrorCode::RateLimited, None, None));
        assert_eq!(closed(&out), None);
    }
    // A message let through (a token a second later) does not reset the count.
    let out = e.message("f", FrameRef::Text(&ping), 1_000).await;
    assert!(matches!(&msgs_to(&out, "f")[..], [ServerMsg::Pong(_)]));
    for i in 0..3 {
        let out = e.message("f", FrameRef::Text(&ping), 1_000).await;
        assert_eq!(err_of(&out, "f").unwrap().code, ErrorCode::RateLimited);
        let want = (i == 2).then_some(4429);
        assert_eq!(closed(&out), want, "refusal {}", i + 3);
    }
    // The other connection was never limited.
    let out = e.message("g", FrameRef::Text(&ping), 1_000).await;
    assert!(matches!(&msgs_to(&out, "g")[..], [ServerMsg::Pong(_)]));

    // Refusals spread over more than the window do not close: four per
    // window, three windows.
    e.connect("h", info(AuthContext::anonymous()), 0).unwrap();
    for round in 0..3 {
        let t = round * REFUSAL_WINDOW_MS;
        for _ in 0..5 {
            let out = e.message("h", FrameRef::Text(&ping), t).await;
            assert!(
                matches!(&msgs_to(&out, "h")[..], [ServerMsg::Pong(_)]),
                "round {round}"
            );
        }
        for _ in 0..4 {
            let out = e.message("h", FrameRef::Text(&ping), t).await;
            assert_eq!(err_of(&out, "h").unwrap().code, ErrorCode::RateLimited);
            assert_eq!(closed(&out), None, "round {round}");
        }
    }
}
