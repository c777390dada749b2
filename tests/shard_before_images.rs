//! Updates, upserts and deletes take a row's before-image from a window
//! that holds it rather than reading storage (one statement less per
//! write). Differential: the same random mutations go to two shards, one
//! whose windows hold every row and one with no window (so it always
//! reads); both must answer alike and log the same before and after
//! images, with and without coalescing. The mutations write the same row
//! twice in one mutation and in one flush, fail half-way (undone), clash
//! on a unique field, give a float field an integer and retry op ids; a
//! flush of many writes must store what one write at a time does. The
//! after-images (built from the before-image and the columns written, not
//! read back) must be the rows as storage gives them.
//!
//! `PYLON_BEFORE_ROUNDS` (default 300) sets the number of flushes per seed.

use std::sync::Arc;

use pylon_workers::manifest::Manifest;
use pylon_workers::policy::AuthContext;
use pylon_workers::protocol::{Encoding, FrameRef};
use pylon_workers::shard::{ConnInfo, Outbound, ShardConfig, ShardEngine};
use pylon_workers::sql::SqlValue;
use pylon_workers::storage::{SqlConn, SqliteConn};
use pylon_workers::value::Row;
use serde_json::{json, Value as Json};

mod gen_support;
use gen_support::{ready, Rng};

const MANIFEST: &str = r#"{"entities": [
  {"name": "Item", "fields": [
    {"name": "title", "type": "string"},
    {"name": "n", "type": "int", "optional": true},
    {"name": "score", "type": "float", "optional": true},
    {"name": "done", "type": "bool", "optional": true},
    {"name": "at", "type": "datetime", "optional": true},
    {"name": "meta", "type": "json", "optional": true},
    {"name": "tag", "type": "string", "optional": true, "unique": true}
  ]},
  {"name": "Other", "fields": [{"name": "v", "type": "int"}]}
]}"#;

type Engine = ShardEngine<SqliteConn>;

fn open(max_batch: u32) -> Engine {
    let config = ShardConfig {
        max_batch,
        ..ShardConfig::default()
    };
    let manifest = Arc::new(Manifest::from_json_str(MANIFEST).unwrap());
    ShardEngine::open(SqliteConn::open_in_memory().unwrap(), manifest, "r", config).unwrap()
}

fn connect(e: &mut Engine, conn: &str) {
    let info = ConnInfo {
        auth: AuthContext::user("u"),
        encoding: Encoding::Json,
        client: None,
        lease: Default::default(),
        ended: None,
    };
    e.connect(conn, info, 0).unwrap();
}

/// What `conn` was sent, as text (acks and errors carry the same fields on
/// both shards).
fn to(out: &[Outbound], conn: &str) -> Vec<String> {
    out.iter()
        .filter_map(|o| match o {
            Outbound::To(c, m) if c == conn => Some(format!("{m:?}")),
            _ => None,
        })
        .collect()
}

fn value(rng: &mut Rng, field: &str) -> Json {
    if rng.chance(10) {
        return Json::Null; // refused for `title`, clears the others
    }
    match field {
        "title" => json!(*rng.pick(&["a", "b", "c"])),
        "n" => json!(rng.below(5)),
        // An integer for a float field half the time.
        "score" if rng.chance(50) => json!(rng.below(4)),
        "score" => json!(rng.below(40) as f64 / 4.0),
        "done" => json!(rng.chance(50)),
        "at" => json!(format!("2026-12-0{}T10:00:00Z", 1 + rng.below(3))),
        "meta" => json!({"k": [rng.below(3), "x"], "z": null}),
        _ => json!(format!("tag{}", rng.below(4))),
    }
}

const FIELDS: &[&str] = &["title", "n", "score", "done", "at", "meta", "tag"];

fn fields(rng: &mut Rng, all: bool) -> serde_json::Map<String, Json> {
    let mut row = serde_json::Map::new();
    for f in FIELDS {
        if (all && (*f == "title" || rng.chance(70))) || (!all && rng.chance(30)) {
            row.insert((*f).into(), value(rng, f));
        }
    }
    row
}

fn random_op(rng: &mut Rng, ids: &[String]) -> Json {
    let id = rng.pick(ids).clone();
    match rng.below(10) {
        0..=1 => {
            let mut row = fields(rng, true);
            row.insert("id".into(), json!(id));
            json!({"type": "insert", "entity": "Item", "row": row})
        }
        2..=6 => json!({"type": "update", "entity": "Item", "id": id, "set": fields(rng, false)}),
        7 => {
            let mut row = fields(rng, true);
            row.insert("id".into(), json!(id));
            json!({"type": "upsert", "entity": "Item", "row": row})
        }
        8 => json!({"type": "delete", "entity": "Item", "id": id}),
        _ => json!({"type": "upsert", "entity": "Other", "row": {"id": id, "v": rng.below(9)}}),
    }
}

