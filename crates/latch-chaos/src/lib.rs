//! # latch-chaos: latch under attack and failure
//!
//! The helpers behind the tests in `tests/`, which prove what latch promises
//! when things go wrong rather than when they go right:
//!
//! | test | what it does |
//! |---|---|
//! | `sqlite_kill9` | SIGKILLs the demo on SQLite in the middle of a burst of writes, restarts it on the same file: the database is intact and every acknowledged write is there |
//! | `soak` | a bounded run at a fixed request rate on SQLite with 5 s / 20 s timeouts (only with `LATCH_SOAK=1`; `LATCH_SOAK_SECS`, `LATCH_SOAK_RPS`): memory and rows stay bounded, the purge brings rows back down, every expiry holds, no 5xx |
//! | `manager_tamper` | every single-bit flip of a valid cookie (signed, both AEADs, server-side ID), through the whole `SessionManager`, gives a fresh session, is counted and removed |
//! | `fuzz_regressions` | replays every file in `fuzz/regressions/<target>/` and every seed in `fuzz/corpus/<target>/` through the fuzz harness of that target (`fuzz/src/lib.rs`, included with `#[path]`) |
//! | `redis_outage`, `postgres_outage` | stop and restart a private server under load: 503s while it is down, no 500, no crash, recovery within 2 s, no acknowledged write lost |
//!
//! The modules here start things ([`demo::Demo`]; the private Redis and
//! PostgreSQL servers come from `latch_conformance::servers`), talk to the demo ([`client`]), look inside
//! its SQLite file ([`sqlite`]) and drive a load through an outage
//! ([`outage`]). All traffic stays on the loopback interface, and every loop is
//! bounded in count and time.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;
pub mod demo;
pub mod outage;
pub mod sqlite;

/// The path of the demo binary the tests run: `LATCH_DEMO_BIN` if set, else
/// this crate's `chaos-demo` (the demo's own `main`). Expands in the calling
/// test, where Cargo provides `CARGO_BIN_EXE_chaos-demo`.
#[macro_export]
macro_rules! demo_bin {
    () => {
        std::env::var_os("LATCH_DEMO_BIN")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_BIN_EXE_chaos-demo")))
    };
}

/// A fresh, empty temporary directory whose name says which test made it.
///
/// # Panics
/// When the directory cannot be created.
pub fn temp_dir(tag: &str) -> std::path::PathBuf {
    // OK because a test cannot go on without its directory.
    latch_conformance::servers::temp_dir(&format!("chaos-{tag}"))
        .expect("create a temporary directory")
}

/// A loopback port nothing listens on right now.
///
/// # Panics
/// When no port can be bound.
pub fn free_port() -> u16 {
    // OK because a test cannot go on without a port.
    latch_conformance::servers::free_port().expect("bind a loopback port")
}
