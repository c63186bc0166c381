//! # latch-redis: latch sessions in Redis
//!
//! [`RedisStore`] keeps latch's server-side sessions in Redis, on one server,
//! on a Redis Cluster, or on the master that Redis Sentinel names. Sessions expire by Redis TTL at their `expires_at`, so
//! nothing has to sweep them; a per-user index makes "list my devices" and "sign
//! out everywhere" cost what that user has, never a scan of the keyspace. Like
//! every latch store it never sees a session ID, only its SHA-256 (the
//! [`StoreKey`](latch::StoreKey)), so a dump of Redis holds no usable cookie.
//!
//! Needs Redis 6.2 or later (`ZADD ... GT`), and tokio. `rediss://` URLs
//! connect over TLS (rustls), with the server's certificate and host name
//! checked against the system's roots or a CA file, and optionally a client
//! certificate: see [`RedisStoreBuilder`]'s TLS section. [`client`] gives a
//! plain `redis::Client` for the same URLs, for tools beside the store, and
//! [`master_client`] one for the Sentinel URLs too.
//!
//! ## Example
//! ```no_run
//! use latch::SessionManager;
//! use latch_redis::RedisStore;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = RedisStore::builder("redis://127.0.0.1:6379/")
//!     .prefix("myapp:")
//!     .connect()
//!     .await?;
//! let manager = SessionManager::builder().store(store).build()?;
//! // hand `manager` to latch-axum's SessionLayer
//! # Ok(())
//! # }
//! ```
//! For a cluster: `RedisStore::connect_cluster(&["redis://node1:6379/", ...])`
//! or `RedisStore::cluster_builder(urls).prefix(...).connect()`.
//!
//! ## Redis Sentinel
//! `RedisStore::builder("redis+sentinel://[user:password@]host1[:port],host2[:port]/master-name[/db]")`
//! (or [`RedisStore::sentinel_builder`]) asks the sentinels for the master
//! monitored as `master-name` (port 26379 when none is given; the user and
//! password are the master's) and keeps one connection to it.
//! `rediss+sentinel://` speaks TLS to the sentinels and to the master, with
//! the same `?cacert=`, `?cert=&key=` and builder settings as `rediss://`.
//! A master name that no sentinel knows is refused at start-up.
//!
//! On a failover the store finds the new master by itself: a command that
//! meets a dead, unreachable or demoted master (`READONLY`) fails, the
//! request gets a 503, and the next command asks the sentinels again. While
//! no master is reachable, calls fail quickly (within the timeouts) and
//! service resumes without a restart once the sentinels have promoted a
//! replica: in this crate's tests (failure detection after 1 s) about 2.3 s
//! after the master was killed. Failed commands are not retried.
//!
//! Redis replicates asynchronously: a write acknowledged by the master can
//! be lost if the master dies before a replica copied it. With
//! [`RedisStoreBuilder::wait_for_replicas`] each write is acknowledged only
//! once that many replicas have it (Redis `WAIT`), so it survives the loss of
//! the master when one of those replicas is promoted; writes get 503s when
//! too few replicas answer (including after a failover that left no replica).
//! That setting's docs say exactly what each choice guarantees.
//!
//! ## Key layout
//! With the default prefix `latch:`:
//!
//! | key | type | holds | TTL |
//! |---|---|---|---|
//! | `latch:s:{hex store key}` | hash | `ver` (version), `rec` (the `Record` as JSON), `seen`, `exp`, `user` | `EXPIREAT expires_at` |
//! | `latch:u:{user id}` | sorted set | the user's hex store keys, scored by `expires_at` | its highest score |
//! | `latch:expiry` | sorted set | every session's hex store key, scored by an expiry no later than the session's, plus the fraction of a second at which it was filed (so entries filed later sort later, which keeps `ZADD` cheap); due at `now` when the score is below `now + 1` ([`expiry_due_before`]) | none; trimmed by `purge_expired` |
//! | `latch:o:{user id}` | string | a random token while one "sign out everywhere else" or device revocation of that user runs (see below) | the store's operation timeout |
//!
//! `touch` rewrites only `seen`, `exp` and the TTL, never the data or version.
//! A session created with an `expires_at` already past is deleted by Redis at
//! once.
//!
//! ## Atomicity, and Redis Cluster
//! Each operation on a session (create if absent, compare-and-swap save, touch,
//! delete) is one Lua script on that session's key alone, so it is atomic on one
//! server and in a cluster alike. The indexes live in other keys, which in a
//! cluster sit in other hash slots, often on other nodes; a script cannot reach
//! them, so they are updated with separate commands and are *advisory*:
//! - an index entry is added or raised before a session is given to a user or
//!   its life extended (save, touch) or just after the session is created, and
//!   removed only after the session is gone, so a user's index never misses one
//!   of the user's live sessions;
//! - listing and revoking load every entry's session and check its own user id
//!   and expiry, so an entry that is stale (session gone, or moved to another
//!   user) is never listed and never makes another user's session be deleted;
//!   stale entries are removed as they are met, and expired scores with
//!   `ZREMRANGEBYSCORE`;
//! - `purge_expired` reads `latch:expiry`, deletes sessions expired at the
//!   caller's `now` whose TTL has not fired yet, removes the entries of sessions
//!   whose TTL did, and counts both. Run it periodically (for example with
//!   `SessionManager::purge_expired`) so that index stays small.
//! - a session's `latch:expiry` entry is filed when it is created. A save or
//!   touch that extends the session leaves the entry where it was (so a write
//!   costs no index command); purge finds such an entry early, sees the session
//!   live, does not count it, and moves the entry to the session's expiry. A
//!   write that moves the expiry sooner lowers the entry (`ZADD LT`).
//! - "sign out everywhere else" (`delete_by_user` with a session to keep) and
//!   revoking one device (`delete_one_by_user`) delete only while the
//!   caller's own session exists (see [`latch::UserIndex::delete_by_user`]).
//!   The check and the deletions span many keys, so such calls for one user
//!   take turns under a lock
//!   (`SET latch:o:{user} token NX PX`, released by a script that checks the
//!   token; a caller that waits longer than the operation timeout fails like
//!   any slow call, and a lock its holder could not release expires with that
//!   timeout). The lock only orders such calls: a plain delete or save never
//!   waits for it.
//!
//! `latch:expiry` is one key, so in a cluster it lives on one node and takes
//! one extra `ZADD` per created session. A prefix containing a `{hash tag}` would put
//! every key in one slot: possible, but it defeats the cluster's sharding.
//!
//! ## Failures
//! Every command has a connection timeout and a response timeout, and every
//! store method an overall operation timeout ([`RedisStoreBuilder`]). A down
//! server makes calls fail with [`latch::ErrorKind::Store`] errors (which
//! [`latch::Error::is_unavailable`] reports, and latch-axum turns into a 503)
//! within those timeouts; the connection is re-established in the background,
//! and the same store works again as soon as the server is back. Driver errors
//! are kept as the cause ([`std::error::Error::source`]).
//!
//! ## Read cache (opt-in)
//! For read-mostly traffic, `RedisStore::builder(url).read_cache(ReadCache::default())`
//! serves a session read again from memory instead of a round trip, kept
//! correct by Redis's own invalidations (RESP3 `CLIENT TRACKING`, Redis 6 or
//! later, one server only). What it promises, each proved by a test in
//! `tests/read_cache.rs`:
//! - this instance's own writes (saves, logouts, revocations, "sign out
//!   everywhere") are seen by every request that starts after them; a save
//!   is kept in the cache as written (on Redis 7 or later, which a probe
//!   checks when the cache connects), so the next read costs no round trip,
//!   and another instance's write after it still reaches the cache;
//! - another instance's write is seen here once Redis's invalidation message
//!   has been handled: two app instances on one loopback Redis, 100 logouts
//!   on one, the other took the old cookie on none of its next requests (a
//!   black-box attack on a loaded machine saw it taken for up to 2.5 ms in a
//!   few of hundreds of logouts; 10 ms is the bound the tests assert);
//! - a lost connection drops the whole cache, and a connection that goes
//!   silent stops it being served within its lease (2 s by default).
//!
//! In the load benchmark it reads at 1.4-2.7x tower-sessions' Redis store
//! (`docs/benchmarks.md`). [`ReadCache`] has the details and the settings.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod builder;
mod cache;
mod conn;
mod fields;
mod keys;
mod scripts;
mod sentinel;
mod store;
mod tls;

