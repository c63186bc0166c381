//! The opt-in local read cache ([`ReadCache`]), kept correct by Redis's
//! server-assisted client-side caching (RESP3 `CLIENT TRACKING`).
//!
//! Session reads go through one connection of the cache's own, opened with
//! RESP3 and `CLIENT TRACKING ON`: Redis remembers every key that connection
//! read and pushes an `invalidate` message on it as soon as anything (any
//! client, any app instance) changes or deletes one of them. A session read
//! again before that is served from memory, without a round trip.
//!
//! Written here rather than with the `redis` crate's own `cache-aio` feature,
//! because that one inserts a reply into its cache in the caller's task, after
//! the connection's task has already handled the invalidations that followed
//! the reply on the wire: an invalidation arriving in between is lost, and the
//! stale value stays (30 minutes by default). A session layer cannot have a
//! logout that another instance forgets. The rules here:
//!
//! 1. **Tickets.** A miss files a `Pending(ticket)` slot before it sends the
//!    read; an invalidation (handled synchronously, in the connection's own
//!    task, in wire order) removes whatever slot the key has; the reply is
//!    kept only if its own ticket is still there. So a reply is never kept
//!    once an invalidation that followed it has been seen.
//! 2. **Own writes.** A request that starts after one of this store's
//!    writes returned never reads an older value from this cache, even
//!    before Redis's invalidation for that write has arrived:
//!    - a **save** goes through the tracking connection itself, opened with
//!      `NOLOOP` (its own writes push no invalidation back to it), under a
//!      ticket filed before it is sent. Its script reads the key again once
//!      written, so Redis tracks it again at once and the next write by
//!      anyone else still pushes an invalidation. If the ticket survives to
//!      the reply, the saved record is kept: the next read is a hit, with no
//!      round trip. Otherwise (an invalidation, or another read or write of
//!      the key, came in between) the key is forgotten.
//!    - every other write (create, touch, delete, "sign out everywhere")
//!      goes through the store's own connection, and the key (or the whole
//!      cache) is forgotten after it, whatever the outcome.
//!
//!    Re-tracking inside a script needs Redis 7 or later: when the
//!    connection is opened, a probe writes a throwaway key the same way, has
//!    another connection change it, and checks that the invalidation came.
//!    On a server that fails the probe, saves take the store's connection
//!    and are forgotten, as other writes are.
//! 3. **Lost connection.** When the tracking connection closes, everything
//!    cached is dropped at once (its invalidations can no longer arrive), and
//!    reads go straight to Redis until a new tracking connection is up.
//! 4. **Lease.** A connection can also die silently (a partition, a frozen
//!    server). A heartbeat asks the tracking connection's server for its
//!    `ROLE` every half lease; a reply proves every invalidation sent before
//!    it was handled, so cached entries are served only until `lease` after
//!    the last answered heartbeat was sent, and only while that server says
//!    it is a master (after a failover behind a DNS name or proxy the old
//!    master would no longer see the store's writes). That bounds how stale a read can be when the stream is lost
//!    without a word: one lease (2 s by default).
//!
//! Between instances the bound is the push's delivery: an instance answers
//! from its cache until Redis's invalidation for another instance's write has
//! been handled here. Redis sends it before the writer's reply, so it usually
//! arrives well before any request that follows the writer's response; but
//! the push and such a request can reach this process in the same instant,
//! and the runtime may poll the request's socket first. A black-box attack
//! (two demo instances, debug builds, a loaded 2-core machine) saw that in 3
//! of 150 logouts, for up to 0.8 ms, and up to 2.5 ms under a request flood.
//! The two-instance test in `tests/read_cache.rs` asserts 10 ms.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use latch::{Error, Record, Result};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncConnectionConfig, ProtocolVersion, PushInfo, PushKind, Value};

