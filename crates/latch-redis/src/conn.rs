//! One connection type for both deployments, so the store's code is written once.

use std::fmt;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// A multiplexed connection to a single server or to a Redis Cluster.
///
/// Both variants are cheap handles over shared connections (cloning does not
/// open a socket), reconnect by themselves after a failure, and apply the
/// configured connection and response timeouts to every command.
#[derive(Clone)]
pub(crate) enum Conn {
    /// One server (or a proxy in front of several), through a `ConnectionManager`.
    Single(ConnectionManager),
    /// A Redis Cluster: each command goes to the node owning its key's slot.
    Cluster(ClusterConnection),
}

impl Conn {
    /// The deployment, for `Debug` output.
    pub(crate) fn mode(&self) -> &'static str {
        match self {
            Conn::Single(_) => "single",
            Conn::Cluster(_) => "cluster",
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
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}
