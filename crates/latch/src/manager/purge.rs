//! The background task that deletes expired sessions.

use std::time::Duration;

use super::SessionManager;

/// A running purge task; dropping it stops the task.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use latch::{MemoryStore, SessionManager};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
/// let manager = SessionManager::builder().store(MemoryStore::new()).build()?;
/// let purger = manager.spawn_purger(Duration::from_secs(60), 1000);
/// // ... serve requests; the task runs until `purger` is dropped.
/// drop(purger);
/// # Ok::<(), latch::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct PurgeTask(tokio::task::JoinHandle<()>);

impl Drop for PurgeTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl SessionManager {
    /// Start a task on the current tokio runtime that, every `every`, deletes
    /// expired sessions in batches of `batch` (yielding between batches so
    /// request handling is never stalled behind a big purge).
    ///
    /// Store errors are logged and retried at the next tick. Redis-like stores
    /// whose records expire by TTL only tidy their indexes here.
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    #[must_use = "the task stops when the returned PurgeTask is dropped"]
    pub fn spawn_purger(&self, every: Duration, batch: usize) -> PurgeTask {
        let manager = self.clone();
        PurgeTask(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                match manager.purge_expired(batch).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(purged = n, "expired sessions deleted"),
                    Err(err) => {
                        tracing::warn!(error = %err, "purging expired sessions failed; will retry")
                    }
                }
            }
        }))
    }
}
