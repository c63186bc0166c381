//! The store traits: where server-side sessions live.
//!
//! Stores see only [`StoreKey`]s (SHA-256 of the session ID), never the ID
//! itself, and [`Record`]s. [`SessionStore`] is what every store must do;
//! two capabilities are optional, and a store says whether it has them:
//!
//! | trait | what it gives | needed by |
//! |---|---|---|
//! | [`SessionStore`] | create-if-absent, load, compare-and-swap save, touch, delete | every server-side session |
//! | [`UserIndex`] | a user's sessions, listed or ended at once | `Session::devices`, `revoke_device`, `sign_out_everywhere_else`, `SessionManager::revoke_user` |
//! | [`ExpiredDeletion`] | deleting expired sessions in batches | `SessionManager::purge_expired` and the purge task (stores whose records expire by themselves can do without) |
//!
//! [`EncryptedStore`] wraps any of them to keep records sealed at rest
//! ([`SessionManagerBuilder::encrypt_at_rest`](crate::SessionManagerBuilder::encrypt_at_rest)).
//!
//! An application that needs the per-user features says so with
//! [`SessionManagerBuilder::require_user_index`](crate::SessionManagerBuilder::require_user_index),
//! and a store without the index is then refused at start-up.
//! The `latch-conformance` crate checks a store against all of this.

mod encrypted;
mod memory;
mod tls;

use std::sync::Arc;

use async_trait::async_trait;

pub use encrypted::EncryptedStore;
pub use memory::MemoryStore;
pub use tls::ConnectionProblem;

use crate::error::Result;
use crate::id::StoreKey;
use crate::record::Record;
use crate::time::UnixTime;

/// What became of a compare-and-swap [`SessionStore::save`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveOutcome {
    /// The record was written.
    Saved,
    /// The stored version was not the expected one: somebody else saved first.
    Conflict,
    /// The session no longer exists (logged out, revoked, purged): it must not be
    /// brought back.
    Gone,
}

/// One session of a user, as the devices list shows it (no data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The session's store key (safe to show; not a usable cookie).
    pub key: StoreKey,
    /// When it was created.
    pub created_at: UnixTime,
    /// When it was last used.
    pub last_seen: UnixTime,
    /// When it expires.
    pub expires_at: UnixTime,
    /// The browser's user agent, if recorded.
    pub user_agent: Option<String>,
    /// The client address, if recorded.
    pub ip: Option<String>,
    /// When the session's device last proved its key, for a device-bound
    /// session (DBSC, see [`crate::dbsc`]); `None` when it is not bound.
    pub device_proved_at: Option<UnixTime>,
}

impl SessionInfo {
    /// The listing entry for `record` filed under `key`.
    pub fn from_record(key: StoreKey, record: &Record) -> Self {
        Self {
            key,
            created_at: record.created_at,
            last_seen: record.last_seen,
            expires_at: record.expires_at,
            user_agent: record.user_agent.clone(),
            ip: record.ip.clone(),
            device_proved_at: crate::dbsc::proved_at(record),
        }
    }
}

