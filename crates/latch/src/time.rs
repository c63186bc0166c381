//! Clocks and the expiry policy the server enforces.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, ErrorKind, Result};

/// Seconds since the Unix epoch; all session times use it.
pub type UnixTime = i64;

/// The largest lifetime browsers keep a cookie for (RFC 6265bis, 400 days).
pub const MAX_COOKIE_LIFETIME: Duration = Duration::from_secs(400 * 24 * 3600);

/// A source of the current time, so expiry can be tested to the second.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// The current time in whole seconds since the Unix epoch.
    fn now(&self) -> UnixTime;

    /// The current time in milliseconds since the Unix epoch, for ordering
    /// events finer than a second (revocations and sign-ins of cookie
    /// sessions). Defaults to [`now`](Self::now) in milliseconds.
    fn now_millis(&self) -> i64 {
        self.now().saturating_mul(1000)
    }
}

/// The real wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }

    fn now_millis(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// A clock that only moves when told to: for tests of expiry.
///
/// Clones share the same time. It keeps milliseconds, so tests can also
/// order events within one second.
///
/// # Example
/// ```
/// use latch::{Clock, ManualClock};
///
/// let clock = ManualClock::new(1_000);
/// clock.advance(30);
/// assert_eq!(clock.now(), 1_030);
/// clock.advance_millis(1_500);
/// assert_eq!((clock.now(), clock.now_millis()), (1_031, 1_031_500));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock stopped at `now` (seconds).
    pub fn new(now: UnixTime) -> Self {
        Self(Arc::new(AtomicI64::new(now.saturating_mul(1000))))
    }

    /// Move the clock forward by `secs` seconds.
    pub fn advance(&self, secs: i64) {
        self.advance_millis(secs.saturating_mul(1000));
    }

    /// Move the clock forward by `millis` milliseconds.
    pub fn advance_millis(&self, millis: i64) {
        self.0.fetch_add(millis, Ordering::SeqCst);
    }

    /// Set the clock to `now` (seconds).
    pub fn set(&self, now: UnixTime) {
        self.0.store(now.saturating_mul(1000), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixTime {
        self.now_millis().div_euclid(1000)
    }

    fn now_millis(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Idle and absolute timeouts, enforced together by the server.
///
/// A session is valid while `now < last_seen + idle` **and**
/// `now < created + absolute`; at either boundary second it is expired. "Remember
/// me" sessions use their own, usually longer, pair and get a persistent cookie.
///
/// To spare the store a write on every request, `last_seen` is refreshed only once
/// it is `touch_interval` old, so the effective idle timeout can be shorter than
/// configured by up to that interval, never longer.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use latch::Expiry;
///
/// let expiry = Expiry::default().idle(Duration::from_secs(15 * 60));
/// assert_eq!(expiry.idle_timeout(false), Duration::from_secs(900));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    idle: Duration,
    absolute: Duration,
    remember_idle: Duration,
    remember_absolute: Duration,
    touch_interval: Duration,
}

impl Default for Expiry {
    /// 30 minutes idle, 12 hours absolute; remember-me 7 days idle, 30 days
    /// absolute; `last_seen` refreshed at most once a minute.
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(30 * 60),
            absolute: Duration::from_secs(12 * 3600),
            remember_idle: Duration::from_secs(7 * 24 * 3600),
            remember_absolute: Duration::from_secs(30 * 24 * 3600),
            touch_interval: Duration::from_secs(60),
        }
    }
}

impl Expiry {
    /// Set the idle timeout of ordinary sessions.
    #[must_use]
    pub fn idle(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    /// Set the absolute timeout of ordinary sessions.
    #[must_use]
    pub fn absolute(mut self, absolute: Duration) -> Self {
        self.absolute = absolute;
        self
    }

    /// Set the idle timeout of remember-me sessions.
    #[must_use]
    pub fn remember_idle(mut self, idle: Duration) -> Self {
        self.remember_idle = idle;
        self
    }

    /// Set the absolute timeout of remember-me sessions (at most 400 days).
    #[must_use]
    pub fn remember_absolute(mut self, absolute: Duration) -> Self {
        self.remember_absolute = absolute;
        self
    }

    /// Set how old `last_seen` may get before a read refreshes it.
    #[must_use]
    pub fn touch_interval(mut self, interval: Duration) -> Self {
        self.touch_interval = interval;
        self
    }

    /// The idle timeout for a session that is (`remember`) or is not remembered.
    pub fn idle_timeout(&self, remember: bool) -> Duration {
        if remember {
            self.remember_idle
        } else {
            self.idle
        }
    }

    /// The absolute timeout for a session that is (`remember`) or is not remembered.
    pub fn absolute_timeout(&self, remember: bool) -> Duration {
        if remember {
            self.remember_absolute
        } else {
            self.absolute
        }
    }

    /// How old `last_seen` may get before a read refreshes it.
    pub fn touch_every(&self) -> Duration {
        self.touch_interval
    }

    /// Check the policy; called when the configuration is built.
    pub(crate) fn validate(&self) -> Result<()> {
        let pairs = [
            ("idle timeout", self.idle),
            ("absolute timeout", self.absolute),
            ("remember-me idle timeout", self.remember_idle),
            ("remember-me absolute timeout", self.remember_absolute),
        ];
        if let Some((name, _)) = pairs.iter().find(|(_, d)| d.as_secs() == 0) {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!("the {name} must be at least one second"),
            ));
        }
        if self.idle > self.absolute || self.remember_idle > self.remember_absolute {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "an idle timeout longer than its absolute timeout never applies; \
                 set idle <= absolute",
            ));
        }
        if self.remember_absolute > MAX_COOKIE_LIFETIME || self.absolute > MAX_COOKIE_LIFETIME {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "cookie Max-Age above 400 days is refused: browsers cap cookie lifetime at \
                 400 days (RFC 6265bis); set the absolute timeout to 400 days or less",
            ));
        }
        if self.touch_interval >= self.idle.min(self.remember_idle) {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "the touch interval ({} s) must be shorter than both idle timeouts \
                     (ordinary {} s, remember-me {} s), or sessions in use would expire; a \
                     tenth of the shorter idle timeout is a good value",
                    self.touch_interval.as_secs(),
                    self.idle.as_secs(),
                    self.remember_idle.as_secs()
                ),
            ));
        }
        Ok(())
    }
}

