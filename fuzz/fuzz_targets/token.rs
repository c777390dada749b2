//! Token and key readers (JWS decoder and claims, HS256 and session
//! verification, JWKS documents, identity header, max-age, shard patterns)
//! on arbitrary bytes: a typed error or a value, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pylon_workers::auth::fuzz::fuzz_token(data);
});
