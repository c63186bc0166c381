//! The store conformance suite against a single Redis server (`LATCH_REDIS_URL`).
//! Each case gets its own key prefix, so cases run in parallel without sharing
//! the expiry index.

mod common;

use std::sync::Arc;

use latch::SessionStore;

async fn make() -> Option<Arc<dyn SessionStore>> {
    let store = common::single_store(&common::unique_prefix("conformance")).await?;
    Some(Arc::new(store))
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
