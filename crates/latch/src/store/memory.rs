//! An in-memory store: for tests and single-process development.

use std::collections::{BTreeMap, HashMap, HashSet};

use foldhash::fast::RandomState;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::{ExpiredDeletion, InProcess, SaveOutcome, SessionInfo, SessionStore, UserIndex};
use crate::error::Result;
use crate::id::StoreKey;
use crate::record::Record;
use crate::time::UnixTime;

/// Sessions in hash maps behind sharded mutexes, with a per-user index and an
/// expiry index so listing and purging cost what they touch.
///
/// The map is split into 256 shards by store key, so concurrent requests
/// rarely wait on each other and a growing map resizes one small shard at a
/// time. A hash map doubles all at once, moving every entry while its shard's
/// lock is held: a single 1-million-entry map stalled its caller for about
/// 280 ms; with 16 shards, creating 250 000 sessions still spent a quarter of
/// its time in such stalls, up to 0.9 ms each, which every request behind the
/// lock and on the thread waited out (the tail latency of creating sessions);
/// with 256 the longest took 0.1 ms, and the mean insert cost stayed the same.
/// Maps hash with `foldhash` seeded per process: several times cheaper than
/// the standard SipHash on 32-byte keys, still not predictable from outside.
///
/// Everything is lost when the process exits; use SQLite (the default store of
/// the demo) or Redis/PostgreSQL for anything real.
///
/// # Example
/// ```
/// use latch::{MemoryStore, Record, SessionId, SessionStore};
///
/// # tokio_test_block_on(async {
/// let store = MemoryStore::new();
/// let key = SessionId::generate().store_key();
/// assert!(store.create(&key, &Record::new(0)).await?);
/// assert!(!store.create(&key, &Record::new(0)).await?); // never overwrites
/// # Ok::<(), latch::Error>(())
/// # }).unwrap();
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
pub struct MemoryStore {
    shards: Box<[Mutex<Inner>]>,
    /// How many sessions all shards hold together.
    count: AtomicUsize,
    /// The most sessions the store holds, if bounded.
    max_sessions: Option<usize>,
    /// The count past which sessions without a user are refused, if set.
    max_anonymous: Option<usize>,
    /// Held by `delete_by_user` and `delete_one_by_user` with a session to
    /// keep, so that checking that session and deleting, shard by shard, is
    /// one step for any other such call (see [`UserIndex::delete_by_user`]).
    signing_out: Mutex<()>,
}

impl std::fmt::Debug for MemoryStore {
    // Never the records: they hold session data and CSRF secrets, and a
    // manager or layer printed with `{:?}` prints its store.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("sessions", &self.len())
            .finish()
    }
}

/// How many shards a [`MemoryStore`] has.
const SHARDS: usize = 256;

type Map<K, V> = HashMap<K, V, RandomState>;

#[derive(Debug, Default)]
struct Inner {
    /// Records behind `Arc`: a load hands out the record itself and a save
    /// keeps the one it is given, so neither copies the session's data (a
    /// request changing a record copies it first). A growing map also moves
    /// only 40-byte entries when it resizes, not whole records (a resize
    /// stalls every request waiting on the shard, which showed in the tail
    /// latency of creating sessions).
    sessions: Map<StoreKey, Arc<Record>>,
    by_user: Map<String, HashSet<StoreKey, RandomState>>,
    /// Keys by expiry second. Sessions made in the same second share a
    /// bucket, so adding one is a hash insert rather than a B-tree insert
    /// among every session (which showed as a tenth of the time of making
    /// sessions under load).
    by_expiry: BTreeMap<UnixTime, HashSet<StoreKey, RandomState>>,
}

impl Inner {
    fn insert(&mut self, key: StoreKey, record: Arc<Record>) {
        if let Some(stored) = self.sessions.get_mut(&key) {
            if stored.expires_at == record.expires_at && stored.user_id == record.user_id {
                // The indexes already file it right (saves within one second).
                *stored = record;
                return;
            }
        }
        self.remove(&key);
        if let Some(user) = &record.user_id {
            self.by_user.entry(user.clone()).or_default().insert(key);
        }
        self.expires(record.expires_at, key);
        self.sessions.insert(key, record);
    }

    /// File `key` under `at` in the expiry index.
    fn expires(&mut self, at: UnixTime, key: StoreKey) {
        self.by_expiry.entry(at).or_default().insert(key);
    }

    /// Take `key` out of the expiry index at `at`.
    fn unexpire(&mut self, at: UnixTime, key: &StoreKey) {
        if let Some(keys) = self.by_expiry.get_mut(&at) {
            keys.remove(key);
            if keys.is_empty() {
                self.by_expiry.remove(&at);
            }
        }
    }

