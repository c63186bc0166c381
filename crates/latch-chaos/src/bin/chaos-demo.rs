//! `chaos-demo`: the `latch-demo` program, built inside this crate so that its
//! tests can start it (`CARGO_BIN_EXE_chaos-demo`; Cargo hands test binaries
//! the path of their own package's binaries only). It is the very same
//! `latch_demo::serve::main`. Set `LATCH_DEMO_BIN` to run the tests against a
//! `latch-demo` built elsewhere instead.

fn main() {
    latch_demo::serve::main();
}
