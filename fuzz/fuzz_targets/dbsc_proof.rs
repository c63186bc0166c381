//! Fuzz `latch::dbsc::parse_proof` and proof verification over arbitrary
//! `Secure-Session-Response` values. The harness and its invariants live in
//! `fuzz/src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| latch_fuzz::dbsc_proof(data));