    fn remove(&mut self, key: &StoreKey) -> Option<Arc<Record>> {
        let record = self.sessions.remove(key)?;
        self.unexpire(record.expires_at, key);
        if let Some(user) = &record.user_id {
            if let Some(keys) = self.by_user.get_mut(user) {
                keys.remove(key);
                if keys.is_empty() {
                    self.by_user.remove(user);
                }
            }
        }
        Some(record)
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            count: AtomicUsize::new(0),
            max_sessions: None,
            max_anonymous: None,
            signing_out: Mutex::default(),
        }
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty store that holds at most `max_sessions` sessions: creating
    /// one more fails as a store error, so the request gets a 503 instead of
    /// the process running out of memory. Expired sessions count until the
    /// purge removes them.
    ///
    /// # Example
    /// ```
    /// use latch::{MemoryStore, Record, SessionId, SessionStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let store = MemoryStore::with_max_sessions(16);
    /// for _ in 0..16 * 4 {
    ///     let _ = store.create(&SessionId::generate().store_key(), &Record::new(0)).await;
    /// }
    /// assert_eq!(store.len(), 16);
    /// # Ok::<(), latch::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_max_sessions(max_sessions: usize) -> Self {
        Self {
            max_sessions: Some(max_sessions),
            ..Self::default()
        }
    }

    /// Keep room for sign-ins: once the store holds `max` sessions, a
    /// session created without a signed-in user (`Record::user_id` unset) is
    /// refused like one past [`with_max_sessions`](Self::with_max_sessions),
    /// while one created signed in may still use the room above `max`. A
    /// sign-in gives its session a new ID, which creates it signed in, so a
    /// flood of anonymous sessions fills the store only up to `max` and
    /// people can still sign in (without it, a full store refused every
    /// sign-in: black-box attack, sixteenth round). Signed-in sessions are
    /// harder to flood: each needs an account and a password check. Above
    /// the store's limit, or on an unbounded store, it still bounds the
    /// anonymous ones.
    ///
    /// # Example
    /// ```
    /// use latch::{MemoryStore, Record, SessionId, SessionStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let store = MemoryStore::with_max_sessions(10).max_anonymous_sessions(8);
    /// let new_key = || SessionId::generate().store_key();
    /// for _ in 0..8 {
    ///     assert!(store.create(&new_key(), &Record::new(0)).await?);
    /// }
    /// assert!(store.create(&new_key(), &Record::new(0)).await.is_err());
    /// let mut signed_in = Record::new(0);
    /// signed_in.user_id = Some("ada".into());
    /// assert!(store.create(&new_key(), &signed_in).await?);
    /// # Ok::<(), latch::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn max_anonymous_sessions(mut self, max: usize) -> Self {
        self.max_anonymous = Some(max);
        self
    }

    /// How many sessions (expired or not) the store holds.
    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Whether the store holds no session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shard holding `key`.
    fn shard(&self, key: &StoreKey) -> MutexGuard<'_, Inner> {
        // Store keys are SHA-256 digests (or at worst client-independent IDs), so
        // any byte spreads them evenly; byte 0 picks the manager's save lock.
        lock(&self.shards[usize::from(key.as_bytes()[1]) % SHARDS])
    }

    /// Count `n` sessions gone.
    fn forget(&self, n: usize) {
        self.count.fetch_sub(n, Ordering::Relaxed);
    }
}

fn lock<T>(shard: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the maps half-updated in a way
    // that matters more than losing the process's sessions: keep serving.
    shard
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create(&self, key: &StoreKey, record: &Record) -> Result<bool> {
        self.create_shared(key, &Arc::new(record.clone())).await
    }

    async fn create_shared(&self, key: &StoreKey, record: &Arc<Record>) -> Result<bool> {
        self.create_now(key, record)
    }

    async fn load(&self, key: &StoreKey) -> Result<Option<Record>> {
        Ok(self.shard(key).sessions.get(key).map(|r| Record::clone(r)))
    }

    async fn load_shared(&self, key: &StoreKey) -> Result<Option<Arc<Record>>> {
        self.load_now(key)
    }

    async fn save(
        &self,
        key: &StoreKey,
        record: &Record,
        expected_version: u64,
    ) -> Result<SaveOutcome> {
        self.save_shared(key, &Arc::new(record.clone()), expected_version)
            .await
    }

    async fn save_shared(
        &self,
        key: &StoreKey,
        record: &Arc<Record>,
        expected_version: u64,
    ) -> Result<SaveOutcome> {
        let mut inner = self.shard(key);
        match inner.sessions.get(key) {
            None => Ok(SaveOutcome::Gone),
            Some(current) if current.version != expected_version => Ok(SaveOutcome::Conflict),
            Some(_) => {
                inner.insert(*key, Arc::clone(record));
                Ok(SaveOutcome::Saved)
            }
        }
    }

    async fn touch(
        &self,
        key: &StoreKey,
        _user_hint: Option<&str>,
        last_seen: UnixTime,
        expires_at: UnixTime,
    ) -> Result<bool> {
        let mut inner = self.shard(key);
        let inner = &mut *inner;
        let Some(record) = inner.sessions.get_mut(key) else {
            return Ok(false);
        };
        // Only the expiry index depends on what changes: update in place
        // (copied first if a request holds the record).
        let record = Arc::make_mut(record);
        let old = record.expires_at;
        record.last_seen = last_seen;
        record.expires_at = expires_at;
        inner.unexpire(old, key);
        inner.expires(expires_at, *key);
        Ok(true)
    }

    async fn delete(&self, key: &StoreKey) -> Result<bool> {
        let deleted = self.shard(key).remove(key).is_some();
        if deleted {
            self.forget(1);
        }
        Ok(deleted)
    }

    fn user_index(&self) -> Option<&dyn UserIndex> {
        Some(self)
    }

    fn expired_deletion(&self) -> Option<&dyn ExpiredDeletion> {
        Some(self)
    }

    fn in_process(&self) -> Option<&dyn InProcess> {
        Some(self)
    }
}