/// A place to keep server-side sessions.
///
/// Implementations must be safe to share between requests and must make each
/// method atomic. Times are Unix seconds; `record.expires_at` is the moment a
/// session becomes invalid and is what
/// [`ExpiredDeletion::purge_expired`] and TTL-based stores use.
///
/// Applications rarely call a store themselves: they hand it to
/// [`SessionManagerBuilder::store`](crate::SessionManagerBuilder::store).
/// To write one, see `docs/stores.md` ("Implementing your own store") and
/// the example store in `examples/custom-store`, which passes the
/// conformance suite.
///
/// # Example
/// The contract, shown on the in-memory store:
/// ```
/// use latch::{MemoryStore, Record, SaveOutcome, SessionId, SessionStore};
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let store = MemoryStore::new();
/// let key = SessionId::generate().store_key(); // stores see only the ID's hash
/// let mut record = Record::new(1_700_000_000);
/// assert!(store.create(&key, &record).await?);
/// assert!(!store.create(&key, &record).await?, "never overwrites");
///
/// // Compare-and-swap: a save names the version it read.
/// let read = store.load(&key).await?.expect("stored");
/// record.version = read.version + 1;
/// assert_eq!(store.save(&key, &record, read.version).await?, SaveOutcome::Saved);
/// assert_eq!(store.save(&key, &record, read.version).await?, SaveOutcome::Conflict);
///
/// // A deleted session is never brought back by a late save.
/// assert!(store.delete(&key).await?);
/// assert_eq!(store.save(&key, &record, record.version).await?, SaveOutcome::Gone);
/// # Ok::<(), latch::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[async_trait]
pub trait SessionStore: Send + Sync + std::fmt::Debug + 'static {
    /// Insert `record` under `key` only if no session has that key.
    ///
    /// Returns `false`, changing nothing, when the key is taken; the caller then
    /// draws a new ID. An existing session is never overwritten.
    async fn create(&self, key: &StoreKey, record: &Record) -> Result<bool>;

    /// The record under `key`, if any. Stores may return an expired record; the
    /// caller checks expiry.
    async fn load(&self, key: &StoreKey) -> Result<Option<Record>>;

    /// Replace the record under `key` if its stored version is `expected_version`
    /// (compare-and-swap). `record.version` is the new version.
    async fn save(
        &self,
        key: &StoreKey,
        record: &Record,
        expected_version: u64,
    ) -> Result<SaveOutcome>;

    /// Refresh `last_seen` and `expires_at` without touching data or version.
    /// Returns `false` when the session is gone.
    ///
    /// `user_hint` is the user id of the record the caller loaded. A store whose
    /// per-user index is not updated in the same atomic step as the session
    /// (Redis, where the index may live on another cluster node) extends the
    /// index entry under that user *before* it extends the session, so a failure
    /// in between never leaves a live session missing from its user's index,
    /// hidden from [`UserIndex::delete_by_user`]. The hint can be
    /// stale (another request changed the user since the load): the index must
    /// still end up following the *stored* user. Stores that update their index
    /// atomically with the session ignore it.
    async fn touch(
        &self,
        key: &StoreKey,
        user_hint: Option<&str>,
        last_seen: UnixTime,
        expires_at: UnixTime,
    ) -> Result<bool>;

    /// Delete the session under `key`; `false` if there was none.
    async fn delete(&self, key: &StoreKey) -> Result<bool>;

    /// [`create`](Self::create), for a store that can keep `record` itself
    /// instead of a copy (the in-memory store). The engine calls this one;
    /// by default it calls `create`.
    async fn create_shared(&self, key: &StoreKey, record: &Arc<Record>) -> Result<bool> {
        self.create(key, record).await
    }

    /// [`load`](Self::load), for a store that can hand out the record it
    /// holds instead of a copy (the in-memory store). The engine calls this
    /// one and copies the record only if the request changes it; by default
    /// it calls `load`.
    async fn load_shared(&self, key: &StoreKey) -> Result<Option<Arc<Record>>> {
        Ok(self.load(key).await?.map(Arc::new))
    }

    /// [`save`](Self::save), for a store that can keep `record` itself
    /// instead of a copy (the in-memory store). The engine calls this one;
    /// by default it calls `save`.
    async fn save_shared(
        &self,
        key: &StoreKey,
        record: &Arc<Record>,
        expected_version: u64,
    ) -> Result<SaveOutcome> {
        self.save(key, record, expected_version).await
    }

    /// This store's index of sessions by user, if it keeps one (a store
    /// implementing [`UserIndex`] returns `Some(self)`).
    fn user_index(&self) -> Option<&dyn UserIndex> {
        None
    }

    /// This store's deletion of expired sessions, if it has one (a store
    /// implementing [`ExpiredDeletion`] returns `Some(self)`).
    fn expired_deletion(&self) -> Option<&dyn ExpiredDeletion> {
        None
    }

    /// The longest any one call of this store takes: past it the store fails
    /// the call itself with a store error. `None` (the default) when a call
    /// may wait without bound.
    ///
    /// A store that bounds its own calls (latch-redis's operation timeout)
    /// says so here, and when its bound is no longer than the manager's
    /// [`store_timeout`](crate::SessionManagerBuilder::store_timeout), latch
    /// arms no timer of its own around its calls: one timer per call instead
    /// of two. Return `Some` only for a bound every method keeps, every round
    /// trip and retry included.
    fn call_timeout(&self) -> Option<std::time::Duration> {
        None
    }

    /// This store's answers without waiting, if it keeps its records in
    /// this process and so never has to (the memory store returns
    /// `Some(self)`); `None` by default.
    fn in_process(&self) -> Option<&dyn InProcess> {
        None
    }
}

