#![no_main]
// datum: see fuzz/src/lib.rs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| peer_fuzz::datum(data));
