//! Fuzz `SignedCodec::open` on raw values and on tampered authentic tokens.
//! The harness and its invariants live in `fuzz/src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| latch_fuzz::signed_open(data));
