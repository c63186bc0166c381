//! Flask's signed session cookie (`SecureCookieSessionInterface`) as a latch
//! [`CookieFormat`].

mod payload;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use latch::codec::{CookieFormat, DecodedCookie, MAX_COOKIE_BYTES, Rejected};
use latch::{Clock, Expiry, Record, SessionManagerBuilder, SystemClock, UnixTime};

use crate::signing::{self, DerivedKey};

/// Flask's salt for session cookies.
const SALT: &[u8] = b"cookie-session";

/// Flask's default `PERMANENT_SESSION_LIFETIME`: 31 days.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(31 * 24 * 3600);

/// Flask 3.1's session cookie, read and written byte for byte as Flask does.
///
/// The value is `payload.timestamp.signature`: the session dict as Flask's tagged
/// JSON (compact, sorted keys, ASCII), zlib-compressed and marked with a leading
/// `.` when that is at least two bytes shorter, unpadded base64url; the issue time
/// as an itsdangerous timestamp; HMAC-SHA1 under `HMAC-SHA1(SECRET_KEY,
/// "cookie-session")`.
///
/// Reading applies Flask's rules exactly: a cookie older than `max_age`
/// (`PERMANENT_SESSION_LIFETIME`) is refused (`age > max_age`; a cookie exactly
/// `max_age` old is accepted), and so is one from the future. A cookie signed
/// with one of `SECRET_KEY_FALLBACKS` is accepted and re-issued under the
/// current key. Every defect gives the same [`Rejected`], after the signature is
/// checked and before anything is parsed.
///
/// `_permanent` becomes [`Record::remember`] and Flask-Login's `_user_id` becomes
/// [`Record::user_id`]; other values stay in tagged JSON (see [`crate::tagged`]).
///
/// The Flask key must be as strong as latch requires of its own keys: with a
/// weak one (Flask's tutorial key `dev`, or an empty one), anyone can forge a
/// cookie that both apps take for any user. A weak *old* key can still verify
/// cookies during a migration to a strong one, by the loudly named
/// [`insecure_weak_fallbacks`](Self::insecure_weak_fallbacks); new cookies are
/// then always signed with the strong key.
///
/// # Example
/// ```
/// use latch::ManualClock;
/// use latch::codec::CookieFormat;
/// use latch_flask::FlaskCookieFormat;
///
/// let format = FlaskCookieFormat::new("q4Sv0tLc2bX7nE9rWm1kYpJd8hGz3aFu6oTiQeRs5xVyNj0B")?
///     .clock(ManualClock::new(1_700_000_000));
/// let mut record = latch::Record::new(1_700_000_000);
/// record.data.insert("user".into(), "alice".into());
/// let value = format.encode("session", &record, 1_700_000_000)?;
/// assert!(value.starts_with("eyJ1c2VyIjoiYWxpY2UifQ.ZVPxAA."));
/// let decoded = format.decode("session", &value).unwrap();
/// assert_eq!(decoded.record.data["user"], "alice");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct FlaskCookieFormat {
    /// The current key first, then the fallbacks newest first (itsdangerous'
    /// order of trial).
    keys: Vec<DerivedKey>,
    /// Made by [`verify_only`](Self::verify_only): encoding is refused.
    verify_only: bool,
    max_age: Duration,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for FlaskCookieFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlaskCookieFormat")
            .field("keys", &self.keys.len())
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl FlaskCookieFormat {
    /// The format for a Flask app whose `SECRET_KEY` is `secret_key` (a Python
    /// `str` key is its UTF-8 bytes), with Flask's default 31-day lifetime.
    ///
    /// # Errors
    /// [`latch::ErrorKind::InvalidConfig`] when the key is weak by latch's
    /// rules (see [`latch::SecretKey::from_bytes`]); the message says how to
    /// rotate it without signing anybody out.
    ///
    /// # Example
    /// ```
    /// use latch_flask::FlaskCookieFormat;
    ///
    /// let err = FlaskCookieFormat::new("dev").unwrap_err();
    /// assert!(err.to_string().contains("too weak to sign sessions with"));
    /// ```
    pub fn new(secret_key: impl AsRef<[u8]>) -> latch::Result<Self> {
        signing::require_strong(secret_key.as_ref(), "SECRET_KEY")?;
        Ok(Self {
            keys: vec![DerivedKey::new(secret_key.as_ref(), SALT, "SECRET_KEY")],
            verify_only: false,
            max_age: DEFAULT_MAX_AGE,
            clock: Arc::new(SystemClock),
        })
    }

    /// A format that only reads cookies, signed with `current` or one of
    /// `fallbacks` (oldest first), whatever their strength: for tools that
    /// inspect a Flask app's cookies (`latch inspect`). It never signs:
    /// [`encode`](CookieFormat::encode) fails.
    pub fn verify_only<K: AsRef<[u8]>>(
        current: impl AsRef<[u8]>,
        fallbacks: impl IntoIterator<Item = K>,
    ) -> Self {
        let mut format = Self {
            keys: vec![DerivedKey::quiet(current.as_ref(), SALT)],
            verify_only: true,
            max_age: DEFAULT_MAX_AGE,
            clock: Arc::new(SystemClock),
        };
        let fallbacks: Vec<K> = fallbacks.into_iter().collect();
        for key in fallbacks.iter().rev() {
            format.keys.push(DerivedKey::quiet(key.as_ref(), SALT));
        }
        format
    }

    /// Also accept cookies signed with these keys: Flask's
    /// `SECRET_KEY_FALLBACKS`, in the order of the Flask setting (oldest first).
    /// Cookies verified by a fallback are re-issued under the current key.
    ///
    /// # Errors
    /// A weak key, refused as by [`new`](Self::new) (see
    /// [`insecure_weak_fallbacks`](Self::insecure_weak_fallbacks)).
    ///
    /// # Example
    /// ```
    /// use latch::codec::CookieFormat;
    /// use latch_flask::FlaskCookieFormat;
    ///
    /// let old_key = "B7tWq2Lr9XcN4vKe1HsZ8mPa0yFj6GdU3oRiTb5EwQnYx2Ck";
    /// let new_key = "hV3sN8qLw1Zp6TcR0yMk4XeJ9bGa2UdF7oKi5BnWr3QtYx8E";
    /// let old = FlaskCookieFormat::new(old_key)?;
    /// let value = old.encode("session", &latch::Record::new(0), latch::SystemClock.now())?;
    /// # use latch::Clock;
    /// let new = FlaskCookieFormat::new(new_key)?.fallbacks([old_key])?;
    /// assert_eq!(new.decode("session", &value).unwrap().key_index, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn fallbacks<K: AsRef<[u8]>>(
        mut self,
        keys: impl IntoIterator<Item = K>,
    ) -> latch::Result<Self> {
        let keys: Vec<K> = keys.into_iter().collect();
        for (i, key) in keys.iter().enumerate().rev() {
            let which = format!("SECRET_KEY_FALLBACKS[{i}]");
            signing::require_strong(key.as_ref(), &which)?;
            self.keys.push(DerivedKey::new(key.as_ref(), SALT, &which));
        }
        Ok(self)
    }

    /// Also accept cookies signed with these *weak* keys (oldest first), for a
    /// migration away from them: anyone who guesses such a key can forge a
    /// cookie that this app accepts until the key is removed. Cookies verified
    /// by one are re-issued under the strong current key. Logs a warning at
    /// start-up naming the risk; remove the keys once the old cookies have
    /// expired (Flask's `PERMANENT_SESSION_LIFETIME`).
    ///
    /// # Example
    /// ```
    /// use latch_flask::FlaskCookieFormat;
    ///
    /// let format = FlaskCookieFormat::new("hV3sN8qLw1Zp6TcR0yMk4XeJ9bGa2UdF7oKi5BnWr3QtYx8E")?
    ///     .insecure_weak_fallbacks(["dev"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn insecure_weak_fallbacks<K: AsRef<[u8]>>(
        mut self,
        keys: impl IntoIterator<Item = K>,
    ) -> Self {
        let keys: Vec<K> = keys.into_iter().collect();
        for (i, key) in keys.iter().enumerate().rev() {
            tracing::warn!(
                key = format!("insecure_weak_fallbacks[{i}]"),
                "Flask cookies signed with a weak key are accepted (and re-issued under the \
                 strong key): anyone who guesses that key can sign in as any user until it \
                 is removed; remove it once the old cookies have expired"
            );
            self.keys.push(DerivedKey::quiet(key.as_ref(), SALT));
        }
        self
    }

    /// Flask's `PERMANENT_SESSION_LIFETIME` (whole seconds count, as in Flask).
    #[must_use]
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// The clock for the age check (use the manager's clock in tests).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// An [`Expiry`] that never cuts in before this format's own Flask rule: see
    /// [`flask_expiry`](crate::flask_expiry).
    ///
    /// # Errors
    /// [`latch::ErrorKind::InvalidConfig`] for a lifetime of 400 days or more.
    pub fn expiry(&self) -> latch::Result<Expiry> {
        crate::flask_expiry(self.max_age)
    }

    /// Configure `builder` for Flask cookies: this format and its [`expiry`](Self::expiry).
    /// Set the cookie's name (Flask's `SESSION_COOKIE_NAME`, default `session`)
    /// with [`SessionManagerBuilder::cookie`].
    ///
    /// # Errors
    /// As [`expiry`](Self::expiry).
    ///
    /// # Example
    /// ```
    /// use latch::{CookieConfig, SessionManager};
    /// use latch_flask::FlaskCookieFormat;
    ///
    /// let manager = FlaskCookieFormat::new("q4Sv0tLc2bX7nE9rWm1kYpJd8hGz3aFu6oTiQeRs5xVyNj0B")?
    ///     .configure(SessionManager::builder())?
    ///     .cookie(CookieConfig::builder().name("session").build()?)
    ///     .build()?;
    /// assert_eq!(manager.cookie_config().name(), "session");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn configure(self, builder: SessionManagerBuilder) -> latch::Result<SessionManagerBuilder> {
        let expiry = self.expiry()?;
        Ok(builder.expiry(expiry).cookie_format(self))
    }

    /// itsdangerous' rule: refused when `age > max_age` or `age < 0`.
    fn check_age(&self, issued: UnixTime) -> Result<(), Rejected> {
        let age = self.clock.now().saturating_sub(issued);
        let max_age = i64::try_from(self.max_age.as_secs()).unwrap_or(i64::MAX);
        if age > max_age {
            return Err(Rejected::new("expired Flask session cookie"));
        }
        if age < 0 {
            return Err(Rejected::new("Flask session cookie from the future"));
        }
        Ok(())
    }
}

