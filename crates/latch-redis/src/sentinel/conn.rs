//! [`SentinelConn`]: a connection to whichever server the sentinels say is
//! the master, replaced when it stops being one.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, Value};

use super::search::Finder;
use super::url::SentinelTarget;
use crate::tls::TlsSettings;

/// After a search that found no master, calls fail at once for this long
/// instead of each searching again: a burst of requests during a failover
/// costs the sentinels one search per pause, and each request a quick error.
const SEARCH_PAUSE: Duration = Duration::from_millis(100);

/// The master in use, and its generation: a new number each time it is
/// replaced, so a caller can tell whether its commands all went to one
/// connection (see [`SentinelConn::wait_for_replicas`]).
#[derive(Clone)]
struct Master {
    conn: MultiplexedConnection,
    generation: u64,
}

/// A multiplexed connection to the master that the sentinels name, followed
/// through failovers; cheap to clone (the clones share it).
#[derive(Clone)]
pub(crate) struct SentinelConn {
    shared: Arc<Shared>,
}

struct Shared {
    finder: Finder,
    current: Mutex<Option<Master>>,
    /// Held by the one call that searches; the others wait for its result.
    search: tokio::sync::Mutex<Search>,
}

/// What the last search left behind.
#[derive(Default)]
struct Search {
    generation: u64,
    failed: Option<(Instant, RedisError)>,
}

impl SentinelConn {
    /// Find the master through `target`'s sentinels and connect to it.
    ///
    /// # Errors
    /// [`latch::ErrorKind::InvalidConfig`] for a bad URL or when every
    /// sentinel that answered knows no master by that name;
    /// [`latch::ErrorKind::Store`] when no sentinel or no master answers.
    pub(crate) async fn connect(
        target: SentinelTarget,
        tls: TlsSettings,
        connection_timeout: Duration,
        response_timeout: Duration,
    ) -> latch::Result<Self> {
        let finder = Finder::new(target, tls, connection_timeout, response_timeout)?;
        let conn = Self {
            shared: Arc::new(Shared {
                finder,
                current: Mutex::new(None),
                search: tokio::sync::Mutex::new(Search::default()),
            }),
        };
        conn.master()
            .await
            .map_err(|e| conn.shared.finder.startup_error(e))?;
        Ok(conn)
    }

    /// The master in use, searched for when there is none.
    async fn master(&self) -> Result<Master, RedisError> {
        if let Some(master) = self.current() {
            return Ok(master);
        }
        let mut search = self.shared.search.lock().await;
        // Another call may have found it while this one waited.
        if let Some(master) = self.current() {
            return Ok(master);
        }
        if let Some((at, err)) = &search.failed {
            if at.elapsed() < SEARCH_PAUSE {
                return Err(err.clone());
            }
        }
        match self.shared.finder.search().await {
            Ok(found) => {
                search.generation += 1;
                search.failed = None;
                let master = Master {
                    conn: found.conn,
                    generation: search.generation,
                };
                *self.lock_current() = Some(master.clone());
                Ok(master)
            }
            Err(err) => {
                search.failed = Some((Instant::now(), err.clone()));
                Err(err)
            }
        }
    }

    fn current(&self) -> Option<Master> {
        self.lock_current().clone()
    }

    fn lock_current(&self) -> std::sync::MutexGuard<'_, Option<Master>> {
        // The guarded value is a plain Option written in one statement: a
        // panic elsewhere cannot leave it half-written.
        self.shared
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Drop the master of `generation` after an error saying it is gone or no
    /// longer the master; the next call searches again.
    fn forget(&self, generation: u64) {
        let mut current = self.lock_current();
        if current.as_ref().is_some_and(|m| m.generation == generation) {
            tracing::warn!(
                "latch-redis: lost the Redis master {:?}; asking the sentinels again",
                self.shared.finder.master_name()
            );
            *current = None;
        }
    }

    /// After a write: make sure the master in use is still the one of
    /// `generation` (so every command of the write went to it), then
    /// `WAIT replicas timeout` on it, and return how many replicas
    /// acknowledged.
    ///
    /// `WAIT` counts the replicas that have everything this connection wrote,
    /// so it must run on the connection the write used: on another one (after
    /// a failover) it would count what the *new* master has, and could
    /// acknowledge a write that died with the old one.
    pub(crate) async fn wait_for_replicas(
        &self,
        generation: u64,
        replicas: u32,
        timeout: Duration,
    ) -> Result<u64, RedisError> {
        let master = self.master().await?;
        if master.generation != generation {
            return Err(RedisError::from((
                ErrorKind::Io,
                "the Redis master changed during the write, so no replica \
                 acknowledgement can be had for it",
            )));
        }
        let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let mut conn = master.conn;
        let acked = redis::cmd("WAIT")
            .arg(replicas)
            .arg(millis)
            .query_async(&mut conn)
            .await;
        self.checked(master.generation, acked)
    }

    /// The generation of the master in use, searched for when there is none.
    pub(crate) async fn generation(&self) -> Result<u64, RedisError> {
        Ok(self.master().await?.generation)
    }

    /// Pass on `result`, a reply from the master of `generation`; forget that
    /// master when the error says it is gone, unreachable or demoted.
    fn checked<T>(&self, generation: u64, result: Result<T, RedisError>) -> Result<T, RedisError> {
        if let Err(err) = &result {
            if lost_master(err) {
                self.forget(generation);
            }
        }
        result
    }

    /// The database of the master connection.
    pub(crate) fn db(&self) -> i64 {
        self.shared.finder.db()
    }
}

/// Whether `err` says the connection's server is gone, unreachable or no
/// longer the master (a replica refuses writes with `READONLY`).
fn lost_master(err: &RedisError) -> bool {
    err.is_io_error()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_timeout()
        || err.is_unrecoverable_error()
        || matches!(
            err.kind(),
            ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
                | ErrorKind::Server(redis::ServerErrorKind::MasterDown)
        )
        || err.code() == Some("READONLY")
}

impl ConnectionLike for SentinelConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let Master {
                mut conn,
                generation,
            } = self.master().await?;
            let reply = conn.req_packed_command(cmd).await;
            self.checked(generation, reply)
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let Master {
                mut conn,
                generation,
            } = self.master().await?;
            let replies = conn.req_packed_commands(cmd, offset, count).await;
            self.checked(generation, replies)
        })
    }

    fn get_db(&self) -> i64 {
        self.db()
    }
}