/// Settings for the opt-in local read cache of a single-server
/// [`RedisStore`](crate::RedisStore); turn it on with
/// [`RedisStoreBuilder::read_cache`](crate::RedisStoreBuilder::read_cache).
///
/// | setting | default | meaning |
/// |---|---|---|
/// | [`capacity`](Self::capacity) | 10 000 | sessions kept in memory at most |
/// | [`max_bytes`](Self::max_bytes) | 32 MiB | stored-record bytes kept in memory at most |
/// | [`lease`](Self::lease) | 2 s | how long cached sessions are served after the last heartbeat Redis answered |
///
/// # What it guarantees
/// - A logout, revocation, "sign out everywhere" or any save made **by this
///   instance** is seen by every request that starts after it returned.
/// - One made by **another instance** is seen here as soon as Redis's
///   invalidation message has been handled: usually before any request that
///   follows that instance's response arrives, but not always; a black-box
///   attack on a loaded 2-core machine saw the old session accepted for up
///   to 0.8 ms after a logout in 3 of 150 tries, and up to 2.5 ms under a
///   request flood (10 ms is the bound the tests assert).
/// - When the invalidation stream is lost, the whole cache is dropped
///   (connection closed), or stops being served within one `lease` (a
///   connection that went silent, or a server that stopped being a master:
///   the heartbeat asks for its `ROLE`). A server that is not a master is
///   refused when the store connects.
///
/// Needs Redis 6 or later (RESP3). On Redis 7 or later (checked when the
/// cache connects), a save made by this instance is kept as written, so the
/// next read of that session needs no round trip either; the save then goes
/// through the cache's own connection. Both bounds hold at once: a client who
/// makes many large sessions cannot make the cache grow past `max_bytes`
/// (counted as the stored records' sizes; their in-memory form is a small
/// multiple of that), and a record larger than an eighth of `max_bytes` is
/// never cached. Redis keeps a tracking-table entry per key read.
///
/// # Example
/// ```no_run
/// use latch_redis::{ReadCache, RedisStore};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisStore::builder("redis://127.0.0.1:6379/")
///     .read_cache(ReadCache::default().capacity(50_000))
///     .connect()
///     .await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadCache {
    capacity: usize,
    max_bytes: usize,
    lease: Duration,
}

impl Default for ReadCache {
    fn default() -> Self {
        Self {
            capacity: 10_000,
            max_bytes: 32 << 20,
            lease: Duration::from_secs(2),
        }
    }
}

impl ReadCache {
    /// Keep at most `sessions` in memory; when full, a new one takes the
    /// place of an arbitrary cached one.
    pub fn capacity(mut self, sessions: usize) -> Self {
        self.capacity = sessions;
        self
    }

    /// Keep at most `bytes` of stored records in memory; when over, cached
    /// ones are dropped (arbitrary ones) until it fits.
    pub fn max_bytes(mut self, bytes: usize) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// Serve cached sessions for at most `lease` after the last heartbeat
    /// Redis answered (heartbeats go every half lease). Shorter bounds
    /// staleness on a silently lost connection more tightly, at one `PING`
    /// per half lease.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Refuse settings that cannot work.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.capacity == 0 {
            return Err(Error::invalid_config(
                "the Redis read cache needs a capacity of at least 1 session \
                 (leave read_cache off for none)",
            ));
        }
        if self.max_bytes < 64 << 10 {
            return Err(Error::invalid_config(format!(
                "the Redis read cache needs max_bytes of at least 64 KiB (it is {} bytes); \
                 the default is 32 MiB",
                self.max_bytes
            )));
        }
        if self.lease < Duration::from_millis(100) || self.lease > Duration::from_secs(60) {
            return Err(Error::invalid_config(format!(
                "the Redis read cache lease must be between 100 ms and 60 s (it is {} ms); \
                 the default is 2 s",
                self.lease.as_millis()
            )));
        }
        Ok(())
    }
}

/// How many hits and misses a cache has had, from
/// [`RedisStore::read_cache_stats`](crate::RedisStore::read_cache_stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadCacheStats {
    /// Reads answered from memory.
    pub hits: u64,
    /// Reads that went to Redis (not cached, or the cache was not live).
    pub misses: u64,
    /// Times the tracking connection was lost and everything cached dropped.
    pub drops: u64,
}

/// The cache of one store: cheap to clone, shared by its clones.
#[derive(Clone)]
pub(crate) struct Cache {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("settings", &self.shared.settings)
            .finish_non_exhaustive()
    }
}

struct Shared {
    settings: ReadCache,
    /// The server, with RESP3 set.
    client: redis::Client,
    connection_timeout: Duration,
    response_timeout: Duration,
    /// A throwaway key under the store's prefix, for the write-through probe.
    probe_key: String,
    state: Mutex<State>,
    /// Wakes the heartbeat at once when the connection is lost, so a new
    /// one is opened without waiting for the next beat.
    lost: tokio::sync::Notify,
}

