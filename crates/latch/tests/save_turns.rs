//! Concurrent saves of one session: within a process they are grouped into a
//! few compare-and-swaps (no failed swap, no reload, no lost change); across
//! processes the compare-and-swap and reload still keep every change.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use latch::{MemoryStore, Record, SaveOutcome, SessionManager, SessionStore, StoreKey, UnixTime};
use tokio::sync::Barrier;

/// A MemoryStore whose saves take a while (like a network round trip), and
/// which counts saves, conflicts and loads.
#[derive(Debug, Default)]
struct SlowCountingStore {
    inner: MemoryStore,
    saves: AtomicU64,
    conflicts: AtomicU64,
    loads: AtomicU64,
    /// Saves running right now, and the most seen at once.
    in_flight: AtomicU64,
    most_in_flight: AtomicU64,
    /// Saves hang (a store that stopped answering).
    hang: AtomicBool,
    /// How many of the next loads fail.
    failing_loads: AtomicU64,
}

#[async_trait]
impl SessionStore for SlowCountingStore {
    async fn create(&self, key: &StoreKey, record: &Record) -> latch::Result<bool> {
        self.inner.create(key, record).await
    }
    async fn load(&self, key: &StoreKey) -> latch::Result<Option<Record>> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        let failing = self.failing_loads.load(Ordering::SeqCst);
        if failing > 0 {
            self.failing_loads.store(failing - 1, Ordering::SeqCst);
            return Err(latch::Error::store_msg("injected load failure"));
        }
        self.inner.load(key).await
    }
    async fn save(
        &self,
        key: &StoreKey,
        record: &Record,
        expected: u64,
    ) -> latch::Result<SaveOutcome> {
        if self.hang.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(3)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
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
        user_hint: Option<&str>,
        last_seen: UnixTime,
        expires_at: UnixTime,
    ) -> latch::Result<bool> {
        self.inner
            .touch(key, user_hint, last_seen, expires_at)
            .await
    }
    async fn delete(&self, key: &StoreKey) -> latch::Result<bool> {
        self.inner.delete(key).await
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

/// `writers` requests, spread over `managers`, all load the session first,
/// then each makes its changes with `write(i, session)` and finishes; returns
/// each request's outcome, in order. Panics in a request are caught as errors.
async fn race<F, Fut>(
    managers: &[SessionManager],
    cookie: &str,
    writers: usize,
    write: F,
) -> Vec<Result<(), String>>
where
    F: Fn(usize, latch::Session) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let write = Arc::new(write);
    let barrier = Arc::new(Barrier::new(writers));
    let tasks: Vec<_> = (0..writers)
        .map(|i| {
            let m = managers[i % managers.len()].clone();
            let cookie = cookie.to_owned();
            let barrier = Arc::clone(&barrier);
            let write = Arc::clone(&write);
            tokio::spawn(async move {
                let s = m.start(Some(cookie.as_str()), Default::default());
                assert_eq!(s.get::<u64>("n").await.unwrap(), Some(0));
                barrier.wait().await;
                write(i, s.clone()).await;
                m.finish(&s).await.map(drop)
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(
            match tokio::time::timeout(Duration::from_secs(10), t).await {
                Err(_) => panic!("a save hung"),
                Ok(Err(join)) => Err(format!("request task failed: {join}")),
                Ok(Ok(finished)) => finished.map_err(|e| format!("{:?}: {e}", e.kind())),
            },
        );
    }
    outcomes
}

/// Each request writes its own key `k{i}`.
async fn own_key(i: usize, s: latch::Session) {
    s.insert(&format!("k{i}"), i).await.unwrap();
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
async fn one_process_groups_concurrent_saves() {
    let store = Arc::new(SlowCountingStore::default());
    let m = manager(&store);
    let cookie = new_session(&m).await;
    let loads_before = store.loads.load(Ordering::SeqCst);
    let outcomes = race(std::slice::from_ref(&m), &cookie, 32, own_key).await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    assert_eq!(keys_present(&m, &cookie, 32).await, 32, "every write kept");
    let conflicts = store.conflicts.load(Ordering::SeqCst);
    let reloads = store.loads.load(Ordering::SeqCst) - loads_before - 32 - 1;
    println!(
        "32 writers, one process: {} saves, {conflicts} conflicts, {reloads} reloads",
        store.saves.load(Ordering::SeqCst)
    );
    // One at a time, 32 writers would need 32 saves (and, without replaying
    // on the newest record, 31 failed swaps and reloads). Grouped: the first
    // save runs alone while the others queue, then one save writes them all
    // (a straggler may make a third).
    let saves = store.saves.load(Ordering::SeqCst);
    assert!(saves <= 4, "{saves} saves for 32 writers");
    assert_eq!(conflicts, 0);
    assert_eq!(reloads, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_still_keep_every_write() {
    let store = Arc::new(SlowCountingStore::default());
    let (a, b) = (manager(&store), manager(&store));
    let cookie = new_session(&a).await;
    let outcomes = race(&[a.clone(), b], &cookie, 32, own_key).await;
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    assert_eq!(keys_present(&a, &cookie, 32).await, 32, "every write kept");
    assert!(
        store.conflicts.load(Ordering::SeqCst) > 0,
        "two managers racing must have met at least one conflict"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_replay_in_a_group_fails_only_its_own_request() {
    let store = Arc::new(SlowCountingStore::default());
    let m = manager(&store);
    let cookie = new_session(&m).await;
    let writers = 16;
    let outcomes = race(
        std::slice::from_ref(&m),
        &cookie,
        writers,
        |i, s| async move {
            own_key(i, s.clone()).await;
            match i {
                // Request 0 makes "m" a string...
                0 => s.insert("m", "text").await.unwrap(),
                // ...so request 5's numeric update of "m" cannot be replayed after
                // it (its first run saw no "m").
                5 => {
                    s.update("m", |m: Option<u64>| m.unwrap_or(0) + 1)
                        .await
                        .unwrap();
                    // Saves after the others: replayed on a record where "m" is
                    // the string.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                _ => {}
            }
        },
    )
    .await;
    let failures: Vec<usize> = (0..writers).filter(|&i| outcomes[i].is_err()).collect();
    assert!(
        outcomes[5]
            .as_ref()
            .is_err_and(|e| e.starts_with("Serialization")),
        "{outcomes:?}"
    );
    let s = m.start(Some(cookie.as_str()), Default::default());
    let m_value = s.get::<serde_json::Value>("m").await.unwrap();
    let kept = keys_present(&m, &cookie, writers).await;
    // Request 5 was replayed after request 0, refused, and failed alone with
    // nothing of it written; every other request kept its change.
    assert_eq!(failures, vec![5]);
    assert_eq!(kept, writers - 1);
    assert_eq!(s.get::<usize>("k5").await.unwrap(), None);
    assert_eq!(m_value, Some(serde_json::json!("text")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_update_does_not_wedge_later_saves() {
    let store = Arc::new(SlowCountingStore::default());
    let m = manager(&store);
    let cookie = new_session(&m).await;
    // Requests whose save was lost with the panicking flusher fail with a
    // store error (503), not a hang (`race` times out on a hang).
    race(std::slice::from_ref(&m), &cookie, 3, |i, s| async move {
        let first = std::sync::atomic::AtomicBool::new(true);
        s.update("n", move |n: Option<u64>| {
            // Panics when replayed (by the flusher), not on first run.
            assert!(
                first.swap(false, Ordering::SeqCst) || i == 0,
                "replay panics"
            );
            n.unwrap_or(0) + 1
        })
        .await
        .unwrap();
    })
    .await;
    // The stripe is usable again.
    let s = m.start(Some(cookie.as_str()), Default::default());
    s.insert("after", true).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), m.finish(&s))
        .await
        .expect("later save does not hang")
        .unwrap();
    let s = m.start(Some(cookie.as_str()), Default::default());
    assert_eq!(s.get::<bool>("after").await.unwrap(), Some(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saves_of_different_sessions_do_not_wait_for_each_other() {
    let store = Arc::new(SlowCountingStore::default());
    let m = manager(&store);
    // Sessions whose store keys share a shard of the table of saves in
    // progress (the first byte picks one of 16): even they must not queue
    // behind each other.
    let shard = |cookie: &str| {
        let id = latch::SessionId::parse(cookie.split_once('=').unwrap().1).unwrap();
        id.store_key().as_bytes()[0] % 16
    };
    let first = new_session(&m).await;
    let mut second = new_session(&m).await;
    while shard(&second) != shard(&first) {
        second = new_session(&m).await;
    }
    let barrier = Arc::new(Barrier::new(2));
    let tasks: Vec<_> = [first, second]
        .into_iter()
        .map(|cookie| {
            let m = m.clone();
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                let s = m.start(Some(cookie.as_str()), Default::default());
                s.insert("k", 1).await.unwrap();
                barrier.wait().await;
                m.finish(&s).await.unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        store.most_in_flight.load(Ordering::SeqCst),
        2,
        "both saves ran at once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_store_fails_queued_saves_within_one_timeout() {
    let store = Arc::new(SlowCountingStore::default());
    let timeout = Duration::from_millis(500);
    let shared: Arc<dyn SessionStore> = store.clone();
    let m = SessionManager::builder()
        .shared_store(shared)
        .store_timeout(timeout)
        .build()
        .unwrap();
    let cookie = new_session(&m).await;
    store.hang.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let outcomes = race(std::slice::from_ref(&m), &cookie, 8, own_key).await;
    let elapsed = started.elapsed();
    assert!(
        outcomes
            .iter()
            .all(|o| o.as_ref().is_err_and(|e| e.starts_with("StoreTimeout"))),
        "{outcomes:?}"
    );
    // One save runs and times out; the seven queued behind it fail with it
    // (not after a timeout of their own, which would take twice as long).
    assert!(
        elapsed < timeout * 8 / 5,
        "8 saves on a hung store took {elapsed:?} with a {timeout:?} timeout"
    );
}

/// A load that fails (store down for a moment) must not make a retry in the
/// same request forget the cookie and start a fresh session.
#[tokio::test]
async fn a_failed_load_is_retried_with_the_same_cookie() {
    let store = Arc::new(SlowCountingStore::default());
    let m = manager(&store);
    let cookie = new_session(&m).await;
    store.failing_loads.store(1, Ordering::SeqCst);
    let s = m.start(Some(cookie.as_str()), Default::default());
    let err = s.get::<u64>("n").await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    assert_eq!(
        s.get::<u64>("n").await.unwrap(),
        Some(0),
        "same session, not a fresh one"
    );
    assert!(m.finish(&s).await.unwrap().set_cookie.is_none());
}
