//! The store conformance suite against the in-memory store.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::sync::Arc;

use latch::{MemoryStore, SessionStore};

async fn make() -> Option<Arc<dyn SessionStore>> {
    Some(Arc::new(MemoryStore::new()))
}

latch_conformance::store_conformance!(make);

/// T3: the same cases with every record sealed ([`latch::store::EncryptedStore`]).
mod encrypted {
    use std::sync::Arc;

    use latch::store::EncryptedStore;
    use latch::{Keyring, SecretKey, SessionStore};

    async fn make() -> Option<Arc<dyn SessionStore>> {
        let inner = super::make().await?;
        Some(Arc::new(EncryptedStore::new(
            inner,
            &Keyring::new(SecretKey::generate()),
        )))
    }

    latch_conformance::store_conformance!(make);
}
