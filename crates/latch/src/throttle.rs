//! Throttling repeated attempts, such as failed sign-ins, across app instances.
//!
//! A [`Throttle`] counts attempts per subject (an account name, a client
//! address) in fixed windows and refuses more than its limit per window with
//! the time to wait, which an HTTP adapter sends as `429 Too Many Requests`
//! with `Retry-After`. The counters live in a [`SessionStore`], so every
//! instance of an app that shares the store shares the count: a guesser
//! spreading attempts over many instances behind a load balancer gets no more
//! than one instance would give.
//!
//! Attempts are counted *before* the expensive or sensitive work (the password
//! hash), so concurrent attempts cannot all pass a check that none of them has
//! counted yet; a successful sign-in can then [`forgive`](Throttle::forgive)
//! the account's count.
//!
//! Counters are small records under keys derived from the throttle's name and
//! the subject (SHA-256; the subject itself is not stored), expiring with
//! their window, so the store's purge removes them like expired sessions.
//!
//! # Example
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use latch::MemoryStore;
//! use latch::throttle::{Throttle, Verdict};
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
//! let store = Arc::new(MemoryStore::new());
//! let per_account = Throttle::new("sign-in/account", 3, Duration::from_secs(300), store)?;
//! for _ in 0..3 {
//!     assert!(matches!(per_account.hit("alice").await?, Verdict::Allowed { .. }));
//! }
//! let Verdict::Throttled { retry_after } = per_account.hit("alice").await? else {
//!     panic!("a fourth attempt within the window is refused");
//! };
//! assert!(retry_after <= Duration::from_secs(300));
//! assert!(matches!(per_account.hit("bob").await?, Verdict::Allowed { .. }));
//! # Ok::<(), latch::Error>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::Arc;
use std::time::Duration;

use std::collections::HashMap;

use futures_util::lock::{Mutex, OwnedMutexGuard};
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};
use crate::id::StoreKey;
use crate::record::Record;
use crate::store::{SaveOutcome, SessionStore};
use crate::time::{Clock, SystemClock, UnixTime, secs};

/// The data key holding a counter's count.
const COUNT_KEY: &str = "n";

/// How often a counter is re-read and re-written when other processes change
/// it at the same moment, before the attempt is refused as throttled.
const MAX_ATTEMPTS: u32 = 16;

/// How long a store call may take before the attempt fails (as a store
/// outage, so adapters answer 503).
const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// What [`Throttle::hit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead; `remaining` more attempts fit in this window.
    Allowed {
        /// Attempts left in the current window after this one.
        remaining: u32,
    },
    /// Refused: the subject used up its attempts; try again after this long.
    Throttled {
        /// Until the current window ends (at least one second).
        retry_after: Duration,
    },
}

impl Verdict {
    /// Whether the attempt was refused.
    pub fn is_throttled(&self) -> bool {
        matches!(self, Verdict::Throttled { .. })
    }
}

/// This process's attempts on one counter, taken in turn.
///
/// Without turns, a burst of parallel attempts from one client (a page's
/// requests, many users behind one NAT) raced each other's compare-and-swap,
/// and the losers of `MAX_ATTEMPTS` races were refused far below the limit;
/// with them, only other processes sharing the store can make a save
/// conflict. There is one lock per counter in use, not a fixed set of lanes:
/// with lanes, anyone could pick subjects whose counters share a victim's
/// lane (the keys are unkeyed hashes) and keep the victim's attempts waiting
/// until they failed. A counter's lock is dropped with its last attempt, so
/// the map holds only counters with attempts in flight.
#[derive(Debug, Default)]
struct Turns {
    locks: std::sync::Mutex<Locks>,
}

/// Each counter in use: its lock, and how many attempts wait for or hold it.
type Locks = HashMap<StoreKey, (Arc<Mutex<()>>, usize)>;

