//! A latch session store in about a hundred lines: sessions in a `HashMap`
//! behind one mutex. It is the worked example of `docs/stores.md`
//! ("Implementing your own store"); `tests/conformance.rs` runs latch's
//! conformance suite against it.
//!
//! It has the one optional capability that is easy here,
//! [`ExpiredDeletion`], and not the per-user index ([`latch::UserIndex`]), so
//! an app that needs devices or "sign out everywhere" is refused at start-up
//! with it:
//!
//! ```
//! use latch::{ErrorKind, SessionManager};
//! use latch_example_custom_store::MapStore;
//!
//! let plain = SessionManager::builder().store(MapStore::default()).build();
//! assert!(plain.is_ok());
//! let needs_devices = SessionManager::builder()
//!     .store(MapStore::default())
//!     .require_user_index()
//!     .build();
//! assert!(matches!(needs_devices.unwrap_err().kind(), ErrorKind::InvalidConfig));
//! ```

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use latch::{ExpiredDeletion, Record, SaveOutcome, SessionStore, StoreKey, UnixTime};

/// Sessions in memory, for one process.
#[derive(Debug, Default)]
pub struct MapStore {
    sessions: Mutex<HashMap<StoreKey, Record>>,
}

impl MapStore {
    /// Every method holds the lock for its whole step: that is what makes each
    /// one atomic, as the trait requires. A poisoned lock (a panic while
    /// holding it) is a store failure, answered 503, not a panic of every
    /// later request.
    fn sessions(&self) -> latch::Result<MutexGuard<'_, HashMap<StoreKey, Record>>> {
        self.sessions
            .lock()
            .map_err(|_| latch::Error::store_msg("the map store's lock is poisoned"))
    }
}

#[async_trait]
impl SessionStore for MapStore {
    async fn create(&self, key: &StoreKey, record: &Record) -> latch::Result<bool> {
        let mut sessions = self.sessions()?;
        if sessions.contains_key(key) {
            // Never overwrite: the caller draws a new ID.
            return Ok(false);
        }
        sessions.insert(*key, record.clone());
        Ok(true)
    }

    async fn load(&self, key: &StoreKey) -> latch::Result<Option<Record>> {
        // Expired records may be returned: latch checks expiry itself.
        Ok(self.sessions()?.get(key).cloned())
    }

    async fn save(
        &self,
        key: &StoreKey,
        record: &Record,
        expected_version: u64,
    ) -> latch::Result<SaveOutcome> {
        let mut sessions = self.sessions()?;
        let Some(stored) = sessions.get_mut(key) else {
            // Logged out or revoked meanwhile: never bring it back.
            return Ok(SaveOutcome::Gone);
        };
        if stored.version != expected_version {
            // Another request saved first; latch reloads and replays.
            return Ok(SaveOutcome::Conflict);
        }
        *stored = record.clone();
        Ok(SaveOutcome::Saved)
    }

    async fn touch(
        &self,
        key: &StoreKey,
        _user_hint: Option<&str>,
        last_seen: UnixTime,
        expires_at: UnixTime,
    ) -> latch::Result<bool> {
        // Only the times change: not the data, not the version.
        let mut sessions = self.sessions()?;
        let Some(stored) = sessions.get_mut(key) else {
            return Ok(false);
        };
        stored.last_seen = last_seen;
        stored.expires_at = expires_at;
        Ok(true)
    }

    async fn delete(&self, key: &StoreKey) -> latch::Result<bool> {
        Ok(self.sessions()?.remove(key).is_some())
    }

    fn expired_deletion(&self) -> Option<&dyn ExpiredDeletion> {
        Some(self)
    }
}

#[async_trait]
impl ExpiredDeletion for MapStore {
    async fn purge_expired(&self, now: UnixTime, limit: usize) -> latch::Result<u64> {
        // A scan of every session: fine for an example. A real store keeps
        // an index on `expires_at` so a batch costs its size, not the store's.
        let mut sessions = self.sessions()?;
        let mut expired: Vec<(UnixTime, StoreKey)> = sessions
            .iter()
            .filter(|(_, record)| record.expires_at <= now)
            .map(|(key, record)| (record.expires_at, *key))
            .collect();
        expired.sort_unstable();
        expired.truncate(limit);
        for (_, key) in &expired {
            sessions.remove(key);
        }
        Ok(u64::try_from(expired.len()).unwrap_or(u64::MAX))
    }
}