struct State {
    limits: ReadCache,
    /// Keyed by Redis key; hashed with foldhash (seeded per process), as the
    /// memory store's maps are: the keys end in SHA-256 digests, which no
    /// client can steer, so SipHash's cost (over a tenth of a cached read)
    /// buys nothing here.
    slots: HashMap<String, Slot, foldhash::fast::RandomState>,
    /// The sizes of the `Ready` slots' stored records, summed.
    bytes: usize,
    /// How many slots are `Ready`.
    ready: usize,
    /// The tracking connection, while it is up.
    conn: Option<MultiplexedConnection>,
    /// Bumped whenever a connection is made or lost, so pushes and replies
    /// from an older connection are told apart.
    generation: u64,
    /// Cached entries may be served until then (the lease).
    live_until: Option<Instant>,
    /// The current connection passed the write-through probe: saves may go
    /// through it and be kept.
    write_through: bool,
    next_ticket: u64,
    stats: ReadCacheStats,
}

enum Slot {
    /// A read or save is on its way; its reply is kept only if this is still here.
    Pending(u64),
    /// A record, and the size of its stored form.
    Ready(Record, usize),
}

/// What a lookup found.
pub(crate) enum Lookup {
    Hit(Record),
    /// Read through `conn`, then [`Cache::keep`] the reply with this ticket.
    Miss(Ticket),
    /// The cache is not live: read through the store's own connection.
    Bypass,
}

/// A miss or a save in flight.
pub(crate) struct Ticket {
    pub(crate) conn: MultiplexedConnection,
    generation: u64,
    ticket: u64,
}

impl Cache {
    /// Open the tracking connection and start the heartbeat.
    pub(crate) async fn start(
        settings: ReadCache,
        client: &redis::Client,
        connection_timeout: Duration,
        response_timeout: Duration,
        probe_key: String,
    ) -> Result<Self> {
        let info = client.get_connection_info().clone();
        let redis = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let client = redis::Client::open(info.set_redis_settings(redis))
            .map_err(|e| Error::invalid_config("the Redis URL is not valid").with_source(e))?;
        let shared = Arc::new(Shared {
            settings,
            client,
            connection_timeout,
            response_timeout,
            probe_key,
            state: Mutex::new(State::new(settings)),
            lost: tokio::sync::Notify::new(),
        });
        Shared::connect(&shared).await?;
        tokio::spawn(heartbeat(Arc::downgrade(&shared)));
        Ok(Self { shared })
    }

    /// Look `key` up; on a miss, file a ticket for the read to come.
    pub(crate) fn lookup(&self, key: &str) -> Lookup {
        let mut state = self.shared.lock();
        let live = state.live_until.is_some_and(|t| Instant::now() < t);
        let Some(conn) = state.conn.clone().filter(|_| live) else {
            state.stats.misses += 1;
            return Lookup::Bypass;
        };
        match state.find(key) {
            Some(Found::Hit(record)) => Lookup::Hit(record),
            Some(Found::Miss(ticket)) => Lookup::Miss(Ticket {
                conn,
                generation: state.generation,
                ticket,
            }),
            None => Lookup::Bypass,
        }
    }

    /// Keep what the read of `key` under `ticket` found, unless anything
    /// invalidated the key (or the connection) since the ticket was filed.
    /// A session that does not exist is not kept. `size` is the length of
    /// its stored form.
    pub(crate) fn keep(&self, key: &str, ticket: &Ticket, found: Option<(&Record, usize)>) {
        let mut state = self.shared.lock();
        if state.generation == ticket.generation {
            state.keep(key, ticket.ticket, found);
        }
    }

    /// The read under `ticket` failed beyond repair: its connection is gone
    /// even if it has not said so (a failed write does not always produce the
    /// `Disconnection` push), so nothing cached can be trusted.
    pub(crate) fn lost(&self, ticket: &Ticket) {
        let mut state = self.shared.lock();
        if state.generation == ticket.generation {
            state.drop_all();
            self.shared.lost.notify_one();
        }
    }

