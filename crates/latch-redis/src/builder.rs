//! Configuration and connection: [`RedisStoreBuilder`].

use std::path::PathBuf;
use std::time::Duration;

use latch::{Error, Result};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;

use crate::cache::{Cache, ReadCache};
use crate::conn::Conn;
use crate::keys::Keys;
use crate::sentinel::{self, ReplicaAcks, SentinelConn, SentinelTarget};
use crate::store::RedisStore;
use crate::tls::{self, TlsSettings};

/// The prefix used when none is set.
///
/// # Example
/// ```
/// assert_eq!(latch_redis::DEFAULT_PREFIX, "latch:");
/// ```
pub const DEFAULT_PREFIX: &str = "latch:";

/// The longest prefix accepted, in bytes.
const MAX_PREFIX_LEN: usize = 64;

/// How many times a lost connection is retried (with back-off) before the
/// waiting commands fail; the next command starts a fresh attempt.
const RECONNECT_RETRIES: usize = 2;
/// First back-off delay between reconnection attempts.
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);
/// Longest back-off delay, so a server that comes back is found quickly.
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);

/// Settings for a [`RedisStore`]: [`RedisStore::builder`] for one server (or
/// a `redis+sentinel://` URL), [`RedisStore::cluster_builder`] for a Redis
/// Cluster, [`RedisStore::sentinel_builder`] for Redis Sentinel; finish with
/// [`connect`](Self::connect).
///
/// | setting | default | meaning |
/// |---|---|---|
/// | [`prefix`](Self::prefix) | `latch:` | put before every key the store writes |
/// | [`connection_timeout`](Self::connection_timeout) | 1 s | the most one connection attempt may take |
/// | [`response_timeout`](Self::response_timeout) | 1 s | the most one command may wait for its reply |
/// | [`operation_timeout`](Self::operation_timeout) | 2 s | the most one store method may take, every round trip included |
/// | [`tls_ca_file`](Self::tls_ca_file) | the system's roots | the CA(s) that `rediss://` servers' certificates must lead to |
/// | [`tls_client_cert`](Self::tls_client_cert) | none | a client certificate and key, for servers that require mutual TLS |
/// | [`danger_accept_invalid_certificates`](Self::danger_accept_invalid_certificates) | off | accept any server certificate (test set-ups only; logged) |
/// | [`wait_for_replicas`](Self::wait_for_replicas) | off | Sentinel only: each write acknowledged by this many replicas before it counts |
/// | [`read_cache`](Self::read_cache) | off | one server only: serve repeated reads of a session from memory, kept correct by Redis's invalidations |
///
/// ## TLS
/// A `rediss://` URL connects over TLS (rustls), checking the server's
/// certificate against the system's root certificates and the host name in
/// the URL. The CA file and client certificate can also be given in the URL,
/// for tools that take only a URL (the demo's and the CLI's `--store`):
/// `rediss://cache.internal:6380/?cacert=/etc/ssl/redis-ca.pem&cert=/etc/app/client.pem&key=/etc/app/client.key`.
/// These three parameters are read (and removed) by latch. The `#insecure`
/// fragment that the `redis` crate knows is refused: turning checks off takes
/// the builder method above, and logs a warning when the store connects.
///
/// # Example
/// ```no_run
/// use std::time::Duration;
/// use latch_redis::RedisStore;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisStore::builder("redis://127.0.0.1:6379/")
///     .prefix("shop:sessions:")
///     .response_timeout(Duration::from_millis(500))
///     .connect()
///     .await?;
/// assert_eq!(store.prefix(), "shop:sessions:");
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStoreBuilder {
    target: Target,
    prefix: String,
    connection_timeout: Duration,
    response_timeout: Duration,
    operation_timeout: Duration,
    tls: TlsSettings,
    acks: Option<ReplicaAcks>,
    cache: Option<ReadCache>,
}

/// What to connect to.
#[derive(Clone)]
enum Target {
    /// One server's URL, or a `redis+sentinel://` URL.
    Single(String),
    Cluster(Vec<String>),
    /// [`RedisStore::sentinel_builder`]'s master name and sentinel URLs.
    Sentinel(SentinelTarget),
}

impl Target {
    fn is_sentinel(&self) -> bool {
        match self {
            Target::Single(url) => sentinel::is_sentinel_url(url),
            Target::Cluster(_) => false,
            Target::Sentinel(_) => true,
        }
    }
}