/// The synchronous face of a store that keeps its records in this process:
/// the same answers as [`SessionStore::load_shared`] and
/// [`SessionStore::create_shared`], given at once. latch calls it instead of
/// the asynchronous methods where it can (opening a session, creating a new
/// one), and so skips the future, the timer and the boxing that waiting would
/// need. A store that has one returns it from [`SessionStore::in_process`];
/// the conformance case `in_process_answers_match_the_store` checks that both
/// faces agree.
pub trait InProcess: Send + Sync {
    /// What [`SessionStore::load_shared`] answers.
    ///
    /// # Errors
    /// As `load_shared`.
    fn load_now(&self, key: &StoreKey) -> Result<Option<Arc<Record>>>;

    /// What [`SessionStore::create_shared`] answers.
    ///
    /// # Errors
    /// As `create_shared`.
    fn create_now(&self, key: &StoreKey, record: &Arc<Record>) -> Result<bool>;
}

/// A store's index of sessions by signed-in user: the devices list and "sign
/// out everywhere". A store that has one returns it from
/// [`SessionStore::user_index`]. The index follows [`Record::user_id`] on
/// every create, save, touch and delete.
#[async_trait]
pub trait UserIndex: Send + Sync {
    /// The sessions of `user_id` that have not expired at `now`, in time proportional
    /// to that user's sessions.
    async fn list_by_user(&self, user_id: &str, now: UnixTime) -> Result<Vec<SessionInfo>>;

    /// Delete every session of `user_id` except `keep` (the current one, for "sign
    /// out everywhere else"); returns how many were deleted.
    ///
    /// With `keep`, the deletion happens only if a session under `keep` still
    /// exists (whoever it belongs to: a session signing in during this request
    /// is stored under its old owner until the request ends), checked
    /// atomically with the deletion. So when two devices of one user sign out
    /// everywhere else at the same moment, one of them goes first and the
    /// other finds its own session gone and deletes nothing: one device stays
    /// signed in, as if they had come one after the other, instead of each
    /// ending the other. The conformance cases
    /// `sign_out_elsewhere_needs_the_kept_session` and
    /// `racing_sign_outs_elsewhere_leave_one_session` check it.
    async fn delete_by_user(&self, user_id: &str, keep: Option<&StoreKey>) -> Result<u64>;

    /// Delete the session under `key` if it is one of `user_id`'s ("revoke
    /// this device"); returns whether one was deleted. With `keep` (the
    /// caller's own session), only while that session exists, checked
    /// atomically with the deletion and in turn with
    /// [`delete_by_user`](Self::delete_by_user): a device that another
    /// device has just signed out can end no other, so a device revoking one
    /// that is at that moment signing out everywhere else leaves one of the
    /// two in, never neither. Conformance case
    /// `revoking_a_device_needs_the_revoking_session`.
    async fn delete_one_by_user(
        &self,
        user_id: &str,
        key: &StoreKey,
        keep: Option<&StoreKey>,
    ) -> Result<bool>;
}

/// A store's deletion of expired sessions in batches, for the purge task. A
/// store that has one returns it from [`SessionStore::expired_deletion`].
#[async_trait]
pub trait ExpiredDeletion: Send + Sync {
    /// Delete at most `limit` sessions that expired at or before `now`, oldest
    /// first; returns how many. Callers loop until it returns less than `limit`.
    async fn purge_expired(&self, now: UnixTime, limit: usize) -> Result<u64>;
}
