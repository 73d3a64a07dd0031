#![no_main]
// frame: see fuzz/src/lib.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| peer_fuzz::frame(data));
