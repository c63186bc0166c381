//! Fuzz Flask's cookie decoder on raw values and on round-tripped, tampered
//! cookies. The harness and its invariants live in `fuzz/src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| latch_fuzz::flask_cookie(data));