    /// A ticket for saving `key` through the tracking connection, whatever
    /// was cached or awaited for it before; `None` when saves cannot go that
    /// way (the cache is not live, the server failed the probe, or too many
    /// reads and saves are on their way).
    pub(crate) fn saving(&self, key: String) -> Option<Saving> {
        let mut state = self.shared.lock();
        let live = state.live_until.is_some_and(|t| Instant::now() < t);
        let conn = state.conn.clone().filter(|_| live && state.write_through)?;
        let ticket = state.file_write(&key)?;
        let ticket = Ticket {
            conn,
            generation: state.generation,
            ticket,
        };
        Some(Saving {
            cache: self.clone(),
            key,
            ticket,
            settled: false,
        })
    }

    /// Forget `key`: called after each of this store's own writes of it.
    pub(crate) fn forget(&self, key: &str) {
        self.shared.lock().remove(key);
    }

    /// Forget everything: after writes of many keys ("sign out everywhere").
    pub(crate) fn forget_all(&self) {
        self.shared.lock().clear();
    }

    pub(crate) fn stats(&self) -> ReadCacheStats {
        self.shared.lock().stats
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent; a panic in
        // one (an allocation failure) leaves nothing half done.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Open a tracking connection and make it the current one.
    async fn connect(shared: &Arc<Self>) -> Result<()> {
        let generation = {
            let mut state = shared.lock();
            state.generation += 1;
            state.generation
        };
        let weak = Arc::downgrade(shared);
        let on_push = move |push: PushInfo| -> std::result::Result<(), ()> {
            if let Some(shared) = weak.upgrade() {
                shared.on_push(generation, &push);
            }
            Ok(())
        };
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(shared.connection_timeout))
            .set_response_timeout(Some(shared.response_timeout))
            .set_push_sender(on_push);
        let started = Instant::now();
        let opened = async {
            let mut conn = shared
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            redis::cmd("CLIENT")
                .arg("TRACKING")
                .arg("ON")
                .arg("NOLOOP")
                .query_async::<()>(&mut conn)
                .await?;
            Ok::<_, redis::RedisError>(conn)
        };
        let mut conn = opened.await.map_err(|e| {
            Error::store(
                "opening the Redis read cache's tracking connection (RESP3 CLIENT TRACKING, \
                 Redis 6 or later)",
                e,
            )
        })?;
        if !is_master(&mut conn).await {
            return Err(Error::store_msg(
                "the Redis read cache needs the server to be a master (ROLE said otherwise, \
                 or the server or proxy does not answer ROLE): a replica does not see the \
                 writes made on its master, so its invalidations would never come; point \
                 the store at the master, or leave read_cache off",
            ));
        }
        let write_through = shared.probe(&mut conn, generation).await;
        if !write_through {
            tracing::warn!(
                "the Redis server does not keep tracking a key that a script wrote and then \
                 read (Redis 7 does): the read cache stays on, but a session is read from \
                 Redis again after each save"
            );
        }
        let mut state = shared.lock();
        if state.generation == generation {
            state.conn = Some(conn);
            state.live_until = Some(started + shared.settings.lease);
            state.write_through = write_through;
        }
        Ok(())
    }

