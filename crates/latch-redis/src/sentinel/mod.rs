//! Redis Sentinel: finding the master, following it through failovers, and
//! optionally waiting for replicas to acknowledge each write.
//!
//! ## Design
//! - [`SentinelConn`] holds one multiplexed connection to the current master
//!   and a generation number. It has none at first, and none after an error
//!   that says the master is gone, unreachable, timed out or demoted (an I/O
//!   error, a dropped connection, a timeout, `READONLY`, `MASTERDOWN`): the
//!   command that met the error fails (the request gets a 503), and the next
//!   command searches again. Commands are never retried, so a write is never
//!   applied twice.
//! - A search asks every sentinel at once for `SENTINEL
//!   GET-MASTER-ADDR-BY-NAME`, then connects to the named address(es) and keeps
//!   the first whose `ROLE` is `master` (a sentinel that missed the failover
//!   names the old master). Each step is bounded by the connection timeout,
//!   so a search takes at most twice that, and every store call is still
//!   bounded by the operation timeout: nothing hangs.
//! - One call searches at a time; the others wait for its result. After a
//!   failed search, calls fail at once for 100 ms rather than search again:
//!   while no master is reachable requests get quick 503s, and the first
//!   search after the sentinels have promoted a replica finds it.
//! - Write acknowledgement by replicas (`WAIT`) runs on the connection the
//!   write used, checked by its generation: see
//!   [`RedisStoreBuilder::wait_for_replicas`](crate::RedisStoreBuilder::wait_for_replicas).
//!
//! - The search itself is [`search::Finder`], which [`crate::master_client`]
//!   also runs once to give tools a plain client for the master of the moment.
//!
//! The master answers everything, reads included: latch reads its own writes
//! (a version check on every save), which a lagging replica could not promise.

mod conn;
mod search;
mod url;

use std::time::Duration;

pub(crate) use conn::SentinelConn;
pub(crate) use search::master_client;
pub(crate) use url::{MasterTemplate, SentinelTarget, is_sentinel_url, parse};

/// How many replicas must acknowledge each write, and how long to wait for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReplicaAcks {
    pub(crate) replicas: u32,
    pub(crate) timeout: Duration,
}
