//! Fuzz `SessionId::parse` (and `HashedIds::parse`) against a reference parser.
//! The harness and its invariants live in `fuzz/src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| latch_fuzz::session_id(data));