use std::time::Duration;

pub use builder::{DEFAULT_PREFIX, RedisStoreBuilder};
pub use cache::{ReadCache, ReadCacheStats};
pub use store::RedisStore;

/// The exclusive upper bound of the `latch:expiry` scores due at `now`, as a
/// `ZRANGEBYSCORE` or `ZCOUNT` argument (`"(now+1"`), for tools that read the
/// index themselves: a score is a deadline plus a fraction of a second.
///
/// # Example
/// ```
/// assert_eq!(latch_redis::expiry_due_before(1_800_000_000), "(1800000001");
/// ```
pub fn expiry_due_before(now: latch::UnixTime) -> String {
    fields::due_before(now)
}

/// How long [`master_client`] gives each sentinel to answer, and the master
/// it names to confirm its role: a search takes at most about twice that.
/// Longer than the store's default connection timeout, as tools may run far
/// from the servers.
const MASTER_SEARCH_STEP: Duration = Duration::from_secs(3);

/// A `redis::Client` for `url`, understanding the same TLS forms as the store
/// (`rediss://`, `?cacert=`, `?cert=&key=`; `#insecure` refused), for tools
/// that talk to the store's server themselves (the `latch` CLI, latch-flask).
/// It refuses the Sentinel forms, whose server is known only by asking the
/// sentinels: use [`master_client`] for those.
///
/// # Example
/// ```
/// let client = latch_redis::client("redis://127.0.0.1:6379/")?;
/// assert!(latch_redis::client("rediss://127.0.0.1:6380/#insecure").is_err());
/// # Ok::<(), latch::Error>(())
/// ```
///
/// # Errors
/// [`latch::ErrorKind::InvalidConfig`] for a URL that is not valid or whose
/// files cannot be read.
pub fn client(url: &str) -> latch::Result<redis::Client> {
    tls::client(tls::prepare(url, &tls::TlsSettings::default())?)
}

