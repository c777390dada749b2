//! Inputs the fuzzer (fuzz/, `cargo fuzz run decode`) once found a bug
//! with; each must now decode or fail cleanly, with stable round trips.

#[test]
fn every_saved_input_passes_the_fuzz_checks() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        pylon_workers::protocol::fuzz::fuzz_decode(&data);
        n += 1;
    }
    assert!(n >= 1, "no saved inputs in {}", dir.display());
}
