//! Fuzz `latch::cookie::find_session_cookie` over arbitrary `Cookie` header lines.
//! The harness and its invariants live in `fuzz/src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| latch_fuzz::cookie_header(data));
