//! Concurrent saves of one session: within a process they take turns and
//! rebase on each other (no failed compare-and-swap, no reload); across
//! processes the compare-and-swap and reload still keep every change.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use latch::{
    MemoryStore, Record, SaveOutcome, SessionInfo, SessionManager, SessionStore, StoreKey, UnixTime,
};
use tokio::sync::Barrier;

/// A MemoryStore whose saves take a while (like a network round trip), and
/// which counts saves, conflicts and loads.
#[derive(Debug, Default)]
struct SlowCountingStore {
    inner: MemoryStore,
    saves: AtomicU64,
    conflicts: AtomicU64,
    loads: AtomicU64,
}

#[async_trait]
impl SessionStore for SlowCountingStore {
    async fn create(&self, key: &StoreKey, record: &Record) -> latch::Result<bool> {
        self.inner.create(key, record).await
    }
    async fn load(&self, key: &StoreKey) -> latch::Result<Option<Record>> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        self.inner.load(key).await
    }
    async fn save(
        &self,
        key: &StoreKey,
        record: &Record,
        expected: u64,
    ) -> latch::Result<SaveOutcome> {
        tokio::time::sleep(Duration::from_millis(3)).await;
        self.saves.fetch_add(1, Ordering::SeqCst);
        let outcome = self.inner.save(key, record, expected).await?;
        if outcome == SaveOutcome::Conflict {
            self.conflicts.fetch_add(1, Ordering::SeqCst);
        }
        Ok(outcome)
    }
    async fn touch(
        &self,
        key: &StoreKey,
        last_seen: UnixTime,
        expires_at: UnixTime,
    ) -> latch::Result<bool> {
        self.inner.touch(key, last_seen, expires_at).await
    }
    async fn delete(&self, key: &StoreKey) -> latch::Result<bool> {
        self.inner.delete(key).await
    }
    async fn list_by_user(&self, user: &str, now: UnixTime) -> latch::Result<Vec<SessionInfo>> {
        self.inner.list_by_user(user, now).await
    }
    async fn delete_by_user(&self, user: &str, keep: Option<&StoreKey>) -> latch::Result<u64> {
        self.inner.delete_by_user(user, keep).await
    }
    async fn purge_expired(&self, now: UnixTime, limit: usize) -> latch::Result<u64> {
        self.inner.purge_expired(now, limit).await
    }
}

fn manager(store: &Arc<SlowCountingStore>) -> SessionManager {
    let store: Arc<dyn SessionStore> = store.clone();
    SessionManager::builder()
        .shared_store(store)
        .build()
        .unwrap()
}

/// A stored session; returns its `Cookie` header.
async fn new_session(m: &SessionManager) -> String {
    let s = m.start(std::iter::empty(), Default::default());
    s.insert("n", 0).await.unwrap();
    let set = m.finish(&s).await.unwrap().set_cookie.unwrap();
    set.split(';').next().unwrap().to_owned()
}

/// `writers` requests, spread over `managers`, all load the session first and
/// then each writes its own key.
async fn race(managers: &[SessionManager], cookie: &str, writers: usize) {
    let barrier = Arc::new(Barrier::new(writers));
    let tasks: Vec<_> = (0..writers)
        .map(|i| {
            let m = managers[i % managers.len()].clone();
            let cookie = cookie.to_owned();
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                let s = m.start(Some(cookie.as_str()), Default::default());
                assert_eq!(s.get::<u64>("n").await.unwrap(), Some(0));
                barrier.wait().await;
                s.insert(&format!("k{i}"), i).await.unwrap();
                m.finish(&s).await.unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

async fn keys_present(m: &SessionManager, cookie: &str, writers: usize) -> usize {
    let s = m.start(Some(cookie), Default::default());
    let mut present = 0;
    for i in 0..writers {
        if s.get::<usize>(&format!("k{i}")).await.unwrap() == Some(i) {
            present += 1;
        }
    }
    present
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_rebases_instead_of_conflicting() {
    let store = Arc::new(SlowCountingStore::default());
    let m = manager(&store);
    let cookie = new_session(&m).await;
    let loads_before = store.loads.load(Ordering::SeqCst);
    race(std::slice::from_ref(&m), &cookie, 32).await;
    assert_eq!(keys_present(&m, &cookie, 32).await, 32, "every write kept");
    let conflicts = store.conflicts.load(Ordering::SeqCst);
    let reloads = store.loads.load(Ordering::SeqCst) - loads_before - 32 - 1;
    println!(
        "32 writers, one process: {} saves, {conflicts} conflicts, {reloads} reloads",
        store.saves.load(Ordering::SeqCst)
    );
    // Without rebasing, every writer but the first fails its compare-and-swap
    // once and reloads (31 conflicts); with it at most the first in line
    // (which may save before the others queue) can.
    assert!(conflicts <= 1, "{conflicts} conflicts");
    assert!(reloads <= 1, "{reloads} reloads");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_still_keep_every_write() {
    let store = Arc::new(SlowCountingStore::default());
    let (a, b) = (manager(&store), manager(&store));
    let cookie = new_session(&a).await;
    race(&[a.clone(), b], &cookie, 32).await;
    assert_eq!(keys_present(&a, &cookie, 32).await, 32, "every write kept");
    assert!(
        store.conflicts.load(Ordering::SeqCst) > 0,
        "two managers racing must have met at least one conflict"
    );
}
