//! The store timeout's timer is armed only when a store call has to wait:
//! a store that answers at once costs no timer, and one that hangs still
//! fails within the timeout. A store that fails its own calls within the
//! timeout gets no second timer from latch.
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

/// A store that bounds its own calls, as latch-redis does with its operation
/// timeout, and claims `bound`. Each call waits once (yields), then fails with
/// the store's own error; with `hang`, it never answers.
#[derive(Debug)]
struct SelfBounded {
    bound: Duration,
    hang: bool,
}

#[async_trait::async_trait]
impl latch_conformance::faults::Gate for SelfBounded {
    async fn before(&self, _: latch_conformance::faults::Call) -> latch::Result<()> {
        if self.hang {
            std::future::pending::<()>().await;
        }
        tokio::task::yield_now().await;
        Err(latch::Error::store_msg("the store's own timeout"))
    }

    fn call_timeout(&self) -> Option<Duration> {
        Some(self.bound)
    }
}

fn self_bounded(gate: SelfBounded, store_timeout: Duration) -> SessionManager {
    let store: Arc<dyn SessionStore> = Arc::new(latch_conformance::faults::Gated::new(
        Arc::new(MemoryStore::new()),
        gate,
    ));
    SessionManager::builder()
        .shared_store(store)
        .store_timeout(store_timeout)
        .build()
        .unwrap()
}

/// The store's bound is within latch's timeout: latch arms no timer of its
/// own even when the call has to wait (on a runtime without timers, arming
/// one would panic), and the store's error is what the request gets (a 503).
#[test]
fn a_store_bounding_its_calls_within_the_timeout_gets_no_second_timer() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let gate = SelfBounded {
            bound: Duration::from_millis(100),
            hang: false,
        };
        let manager = self_bounded(gate, Duration::from_secs(2));
        let cookie = format!("__Host-session={}", latch::SessionId::generate().encode());
        let session = manager.start([cookie.as_str()], Default::default());
        let err = session.get::<i32>("k").await.unwrap_err();
        assert_eq!(*err.kind(), latch::ErrorKind::Store);
        assert!(err.to_string().contains("own timeout"), "{err}");
        assert!(err.is_unavailable());
    });
}

/// The store's bound is longer than latch's timeout: latch's own timer still
/// ends a call that hangs, at latch's timeout.
#[tokio::test]
async fn a_store_bounding_its_calls_beyond_the_timeout_is_still_timed() {
    let gate = SelfBounded {
        bound: Duration::from_secs(30),
        hang: true,
    };
    let manager = self_bounded(gate, Duration::from_millis(100));
    let cookie = format!("__Host-session={}", latch::SessionId::generate().encode());
    let session = manager.start([cookie.as_str()], Default::default());
    // The gate never answers: without latch's own timer this would wait
    // forever, so the test bounds its wait and fails instead of hanging.
    let get = session.get::<i32>("k");
    let err = tokio::time::timeout(Duration::from_secs(10), get)
        .await
        .expect("latch's own timer must end a call the store's bound does not cover")
        .unwrap_err();
    assert_eq!(*err.kind(), latch::ErrorKind::StoreTimeout);
}
