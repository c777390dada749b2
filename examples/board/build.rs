//! The manifest the board serves: `PYLON_SCHEMA` (a path relative to the
//! project root, for trying another schema with `scripts/dev.sh`), or this
//! app's own `schema.json`.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=PYLON_SCHEMA");
    let here = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let path = match std::env::var("PYLON_SCHEMA") {
        Ok(rel) => here.join("../..").join(rel),
        Err(_) => here.join("schema.json"),
    };
    println!("cargo:rerun-if-changed={}", path.display());
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("PYLON_SCHEMA: cannot read {}: {e}", path.display()));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("schema.json");
    std::fs::write(out, text).expect("writing OUT_DIR/schema.json");
}