impl Turns {
    /// Wait for the turn on `key`. Dropping the future while it waits gives
    /// up the place in line and, for the last one, the lock.
    async fn take(self: &Arc<Self>, key: &StoreKey) -> Turn {
        let lock = {
            let mut map = self.map();
            let (lock, users) = map.entry(*key).or_default();
            *users += 1;
            Arc::clone(lock)
        };
        let place = Place {
            turns: Arc::clone(self),
            key: *key,
        };
        Turn {
            _guard: lock.lock_owned().await,
            _place: place,
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, Locks> {
        // Nothing panics while holding it; a poisoned map is still consistent.
        self.locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[cfg(test)]
    fn in_use(&self) -> usize {
        self.map().len()
    }
}

/// An attempt's place in line for one counter's lock.
struct Place {
    turns: Arc<Turns>,
    key: StoreKey,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut map = self.turns.map();
        if let Some((_, users)) = map.get_mut(&self.key) {
            *users -= 1;
            if *users == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// An attempt's turn on one counter; the next attempt's comes when it drops.
struct Turn {
    // Fields drop in order: the lock is released before the place is given up.
    _guard: OwnedMutexGuard<()>,
    _place: Place,
}

/// Counts attempts per subject in fixed windows, in a shared store.
///
/// Cheap to clone. See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct Throttle {
    name: Arc<str>,
    limit: u32,
    window: Duration,
    store: Arc<dyn SessionStore>,
    clock: Arc<dyn Clock>,
    turns: Arc<Turns>,
}

impl Throttle {
    /// A throttle called `name` (which keeps its counters apart from other
    /// throttles' in the same store) that allows `limit` attempts per subject
    /// per `window`.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidConfig`] when `limit` is zero, the window is
    /// shorter than a second, or `name` is empty.
    pub fn new(
        name: &str,
        limit: u32,
        window: Duration,
        store: Arc<dyn SessionStore>,
    ) -> Result<Self> {
        if limit == 0 || window < Duration::from_secs(1) || name.is_empty() {
            return Err(Error::invalid_config(format!(
                "throttle {name:?}: give a name, at least one attempt and a window of at \
                 least one second (got {limit} per {window:?})"
            )));
        }
        Ok(Self {
            name: name.into(),
            limit,
            window,
            store,
            clock: Arc::new(SystemClock),
            turns: Arc::default(),
        })
    }

    /// Use another clock (tests use [`ManualClock`](crate::ManualClock)).
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// This attempt's turn on counter `key`, waited for no longer than one
    /// store call: behind a store that hangs, queued attempts fail within two
    /// store timeouts (a 503) instead of each waiting for all the calls
    /// before it.
    async fn turn(&self, key: &StoreKey) -> Result<Turn> {
        self.timed(async { Ok(self.turns.take(key).await) }).await
    }

    fn key(&self, subject: &str) -> StoreKey {
        let mut h = Sha256::new();
        h.update(b"latch/v1/throttle\0");
        h.update(self.name.as_bytes());
        h.update(b"\0");
        h.update(subject.as_bytes());
        StoreKey::from_bytes(h.finalize().into())
    }

    /// Count one attempt by `subject` and say whether it may go ahead. A
    /// refused attempt is not counted (the window is not extended).
    ///
    /// # Errors
    /// A store failure or timeout ([`Error::is_unavailable`]); callers should
    /// then refuse the attempt (fail closed) with a 503.
    pub async fn hit(&self, subject: &str) -> Result<Verdict> {
        let key = self.key(subject);
        let _turn = self.turn(&key).await?;
        for _ in 0..MAX_ATTEMPTS {
            let now = self.clock.now();
            let current = self.timed(self.store.load(&key)).await?;
            let written = match current {
                Some(counter) if counter.expires_at > now => {
                    let count = count_of(&counter);
                    if count >= self.limit {
                        return Ok(self.throttled(counter.expires_at, now));
                    }
                    let mut next = counter.clone();
                    next.data.insert(COUNT_KEY.into(), (count + 1).into());
                    next.version = counter.version.saturating_add(1);
                    let saved = self.store.save(&key, &next, counter.version);
                    (self.timed(saved).await? == SaveOutcome::Saved).then_some(count + 1)
                }
                // No counter, or one whose window is over: a new window.
                stale => {
                    let fresh = self.new_window(now);
                    let written = match stale {
                        None => self.timed(self.store.create(&key, &fresh)).await?,
                        Some(old) => {
                            let mut fresh = fresh;
                            fresh.version = old.version.saturating_add(1);
                            let saved = self.store.save(&key, &fresh, old.version);
                            self.timed(saved).await? == SaveOutcome::Saved
                        }
                    };
                    written.then_some(1)
                }
            };
            if let Some(count) = written {
                return Ok(Verdict::Allowed {
                    remaining: self.limit - count,
                });
            }
        }
        // Others kept changing the counter: so many attempts at once are
        // themselves a reason to wait.
        let now = self.clock.now();
        Ok(self.throttled(now.saturating_add(secs(self.window)), now))
    }

    /// Whether an attempt by `subject` would be refused now, without counting
    /// one and without writing anything: a caller that checks every throttle
    /// an attempt goes through before [`hit`](Self::hit)ting any of them
    /// stores nothing for attempts refused anyway (a flood of them from ever
    /// new addresses at an account already locked must not leave a counter per
    /// address behind).
    ///
    /// # Errors
    /// A store failure or timeout.
    pub async fn check(&self, subject: &str) -> Result<Verdict> {
        let now = self.clock.now();
        Ok(
            match self.timed(self.store.load(&self.key(subject))).await? {
                Some(counter) if counter.expires_at > now => {
                    let count = count_of(&counter);
                    if count >= self.limit {
                        self.throttled(counter.expires_at, now)
                    } else {
                        Verdict::Allowed {
                            remaining: self.limit - count,
                        }
                    }
                }
                _ => Verdict::Allowed {
                    remaining: self.limit,
                },
            },
        )
    }

    /// Take back one attempt of `subject` counted by [`hit`](Self::hit) that
    /// did not happen after all (the server was too busy to check it): it
    /// must not count against the subject.
    ///
    /// A counter taken back to zero is deleted, so attempts that never
    /// happened leave nothing behind: a flood of them from ever new subjects
    /// (addresses, made-up account names) while every password hasher was
    /// busy had left two zero counters per request, enough to fill a bounded
    /// store in seconds. The delete is unconditional (stores have no
    /// compare-and-delete): an attempt counted by another process between
    /// this one's read and its delete is forgotten, an undercount of one
    /// that needs two processes racing on one subject.
    ///
    /// # Errors
    /// A store failure or timeout.
    pub async fn release(&self, subject: &str) -> Result<()> {
        let key = self.key(subject);
        let _turn = self.turn(&key).await?;
        for _ in 0..MAX_ATTEMPTS {
            let Some(counter) = self.timed(self.store.load(&key)).await? else {
                return Ok(());
            };
            let count = count_of(&counter);
            if count == 0 || counter.expires_at <= self.clock.now() {
                return Ok(());
            }
            if count == 1 {
                return self.timed(self.store.delete(&key)).await.map(drop);
            }
            let mut next = counter.clone();
            next.data.insert(COUNT_KEY.into(), (count - 1).into());
            next.version = counter.version.saturating_add(1);
            let saved = self.store.save(&key, &next, counter.version);
            if self.timed(saved).await? != SaveOutcome::Conflict {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Forget `subject`'s attempts (after a successful sign-in, say).
    ///
    /// # Errors
    /// A store failure or timeout.
    pub async fn forgive(&self, subject: &str) -> Result<()> {
        self.timed(self.store.delete(&self.key(subject)))
            .await
            .map(drop)
    }

    fn new_window(&self, now: UnixTime) -> Record {
        let mut record = Record::new(now);
        record.expires_at = now.saturating_add(secs(self.window));
        record.version = 1;
        record.data.insert(COUNT_KEY.into(), 1.into());
        record
    }

    fn throttled(&self, until: UnixTime, now: UnixTime) -> Verdict {
        let wait = u64::try_from(until.saturating_sub(now)).unwrap_or(0).max(1);
        Verdict::Throttled {
            retry_after: Duration::from_secs(wait),
        }
    }

    async fn timed<T>(&self, fut: impl Future<Output = Result<T>>) -> Result<T> {
        tokio::time::timeout(STORE_TIMEOUT, fut)
            .await
            .unwrap_or_else(|_| {
                Err(Error::new(
                    ErrorKind::StoreTimeout,
                    format!(
                        "the throttle store did not answer within {} ms",
                        STORE_TIMEOUT.as_millis()
                    ),
                ))
            })
    }
}

fn count_of(counter: &Record) -> u32 {
    counter
        .data
        .get(COUNT_KEY)
        .and_then(serde_json::Value::as_u64)
        .map_or(u32::MAX, |n| u32::try_from(n).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ManualClock, MemoryStore};

    fn throttle(clock: &ManualClock) -> (Throttle, Arc<MemoryStore>) {
        let store = Arc::new(MemoryStore::new());
        let t = Throttle::new("t", 3, Duration::from_secs(60), store.clone())
            .expect("valid")
            .with_clock(clock.clone());
        (t, store)
    }

    #[tokio::test]
    async fn refuses_past_the_limit_until_the_window_ends() {
        let clock = ManualClock::new(1_000);
        let (t, _) = throttle(&clock);
        for remaining in [2, 1, 0] {
            assert_eq!(
                t.hit("a").await.expect("hit"),
                Verdict::Allowed { remaining }
            );
        }
        clock.advance(20);
        assert_eq!(
            t.hit("a").await.expect("hit"),
            Verdict::Throttled {
                retry_after: Duration::from_secs(40)
            }
        );
        clock.advance(40);
        assert_eq!(
            t.hit("a").await.expect("hit"),
            Verdict::Allowed { remaining: 2 }
        );
    }

    #[tokio::test]
    async fn subjects_and_throttles_are_counted_apart() {
        let clock = ManualClock::new(1_000);
        let (t, store) = throttle(&clock);
        let other = Throttle::new("u", 1, Duration::from_secs(60), store)
            .expect("valid")
            .with_clock(clock.clone());
        for _ in 0..3 {
            t.hit("a").await.expect("hit");
        }
        assert!(t.hit("a").await.expect("hit").is_throttled());
        assert!(!t.hit("b").await.expect("hit").is_throttled());
        assert!(!other.hit("a").await.expect("hit").is_throttled());
        t.forgive("a").await.expect("forgive");
        assert!(!t.hit("a").await.expect("hit").is_throttled());
    }

    /// A memory store that lets other tasks run before each call, so that
    /// parallel attempts interleave between reading and writing a counter.
    #[derive(Debug, Default)]
    struct Yielding(MemoryStore);

    #[async_trait::async_trait]
    impl SessionStore for Yielding {
        async fn create(&self, key: &StoreKey, record: &Record) -> Result<bool> {
            tokio::task::yield_now().await;
            self.0.create(key, record).await
        }
        async fn load(&self, key: &StoreKey) -> Result<Option<Record>> {
            tokio::task::yield_now().await;
            self.0.load(key).await
        }
        async fn save(
            &self,
            key: &StoreKey,
            record: &Record,
            expected: u64,
        ) -> Result<SaveOutcome> {
            tokio::task::yield_now().await;
            self.0.save(key, record, expected).await
        }
        async fn touch(
            &self,
            key: &StoreKey,
            user: Option<&str>,
            last_seen: UnixTime,
            expires_at: UnixTime,
        ) -> Result<bool> {
            self.0.touch(key, user, last_seen, expires_at).await
        }
        async fn delete(&self, key: &StoreKey) -> Result<bool> {
            self.0.delete(key).await
        }
    }

    #[tokio::test]
    async fn a_burst_of_parallel_attempts_is_refused_only_past_the_limit() {
        // What the black-box attack saw: 30 parallel requests from one
        // address, far below the limit, and some refused.
        let clock = ManualClock::new(1_000);
        let t = Throttle::new(
            "t",
            40,
            Duration::from_secs(60),
            Arc::new(Yielding::default()),
        )
        .expect("valid")
        .with_clock(clock.clone());
        let burst = |n| futures_util::future::join_all((0..n).map(|_| t.hit("a")));
        let first = burst(30).await;
        assert!(
            first
                .iter()
                .all(|v| !v.as_ref().expect("hit").is_throttled()),
            "refused below the limit"
        );
        let second = burst(30).await;
        let allowed = second
            .iter()
            .filter(|v| !v.as_ref().expect("hit").is_throttled())
            .count();
        assert_eq!(allowed, 10, "exactly the limit in all");
    }

    /// A store whose every call hangs.
    #[derive(Debug)]
    struct Hanging;

    #[async_trait::async_trait]
    impl SessionStore for Hanging {
        async fn create(&self, _: &StoreKey, _: &Record) -> Result<bool> {
            std::future::pending().await
        }
        async fn load(&self, _: &StoreKey) -> Result<Option<Record>> {
            std::future::pending().await
        }
        async fn save(&self, _: &StoreKey, _: &Record, _: u64) -> Result<SaveOutcome> {
            std::future::pending().await
        }
        async fn touch(
            &self,
            _: &StoreKey,
            _: Option<&str>,
            _: UnixTime,
            _: UnixTime,
        ) -> Result<bool> {
            std::future::pending().await
        }
        async fn delete(&self, _: &StoreKey) -> Result<bool> {
            std::future::pending().await
        }
    }

    #[tokio::test]
    async fn attempts_queued_behind_a_hanging_store_fail_together() {
        // Taking turns must not turn one store timeout into one per
        // attempt queued: six attempts fail within two timeouts (a wait for
        // the turn, then at most one store call: 4 s), not one after another
        // (12 s).
        let t = Throttle::new("t", 40, Duration::from_secs(60), Arc::new(Hanging)).expect("valid");
        let started = std::time::Instant::now();
        let all = futures_util::future::join_all((0..6).map(|_| t.hit("a"))).await;
        for verdict in all {
            let err = verdict.expect_err("a hanging store is an error");
            assert_eq!(*err.kind(), ErrorKind::StoreTimeout);
        }
        assert!(
            started.elapsed() < Duration::from_secs(7),
            "queued attempts waited {:?}",
            started.elapsed()
        );
    }

    /// A store that hangs on every counter but one, which it keeps in memory.
    #[derive(Debug)]
    struct HangingBut(StoreKey, MemoryStore);

    #[async_trait::async_trait]
    impl SessionStore for HangingBut {
        async fn create(&self, key: &StoreKey, record: &Record) -> Result<bool> {
            if *key != self.0 {
                std::future::pending::<()>().await;
            }
            self.1.create(key, record).await
        }
        async fn load(&self, key: &StoreKey) -> Result<Option<Record>> {
            if *key != self.0 {
                std::future::pending::<()>().await;
            }
            self.1.load(key).await
        }
        async fn save(&self, key: &StoreKey, record: &Record, version: u64) -> Result<SaveOutcome> {
            self.1.save(key, record, version).await
        }
        async fn touch(
            &self,
            key: &StoreKey,
            user: Option<&str>,
            seen: UnixTime,
            expires: UnixTime,
        ) -> Result<bool> {
            self.1.touch(key, user, seen, expires).await
        }
        async fn delete(&self, key: &StoreKey) -> Result<bool> {
            self.1.delete(key).await
        }
    }

    #[tokio::test]
    async fn attempts_on_other_subjects_never_hold_up_a_subjects_turn() {
        // The attack on the fixed lanes this replaced: subjects picked so that
        // their counters fell in the victim's lane (the first key byte mod 64),
        // their attempts stuck behind a slow store, kept the victim's attempt
        // waiting until it failed with a store timeout (a 503).
        let probe = Throttle::new(
            "sign-in",
            5,
            Duration::from_secs(60),
            Arc::new(MemoryStore::new()),
        )
        .expect("valid");
        let victim = probe.key("victim");
        let lane = |key: &StoreKey| key.as_bytes()[0] % 64;
        let attackers: Vec<String> = (0..)
            .map(|i| format!("attacker-{i}"))
            .filter(|s| lane(&probe.key(s)) == lane(&victim))
            .take(8)
            .collect();
        let store = Arc::new(HangingBut(victim, MemoryStore::new()));
        let t = Throttle::new("sign-in", 5, Duration::from_secs(60), store).expect("valid");
        let flood: Vec<_> = attackers
            .iter()
            .map(|s| {
                let (t, s) = (t.clone(), s.clone());
                tokio::spawn(async move { t.hit(&s).await })
            })
            .collect();
        tokio::task::yield_now().await;
        let verdict = tokio::time::timeout(Duration::from_millis(500), t.hit("victim"))
            .await
            .expect("the victim's attempt waited behind other subjects'")
            .expect("hit");
        assert_eq!(verdict, Verdict::Allowed { remaining: 4 });
        for attempt in flood {
            attempt.abort();
            assert!(attempt.await.expect_err("aborted").is_cancelled());
        }
        assert_eq!(
            t.turns.in_use(),
            0,
            "a counter's lock outlived its attempts"
        );
    }

    #[tokio::test]
    async fn a_counters_lock_goes_with_its_last_attempt_even_one_given_up() {
        let store = Arc::new(HangingBut(
            StoreKey::from_bytes([0; 32]),
            MemoryStore::new(),
        ));
        let t = Throttle::new("t", 5, Duration::from_secs(60), store).expect("valid");
        // One attempt holds the turn (its store call hangs), two wait for it;
        // all three are given up (a client that went away).
        let attempts: Vec<_> = (0..3)
            .map(|_| {
                let t = t.clone();
                tokio::spawn(async move { t.hit("a").await })
            })
            .collect();
        tokio::task::yield_now().await;
        assert_eq!(t.turns.in_use(), 1);
        for attempt in attempts {
            attempt.abort();
            assert!(attempt.await.expect_err("aborted").is_cancelled());
        }
        assert_eq!(t.turns.in_use(), 0);
        // Attempts that finish leave nothing behind either.
        let mem = Throttle::new(
            "t",
            5,
            Duration::from_secs(60),
            Arc::new(MemoryStore::new()),
        )
        .expect("valid");
        futures_util::future::join_all(
            (0..10).map(|i| mem.hit(if i % 2 == 0 { "a" } else { "b" })),
        )
        .await;
        assert_eq!(mem.turns.in_use(), 0);
    }

    #[tokio::test]
    async fn checking_counts_nothing_and_stores_nothing() {
        let clock = ManualClock::new(1_000);
        let (t, store) = throttle(&clock);
        for _ in 0..5 {
            assert_eq!(
                t.check("a").await.expect("check"),
                Verdict::Allowed { remaining: 3 }
            );
        }
        assert!(store.is_empty(), "a check wrote a counter");
        t.hit("a").await.expect("hit");
        assert_eq!(
            t.check("a").await.expect("check"),
            Verdict::Allowed { remaining: 2 }
        );
        t.hit("a").await.expect("hit");
        t.hit("a").await.expect("hit");
        clock.advance(20);
        assert_eq!(
            t.check("a").await.expect("check"),
            Verdict::Throttled {
                retry_after: Duration::from_secs(40)
            }
        );
        assert_eq!(store.len(), 1);
        clock.advance(40);
        assert_eq!(
            t.check("a").await.expect("check"),
            Verdict::Allowed { remaining: 3 }
        );
    }

    #[tokio::test]
    async fn a_released_attempt_does_not_count() {
        let clock = ManualClock::new(1_000);
        let (t, store) = throttle(&clock);
        for _ in 0..3 {
            t.hit("a").await.expect("hit");
            t.release("a").await.expect("release");
        }
        assert_eq!(
            t.hit("a").await.expect("hit"),
            Verdict::Allowed { remaining: 2 }
        );
        t.release("nobody").await.expect("nothing to release");
        // Released attempts of many subjects leave no counter behind.
        t.release("a").await.expect("release");
        for i in 0..100 {
            let subject = format!("s{i}");
            t.hit(&subject).await.expect("hit");
            t.release(&subject).await.expect("release");
        }
        assert!(store.is_empty(), "{} counters left", store.len());
        // A counter with other attempts in it keeps them.
        t.hit("b").await.expect("hit");
        t.hit("b").await.expect("hit");
        t.release("b").await.expect("release");
        assert_eq!(
            t.check("b").await.expect("check"),
            Verdict::Allowed { remaining: 2 }
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_attempts_never_exceed_the_limit() {
        let store = Arc::new(MemoryStore::new());
        let t = Throttle::new("t", 5, Duration::from_secs(60), store).expect("valid");
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let t = t.clone();
                tokio::spawn(async move { t.hit("a").await.expect("hit") })
            })
            .collect();
        let mut allowed = 0;
        for task in tasks {
            allowed += usize::from(!task.await.expect("task").is_throttled());
        }
        assert_eq!(allowed, 5);
    }

    #[test]
    fn bad_settings_are_refused() {
        let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
        assert!(Throttle::new("t", 0, Duration::from_secs(60), store.clone()).is_err());
        assert!(Throttle::new("t", 1, Duration::from_millis(10), store.clone()).is_err());
        assert!(Throttle::new("", 1, Duration::from_secs(1), store).is_err());
    }
}
