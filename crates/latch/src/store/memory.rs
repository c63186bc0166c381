//! An in-memory store: for tests and single-process development.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{SaveOutcome, SessionInfo, SessionStore};
use crate::error::Result;
use crate::id::StoreKey;
use crate::record::Record;
use crate::time::UnixTime;

/// Sessions in a `HashMap` behind a mutex, with a per-user index and an expiry
/// index so listing and purging cost what they touch.
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
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    sessions: HashMap<StoreKey, Record>,
    by_user: HashMap<String, HashSet<StoreKey>>,
    by_expiry: BTreeSet<(UnixTime, StoreKey)>,
}

impl Inner {
    fn insert(&mut self, key: StoreKey, record: Record) {
        self.remove(&key);
        if let Some(user) = &record.user_id {
            self.by_user.entry(user.clone()).or_default().insert(key);
        }
        self.by_expiry.insert((record.expires_at, key));
        self.sessions.insert(key, record);
    }

    fn remove(&mut self, key: &StoreKey) -> Option<Record> {
        let record = self.sessions.remove(key)?;
        self.by_expiry.remove(&(record.expires_at, *key));
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

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many sessions (expired or not) the store holds.
    pub fn len(&self) -> usize {
        self.lock().sessions.len()
    }

    /// Whether the store holds no session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-updated in a way
        // that matters more than losing the process's sessions: keep serving.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create(&self, key: &StoreKey, record: &Record) -> Result<bool> {
        let mut inner = self.lock();
        if inner.sessions.contains_key(key) {
            return Ok(false);
        }
        inner.insert(*key, record.clone());
        Ok(true)
    }

    async fn load(&self, key: &StoreKey) -> Result<Option<Record>> {
        Ok(self.lock().sessions.get(key).cloned())
    }

    async fn save(
        &self,
        key: &StoreKey,
        record: &Record,
        expected_version: u64,
    ) -> Result<SaveOutcome> {
        let mut inner = self.lock();
        match inner.sessions.get(key) {
            None => Ok(SaveOutcome::Gone),
            Some(current) if current.version != expected_version => Ok(SaveOutcome::Conflict),
            Some(_) => {
                inner.insert(*key, record.clone());
                Ok(SaveOutcome::Saved)
            }
        }
    }

    async fn touch(
        &self,
        key: &StoreKey,
        last_seen: UnixTime,
        expires_at: UnixTime,
    ) -> Result<bool> {
        let mut inner = self.lock();
        let Some(mut record) = inner.sessions.get(key).cloned() else {
            return Ok(false);
        };
        record.last_seen = last_seen;
        record.expires_at = expires_at;
        inner.insert(*key, record);
        Ok(true)
    }

    async fn delete(&self, key: &StoreKey) -> Result<bool> {
        Ok(self.lock().remove(key).is_some())
    }

    async fn list_by_user(&self, user_id: &str, now: UnixTime) -> Result<Vec<SessionInfo>> {
        let inner = self.lock();
        let Some(keys) = inner.by_user.get(user_id) else {
            return Ok(Vec::new());
        };
        let mut list: Vec<SessionInfo> = keys
            .iter()
            .filter_map(|k| {
                inner
                    .sessions
                    .get(k)
                    .map(|r| SessionInfo::from_record(*k, r))
            })
            .filter(|info| info.expires_at > now)
            .collect();
        list.sort_by_key(|info| std::cmp::Reverse(info.last_seen));
        Ok(list)
    }

    async fn delete_by_user(&self, user_id: &str, keep: Option<&StoreKey>) -> Result<u64> {
        let mut inner = self.lock();
        let keys: Vec<StoreKey> = inner
            .by_user
            .get(user_id)
            .map(|keys| keys.iter().filter(|k| Some(*k) != keep).copied().collect())
            .unwrap_or_default();
        let deleted = keys.iter().filter(|k| inner.remove(k).is_some()).count();
        Ok(deleted as u64)
    }

    async fn purge_expired(&self, now: UnixTime, limit: usize) -> Result<u64> {
        let mut inner = self.lock();
        let due: Vec<StoreKey> = inner
            .by_expiry
            .iter()
            .take_while(|(at, _)| *at <= now)
            .take(limit)
            .map(|(_, k)| *k)
            .collect();
        for key in &due {
            inner.remove(key);
        }
        Ok(due.len() as u64)
    }
}