impl std::fmt::Debug for RedisStoreBuilder {
    // The URLs may hold a password: never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let target = match &self.target {
            _ if self.target.is_sentinel() => "sentinel",
            Target::Single(_) => "one server",
            Target::Cluster(_) => "a cluster",
            Target::Sentinel(_) => "sentinel",
        };
        f.debug_struct("RedisStoreBuilder")
            .field("target", &target)
            .field("prefix", &self.prefix)
            .field("connection_timeout", &self.connection_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("tls", &self.tls)
            .field("wait_for_replicas", &self.acks)
            .field("read_cache", &self.cache)
            .finish()
    }
}

impl RedisStoreBuilder {
    fn new(target: Target) -> Self {
        Self {
            target,
            prefix: DEFAULT_PREFIX.to_owned(),
            connection_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(1),
            operation_timeout: Duration::from_secs(2),
            tls: TlsSettings::default(),
            acks: None,
            cache: None,
        }
    }

    /// Keep a local read cache of sessions, so a session read again is served
    /// from memory instead of a round trip, kept correct by Redis's
    /// server-assisted client-side caching (RESP3 `CLIENT TRACKING`): Redis
    /// tells this store the moment another client changes a session it holds.
    /// Off by default. [`ReadCache`] says exactly how fresh a read is, and
    /// when the cache is dropped.
    ///
    /// One server only (a `redis://` or `rediss://` URL): with Sentinel or a
    /// Cluster, [`connect`](Self::connect) refuses it.
    pub fn read_cache(mut self, cache: ReadCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Trust the CA certificate(s) in this PEM file instead of the system's
    /// root certificates, for `rediss://` servers whose certificates a private
    /// CA signed (as managed Redis services often do). Same as `?cacert=` in
    /// the URL.
    ///
    /// # Example
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = latch_redis::RedisStore::builder("rediss://cache.internal:6380/")
    ///     .tls_ca_file("/etc/ssl/redis-ca.pem")
    ///     .connect()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn tls_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.ca_file = Some(path.into());
        self
    }

