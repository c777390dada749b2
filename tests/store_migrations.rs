//! The committed D1 migrations apply cleanly and match the example
//! manifest; the generator evolves them additively and `--check` notices
//! stale files.

mod store_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use pylon_workers::manifest::Manifest;
use pylon_workers::store::{apply_outbox_batch, OutboxBatch, OutboxChange, RusqliteExecutor};
use pylon_workers::{D1DataStore, DataStore};
use serde_json::json;
use store_support::*;

const BIN: &str = env!("CARGO_BIN_EXE_pylon-migrations");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn apply_dir(dir: &Path) -> RusqliteExecutor {
    let db = RusqliteExecutor::open_in_memory().unwrap();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files
        .iter()
        .filter(|f| f.extension().is_some_and(|x| x == "sql"))
    {
        db.execute_script(&std::fs::read_to_string(f).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
    db
}

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .current_dir(root())
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn committed_migrations_apply_and_check() {
    let db = apply_dir(&root().join("migrations"));
    // The schema serves the stores and the outbox.
    let m = manifest();
    let store = D1DataStore::new(&db, m.clone());
    ready(store.shard("s1").insert("Todo", todo("t1", "u1", 1))).unwrap();
    let b = OutboxBatch::new(
        None,
        vec![OutboxChange {
            shard: "s2".into(),
            entity: "Todo".into(),
            id: "t1".into(),
            seq: 1,
            row: Some(todo("t1", "u1", 2)),
        }],
    );
    ready(apply_outbox_batch(&db, &m, &b)).unwrap();
    assert_eq!(ready(store.list("Todo", &[], 10)).unwrap().rows.len(), 2);
    let (ok, text) = run(&["--check"]);
    assert!(ok, "{text}");
}

#[test]
fn the_minimal_apps_migrations_check() {
    let (ok, text) = run(&[
        "--manifest",
        "examples/minimal/schema.json",
        "--dir",
        "examples/minimal/migrations",
        "--check",
    ]);
    assert!(ok, "{text}");
    apply_dir(&root().join("examples/minimal/migrations"));
}

#[test]
fn generator_evolves_and_check_catches_stale_files() {
    let tmp = std::env::temp_dir().join(format!("pylon-migrations-test-{}", std::process::id()));
    let dir = tmp.join("migrations");
    std::fs::create_dir_all(&dir).unwrap();
    // The board's migrations as they are: the store below runs under
    // today's manifest, so D1 must have every table of it.
    let mut board: Vec<_> = std::fs::read_dir(root().join("migrations"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    board.sort();
    for f in &board {
        std::fs::copy(f, dir.join(f.file_name().unwrap())).unwrap();
    }
    let next = format!("{:04}_notes.sql", board.len() + 1);
    let mut v2: serde_json::Value =
        serde_json::from_str(include_str!("../examples/board/schema.json")).unwrap();
    let todo_at = v2["entities"]
        .as_array()
        .unwrap()
        .iter()
        .position(|e| e["name"] == "Todo")
        .expect("the example has a Todo entity");
    let todo_fields = v2["entities"][todo_at]["fields"].as_array_mut().unwrap();
    todo_fields.push(json!({"name": "note", "type": "string", "optional": true}));
    todo_fields.push(json!({"name": "code", "type": "string", "optional": true, "unique": true}));
    v2["entities"][todo_at]["indexes"][1] = json!({"name": "byOrder", "fields": ["order", "done"]});
    v2["entities"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "Tag", "fields": [{"name": "label", "type": "string"}]}));
    let manifest_path = tmp.join("v2.json");
    std::fs::write(&manifest_path, v2.to_string()).unwrap();
    let (mp, d) = (manifest_path.to_str().unwrap(), dir.to_str().unwrap());

    let (ok, text) = run(&["--manifest", mp, "--dir", d, "--check"]);
    assert!(!ok && text.contains("stale"), "{text}");
    // Data written under v1 survives the v2 migration.
    let v1db = apply_dir(&dir);
    let m1 = manifest();
    ready(
        D1DataStore::new(&v1db, m1)
            .shard("s1")
            .insert("Todo", todo("t1", "u1", 1)),
    )
    .unwrap();
    let (ok, text) = run(&["--manifest", mp, "--dir", d, "--name", "notes"]);
    assert!(ok, "{text}");
    let third = std::fs::read_to_string(dir.join(&next)).unwrap();
    assert!(
        third.contains(r#"ALTER TABLE "Todo" ADD COLUMN "note" TEXT"#),
        "{third}"
    );
    assert!(
        third.contains(r#"DROP INDEX IF EXISTS "Todo:byOrder""#),
        "{third}"
    );
    v1db.execute_script(&third).unwrap();
    let m2 = Manifest::from_value(v2).unwrap();
    let s = D1DataStore::new(&v1db, m2);
    let t1 = ready(s.get("Todo", "t1")).unwrap().unwrap();
    assert_eq!(t1["note"], pylon_workers::value::Value::Null);
    ready(
        s.shard("s1")
            .update("Todo", "t1", row(json!({"note": "hi", "code": "c"}))),
    )
    .unwrap();
    ready(
        s.shard("s1")
            .insert("Tag", row(json!({"id": "g", "label": "x"}))),
    )
    .unwrap();
    let (ok, text) = run(&["--manifest", mp, "--dir", d, "--check"]);
    assert!(ok, "{text}");
    let (ok, text) = run(&["--manifest", mp, "--dir", d]);
    assert!(ok && text.contains("nothing to do"), "{text}");
    // A hand-edited migration is caught by the replay.
    let edited = std::fs::read_to_string(dir.join(&next)).unwrap();
    let broken = edited.replace("ALTER TABLE \"Todo\" ADD COLUMN \"note\" TEXT;\n", "");
    std::fs::write(dir.join(&next), broken).unwrap();
    let (ok, text) = run(&["--manifest", mp, "--dir", d, "--check"]);
    assert!(!ok && text.contains("note"), "{text}");
    // Unsafe changes are refused.
    let mut v3: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    v3["entities"][1]["fields"][0]["type"] = json!("int");
    std::fs::write(&manifest_path, v3.to_string()).unwrap();
    let (ok, text) = run(&["--manifest", mp, "--dir", d]);
    assert!(!ok && text.contains("changed type"), "{text}");
    std::fs::remove_dir_all(&tmp).ok();
}