    /// Whether the server behind `conn` does what a cached save relies on: a
    /// script run on `conn` writes a throwaway key and reads it back, another
    /// connection deletes it, and the invalidation for that delete must have
    /// come by the time `conn` answers a `PING` sent after it.
    async fn probe(&self, conn: &mut MultiplexedConnection, generation: u64) -> bool {
        let key = self.probe_key.as_str();
        let run = async {
            crate::scripts::PROBE
                .key(key)
                .invoke_async::<()>(conn)
                .await?;
            // Anything the write pushed back (it should not, under NOLOOP) is
            // handled before the slot below is filed.
            redis::cmd("PING").query_async::<()>(conn).await?;
            let ticket = {
                let mut state = self.lock();
                (state.generation == generation).then(|| state.file_write(key))
            };
            // No push handler here: this connection's own closing must not
            // count as the tracking connection's loss.
            let plain = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(self.connection_timeout))
                .set_response_timeout(Some(self.response_timeout));
            let mut other = self
                .client
                .get_multiplexed_async_connection_with_config(&plain)
                .await?;
            redis::cmd("DEL")
                .arg(key)
                .query_async::<()>(&mut other)
                .await?;
            redis::cmd("PING").query_async::<()>(conn).await?;
            Ok::<_, redis::RedisError>(ticket.flatten())
        };
        let deadline = self.connection_timeout + 4 * self.response_timeout;
        let ticket = match tokio::time::timeout(deadline, run).await {
            Ok(Ok(Some(ticket))) => ticket,
            _ => return false,
        };
        let mut state = self.lock();
        let invalidated = !matches!(state.slots.get(key), Some(Slot::Pending(t)) if *t == ticket);
        state.remove(key);
        invalidated
    }

    /// An out-of-band message on the tracking connection of `generation`:
    /// handled in that connection's task, in the order it arrived.
    fn on_push(&self, generation: u64, push: &PushInfo) {
        let mut state = self.lock();
        if state.generation != generation {
            return;
        }
        match push.kind {
            PushKind::Invalidate => match push.data.first() {
                Some(Value::Array(keys)) => {
                    state.invalidate(keys.iter().filter_map(|key| match key {
                        Value::BulkString(key) => std::str::from_utf8(key).ok(),
                        _ => None,
                    }))
                }
                // A null list: the server flushed its keyspace.
                _ => state.clear(),
            },
            PushKind::Disconnection => {
                state.drop_all();
                self.lost.notify_one();
            }
            _ => {}
        }
    }

    /// Ask the tracking connection's server for its `ROLE`; renew the lease
    /// if it answers that it is a master. A replica (the old master after a
    /// failover behind a DNS name or proxy, say) would not see the writes the
    /// store's own connection makes elsewhere, so it counts as a loss; so
    /// does a proxy that does not know `ROLE` (the cache then stays off).
    async fn ping(&self) -> bool {
        let (conn, generation) = {
            let state = self.lock();
            (state.conn.clone(), state.generation)
        };
        let Some(mut conn) = conn else {
            return false;
        };
        let sent = Instant::now();
        let master = tokio::time::timeout(self.response_timeout, is_master(&mut conn))
            .await
            .unwrap_or(false);
        let mut state = self.lock();
        if state.generation != generation {
            return false;
        }
        if master {
            state.live_until = Some(sent + self.settings.lease);
            true
        } else {
            state.drop_all();
            false
        }
    }
}

/// A save through the tracking connection, from [`Cache::saving`] until
/// [`Saving::done`]. Dropped before that (the request was cancelled, the
/// save may or may not have been applied), it forgets the key: no
/// invalidation comes for this connection's own writes, so nothing read
/// while the save was on its way may stay.
pub(crate) struct Saving {
    cache: Cache,
    key: String,
    pub(crate) ticket: Ticket,
    settled: bool,
}

impl Saving {
    /// The save is over: keep `saved` (the record as written and the size of
    /// its stored form) if nothing touched the key since the ticket was
    /// filed, else forget the key. `None`: it wrote nothing (gone, conflict)
    /// or failed, so forget the key.
    pub(crate) fn done(mut self, saved: Option<(&Record, usize)>) {
        self.settled = true;
        let mut state = self.cache.shared.lock();
        if state.generation == self.ticket.generation {
            state.wrote(&self.key, self.ticket.ticket, saved);
        } else {
            state.remove(&self.key);
        }
    }
}

impl Drop for Saving {
    fn drop(&mut self) {
        if !self.settled {
            self.cache.shared.lock().remove(&self.key);
        }
    }
}

/// What [`State::find`] found.
enum Found {
    Hit(Record),
    /// Not cached: a ticket was filed for the read to come.
    Miss(u64),
}

impl State {
    fn new(limits: ReadCache) -> Self {
        Self {
            limits,
            slots: HashMap::default(),
            bytes: 0,
            ready: 0,
            conn: None,
            generation: 0,
            live_until: None,
            write_through: false,
            next_ticket: 0,
            stats: ReadCacheStats::default(),
        }
    }

    /// The cached record of `key`, or a ticket for reading it: the ticket
    /// of a read already on its way if there is one (replies come back in
    /// order on the one connection, so the first to arrive is kept and the
    /// others are ignored), else a new one. `None`: too many reads on their
    /// way to file another; read without keeping the reply.
    fn find(&mut self, key: &str) -> Option<Found> {
        match self.slots.get(key) {
            Some(Slot::Ready(record, _)) => {
                let record = record.clone();
                self.stats.hits += 1;
                return Some(Found::Hit(record));
            }
            Some(Slot::Pending(ticket)) => {
                self.stats.misses += 1;
                return Some(Found::Miss(*ticket));
            }
            None => {}
        }
        self.stats.misses += 1;
        // Pending slots never push out cached sessions: a client sending
        // made-up session IDs (each a miss that finds nothing) must not be
        // able to empty the cache. They have a bound of their own.
        if self.slots.len() - self.ready >= self.limits.capacity {
            return None;
        }
        self.next_ticket += 1;
        self.slots
            .insert(key.to_owned(), Slot::Pending(self.next_ticket));
        Some(Found::Miss(self.next_ticket))
    }