impl InProcess for MemoryStore {
    fn load_now(&self, key: &StoreKey) -> Result<Option<Arc<Record>>> {
        Ok(self.shard(key).sessions.get(key).map(Arc::clone))
    }

    fn create_now(&self, key: &StoreKey, record: &Arc<Record>) -> Result<bool> {
        let mut inner = self.shard(key);
        if inner.sessions.contains_key(key) {
            return Ok(false);
        }
        // Counted before it is made, so concurrent creates in other shards
        // cannot together go past the limit.
        let before = self.count.fetch_add(1, Ordering::Relaxed);
        if self.max_sessions.is_some_and(|max| before >= max) {
            self.forget(1);
            return Err(crate::Error::store_msg(
                "the in-memory session store is full (MemoryStore::with_max_sessions)",
            ));
        }
        let anonymous = record.user_id.is_none();
        if anonymous && self.max_anonymous.is_some_and(|max| before >= max) {
            self.forget(1);
            return Err(crate::Error::store_msg(
                "the in-memory session store has no more room for sessions without a signed-in \
                 user (MemoryStore::max_anonymous_sessions)",
            ));
        }
        inner.insert(*key, Arc::clone(record));
        Ok(true)
    }
}

#[async_trait]
impl UserIndex for MemoryStore {
    async fn list_by_user(&self, user_id: &str, now: UnixTime) -> Result<Vec<SessionInfo>> {
        let mut list = Vec::new();
        for shard in &self.shards {
            let inner = lock(shard);
            let Some(keys) = inner.by_user.get(user_id) else {
                continue;
            };
            list.extend(
                keys.iter()
                    .filter_map(|k| {
                        inner
                            .sessions
                            .get(k)
                            .map(|r| SessionInfo::from_record(*k, r))
                    })
                    .filter(|info| info.expires_at > now),
            );
        }
        list.sort_by_key(|info| std::cmp::Reverse(info.last_seen));
        Ok(list)
    }

    async fn delete_by_user(&self, user_id: &str, keep: Option<&StoreKey>) -> Result<u64> {
        let _one_at_a_time = keep.map(|_| lock(&self.signing_out));
        if let Some(keep) = keep {
            if !self.shard(keep).sessions.contains_key(keep) {
                return Ok(0);
            }
        }
        let mut deleted = 0;
        for shard in &self.shards {
            let mut inner = lock(shard);
            let keys: Vec<StoreKey> = inner
                .by_user
                .get(user_id)
                .map(|keys| keys.iter().filter(|k| Some(*k) != keep).copied().collect())
                .unwrap_or_default();
            let here = keys.iter().filter(|k| inner.remove(k).is_some()).count();
            self.forget(here);
            deleted += here;
        }
        Ok(deleted as u64)
    }

    async fn delete_one_by_user(
        &self,
        user_id: &str,
        key: &StoreKey,
        keep: Option<&StoreKey>,
    ) -> Result<bool> {
        let _one_at_a_time = keep.map(|_| lock(&self.signing_out));
        if let Some(keep) = keep {
            if !self.shard(keep).sessions.contains_key(keep) {
                return Ok(false);
            }
        }
        let mut inner = self.shard(key);
        let theirs = inner
            .sessions
            .get(key)
            .is_some_and(|r| r.user_id.as_deref() == Some(user_id));
        let removed = theirs && inner.remove(key).is_some();
        drop(inner);
        if removed {
            self.forget(1);
        }
        Ok(removed)
    }
}

#[async_trait]
impl ExpiredDeletion for MemoryStore {
    async fn purge_expired(&self, now: UnixTime, limit: usize) -> Result<u64> {
        let mut purged = 0;
        for shard in &self.shards {
            let mut inner = lock(shard);
            let due: Vec<StoreKey> = inner
                .by_expiry
                .range(..=now)
                .flat_map(|(_, keys)| keys.iter().copied())
                .take(limit - purged)
                .collect();
            let removed = due.iter().filter(|k| inner.remove(k).is_some()).count();
            self.forget(removed);
            purged += due.len();
            if purged >= limit {
                break;
            }
        }
        Ok(purged as u64)
    }
}