    /// Present this client certificate (PEM) with its private key (PEM) to
    /// servers that require mutual TLS (`tls-auth-clients yes`). Same as
    /// `?cert=...&key=...` in the URL.
    #[must_use]
    pub fn tls_client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls.client = Some((cert.into(), key.into()));
        self
    }

    /// **Dangerous**: accept any server certificate, whoever signed it and
    /// whatever host it names. The traffic is still encrypted, but anyone on
    /// the network path can pose as the server and read or change every
    /// session. For throw-away test set-ups only; a warning is logged each
    /// time such a store connects. There is no URL form of this on purpose.
    #[must_use]
    pub fn danger_accept_invalid_certificates(mut self) -> Self {
        self.tls.accept_invalid = true;
        self
    }

    /// Put `prefix` before every key (default `latch:`), to share a database with
    /// other data or run several applications on one server.
    ///
    /// 1 to 64 bytes, without spaces or control characters.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The most one attempt to (re)connect may take (default 1 s).
    #[must_use]
    pub fn connection_timeout(mut self, timeout: Duration) -> Self {
        self.connection_timeout = timeout;
        self
    }

    /// The most one command may wait for its reply (default 1 s).
    #[must_use]
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// The most one store method may take, all its round trips and any wait for a
    /// reconnection included (default 2 s). Past it the method fails with a store
    /// error, so a down server never makes a request hang.
    #[must_use]
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// With Redis Sentinel only: a write (create, save, touch, delete, sign
    /// out everywhere, purge) is acknowledged only once at least `replicas`
    /// replicas have it, waiting up to `timeout` (Redis `WAIT`) on the
    /// connection that made the write; with fewer, the store call fails with
    /// a store error (a 503 over HTTP) even though the master applied it.
    ///
    /// What each setting guarantees, Redis replication being asynchronous:
    /// - **Off** (the default): an acknowledged write is on the master only.
    ///   If the master dies before its replicas copied it, the replica that
    ///   Sentinel promotes lacks it, and the write is lost: a session saved a
    ///   moment before the failover comes back in its previous state (a
    ///   sign-out undone, a sign-in forgotten, a new session unknown).
    /// - **On, `replicas` = n**: every acknowledged write was on the master and
    ///   at least n replicas. It survives the loss of the master as long as one
    ///   of those replicas is promoted. Sentinel promotes the replica with the
    ///   most replicated data, so with one replica, or with n covering every
    ///   replica, that holds; with more replicas than n a less up-to-date one
    ///   could in rare cases (others unreachable at the time) be promoted.
    ///   `WAIT` is not consensus: a write it failed to confirm may still be
    ///   kept or lost, and a partitioned old master may accept writes until
    ///   it notices (pair with `min-replicas-to-write` on the servers to limit
    ///   that).
    ///
    /// `timeout` must be above zero and shorter than the response timeout
    /// (`WAIT`'s reply must arrive before the client gives up on it).
    ///
    /// # Example
    /// ```no_run
    /// use std::time::Duration;
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = latch_redis::RedisStore::builder("redis+sentinel://s1,s2,s3/mymaster")
    ///     .wait_for_replicas(1, Duration::from_millis(500))
    ///     .connect()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn wait_for_replicas(mut self, replicas: u32, timeout: Duration) -> Self {
        self.acks = Some(ReplicaAcks { replicas, timeout });
        self
    }

    /// Connect, within the connection and operation timeouts.
    ///
    /// # Errors
    /// [`latch::ErrorKind::InvalidConfig`] for a bad setting or URL;
    /// [`latch::ErrorKind::Store`] when the server (or no node of the cluster,
    /// or no sentinel or no master) can be reached in time. With Sentinel, a
    /// master name that no sentinel knows is an `InvalidConfig` error.
    pub async fn connect(self) -> Result<RedisStore> {
        self.validate()?;
        let conn = match &self.target {
            Target::Single(url) if sentinel::is_sentinel_url(url) => {
                Conn::Sentinel(self.sentinel(sentinel::parse(url)?).await?)
            }
            Target::Single(url) => {
                let (manager, client, secure) = self.single(url).await?;
                if let Some(settings) = self.cache {
                    let started = Cache::start(
                        settings,
                        &client,
                        self.connection_timeout,
                        self.response_timeout,
                        Keys::new(self.prefix.as_str()).probe(),
                    );
                    let cache = self.bounded_latch(secure, started).await?;
                    return Ok(self.build(Conn::Single(manager), Some(cache)));
                }
                Conn::Single(manager)
            }
            Target::Cluster(urls) => Conn::Cluster(self.cluster(urls).await?),
            Target::Sentinel(target) => Conn::Sentinel(self.sentinel(target.clone()).await?),
        };
        Ok(self.build(conn, None))
    }

    async fn sentinel(&self, target: SentinelTarget) -> Result<SentinelConn> {
        let limit = self.connection_timeout + self.operation_timeout;
        let connecting = SentinelConn::connect(
            target,
            self.tls.clone(),
            self.connection_timeout,
            self.response_timeout,
        );
        match tokio::time::timeout(limit, connecting).await {
            Ok(result) => result,
            Err(elapsed) => Err(Error::store(
                format!(
                    "finding the Redis master through Sentinel: no answer within {} ms",
                    limit.as_millis()
                ),
                elapsed,
            )),
        }
    }

    /// The connection to one server, its client (for the read cache's own
    /// connection), and whether it speaks TLS.
    async fn single(&self, url: &str) -> Result<(ConnectionManager, redis::Client, bool)> {
        let prepared = tls::prepare(url, &self.tls)?;
        let secure = prepared.tls;
        let client = tls::client(prepared)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connection_timeout))
            .set_response_timeout(Some(self.response_timeout))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_min_delay(RECONNECT_MIN_DELAY)
            .set_max_delay(RECONNECT_MAX_DELAY);
        let manager = self
            .bounded(
                secure,
                ConnectionManager::new_with_config(client.clone(), config),
            )
            .await?;
        Ok((manager, client, secure))
    }

    async fn cluster(&self, urls: &[String]) -> Result<redis::cluster_async::ClusterConnection> {
        if urls.is_empty() {
            return Err(Error::invalid_config(
                "a Redis Cluster needs the URL of at least one of its nodes",
            ));
        }
        let mut prepared = Vec::with_capacity(urls.len());
        for url in urls {
            prepared.push(tls::prepare(url, &self.tls)?);
        }
        let secure = prepared.iter().any(|p| p.tls);
        if prepared.iter().any(|p| p.tls != secure) {
            return Err(Error::invalid_config(
                "the Redis Cluster node URLs mix redis:// and rediss://; use one scheme",
            ));
        }
        let certs = prepared.iter_mut().find_map(|p| p.certs.take());
        let mut builder = ClusterClientBuilder::new(prepared.iter().map(|p| p.url.as_str()));
        if secure {
            tls::install_crypto();
            if self.tls.accept_invalid {
                tls::warn_insecure();
                builder = builder.tls(redis::TlsMode::Insecure);
            } else {
                builder = builder.tls(redis::TlsMode::Secure);
            }
            if let Some(certs) = certs {
                builder = builder.certs(certs);
            }
        }
        let client = builder
            .connection_timeout(self.connection_timeout)
            .response_timeout(self.response_timeout)
            .retries(RECONNECT_RETRIES as u32)
            .min_retry_wait(millis(RECONNECT_MIN_DELAY))
            .max_retry_wait(millis(RECONNECT_MAX_DELAY))
            .build()
            .map_err(|e| Error::invalid_config("a Redis node URL is not valid").with_source(e))?;
        self.bounded(secure, client.get_async_connection()).await
    }

    /// Run a connection attempt under the connection plus operation timeout.
    async fn bounded<T>(
        &self,
        tls: bool,
        connecting: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T> {
        self.bounded_latch(tls, async {
            connecting.await.map_err(|e| tls::connect_error(tls, e))
        })
        .await
    }

    /// Run a connection attempt that reports latch errors under the
    /// connection plus operation timeout.
    async fn bounded_latch<T>(
        &self,
        tls: bool,
        connecting: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let limit = self.connection_timeout + self.operation_timeout;
        match tokio::time::timeout(limit, connecting).await {
            Ok(result) => result,
            Err(elapsed) => Err(Error::store(
                format!(
                    "connecting to Redis: no answer within {} ms{}",
                    limit.as_millis(),
                    tls::silence_hint(tls)
                ),
                elapsed,
            )),
        }
    }

    fn build(self, conn: Conn, cache: Option<Cache>) -> RedisStore {
        RedisStore::new(
            conn,
            Keys::new(self.prefix),
            self.operation_timeout,
            self.acks,
            cache,
        )
    }

    /// Refuse settings that cannot work, before any connection is made.
    fn validate(&self) -> Result<()> {
        let p = &self.prefix;
        if p.is_empty() || p.len() > MAX_PREFIX_LEN {
            return Err(Error::invalid_config(format!(
                "the Redis key prefix must be 1 to {MAX_PREFIX_LEN} bytes (it is {}); \
                 the default is {DEFAULT_PREFIX:?}",
                p.len()
            )));
        }
        if p.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::invalid_config(
                "the Redis key prefix must not contain spaces or control characters",
            ));
        }
        let timeouts = [
            self.connection_timeout,
            self.response_timeout,
            self.operation_timeout,
        ];
        if timeouts.iter().any(Duration::is_zero) {
            return Err(Error::invalid_config(
                "the Redis connection, response and operation timeouts must be above zero",
            ));
        }
        self.validate_acks()?;
        self.validate_cache()
    }

    fn validate_cache(&self) -> Result<()> {
        let Some(cache) = self.cache else {
            return Ok(());
        };
        if !matches!(&self.target, Target::Single(_)) || self.target.is_sentinel() {
            return Err(Error::invalid_config(
                "read_cache works with one Redis server (a redis:// or rediss:// URL): \
                 with Sentinel or a Cluster, invalidations would have to follow the \
                 master or every node; leave read_cache off there",
            ));
        }
        cache.validate()
    }

    fn validate_acks(&self) -> Result<()> {
        let Some(acks) = self.acks else {
            return Ok(());
        };
        if !self.target.is_sentinel() {
            return Err(Error::invalid_config(
                "wait_for_replicas needs Redis Sentinel (a redis+sentinel:// URL or \
                 RedisStore::sentinel_builder): only there does latch follow a replica \
                 promoted in place of the master, and keep each write's WAIT on the \
                 connection that wrote it",
            ));
        }
        if acks.replicas == 0 {
            return Err(Error::invalid_config(
                "wait_for_replicas needs at least 1 replica (leave it off for none)",
            ));
        }
        if acks.timeout.is_zero() || acks.timeout >= self.response_timeout {
            return Err(Error::invalid_config(format!(
                "the wait_for_replicas timeout must be above zero and shorter than the \
                 response timeout ({} ms); Redis would wait forever on 0",
                self.response_timeout.as_millis()
            )));
        }
        Ok(())
    }
}