/// A `redis::Client` for the server behind any store URL: for a Sentinel URL
/// (`redis+sentinel://` or `rediss+sentinel://`, see the
/// [crate docs](crate#redis-sentinel)) the master that the sentinels name
/// now, with the URL's database, credentials and TLS settings; for any other
/// URL, the same as [`client`].
///
/// The sentinels are asked as the store asks them at start-up: all at once,
/// keeping the first named server whose `ROLE` says master, each step bounded
/// by 3 s, so this returns or fails within about 6 s.
///
/// The client is bound to that master's address and **does not follow a
/// later failover**: after one, its connections fail (or reach a demoted
/// replica, which refuses writes with `READONLY`) until `master_client` is
/// called again. It suits tools that connect once per run (the `latch` CLI)
/// or that reconnect on their own; a long-running service should use
/// [`RedisStore`], which finds the new master by itself.
///
/// # Example
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let client =
///     latch_redis::master_client("redis+sentinel://s1:26379,s2:26379/mymaster/0").await?;
/// let mut conn = client.get_multiplexed_async_connection().await?;
/// let keys: u64 = redis::cmd("DBSIZE").query_async(&mut conn).await?;
/// // Any other URL is `client(url)`, with no connection made.
/// let plain = latch_redis::master_client("redis://127.0.0.1:6379/").await?;
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`latch::ErrorKind::InvalidConfig`] for a URL that is not valid or whose
/// files cannot be read, or when no sentinel that answered knows a master by
/// the URL's name (the error names it); [`latch::ErrorKind::Store`] when no
/// sentinel, or no master they name, answers in time.
pub async fn master_client(url: &str) -> latch::Result<redis::Client> {
    if !sentinel::is_sentinel_url(url) {
        return client(url);
    }
    let target = sentinel::parse(url)?;
    sentinel::master_client(target, tls::TlsSettings::default(), MASTER_SEARCH_STEP).await
}
