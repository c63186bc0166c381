//! A store that fails or stalls on demand, for tests of what latch does when
//! the *network* to a store fails (real backends' outages are tested against
//! the real servers, see [`crate::servers`]).
//!
//! ```text
//! #[derive(Debug, Default)]
//! struct Down(AtomicBool);
//! #[async_trait]
//! impl Gate for Down {
//!     async fn before(&self, _: Call) -> latch::Result<()> { ... }
//! }
//! let store = Arc::new(Gated::new(Arc::new(MemoryStore::new()), Down::default()));
//! store.gate.0.store(true, Ordering::SeqCst); // every call fails from now on
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use latch::{Record, SaveOutcome, SessionInfo, SessionStore, StoreKey, UnixTime};

/// Which [`SessionStore`] method is being called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// [`SessionStore::create`]
    Create,
    /// [`SessionStore::load`]
    Load,
    /// [`SessionStore::save`]
    Save,
    /// [`SessionStore::touch`]
    Touch,
    /// [`SessionStore::delete`]
    Delete,
    /// [`latch::UserIndex::list_by_user`]
    ListByUser,
    /// [`latch::UserIndex::delete_by_user`] and
    /// [`latch::UserIndex::delete_one_by_user`]
    DeleteByUser,
    /// [`latch::ExpiredDeletion::purge_expired`]
    PurgeExpired,
}

/// Decides, before each call reaches the real store, whether it goes through.
#[async_trait]
pub trait Gate: Send + Sync + std::fmt::Debug + 'static {
    /// `Ok` lets `call` through; an error is returned to latch instead. May
    /// also wait, to stand in for a store that stopped answering.
    async fn before(&self, call: Call) -> latch::Result<()>;

    /// The bound the gated store claims for its calls
    /// ([`SessionStore::call_timeout`]). `None` by default, whatever the store
    /// inside claims: a gate that waits can take longer than that store would.
    fn call_timeout(&self) -> Option<std::time::Duration> {
        None
    }
}

/// A store that asks its [`Gate`] before every call to the store inside.
#[derive(Debug)]
pub struct Gated<G> {
    inner: Arc<dyn SessionStore>,
    /// The gate, for the test to flip its switches.
    pub gate: G,
}

impl<G: Gate> Gated<G> {
    /// `inner` behind `gate`.
    pub fn new(inner: Arc<dyn SessionStore>, gate: G) -> Self {
        Self { inner, gate }
    }
}

#[async_trait]
impl<G: Gate> SessionStore for Gated<G> {
    async fn create(&self, key: &StoreKey, record: &Record) -> latch::Result<bool> {
        self.gate.before(Call::Create).await?;
        self.inner.create(key, record).await
    }
    async fn load(&self, key: &StoreKey) -> latch::Result<Option<Record>> {
        self.gate.before(Call::Load).await?;
        self.inner.load(key).await
    }
    async fn save(
        &self,
        key: &StoreKey,
        record: &Record,
        expected_version: u64,
    ) -> latch::Result<SaveOutcome> {
        self.gate.before(Call::Save).await?;
        self.inner.save(key, record, expected_version).await
    }
    async fn touch(
        &self,
        key: &StoreKey,
        user_hint: Option<&str>,
        last_seen: UnixTime,
        expires_at: UnixTime,
    ) -> latch::Result<bool> {
        self.gate.before(Call::Touch).await?;
        self.inner
            .touch(key, user_hint, last_seen, expires_at)
            .await
    }
    async fn delete(&self, key: &StoreKey) -> latch::Result<bool> {
        self.gate.before(Call::Delete).await?;
        self.inner.delete(key).await
    }

    // The inner store's capabilities, behind the gate.
    fn user_index(&self) -> Option<&dyn latch::UserIndex> {
        self.inner
            .user_index()
            .map(|_| self as &dyn latch::UserIndex)
    }

    fn expired_deletion(&self) -> Option<&dyn latch::ExpiredDeletion> {
        self.inner
            .expired_deletion()
            .map(|_| self as &dyn latch::ExpiredDeletion)
    }

    fn call_timeout(&self) -> Option<std::time::Duration> {
        self.gate.call_timeout()
    }
}

#[async_trait]
impl<G: Gate> latch::UserIndex for Gated<G> {
    async fn list_by_user(&self, user: &str, now: UnixTime) -> latch::Result<Vec<SessionInfo>> {
        self.gate.before(Call::ListByUser).await?;
        let index = self.inner.user_index().ok_or_else(no_index)?;
        index.list_by_user(user, now).await
    }

    async fn delete_by_user(&self, user: &str, keep: Option<&StoreKey>) -> latch::Result<u64> {
        self.gate.before(Call::DeleteByUser).await?;
        let index = self.inner.user_index().ok_or_else(no_index)?;
        index.delete_by_user(user, keep).await
    }

    async fn delete_one_by_user(
        &self,
        user: &str,
        key: &StoreKey,
        keep: Option<&StoreKey>,
    ) -> latch::Result<bool> {
        self.gate.before(Call::DeleteByUser).await?;
        let index = self.inner.user_index().ok_or_else(no_index)?;
        index.delete_one_by_user(user, key, keep).await
    }
}

#[async_trait]
impl<G: Gate> latch::ExpiredDeletion for Gated<G> {
    async fn purge_expired(&self, now: UnixTime, limit: usize) -> latch::Result<u64> {
        self.gate.before(Call::PurgeExpired).await?;
        match self.inner.expired_deletion() {
            Some(inner) => inner.purge_expired(now, limit).await,
            None => Ok(0),
        }
    }
}

fn no_index() -> latch::Error {
    latch::Error::invalid_config("the gated store keeps no per-user index")
}