    /// Keep the reply to the read under `ticket`, if `key` still waits for it.
    fn keep(&mut self, key: &str, ticket: u64, found: Option<(&Record, usize)>) {
        if !matches!(self.slots.get(key), Some(Slot::Pending(t)) if *t == ticket) {
            return;
        }
        match found {
            Some((record, size)) if size <= self.limits.max_bytes / 8 => {
                self.slots
                    .insert(key.to_owned(), Slot::Ready(record.clone(), size));
                self.bytes += size;
                self.ready += 1;
                while (self.bytes > self.limits.max_bytes || self.ready > self.limits.capacity)
                    && self.evict_one(key)
                {}
            }
            _ => {
                self.slots.remove(key);
            }
        }
    }

    /// File a fresh ticket for a save of `key`, replacing whatever was cached
    /// or awaited for it (a read sharing a replaced ticket is then not kept).
    /// `None`: too many reads and saves on their way.
    fn file_write(&mut self, key: &str) -> Option<u64> {
        self.remove(key);
        if self.slots.len() - self.ready >= self.limits.capacity {
            return None;
        }
        self.next_ticket += 1;
        self.slots
            .insert(key.to_owned(), Slot::Pending(self.next_ticket));
        Some(self.next_ticket)
    }

    /// A save under `ticket` is done: keep what it wrote if `key` still
    /// waits for it, else forget the key (whatever is there may be older).
    fn wrote(&mut self, key: &str, ticket: u64, saved: Option<(&Record, usize)>) {
        match saved {
            Some(saved) if matches!(self.slots.get(key), Some(Slot::Pending(t)) if *t == ticket) => {
                self.keep(key, ticket, Some(saved));
            }
            _ => self.remove(key),
        }
    }

    /// Drop an arbitrary cached session other than `keep`. Not LRU, on
    /// purpose: a hit then costs no bookkeeping. False when there is none.
    fn evict_one(&mut self, keep: &str) -> bool {
        let victim = self
            .slots
            .iter()
            .find(|(k, slot)| *k != keep && matches!(slot, Slot::Ready(..)))
            .map(|(k, _)| k.clone());
        match victim {
            Some(victim) => {
                self.remove(&victim);
                true
            }
            None => false,
        }
    }

    /// Forget `key`, whether cached or awaited.
    fn remove(&mut self, key: &str) {
        if let Some(Slot::Ready(_, size)) = self.slots.remove(key) {
            self.bytes -= size;
            self.ready -= 1;
        }
    }

    fn clear(&mut self) {
        self.slots.clear();
        self.bytes = 0;
        self.ready = 0;
    }

    /// Redis says these keys changed: whatever is cached or awaited for them
    /// is void.
    fn invalidate<'k>(&mut self, keys: impl Iterator<Item = &'k str>) {
        for key in keys {
            self.remove(key);
        }
    }

    /// The invalidation stream is lost: nothing cached can be trusted.
    fn drop_all(&mut self) {
        if self.conn.take().is_some() {
            self.stats.drops += 1;
        }
        self.clear();
        self.live_until = None;
        self.write_through = false;
        self.generation += 1;
    }
}

/// Every half lease: renew the lease, or reconnect after a loss (at once
/// when the connection reported it). Ends when the store is dropped.
async fn heartbeat(weak: Weak<Shared>) {
    loop {
        let Some(shared) = weak.upgrade() else {
            return;
        };
        let period = shared.settings.lease / 2;
        // This holds the cache for at most one period after its store is
        // dropped; the next turn of the loop ends.
        let lost = async move { shared.lost.notified().await };
        let _ = tokio::time::timeout(period, lost).await;
        let Some(shared) = weak.upgrade() else {
            return;
        };
        if !shared.ping().await {
            if let Err(e) = Shared::connect(&shared).await {
                tracing::warn!(
                    error = %e,
                    "the Redis read cache is off until its tracking connection is back; \
                     sessions are read from Redis meanwhile"
                );
            }
            // A server (or proxy) that accepts connections and drops them at
            // once must not get a reconnection per round trip.
            drop(shared);
            tokio::time::sleep(RECONNECT_PAUSE).await;
        }
    }
}

