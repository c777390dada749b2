//! Generates the D1 migrations of a manifest for `wrangler d1 migrations
//! apply`: numbered `NNNN_<name>.sql` files in `migrations/`.
//!
//! ```text
//! cargo run --bin pylon-migrations -- [--manifest examples/board/schema.json]
//!     [--dir migrations] [--name schema] [--check]
//! ```
//!
//! Each generated file records, on its `-- pylon:manifest` line, the
//! manifest it brings the database to; the next run plans from the last
//! recorded one (`store::schema::plan_d1_migration`: additive changes only)
//! and writes a new file if anything changed. `--check` writes nothing and
//! fails when a file would be written, or when replaying every migration on
//! an empty SQLite does not give exactly the schema of the manifest.

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};
    pub use std::process::ExitCode;

    use pylon_workers::manifest::Manifest;
    use pylon_workers::store::schema::{
        d1_schema, directory_table, plan_d1_migration, recorded_manifest, render_migration,
    };
    use pylon_workers::store::RusqliteExecutor;

    struct Args {
        manifest: PathBuf,
        dir: PathBuf,
        name: String,
        check: bool,
    }

    fn parse_args() -> Result<Args, String> {
        let mut a = Args {
            manifest: "examples/board/schema.json".into(),
            dir: "migrations".into(),
            name: "schema".into(),
            check: false,
        };
        let mut it = std::env::args().skip(1);
        while let Some(arg) = it.next() {
            let mut value = || it.next().ok_or(format!("{arg} needs a value"));
            match arg.as_str() {
                "--manifest" => a.manifest = value()?.into(),
                "--dir" => a.dir = value()?.into(),
                "--name" => a.name = value()?,
                "--check" => a.check = true,
                "-h" | "--help" => return Err(
                    "usage: pylon-migrations [--manifest FILE] [--dir DIR] [--name NAME] [--check]"
                        .into(),
                ),
                other => return Err(format!("unknown argument {other}")),
            }
        }
        if !a
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
            || a.name.is_empty()
        {
            return Err("--name: letters, digits and _ only".into());
        }
        Ok(a)
    }

    /// The numbered migration files of `dir`, in order.
    fn migrations(dir: &Path) -> Result<Vec<(u32, PathBuf)>, String> {
        let mut out = Vec::new();
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| e.to_string())?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if !name.ends_with(".sql") {
                continue;
            }
            if let Some(n) = name.get(..4).and_then(|n| n.parse::<u32>().ok()) {
                if name.as_bytes().get(4) == Some(&b'_') {
                    out.push((n, path));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Tables (columns: name, type, not null, primary key position) and
    /// indexes (name, table, columns, unique) of a database.
    type Shape = BTreeSet<String>;

    fn shape(db: &RusqliteExecutor) -> Result<Shape, String> {
        let c = db.connection();
        let err = |e: rusqlite::Error| e.to_string();
        let mut out = Shape::new();
        let objects: Vec<(String, String, String)> = c
            .prepare("SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name")
            .map_err(err)?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(err)?
            .collect::<Result<_, _>>()
            .map_err(err)?;
        for (kind, name, table) in objects {
            match kind.as_str() {
                "table" => {
                    let mut st = c
                        .prepare("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?)")
                        .map_err(err)?;
                    let cols = st
                        .query_map([&name], |r| {
                            Ok(format!(
                                "column {name}.{}: {} notnull={} pk={}",
                                r.get::<_, String>(0)?,
                                r.get::<_, String>(1)?,
                                r.get::<_, i64>(2)?,
                                r.get::<_, i64>(3)?
                            ))
                        })
                        .map_err(err)?;
                    for col in cols {
                        out.insert(col.map_err(err)?);
                    }
                }
                "index" => {
                    let mut st = c
                        .prepare("SELECT name FROM pragma_index_info(?) ORDER BY seqno")
                        .map_err(err)?;
                    let cols: Vec<String> = st
                        .query_map([&name], |r| r.get(0))
                        .map_err(err)?
                        .collect::<Result<_, _>>()
                        .map_err(err)?;
                    let unique: i64 = c
                        .query_row(
                            "SELECT \"unique\" FROM pragma_index_list(?) WHERE name = ?",
                            [&table, &name],
                            |r| r.get(0),
                        )
                        .map_err(err)?;
                    out.insert(format!(
                        "index {name} on {table}({}) unique={unique}",
                        cols.join(", ")
                    ));
                }
                _ => {}
            }
        }
        Ok(out)
    }

    fn run() -> Result<(), String> {
        let args = parse_args()?;
        let text = std::fs::read_to_string(&args.manifest)
            .map_err(|e| format!("{}: {e}", args.manifest.display()))?;
        let target = Manifest::from_json_str(&text)
            .map_err(|e| format!("{}: {e}", args.manifest.display()))?;
        let files = migrations(&args.dir)?;
        let mut applied = None;
        for (_, path) in &files {
            let body =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            if let Some(m) = recorded_manifest(&body) {
                applied = Some(m.map_err(|e| format!("{}: {e}", path.display()))?);
            }
        }
        let mut plan = plan_d1_migration(applied.as_ref(), &target).map_err(|e| e.to_string())?;
        if files.is_empty() {
            // A new app's first migration also creates the shard directory
            // (this project's own was written by hand as 0001).
            plan.insert(0, directory_table());
        }
        let number = files.last().map_or(1, |(n, _)| n + 1);
        let path = args.dir.join(format!("{number:04}_{}.sql", args.name));
        if args.check {
            if !plan.is_empty() {
                return Err(format!(
                    "migrations are stale: {} statement(s) to generate into {} (run pylon-migrations)",
                    plan.len(),
                    path.display()
                ));
            }
            let replayed = RusqliteExecutor::open_in_memory().map_err(|e| e.to_string())?;
            for (_, p) in &files {
                let body = std::fs::read_to_string(p).map_err(|e| e.to_string())?;
                replayed
                    .execute_script(&body)
                    .map_err(|e| format!("{}: {e}", p.display()))?;
            }
            let fresh = RusqliteExecutor::open_in_memory().map_err(|e| e.to_string())?;
            fresh
                .execute_script(&(d1_schema(&target).join(";\n") + ";"))
                .map_err(|e| e.to_string())?;
            let (have, want) = (shape(&replayed)?, shape(&fresh)?);
            if have != want {
                let missing: Vec<_> = want.difference(&have).collect();
                let extra: Vec<_> = have.difference(&want).collect();
                return Err(format!("migrations do not give the manifest's schema\n  missing: {missing:#?}\n  unexpected: {extra:#?}"));
            }
            println!(
                "migrations in {} are up to date ({} files)",
                args.dir.display(),
                files.len()
            );
            return Ok(());
        }
        if plan.is_empty() {
            println!(
                "nothing to do: migrations in {} are up to date",
                args.dir.display()
            );
            return Ok(());
        }
        std::fs::write(&path, render_migration(&target, &plan))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        println!("wrote {} ({} statements)", path.display(), plan.len());
        Ok(())
    }

    pub fn main() -> ExitCode {
        match run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("pylon-migrations: {e}");
                ExitCode::FAILURE
            }
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> native::ExitCode {
    native::main()
}

/// A native tool: nothing to run in a Worker.
#[cfg(target_arch = "wasm32")]
fn main() {}
