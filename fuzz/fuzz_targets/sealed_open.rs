//! Fuzz `SealedCodec::open` (XChaCha20-Poly1305 and AES-256-GCM) on raw values and on tampered authentic tokens.
//! The harness and its invariants live in `fuzz/src/lib.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| latch_fuzz::sealed_open(data));