impl CookieFormat for FlaskCookieFormat {
    fn encode(&self, _cookie_name: &str, record: &Record, now: UnixTime) -> latch::Result<String> {
        if self.verify_only {
            return Err(latch::Error::invalid_config(
                "a verify-only Flask cookie format cannot sign cookies",
            ));
        }
        let json = payload::session_json(record)?;
        let now = u64::try_from(now)
            .map_err(|_| latch::Error::invalid_config("the clock is before 1970"))?;
        let signed = format!(
            "{}.{}",
            payload::encode(json.as_bytes()),
            signing::encode_timestamp(now)
        );
        // OK to index: `new` always puts the current key first.
        Ok(self.keys[0].sign(&signed))
    }

    fn decode(&self, cookie_name: &str, value: &str) -> Result<DecodedCookie, Rejected> {
        if cookie_name.len() + value.len() > MAX_COOKIE_BYTES {
            return Err(Rejected::new("oversized"));
        }
        let (signed, key_index) = signing::unsign(&self.keys, value)?;
        // Authentic from here on: only now is anything parsed.
        let (payload, timestamp) = signed
            .rsplit_once('.')
            .ok_or(Rejected::new("timestamp missing"))?;
        let issued = signing::decode_timestamp(timestamp)?;
        self.check_age(issued)?;
        let record = payload::decode(payload, issued)?;
        Ok(DecodedCookie {
            record,
            key_index,
            outdated: false,
        })
    }

