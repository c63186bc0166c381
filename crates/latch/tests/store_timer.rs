//! The store timeout's timer is armed only when a store call has to wait:
//! a store that answers at once costs no timer, and one that hangs still
//! fails within the timeout.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::sync::Arc;
use std::time::Duration;

use latch::{MemoryStore, SessionManager, SessionStore};

/// A memory-store request cycle on a runtime without a time driver: no timer
/// was ever needed (before, every store call registered one, and this
/// panicked with "timers are disabled").
#[test]
fn an_immediate_store_needs_no_timer() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let manager = SessionManager::builder()
            .store(MemoryStore::new())
            .build()
            .unwrap();
        let session = manager.start(None, Default::default());
        session.insert("k", 1).await.unwrap();
        let set = manager.finish(&session).await.unwrap().set_cookie.unwrap();
        let cookie = set.split(';').next().unwrap().to_owned();
        let again = manager.start([cookie.as_str()], Default::default());
        assert_eq!(again.get::<i32>("k").await.unwrap(), Some(1));
    });
}

/// A gate that never opens: the store stopped answering.
#[derive(Debug)]
struct Hang;

#[async_trait::async_trait]
impl latch_conformance::faults::Gate for Hang {
    async fn before(&self, _: latch_conformance::faults::Call) -> latch::Result<()> {
        std::future::pending().await
    }
}

/// A store that never answers: the request fails with `StoreTimeout` once
/// the timeout has passed, not before.
#[tokio::test]
async fn a_hanging_store_times_out() {
    let store: Arc<dyn SessionStore> = Arc::new(latch_conformance::faults::Gated::new(
        Arc::new(MemoryStore::new()),
        Hang,
    ));
    let manager = SessionManager::builder()
        .shared_store(store)
        .store_timeout(Duration::from_millis(250))
        .build()
        .unwrap();
    let cookie = format!("__Host-session={}", latch::SessionId::generate().encode());
    let session = manager.start([cookie.as_str()], Default::default());
    let started = std::time::Instant::now();
    let err = session.get::<i32>("k").await.unwrap_err();
    assert_eq!(*err.kind(), latch::ErrorKind::StoreTimeout);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
}
