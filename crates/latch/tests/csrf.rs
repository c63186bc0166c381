//! CSRF tokens: bound to their session, and a stored secret latch did not make
//! (a store shared with other code) is replaced instead of failing the request.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::sync::Arc;

use latch::{MemoryStore, Record, SessionId, SessionManager, SessionStore};

#[tokio::test]
async fn a_malformed_stored_secret_is_replaced_not_a_panic() {
    let store = Arc::new(MemoryStore::new());
    let manager = SessionManager::builder()
        .shared_store(Arc::clone(&store) as Arc<dyn SessionStore>)
        .build()
        .unwrap();
    let id = SessionId::generate();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut record = Record::new(now);
    record.expires_at = now + 600;
    record.version = 1;
    record
        .data
        .insert("_latch.csrf".into(), "not a latch secret!".into());
    assert!(store.create(&id.store_key(), &record).await.unwrap());

    let header = format!("__Host-session={}", id.encode());
    let s = manager.start(Some(header.as_str()), Default::default());
    assert!(!s.verify_csrf("anything").await.unwrap());
    let token = s.csrf_token().await.unwrap();
    assert!(s.verify_csrf(&token).await.unwrap());
    manager.finish(&s).await.unwrap();

    // The new secret was saved: the token verifies on the next request, and
    // another session's token does not.
    let s = manager.start(Some(header.as_str()), Default::default());
    assert!(s.verify_csrf(&token).await.unwrap());
    let other = manager.start(std::iter::empty(), Default::default());
    let foreign = other.csrf_token().await.unwrap();
    assert!(!s.verify_csrf(&foreign).await.unwrap());
}
