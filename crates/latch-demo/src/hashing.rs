//! Password hashing on a fixed set of threads, with a bounded queue (A7).
//!
//! Argon2id takes 19 MiB and tens of milliseconds per hash on purpose. Run on
//! tokio's blocking pool, as many hashes ran at once as requests arrived (up
//! to 512 threads), and the allocator kept what each thread had used: 200
//! concurrent wrong passwords left the demo at 11.4 GB of memory. Here a fixed
//! number of worker threads hash, so at most that many hashes (and allocator
//! arenas) exist at once; a request that finds the queue full, or whose job
//! waited past the deadline, is refused at once with [`Busy`] (a 503), and a
//! job whose request went away is skipped.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// The password hashing threads of the demo.
#[derive(Clone)]
pub struct Hashers {
    queue: SyncSender<Job>,
    max_wait: Duration,
}

impl std::fmt::Debug for Hashers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hashers")
            .field("max_wait", &self.max_wait)
            .finish_non_exhaustive()
    }
}

/// The hashers are all busy and the queue is full, or a job waited too long:
/// answer 503 and let the client try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("every password hasher is busy")
    }
}

impl std::error::Error for Busy {}

struct Job {
    queued: Instant,
    work: Box<dyn FnOnce(bool) + Send>,
}

impl Hashers {
    /// `threads` hashing threads (at least one) behind a queue of `queue`
    /// jobs; a job not started within `max_wait` is refused.
    ///
    /// # Errors
    /// When a thread cannot be started.
    pub fn new(threads: usize, queue: usize, max_wait: Duration) -> anyhow::Result<Self> {
        let (tx, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("latch-demo-hash-{i}"))
                .spawn(move || work(&rx, max_wait))?;
        }
        Ok(Self {
            queue: tx,
            max_wait,
        })
    }

    /// One thread per core, a queue of eight jobs per thread, two seconds'
    /// wait at most: at most one 19 MiB hash per core at any time.
    ///
    /// # Errors
    /// When a thread cannot be started.
    pub fn for_this_machine() -> anyhow::Result<Self> {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Self::new(cores, cores * 8, Duration::from_secs(2))
    }

    /// Run `f` on a hashing thread.
    ///
    /// # Errors
    /// [`Busy`] when the queue is full, the job waited past the deadline, or
    /// the threads are gone.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            queued: Instant::now(),
            work: Box::new(move |expired| {
                // Nobody waits any more (the client left) or too late: skip
                // the hash; dropping `reply` answers `Busy`.
                if !expired && !reply.is_closed() {
                    let _ = reply.send(f());
                }
            }),
        };
        match self.queue.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => return Err(Busy),
        }
        answer.await.map_err(|_| Busy)
    }
}

fn work(jobs: &Mutex<Receiver<Job>>, max_wait: Duration) {
    loop {
        let job = {
            let jobs = jobs.lock().unwrap_or_else(|p| p.into_inner());
            jobs.recv()
        };
        let Ok(job) = job else {
            return; // every sender dropped: the app is gone
        };
        (job.work)(job.queued.elapsed() > max_wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_is_refused_at_once_and_nothing_runs_beyond_the_threads() {
        let hashers = Hashers::new(1, 2, Duration::from_secs(10)).expect("threads");
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let (hashers, running, most) = (hashers.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    hashers
                        .run(move || {
                            use std::sync::atomic::Ordering::SeqCst;
                            let now = running.fetch_add(1, SeqCst) + 1;
                            most.fetch_max(now, SeqCst);
                            std::thread::sleep(Duration::from_millis(100));
                            running.fetch_sub(1, SeqCst);
                        })
                        .await
                })
            })
            .collect();
        let mut done = 0;
        let mut busy = 0;
        for t in tasks {
            match t.await.expect("task") {
                Ok(()) => done += 1,
                Err(Busy) => busy += 1,
            }
        }
        assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(busy >= 10 - 3, "{busy} refused, {done} done");
        assert!(done >= 1);
    }

    #[tokio::test]
    async fn a_job_that_waited_too_long_is_refused() {
        let hashers = Hashers::new(1, 4, Duration::from_millis(50)).expect("threads");
        let slow = hashers.run(|| std::thread::sleep(Duration::from_millis(200)));
        let late = hashers.run(|| ());
        let (slow, late) = tokio::join!(slow, late);
        assert_eq!(slow, Ok(()));
        assert_eq!(late, Err(Busy));
    }
}
