//! The cold path's input (`POST /v1/query` bodies and directory paging)
//! for several callers, on an in-memory SQLite D1: a typed error or an
//! answer, never a panic, and never a row or shard the caller may not see.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pylon_workers::store::fuzz::fuzz_cold_query(data);
});
