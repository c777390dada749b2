//! Embeds the manifest the Worker serves: `PYLON_SCHEMA` (a path relative
//! to the crate root), or `examples/schema.json` by default.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=PYLON_SCHEMA");
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let rel = std::env::var("PYLON_SCHEMA").unwrap_or_else(|_| "examples/schema.json".into());
    let path = root.join(&rel);
    println!("cargo:rerun-if-changed={}", path.display());
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("PYLON_SCHEMA: cannot read {}: {e}", path.display()));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("schema.json");
    std::fs::write(out, text).expect("writing OUT_DIR/schema.json");
}
