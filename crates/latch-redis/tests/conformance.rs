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

/// The same cases through the opt-in read cache: every store guarantee
/// (compare-and-swap, expiry, indexes) holds with reads served from memory.
mod read_cache {
    use std::sync::Arc;

    use latch::SessionStore;
    use latch_redis::{ReadCache, RedisStore};

    async fn make() -> Option<Arc<dyn SessionStore>> {
        let prefix = super::common::unique_prefix("conformance-cached");
        match RedisStore::builder(super::common::redis_url())
            .prefix(prefix)
            .read_cache(ReadCache::default())
            .connect()
            .await
        {
            Ok(store) => Some(Arc::new(store)),
            Err(e) => latch_conformance::skip_or_fail("Redis", &format!("LATCH_REDIS_URL: {e:?}")),
        }
    }

    latch_conformance::store_conformance!(make);
}
