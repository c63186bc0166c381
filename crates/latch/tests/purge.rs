//! The background purge task.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::sync::Arc;
use std::time::Duration;

use latch::{ManualClock, MemoryStore, SessionManager};

#[tokio::test]
async fn background_purger_deletes_expired_sessions_only() {
    let store = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(1_800_000_000);
    let manager = SessionManager::builder()
        .shared_store(store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    for i in 0..25 {
        let s = manager.start(std::iter::empty(), Default::default());
        s.insert("i", i).await.unwrap();
        if i == 0 {
            s.set_remember(true).await.unwrap(); // lives 7 days idle
        }
        manager.finish(&s).await.unwrap();
    }
    assert_eq!(store.len(), 25);
    let _purger = manager.spawn_purger(Duration::from_millis(10), 4);
    clock.advance(3600); // past the 30-minute idle timeout of all but one
    for _ in 0..200 {
        if store.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        store.len(),
        1,
        "expired sessions left behind, or a live one purged"
    );
}

#[tokio::test]
async fn dropping_the_purger_stops_it() {
    let store = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(1_800_000_000);
    let manager = SessionManager::builder()
        .shared_store(store.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let purger = manager.spawn_purger(Duration::from_millis(5), 10);
    drop(purger);
    let s = manager.start(std::iter::empty(), Default::default());
    s.insert("i", 1).await.unwrap();
    manager.finish(&s).await.unwrap();
    clock.advance(3600);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(store.len(), 1);
}
