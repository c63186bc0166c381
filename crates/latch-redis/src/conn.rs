//! One connection type for every deployment, so the store's code is written once.

use std::fmt;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::sentinel::SentinelConn;

/// A multiplexed connection to a single server, a Redis Cluster, or the
/// master that Redis Sentinel names.
///
/// Every variant is a cheap handle over shared connections (cloning does not
/// open a socket), reconnects by itself after a failure, and applies the
/// configured connection and response timeouts to every command.
#[derive(Clone)]
pub(crate) enum Conn {
    /// One server (or a proxy in front of several), through a `ConnectionManager`.
    Single(ConnectionManager),
    /// A Redis Cluster: each command goes to the node owning its key's slot.
    Cluster(ClusterConnection),
    /// The master that the sentinels name, searched for again after a failover.
    Sentinel(SentinelConn),
}

impl Conn {
    /// The deployment, for `Debug` output.
    pub(crate) fn mode(&self) -> &'static str {
        match self {
            Conn::Single(_) => "single",
            Conn::Cluster(_) => "cluster",
            Conn::Sentinel(_) => "sentinel",
        }
    }
}

impl fmt::Debug for Conn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The connection internals hold the server addresses and possibly
        // credentials; the mode is all a log needs.
        write!(f, "Conn({})", self.mode())
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
            Conn::Sentinel(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Sentinel(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
            Conn::Sentinel(c) => c.get_db(),
        }
    }
}
