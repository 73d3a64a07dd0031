#![no_main]
// transport: see src/net/fuzzing.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    peer::net::fuzzing::transport(data);
});
