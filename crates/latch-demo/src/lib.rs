//! The latch demo site, as a library so tests can build the router in-process.
//!
//! Run it with `cargo run --release -p latch-demo`; see `--help` for flags.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod app;
pub mod config;
pub mod error;
pub mod hashing;
pub mod html;
pub mod keys;
pub mod known_browsers;
pub mod limits;
pub mod listener;
pub mod routes;
pub mod serve;
pub mod state;
pub mod tls;
pub mod users;