/// `d` in whole milliseconds, as the cluster client's retry settings take it.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The ways to build a [`RedisStore`], kept beside the builder so the store
/// itself knows nothing of it.
impl RedisStore {
    /// Settings beyond the defaults: key prefix and timeouts.
    ///
    /// # Example
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = latch_redis::RedisStore::builder("redis://127.0.0.1:6379/")
    ///     .prefix("myapp:")
    ///     .connect()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder::new(Target::Single(url.into()))
    }

    /// Settings for a Redis Cluster reached through one or more of its
    /// nodes' URLs (the others are discovered from the cluster).
    ///
    /// # Example
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = latch_redis::RedisStore::cluster_builder(["redis://10.0.0.1:6379/"])
    ///     .prefix("myapp:")
    ///     .connect()
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn cluster_builder<S: Into<String>>(
        urls: impl IntoIterator<Item = S>,
    ) -> RedisStoreBuilder {
        RedisStoreBuilder::new(Target::Cluster(urls.into_iter().map(Into::into).collect()))
    }

    /// Settings for Redis Sentinel: the master that the sentinels monitor as
    /// `master_name`, found through any of `sentinel_urls` (`redis://` or
    /// `rediss://`, one per sentinel, with the sentinel's own user and
    /// password if it requires one). The store follows failovers by itself;
    /// see the [crate docs](crate#redis-sentinel). The master is reached with
    /// the sentinels' scheme, database 0 and no password; for a master that
    /// requires one, use the URL form
    /// `redis+sentinel://user:password@host1,host2/master-name[/db]` with
    /// [`builder`](Self::builder).
    ///
    /// # Example
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = latch_redis::RedisStore::sentinel_builder(
    ///     "mymaster",
    ///     ["redis://10.0.0.1:26379/", "redis://10.0.0.2:26379/", "redis://10.0.0.3:26379/"],
    /// )
    /// .prefix("myapp:")
    /// .connect()
    /// .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn sentinel_builder<S: Into<String>>(
        master_name: impl Into<String>,
        sentinel_urls: impl IntoIterator<Item = S>,
    ) -> RedisStoreBuilder {
        let sentinels: Vec<String> = sentinel_urls.into_iter().map(Into::into).collect();
        let tls = sentinels.first().is_some_and(|u| {
            let u = u.to_ascii_lowercase();
            u.starts_with("rediss://") || u.starts_with("valkeys://")
        });
        RedisStoreBuilder::new(Target::Sentinel(SentinelTarget {
            master_name: master_name.into(),
            sentinels,
            master: sentinel::MasterTemplate {
                tls,
                ..Default::default()
            },
        }))
    }

    /// Connect to one server with the default settings (prefix `latch:`).
    ///
    /// # Example
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = latch_redis::RedisStore::connect("redis://127.0.0.1:6379/").await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`RedisStoreBuilder::connect`].
    pub async fn connect(url: &str) -> Result<Self> {
        Self::builder(url).connect().await
    }

    /// Connect to a Redis Cluster with the default settings, given one or more
    /// node URLs.
    ///
    /// # Example
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = latch_redis::RedisStore::connect_cluster(&[
    ///     "redis://10.0.0.1:6379/",
    ///     "redis://10.0.0.2:6379/",
    /// ])
    /// .await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`RedisStoreBuilder::connect`].
    pub async fn connect_cluster<S: AsRef<str>>(urls: &[S]) -> Result<Self> {
        Self::cluster_builder(urls.iter().map(|u| u.as_ref().to_owned()))
            .connect()
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latch::ErrorKind;

    fn refused(builder: RedisStoreBuilder) -> String {
        let err = builder.validate().unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidConfig);
        err.to_string()
    }

    #[test]
    fn defaults_are_valid() {
        assert!(RedisStore::builder("redis://127.0.0.1/").validate().is_ok());
    }

    #[test]
    fn bad_prefixes_are_refused_with_the_reason() {
        let msg = refused(RedisStore::builder("redis://127.0.0.1/").prefix(""));
        assert!(msg.contains("1 to 64 bytes"), "{msg}");
        refused(RedisStore::builder("redis://127.0.0.1/").prefix("x".repeat(65)));
        let msg = refused(RedisStore::builder("redis://127.0.0.1/").prefix("my app:"));
        assert!(msg.contains("spaces"), "{msg}");
        refused(RedisStore::builder("redis://127.0.0.1/").prefix("app\n"));
    }

    #[test]
    fn replica_acks_need_sentinel_and_a_bounded_wait() {
        let wait = Duration::from_millis(500);
        let sentinel = "redis+sentinel://127.0.0.1/mymaster";
        assert!(
            RedisStore::builder(sentinel)
                .wait_for_replicas(1, wait)
                .validate()
                .is_ok()
        );
        let msg = refused(RedisStore::builder("redis://127.0.0.1/").wait_for_replicas(1, wait));
        assert!(msg.contains("needs Redis Sentinel"), "{msg}");
        refused(RedisStore::cluster_builder(["redis://127.0.0.1/"]).wait_for_replicas(1, wait));
        refused(RedisStore::builder(sentinel).wait_for_replicas(0, wait));
        refused(RedisStore::builder(sentinel).wait_for_replicas(1, Duration::ZERO));
        let msg = refused(
            RedisStore::builder(sentinel)
                .response_timeout(wait)
                .wait_for_replicas(1, wait),
        );
        assert!(msg.contains("shorter than the response timeout"), "{msg}");
    }

    #[test]
    fn the_read_cache_needs_one_server_and_sane_settings() {
        let on = ReadCache::default();
        assert!(
            RedisStore::builder("rediss://127.0.0.1/")
                .read_cache(on)
                .validate()
                .is_ok()
        );
        let msg = refused(RedisStore::builder("redis+sentinel://127.0.0.1/m").read_cache(on));
        assert!(msg.contains("one Redis server"), "{msg}");
        refused(RedisStore::sentinel_builder("m", ["redis://127.0.0.1/"]).read_cache(on));
        refused(RedisStore::cluster_builder(["redis://127.0.0.1/"]).read_cache(on));
        let msg = refused(RedisStore::builder("redis://127.0.0.1/").read_cache(on.capacity(0)));
        assert!(msg.contains("capacity of at least 1"), "{msg}");
        let msg = refused(RedisStore::builder("redis://127.0.0.1/").read_cache(on.max_bytes(1000)));
        assert!(msg.contains("at least 64 KiB"), "{msg}");
        let msg = refused(
            RedisStore::builder("redis://127.0.0.1/")
                .read_cache(on.lease(Duration::from_millis(5))),
        );
        assert!(msg.contains("between 100 ms and 60 s"), "{msg}");
        refused(
            RedisStore::builder("redis://127.0.0.1/").read_cache(on.lease(Duration::from_secs(61))),
        );
    }

    #[test]
    fn zero_timeouts_are_refused() {
        refused(RedisStore::builder("redis://127.0.0.1/").connection_timeout(Duration::ZERO));
        refused(RedisStore::builder("redis://127.0.0.1/").response_timeout(Duration::ZERO));
        refused(RedisStore::builder("redis://127.0.0.1/").operation_timeout(Duration::ZERO));
    }

    #[tokio::test]
    async fn url_errors_do_not_echo_the_password() {
        let err = RedisStore::builder("redis://app:s3cret-pw@127.0.0.1:6379/?protocol=9")
            .connect()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidConfig);
        assert!(!format!("{err} {err:?}").contains("s3cret-pw"), "{err:?}");
    }

    #[tokio::test]
    async fn bad_urls_are_configuration_errors() {
        let err = RedisStore::builder("http://127.0.0.1:6379/")
            .connect()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidConfig);
        // Turning verification off silently from a URL is refused.
        let err = RedisStore::builder("rediss://127.0.0.1:6380/#insecure")
            .connect()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidConfig, "{err:?}");
        assert!(
            err.to_string()
                .contains("danger_accept_invalid_certificates"),
            "{err}"
        );
        // TLS files for a plain-text URL are a mistake, not ignored.
        let err = RedisStore::builder("redis://127.0.0.1:6380/?cacert=/etc/ca.pem")
            .connect()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidConfig, "{err:?}");
        assert!(err.to_string().contains("rediss://"), "{err}");
        // A certificate without its key, and a file that is not there.
        let err = RedisStore::builder("rediss://127.0.0.1:6380/?cert=/tmp/c.pem")
            .connect()
            .await
            .unwrap_err();
        assert!(err.to_string().contains("needs its key"), "{err}");
        let err = RedisStore::builder("rediss://127.0.0.1:6380/")
            .tls_ca_file("/nonexistent/latch-ca.pem")
            .connect()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidConfig, "{err:?}");
        assert!(
            err.to_string().contains("/nonexistent/latch-ca.pem"),
            "{err}"
        );
        let none: [&str; 0] = [];
        let err = RedisStore::cluster_builder(none)
            .connect()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidConfig);
    }
}