/// Whole seconds of `d`, as a signed time span.
pub(crate) fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_is_valid() {
        assert!(Expiry::default().validate().is_ok());
    }

    #[test]
    fn over_400_days_refused_with_reason() {
        let e = Expiry::default().remember_absolute(Duration::from_secs(401 * 24 * 3600));
        let err = e.validate().unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cookie Max-Age above 400 days is refused")
        );
        let ok = Expiry::default().remember_absolute(MAX_COOKIE_LIFETIME);
        assert!(ok.validate().is_ok());
    }

    #[test]
    fn touch_interval_must_be_shorter_than_the_remember_me_idle_timeout_too() {
        // Remember-me sessions would expire while in use: a read within the
        // touch interval does not refresh `last_seen`.
        let e = Expiry::default()
            .remember_idle(Duration::from_secs(60))
            .remember_absolute(Duration::from_secs(3600));
        let err = e.validate().unwrap_err();
        assert!(err.to_string().contains("remember-me 60 s"), "{err}");
        let ok = e.touch_interval(Duration::from_secs(6));
        assert!(ok.validate().is_ok());
    }

    #[test]
    fn idle_longer_than_absolute_refused() {
        let e = Expiry::default().idle(Duration::from_secs(13 * 3600));
        assert_eq!(e.validate().unwrap_err().kind(), &ErrorKind::InvalidConfig);
    }
}
