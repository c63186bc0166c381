//! One request's `Session` shared by several tasks: clones share one state,
//! and its lock lets every change through in turn.

use latch::{MemoryStore, SessionManager};

/// Clones of one session updated from tasks on several threads at once, the
/// very first access included: no update is lost, and the request then
/// finishes with all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_on_several_threads_lose_no_change() {
    const TASKS: u64 = 8;
    const EACH: u64 = 250;
    let manager = SessionManager::builder()
        .store(MemoryStore::new())
        .build()
        .unwrap();
    let session = manager.start(std::iter::empty(), Default::default());
    assert!(session.is_untouched());
    let tasks: Vec<_> = (0..TASKS)
        .map(|t| {
            let session = session.clone();
            tokio::spawn(async move {
                for i in 0..EACH {
                    session
                        .update("n", |n: Option<u64>| n.unwrap_or(0) + 1)
                        .await
                        .unwrap();
                    session.insert(&format!("t{t}"), i).await.unwrap();
                    if i % 16 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert!(!session.is_untouched());
    assert_eq!(session.get::<u64>("n").await.unwrap(), Some(TASKS * EACH));
    for t in 0..TASKS {
        assert_eq!(
            session.get::<u64>(&format!("t{t}")).await.unwrap(),
            Some(EACH - 1)
        );
    }
    let finished = manager.finish(&session).await.unwrap();
    let cookie = finished.set_cookie.expect("a new session sends its cookie");

    // The next request sees every change.
    let value = cookie.split(';').next().unwrap().to_owned();
    let next = manager.start([value.as_str()], Default::default());
    assert_eq!(next.get::<u64>("n").await.unwrap(), Some(TASKS * EACH));
}