    fn reserved_keys(&self) -> &'static [&'static str] {
        crate::mapping::FLASK_KEYS
    }

    fn prepare_value(&self, value: serde_json::Value) -> latch::Result<serde_json::Value> {
        crate::mapping::prepare_value(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latch::ManualClock;
    use serde_json::{Value, json};

    /// Known vectors made by Flask 3.1.3 / itsdangerous 2.2.0 with
    /// tests/python/flask_helper.py make-cookie, SECRET_KEY "known-vector-key",
    /// signing time 1_700_000_000.
    const FLASK_PLAIN: &str =
        "eyJfcGVybWFuZW50Ijp0cnVlLCJ1c2VyIjoiYWxpY2UifQ.ZVPxAA.xtD7Fx1q0vAk2AAmQt4iwmKOgOw";
    const FLASK_COMPRESSED: &str = ".eJx9jLEKAjEMhl8l_HOHpCoeQQUnJ9FBcBA5evaQG6xLnY6-u7nerBm-JD9fMqKDjiAj9udmi-IQa2LEtY-OvNDpkcmzrIjX6htlpsPxMqn9rA615baFSrH4VXcjNt1u8tI7m4rwDEOikCL9nOCQ52_QmzgE3O3-UyMj-E-JXyxRyhciBDct.ZVPxAA.mHjH7k-dZ6AD-CQPl8WCYNeqcjQ";
    const T: i64 = 1_700_000_000;

    fn format() -> FlaskCookieFormat {
        FlaskCookieFormat::verify_only("known-vector-key", [""; 0]).clock(ManualClock::new(T))
    }

    /// Writes with the weak known-vector key, which only a test may do.
    fn writer() -> FlaskCookieFormat {
        FlaskCookieFormat {
            verify_only: false,
            ..format()
        }
    }

    fn compressed_data() -> Value {
        json!({
            "t": {" t": [1, "a"]}, "b": {" b": "AP8="}, "m": {" m": "<b>"},
            "u": {" u": "00000000000000000000000000001234"},
            "d": {" d": "Wed, 21 Oct 2015 07:28:00 GMT"}, "e": {" di": {" t__": 1}},
            "note": "again and again and again and again"
        })
    }

    fn record(data: &Value) -> Record {
        let mut record = Record::new(T);
        for (k, v) in data.as_object().unwrap() {
            record.data.insert(k.clone(), v.clone());
        }
        record
    }

    #[test]
    fn reads_flask_vectors() {
        let plain = format().decode("session", FLASK_PLAIN).unwrap();
        assert!(plain.record.remember);
        assert_eq!(plain.record.data["user"], "alice");
        let compressed = format().decode("session", FLASK_COMPRESSED).unwrap();
        let data: Value = compressed.record.data.clone().into_iter().collect();
        assert_eq!(data, compressed_data());
    }

    #[test]
    fn writes_flask_vectors_byte_for_byte() {
        let mut plain = record(&json!({"user": "alice"}));
        plain.remember = true;
        assert_eq!(writer().encode("session", &plain, T).unwrap(), FLASK_PLAIN);
        let compressed = record(&compressed_data());
        assert_eq!(
            writer().encode("session", &compressed, T).unwrap(),
            FLASK_COMPRESSED
        );
        assert!(
            format().encode("session", &plain, T).is_err(),
            "verify-only"
        );
    }

    #[test]
    fn expiry_edges() {
        let at = |now| {
            FlaskCookieFormat::verify_only("known-vector-key", [""; 0])
                .max_age(Duration::from_secs(100))
                .clock(ManualClock::new(now))
                .decode("session", FLASK_PLAIN)
                .map(|_| ())
                .map_err(|e| e.reason())
        };
        assert_eq!(at(T + 100), Ok(()));
        assert_eq!(at(T + 101), Err("expired Flask session cookie"));
        assert_eq!(at(T - 1), Err("Flask session cookie from the future"));
    }

    #[test]
    fn every_mutation_is_rejected_without_panic() {
        let format = format();
        for cookie in [FLASK_PLAIN, FLASK_COMPRESSED] {
            for i in 0..cookie.len() {
                for flip in [1u8, 2, 4, 8, 16, 32, 64] {
                    let mut bytes = cookie.as_bytes().to_vec();
                    bytes[i] ^= flip;
                    let Ok(text) = String::from_utf8(bytes) else {
                        continue;
                    };
                    assert!(format.decode("session", &text).is_err(), "{text}");
                }
            }
        }
        let wrong_key =
            FlaskCookieFormat::verify_only("another-key", [""; 0]).clock(ManualClock::new(T));
        assert!(wrong_key.decode("session", FLASK_PLAIN).is_err());
        assert!(format.decode("session", &"A".repeat(5000)).is_err());
    }

    #[test]
    fn debug_shows_no_key() {
        let text = format!("{:?}", format());
        assert!(!text.contains("known-vector-key"), "{text}");
    }
}
