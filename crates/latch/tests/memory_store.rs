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

/// The memory store hands out the records it holds: a refresh (which it does
/// in place) must leave a record a request still holds as it was, and a
/// save must keep the record it was given rather than a copy of it.
#[tokio::test]
async fn records_handed_out_are_never_changed_in_place() {
    use latch::{Record, SaveOutcome, SessionId};

    let store = MemoryStore::new();
    let key = SessionId::generate().store_key();
    let mut record = Record::new(1_000);
    record.expires_at = 2_000;
    record.version = 1;
    assert!(store.create_shared(&key, &Arc::new(record)).await.unwrap());

    let held = store.load_shared(&key).await.unwrap().unwrap();
    assert!(store.touch(&key, None, 1_500, 2_500).await.unwrap());
    assert_eq!((held.last_seen, held.expires_at), (1_000, 2_000));
    let refreshed = store.load_shared(&key).await.unwrap().unwrap();
    assert_eq!((refreshed.last_seen, refreshed.expires_at), (1_500, 2_500));

    let mut next = Record::clone(&refreshed);
    next.version = 2;
    let next = Arc::new(next);
    assert_eq!(
        store.save_shared(&key, &next, 1).await.unwrap(),
        SaveOutcome::Saved
    );
    let loaded = store.load_shared(&key).await.unwrap().unwrap();
    assert!(
        Arc::ptr_eq(&loaded, &next),
        "the store copied what it was given"
    );
}