/// The least time between two reconnections of the tracking connection.
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);

/// Whether the server behind `conn` says it is a master.
async fn is_master(conn: &mut MultiplexedConnection) -> bool {
    match redis::cmd("ROLE").query_async::<Vec<Value>>(conn).await {
        Ok(role) => matches!(role.first(), Some(Value::BulkString(r)) if r == b"master"),
        Err(_) => false,
    }
}

/// Read one session hash through `conn`: the command the store and the cache
/// share.
pub(crate) async fn read_session<C: ConnectionLike>(
    conn: &mut C,
    redis_key: &str,
) -> redis::RedisResult<(Option<String>, Option<i64>, Option<i64>)> {
    redis::cmd("HMGET")
        .arg(redis_key)
        .arg(&["rec", "seen", "exp"])
        .query_async(conn)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(version: u64) -> Record {
        let mut record = Record::new(100);
        record.version = version;
        record
    }

    /// The version cached for `key`, looked at without filing a ticket.
    fn cached(state: &State, key: &str) -> Option<u64> {
        match state.slots.get(key) {
            Some(Slot::Ready(record, _)) => Some(record.version),
            _ => None,
        }
    }

    fn state() -> State {
        State::new(ReadCache::default().capacity(10))
    }

    #[test]
    fn a_reply_is_kept_and_then_served() {
        let mut state = state();
        let Some(Found::Miss(ticket)) = state.find("k") else {
            panic!("an empty cache hit");
        };
        state.keep("k", ticket, Some((&record(1), 100)));
        assert!(matches!(state.find("k"), Some(Found::Hit(r)) if r.version == 1));
        assert_eq!((state.stats.hits, state.stats.misses), (1, 1));
    }

    /// The race the `redis` crate's own cache loses: the reply arrived, then
    /// an invalidation was handled before the reader could keep the reply.
    #[test]
    fn a_reply_overtaken_by_an_invalidation_is_not_kept() {
        let mut state = state();
        let Some(Found::Miss(ticket)) = state.find("k") else {
            panic!("an empty cache hit");
        };
        state.invalidate(["k"].into_iter());
        state.keep("k", ticket, Some((&record(1), 100)));
        assert_eq!(cached(&state, "k"), None);
    }

    /// Concurrent misses of one key share its ticket: the first reply is
    /// kept, a later one (same connection, so not older) is ignored.
    #[test]
    fn concurrent_reads_of_a_key_share_one_ticket() {
        let mut state = state();
        let Some(Found::Miss(first)) = state.find("k") else {
            panic!("an empty cache hit");
        };
        let Some(Found::Miss(second)) = state.find("k") else {
            panic!("a pending read was served");
        };
        assert_eq!(first, second);
        state.keep("k", first, Some((&record(1), 100)));
        state.keep("k", second, Some((&record(1), 100)));
        assert_eq!(cached(&state, "k"), Some(1));
        assert_eq!((state.ready, state.bytes), (1, 100));
    }

    /// Misses that find nothing (made-up session IDs) never push out a
    /// cached session, and their own slots are bounded.
    #[test]
    fn made_up_ids_cannot_empty_the_cache() {
        let mut state = state();
        for n in 0..10 {
            let key = format!("real{n}");
            if let Some(Found::Miss(ticket)) = state.find(&key) {
                state.keep(&key, ticket, Some((&record(1), 100)));
            }
        }
        for n in 0..1000 {
            let key = format!("made-up{n}");
            if let Some(Found::Miss(ticket)) = state.find(&key) {
                state.keep(&key, ticket, None);
            }
        }
        assert_eq!(state.ready, 10);
        assert!((0..10).all(|n| cached(&state, &format!("real{n}")) == Some(1)));
        // Reads in flight (never answered) stop filing tickets at the bound.
        let mut filed = 0;
        for n in 0..100 {
            if state.find(&format!("stuck{n}")).is_some() {
                filed += 1;
            }
        }
        assert_eq!(filed, 10);
        assert_eq!(cached(&state, "real0"), Some(1));
    }

    #[test]
    fn a_save_nothing_came_between_is_kept_and_served() {
        let mut state = state();
        let ticket = state.file_write("k").expect("room for a save");
        state.wrote("k", ticket, Some((&record(2), 100)));
        assert!(matches!(state.find("k"), Some(Found::Hit(r)) if r.version == 2));
        assert_eq!((state.ready, state.bytes), (1, 100));
    }

    /// A save replaces what was cached; whatever came between the ticket and
    /// the reply (an invalidation, a read sharing the ticket) leaves the key
    /// forgotten, never holding the older value or the saved one.
    #[test]
    fn a_save_overtaken_by_anything_leaves_the_key_forgotten() {
        let mut state = state();
        let Some(Found::Miss(read)) = state.find("k") else {
            panic!("an empty cache hit");
        };
        state.keep("k", read, Some((&record(1), 100)));
        let ticket = state.file_write("k").expect("room for a save");
        assert_eq!(cached(&state, "k"), None, "the older value is gone at once");
        // A read sent before the save went out shares its ticket and keeps
        // what it found; the save's reply then forgets it.
        let Some(Found::Miss(shared)) = state.find("k") else {
            panic!("a pending save was served");
        };
        assert_eq!(shared, ticket);
        state.keep("k", shared, Some((&record(1), 100)));
        state.wrote("k", ticket, Some((&record(2), 100)));
        assert_eq!(cached(&state, "k"), None);
        assert_eq!((state.ready, state.bytes), (0, 0));
        // An invalidation between ticket and reply: nothing is kept.
        let ticket = state.file_write("k").expect("room for a save");
        state.invalidate(["k"].into_iter());
        state.wrote("k", ticket, Some((&record(3), 100)));
        assert_eq!(cached(&state, "k"), None);
        // A save that wrote nothing (gone, conflict, failed) forgets the key.
        let ticket = state.file_write("k").expect("room for a save");
        state.wrote("k", ticket, None);
        assert!(state.slots.is_empty());
    }

    /// Saves in flight count against the same bound as reads in flight.
    #[test]
    fn saves_in_flight_are_bounded_like_reads() {
        let mut state = state();
        let filed = (0..100)
            .filter(|n| state.file_write(&format!("s{n}")).is_some())
            .count();
        assert_eq!(filed, 10);
    }

    #[test]
    fn a_lost_stream_drops_everything_and_voids_reads_in_flight() {
        let mut state = state();
        let Some(Found::Miss(ticket)) = state.find("a") else {
            panic!("an empty cache hit");
        };
        state.keep("a", ticket, Some((&record(1), 100)));
        let Some(Found::Miss(pending)) = state.find("b") else {
            panic!("an empty cache hit");
        };
        state.drop_all();
        state.keep("b", pending, Some((&record(1), 100)));
        assert_eq!(cached(&state, "a"), None);
        assert_eq!(cached(&state, "b"), None);
    }

    #[test]
    fn a_full_cache_stays_within_its_capacity() {
        let mut state = state();
        for n in 0..50 {
            let key = format!("k{n}");
            if let Some(Found::Miss(ticket)) = state.find(&key) {
                state.keep(&key, ticket, Some((&record(1), 100)));
            }
            assert!(state.slots.len() <= 10);
        }
        assert_eq!(state.slots.len(), 10);
        assert_eq!(state.bytes, 1000);
    }

    /// Many large sessions cannot grow the cache past its byte bound, and
    /// one too large for it is not cached at all.
    #[test]
    fn large_records_stay_within_the_byte_bound() {
        let mut state = State::new(ReadCache::default().max_bytes(64 << 10));
        for n in 0..100 {
            let key = format!("k{n}");
            if let Some(Found::Miss(ticket)) = state.find(&key) {
                state.keep(&key, ticket, Some((&record(1), 4 << 10)));
            }
            assert!(state.bytes <= 64 << 10, "{} bytes", state.bytes);
        }
        assert_eq!(state.bytes, 64 << 10);
        let Some(Found::Miss(ticket)) = state.find("huge") else {
            panic!("an uncached key hit");
        };
        state.keep("huge", ticket, Some((&record(1), 9 << 10)));
        assert_eq!(cached(&state, "huge"), None);
        for n in 0..100 {
            state.remove(&format!("k{n}"));
        }
        assert_eq!(state.bytes, 0);
    }
}
