//! Both protocol decoders (JSON and postcard, client and server messages)
//! on arbitrary bytes: they must return a typed error or a message, never
//! panic, overflow the stack or allocate without bound.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pylon_workers::protocol::fuzz::fuzz_decode(data);
});
