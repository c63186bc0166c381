//! The store conformance suite against a real PostgreSQL server.
//!
//! Cases share the default schema's table; each uses fresh random keys and user
//! names, so they do not see each other.

mod common;

use std::sync::Arc;

use latch::SessionStore;

async fn make() -> Option<Arc<dyn SessionStore>> {
    let store = common::store().await?;
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
