//! [`RedisStore`]: the [`SessionStore`] implementation.
//!
//! `session.rs` has the single-session operations, `users.rs` the per-user
//! index, `purge.rs` the expiry index. This file holds the type, the trait impl
//! that delegates to them, and the deadline every operation runs under.

mod purge;
mod session;
mod users;

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use latch::{Error, Record, Result, SaveOutcome, SessionInfo, SessionStore, StoreKey, UnixTime};

use crate::cache::{Cache, ReadCacheStats};
use crate::conn::Conn;
use crate::keys::Keys;
use crate::sentinel::ReplicaAcks;

/// Server-side latch sessions in Redis: one server or a Redis Cluster.
///
/// Sessions expire by Redis TTL at their `expires_at`; a per-user index makes
/// listing and revoking a user's sessions cost what that user has. Every
/// method runs under the operation timeout (default 2 s), so a down server
/// gives an error quickly, and the same store works again when the server
/// returns. See the [crate docs](crate) for the key layout and cluster notes.
///
/// # Example
/// ```no_run
/// use latch::SessionManager;
/// use latch_redis::RedisStore;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisStore::connect("redis://127.0.0.1:6379/").await?;
/// let manager = SessionManager::builder().store(store).build()?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RedisStore {
    conn: Conn,
    keys: Keys,
    operation_timeout: Duration,
    /// Replicas that must acknowledge each write (Sentinel only).
    acks: Option<ReplicaAcks>,
    /// The opt-in local read cache (single server only).
    cache: Option<Cache>,
}

impl RedisStore {
    pub(crate) fn new(
        conn: Conn,
        keys: Keys,
        operation_timeout: Duration,
        acks: Option<ReplicaAcks>,
        cache: Option<Cache>,
    ) -> Self {
        Self {
            conn,
            keys,
            operation_timeout,
            acks,
            cache,
        }
    }

    /// Hits and misses of the [read cache](crate::ReadCache), when it is on.
    ///
    /// # Example
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = latch_redis::RedisStore::builder("redis://127.0.0.1:6379/")
    ///     .read_cache(latch_redis::ReadCache::default())
    ///     .connect()
    ///     .await?;
    /// assert_eq!(store.read_cache_stats().map(|s| s.hits), Some(0));
    /// # Ok(())
    /// # }
    /// ```
    pub fn read_cache_stats(&self) -> Option<ReadCacheStats> {
        self.cache.as_ref().map(Cache::stats)
    }

    /// After one of this store's writes of `key`: the cache must not answer
    /// with what it held before.
    fn forget(&self, key: &StoreKey) {
        if let Some(cache) = &self.cache {
            cache.forget(&self.keys.session(key));
        }
    }

    /// The prefix before every key this store writes.
    ///
    /// # Example
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = latch_redis::RedisStore::connect("redis://127.0.0.1:6379/").await?;
    /// assert_eq!(store.prefix(), "latch:");
    /// # Ok(())
    /// # }
    /// ```
    pub fn prefix(&self) -> &str {
        self.keys.prefix()
    }

    /// Run one store operation under the operation timeout.
    async fn within<T>(&self, what: &str, op: impl Future<Output = Result<T>>) -> Result<T> {
        match tokio::time::timeout(self.operation_timeout, op).await {
            Ok(result) => result,
            Err(elapsed) => Err(Error::store(
                format!(
                    "{what}: Redis did not answer within {} ms",
                    self.operation_timeout.as_millis()
                ),
                elapsed,
            )),
        }
    }
}

impl RedisStore {
    /// Run one write under the operation timeout; with replica
    /// acknowledgement on, it counts as done only once enough replicas have it.
    async fn write<T>(&self, what: &str, op: impl Future<Output = Result<T>>) -> Result<T> {
        let (Some(acks), Conn::Sentinel(conn)) = (self.acks, &self.conn) else {
            return self.within(what, op).await;
        };
        self.within(what, async {
            let generation = conn.generation().await.context(what)?;
            let written = op.await?;
            let acked = conn
                .wait_for_replicas(generation, acks.replicas, acks.timeout)
                .await
                .context(what)?;
            if acked < u64::from(acks.replicas) {
                return Err(Error::store_msg(format!(
                    "{what}: only {acked} of the {} Redis replicas required acknowledged \
                     the write within {} ms, so it is not acknowledged (the master \
                     has applied it, and may still lose it in a failover)",
                    acks.replicas,
                    acks.timeout.as_millis()
                )));
            }
            Ok(written)
        })
        .await
    }
}

