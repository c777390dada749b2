//! Every native integration test, in one binary: each `tests/*.rs` file
//! is a module here. One crate compiles the generic code the tests share
//! once and links once, where one binary per file did both about fifty
//! times (most of the native step of the test command). Run one file's
//! tests with `cargo test --test native NAME::`.

#[path = "../action_rooms.rs"]
mod action_rooms;
#[path = "../auth_fuzz_inputs.rs"]
mod auth_fuzz_inputs;
#[path = "../auth_jwks.rs"]
mod auth_jwks;
#[path = "../cache_object.rs"]
mod cache_object;
#[path = "../channel_object.rs"]
mod channel_object;
#[path = "../client_basic.rs"]
mod client_basic;
#[path = "../client_resume.rs"]
mod client_resume;
#[path = "../client_sim.rs"]
mod client_sim;
#[path = "../host_local.rs"]
mod host_local;
#[path = "../host_timers.rs"]
mod host_timers;
#[path = "../jobs_ledger.rs"]
mod jobs_ledger;
#[path = "../live_differential.rs"]
mod live_differential;
#[path = "../manifest_auth.rs"]
mod manifest_auth;
#[path = "../manifest_example.rs"]
mod manifest_example;
#[path = "../manifest_load.rs"]
mod manifest_load;
#[path = "../manifest_policies.rs"]
mod manifest_policies;
#[path = "../manifest_sqlite.rs"]
mod manifest_sqlite;
#[path = "../openapi_document.rs"]
mod openapi_document;
#[path = "../protocol_alloc.rs"]
mod protocol_alloc;
#[path = "../protocol_doc.rs"]
mod protocol_doc;
#[path = "../protocol_errors.rs"]
mod protocol_errors;
#[path = "../protocol_fuzz_regressions.rs"]
mod protocol_fuzz_regressions;
#[path = "../protocol_roundtrip.rs"]
mod protocol_roundtrip;
#[path = "../protocol_ts_vectors.rs"]
mod protocol_ts_vectors;
#[path = "../query_glob.rs"]
mod query_glob;
#[path = "../query_parse.rs"]
mod query_parse;
#[path = "../shard_before_images.rs"]
mod shard_before_images;
#[path = "../shard_bounds.rs"]
mod shard_bounds;
#[path = "../shard_engine.rs"]
mod shard_engine;
#[path = "../shard_functions.rs"]
mod shard_functions;
#[path = "../shard_identity.rs"]
mod shard_identity;
#[path = "../shard_jobs.rs"]
mod shard_jobs;
#[path = "../shard_outbox.rs"]
mod shard_outbox;
#[path = "../shard_rooms.rs"]
mod shard_rooms;
#[path = "../shard_scheduled.rs"]
mod shard_scheduled;
#[path = "../signin_flows.rs"]
mod signin_flows;
#[path = "../sim_counter.rs"]
mod sim_counter;
#[path = "../sim_durability.rs"]
mod sim_durability;
#[path = "../sim_hooks.rs"]
mod sim_hooks;
#[path = "../sim_matchmaker.rs"]
mod sim_matchmaker;
#[path = "../sim_plane.rs"]
mod sim_plane;
#[path = "../sim_protocol_doc.rs"]
mod sim_protocol_doc;
#[path = "../sim_slow_readers.rs"]
mod sim_slow_readers;
#[path = "../sim_ticks.rs"]
mod sim_ticks;
#[path = "../slow_readers.rs"]
mod slow_readers;
#[path = "../store_cold.rs"]
mod store_cold;
#[path = "../store_cold_access.rs"]
mod store_cold_access;
#[path = "../store_cold_fuzz_inputs.rs"]
mod store_cold_fuzz_inputs;
#[path = "../store_datastore.rs"]
mod store_datastore;
#[path = "../store_migrations.rs"]
mod store_migrations;
#[path = "../store_outbox.rs"]
mod store_outbox;
#[path = "../workflows_instance.rs"]
mod workflows_instance;

/// A new `tests/*.rs` file runs only once it is a module above (cargo no
/// longer finds test files by itself): this fails until it is.
#[test]
fn every_test_file_is_a_module_of_this_binary() {
    let here = include_str!("main.rs");
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(stem) = name.strip_suffix(".rs") {
            if !here.contains(&format!("#[path = \"../{stem}.rs\"]\nmod {stem};")) {
                missing.push(name);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "add to tests/native/main.rs: {missing:?}"
    );
}
