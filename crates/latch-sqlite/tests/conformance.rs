//! The store conformance suite against a real SQLite file (WAL).

use std::sync::Arc;

use latch::SessionStore;
use latch_sqlite::SqliteStore;

async fn make() -> Option<Arc<dyn SessionStore>> {
    let dir = std::env::temp_dir().join(format!(
        "latch-sqlite-conf-{}-{}",
        std::process::id(),
        latch::SessionId::generate().store_key().to_hex()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    Some(Arc::new(
        SqliteStore::open(dir.join("sessions.db")).expect("open"),
    ))
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