/// Attach what was being done to a driver error, keeping it as the cause.
trait Context<T> {
    fn context(self, what: &str) -> Result<T>;
}

impl<T> Context<T> for redis::RedisResult<T> {
    fn context(self, what: &str) -> Result<T> {
        self.map_err(|e| Error::store(what, e))
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn create(&self, key: &StoreKey, record: &Record) -> Result<bool> {
        let created = self
            .write("creating a session", self.create_session(key, record))
            .await;
        self.forget(key);
        created
    }

    async fn load(&self, key: &StoreKey) -> Result<Option<Record>> {
        self.within("loading a session", self.load_session(key))
            .await
    }

    async fn save(
        &self,
        key: &StoreKey,
        record: &Record,
        expected_version: u64,
    ) -> Result<SaveOutcome> {
        // With the read cache on, the save goes through the cache's tracking
        // connection and what it wrote is kept (see cache.rs, rule 2).
        let saving = self
            .cache
            .as_ref()
            .and_then(|cache| cache.saving(self.keys.session(key)));
        let saved = self
            .write(
                "saving a session",
                self.save_session(key, record, expected_version, saving.as_ref()),
            )
            .await;
        match (&saved, saving) {
            (Ok((SaveOutcome::Saved, size)), Some(saving)) => saving.done(Some((record, *size))),
            (_, Some(saving)) => saving.done(None),
            (_, None) => self.forget(key),
        }
        saved.map(|(outcome, _)| outcome)
    }

    async fn touch(
        &self,
        key: &StoreKey,
        user_hint: Option<&str>,
        last_seen: UnixTime,
        expires_at: UnixTime,
    ) -> Result<bool> {
        let touched = self
            .write(
                "touching a session",
                self.touch_session(key, user_hint, last_seen, expires_at),
            )
            .await;
        self.forget(key);
        touched
    }

    async fn delete(&self, key: &StoreKey) -> Result<bool> {
        let deleted = self
            .write("deleting a session", self.delete_session(key))
            .await;
        self.forget(key);
        deleted
    }

    fn user_index(&self) -> Option<&dyn latch::UserIndex> {
        Some(self)
    }

    fn expired_deletion(&self) -> Option<&dyn latch::ExpiredDeletion> {
        Some(self)
    }

    /// Every method, replica acknowledgement included, runs under the
    /// operation timeout
    /// ([`RedisStoreBuilder::operation_timeout`](crate::RedisStoreBuilder::operation_timeout)).
    fn call_timeout(&self) -> Option<std::time::Duration> {
        Some(self.operation_timeout)
    }
}

#[async_trait]
impl latch::UserIndex for RedisStore {
    async fn list_by_user(&self, user_id: &str, now: UnixTime) -> Result<Vec<SessionInfo>> {
        self.within("listing a user's sessions", self.list_user(user_id, now))
            .await
    }

    async fn delete_by_user(&self, user_id: &str, keep: Option<&StoreKey>) -> Result<u64> {
        let deleted = self
            .write(
                "deleting a user's sessions",
                self.delete_user(user_id, keep),
            )
            .await;
        if let Some(cache) = &self.cache {
            cache.forget_all();
        }
        deleted
    }

    async fn delete_one_by_user(
        &self,
        user_id: &str,
        key: &StoreKey,
        keep: Option<&StoreKey>,
    ) -> Result<bool> {
        let deleted = self
            .write(
                "revoking one of a user's sessions",
                self.delete_user_session(user_id, key, keep),
            )
            .await;
        self.forget(key);
        deleted
    }
}

#[async_trait]
impl latch::ExpiredDeletion for RedisStore {
    async fn purge_expired(&self, now: UnixTime, limit: usize) -> Result<u64> {
        self.write("purging expired sessions", self.purge(now, limit))
            .await
    }
}
