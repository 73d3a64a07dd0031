#![no_main]
// accept: see src/net/fuzzing.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    peer::net::fuzzing::accept(data);
});
