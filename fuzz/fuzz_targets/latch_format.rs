//! Fuzz `LatchFormat::decode` on raw values, on authentic tokens with arbitrary JSON inside, and through a `SessionManager`.
//! The harness and its invariants live in `fuzz/src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| latch_fuzz::latch_format(data));