/// The log and the rows, as text.
fn stored(e: &Engine) -> Vec<Vec<SqlValue>> {
    let conn = e.store().conn();
    let mut all = conn
        .exec(
            "SELECT seq, idx, entity, id, before, after FROM _pylon_log ORDER BY seq, idx",
            &[],
        )
        .unwrap();
    all.extend(
        conn.exec("SELECT * FROM \"Item\" ORDER BY id", &[])
            .unwrap(),
    );
    all.extend(
        conn.exec("SELECT * FROM \"Other\" ORDER BY id", &[])
            .unwrap(),
    );
    all
}

/// Each row's last logged after-image is the row as storage reads it.
fn assert_after_images_are_stored_rows(e: &Engine, seed: u64) {
    let manifest = Manifest::from_json_str(MANIFEST).unwrap();
    let log = e
        .store()
        .conn()
        .exec(
            "SELECT entity, id, after FROM _pylon_log ORDER BY seq, idx",
            &[],
        )
        .unwrap();
    let mut last: std::collections::BTreeMap<(String, String), Option<Row>> = Default::default();
    for r in log {
        let (SqlValue::Text(entity), SqlValue::Text(id)) = (&r[0], &r[1]) else {
            panic!("a log row without entity and id: {r:?}");
        };
        let after = match &r[2] {
            SqlValue::Text(t) => Some(serde_json::from_str::<Row>(t).unwrap()),
            _ => None,
        };
        last.insert((entity.clone(), id.clone()), after);
    }
    assert!(!last.is_empty());
    for ((entity, id), after) in last {
        let stored = e
            .store()
            .get_row(manifest.entity(&entity).unwrap(), &id)
            .unwrap();
        assert_eq!(after, stored, "seed {seed}: {entity} {id}");
    }
}

/// Every answer to the writer and what both shards stored.
fn run(seed: u64, max_batch: u32, rounds: usize) -> (Vec<String>, Vec<Vec<SqlValue>>) {
    let mut rng = Rng::new(seed);
    let ids: Vec<String> = (0..6).map(|i| format!("i{i}")).collect();
    // `with`: windows over every row (and some of them); `without`: none.
    let (mut with, mut without) = (open(max_batch), open(max_batch));
    for e in [&mut with, &mut without] {
        connect(e, "w");
    }
    let subs = [
        json!({"type": "sub", "id": "all", "entity": "Item"}),
        json!({"type": "sub", "id": "top", "entity": "Item", "order": ["n"], "limit": 2}),
        json!({"type": "sub", "id": "done", "entity": "Item", "where": {"done": true}}),
        json!({"type": "sub", "id": "count", "entity": "Item", "count": true}),
        json!({"type": "sub", "id": "other", "entity": "Other"}),
    ];
    for (i, s) in subs.iter().enumerate() {
        let conn = format!("s{i}");
        connect(&mut with, &conn);
        ready(with.message(&conn, FrameRef::Text(&s.to_string()), 0));
        ready(with.flush());
    }
    let mut now = 0i64;
    let mut op = 0;
    let mut answers = Vec::new();
    for round in 0..rounds {
        let (mut got_with, mut got_without) = (Vec::new(), Vec::new());
        // Up to 24 changes in a flush: past the bound parameters of one
        // statement, so the record goes through JSON (`store::bulk`).
        for _ in 0..1 + rng.below(8) {
            let ops: Vec<Json> = (0..1 + rng.below(3))
                .map(|_| random_op(&mut rng, &ids))
                .collect();
            op += 1;
            // Now and then a retry of an earlier op id.
            let id = if op > 1 && rng.chance(10) {
                1 + rng.below(op - 1)
            } else {
                op
            };
            let msg = json!({"type": "mut", "op": format!("o{id}"), "ops": ops}).to_string();
            now += 1000;
            got_with.extend(to(
                &ready(with.message("w", FrameRef::Text(&msg), now)),
                "w",
            ));
            got_without.extend(to(
                &ready(without.message("w", FrameRef::Text(&msg), now)),
                "w",
            ));
        }
        got_with.extend(to(&ready(with.flush()), "w"));
        got_without.extend(to(&ready(without.flush()), "w"));
        assert_eq!(got_with, got_without, "seed {seed}, round {round}");
        assert!(!got_with.is_empty());
        answers.extend(got_with);
    }
    let kept = stored(&with);
    assert_eq!(kept, stored(&without), "seed {seed}");
    assert_after_images_are_stored_rows(&with, seed);
    (answers, kept)
}

#[test]
fn before_images_from_windows_match_reads_from_storage() {
    let rounds = std::env::var("PYLON_BEFORE_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(300);
    for seed in 1..=4 {
        // A flush of many writes records what one write at a time does.
        let coalesced = run(seed, 256, rounds);
        assert!(coalesced == run(seed, 1, rounds), "seed {seed}");
    }
}
