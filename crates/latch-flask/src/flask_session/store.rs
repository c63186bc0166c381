//! [`FlaskSessionStore`]: latch's store trait over Flask-Session's Redis layout.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latch::{Clock, Record, SaveOutcome, SessionStore, StoreKey, SystemClock, UnixTime};
use redis::aio::ConnectionManager;
use sha1::{Digest, Sha1};

use super::entry::{self, SerializationFormat};
use crate::cookie::DEFAULT_MAX_AGE;
use crate::mapping::{dict_from_record, record_from_dict};

/// Compare-and-swap on the stored bytes: Flask-Session keeps no version, so the
/// version is the first 15 hex digits (60 bits) of the value's SHA-1.
/// Returns 0 when the session is gone, 1 on a conflict, 2 when saved.
const SAVE_SCRIPT: &str = r"
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
if string.sub(redis.sha1hex(current), 1, 15) ~= ARGV[1] then return 1 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 2
";

/// The version of a stored value, as [`SAVE_SCRIPT`] computes it.
fn version_of(bytes: &[u8]) -> u64 {
    let digest = Sha1::digest(bytes);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) >> 4
}

/// Flask-Session 0.8's Redis sessions as a latch [`SessionStore`].
///
/// Each session is `SESSION_KEY_PREFIX + sid` → msgpack (or JSON) of the session
/// dict, expiring after `PERMANENT_SESSION_LIFETIME`, exactly as Flask-Session's
/// `RedisSessionInterface` writes it; use it with [`FlaskSessionIds`](crate::FlaskSessionIds),
/// which makes store keys the plain sids Flask-Session needs (so, as in
/// Flask-Session, ids are **not** hashed at rest).
///
/// Flask-Session stores only the dict: `_permanent` is [`Record::remember`],
/// `_user_id` is [`Record::user_id`], and the times come from the TTL
/// (`last_seen` is when the entry was last written, `expires_at` when Redis
/// drops it). Saves are compare-and-swap on the stored bytes. Flask-Session has
/// no per-user index, so this store has no [`latch::UserIndex`]: an app that
/// needs devices or "sign out everywhere" is refused at start-up
/// (`SessionManagerBuilder::require_user_index`). Redis expires entries
/// itself, so it needs no [`latch::ExpiredDeletion`] either. Entries in the pickle format of Flask-Session before 0.7 are refused
/// with an error, never unpickled.
///
/// # Example
/// ```no_run
/// use std::time::Duration;
/// use latch::{CookieConfig, SessionManager};
/// use latch_flask::{FlaskSessionIds, FlaskSessionStore, flask_expiry};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let lifetime = Duration::from_secs(31 * 24 * 3600); // PERMANENT_SESSION_LIFETIME
/// let store = FlaskSessionStore::builder()
///     .key_prefix("session:")
///     .lifetime(lifetime)
///     .connect("redis://127.0.0.1:6379/")
///     .await?;
/// let manager = SessionManager::builder()
///     .store(store)
///     .id_format(FlaskSessionIds::unsigned())
///     .expiry(flask_expiry(lifetime)?)
///     .cookie(CookieConfig::builder().name("session").build()?)
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct FlaskSessionStore {
    conn: ConnectionManager,
    prefix: String,
    lifetime: Duration,
    format: SerializationFormat,
    clock: Arc<dyn Clock>,
    save: Arc<redis::Script>,
}

impl fmt::Debug for FlaskSessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlaskSessionStore")
            .field("prefix", &self.prefix)
            .field("lifetime", &self.lifetime)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

/// Settings for [`FlaskSessionStore`], named after Flask-Session's.
#[derive(Debug)]
pub struct FlaskSessionStoreBuilder {
    prefix: String,
    lifetime: Duration,
    format: SerializationFormat,
    clock: Arc<dyn Clock>,
}

impl FlaskSessionStoreBuilder {
    /// `SESSION_KEY_PREFIX` (default `session:`).
    #[must_use]
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// `PERMANENT_SESSION_LIFETIME`, the TTL of every write (default 31 days).
    #[must_use]
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// `SESSION_SERIALIZATION_FORMAT` for writing (default msgpack).
    #[must_use]
    pub fn format(mut self, format: SerializationFormat) -> Self {
        self.format = format;
        self
    }

    /// The clock that turns TTLs into session times (tests use a manual one).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Connect to Redis at `url` (`redis://host:port/db`, or `rediss://` for
    /// TLS with the same `?cacert=`, `?cert=&key=` parameters as
    /// [`latch_redis::RedisStoreBuilder`]), or through Redis Sentinel
    /// (`redis+sentinel://host1:26379,host2:26379/master-name[/db]`, or
    /// `rediss+sentinel://` with those parameters).
    ///
    /// With Sentinel the store connects to the master the sentinels name at
    /// connect time ([`latch_redis::master_client`]) and stays with that
    /// address: it does not follow a failover, so after one its calls fail
    /// (or are refused by the demoted server) until the store is connected
    /// again. [`latch_redis::RedisStore`] follows failovers by itself.
    ///
    /// # Errors
    /// [`latch::ErrorKind::Store`] when Redis (or every sentinel) cannot be
    /// reached; [`latch::ErrorKind::InvalidConfig`] for a URL that is not
    /// valid, a master name no sentinel knows, or a lifetime under a second.
    pub async fn connect(self, url: &str) -> latch::Result<FlaskSessionStore> {
        if self.lifetime.as_secs() == 0 {
            return Err(latch::Error::invalid_config(
                "the Flask-Session lifetime must be at least one second",
            ));
        }
        let client = latch_redis::master_client(url).await?;
        let conn = client
            .get_connection_manager()
            .await
            .map_err(|e| latch::Error::store("cannot connect to Flask-Session's Redis", e))?;
        Ok(FlaskSessionStore {
            conn,
            prefix: self.prefix,
            lifetime: self.lifetime,
            format: self.format,
            clock: self.clock,
            save: Arc::new(redis::Script::new(SAVE_SCRIPT)),
        })
    }
}

impl FlaskSessionStore {
    /// Flask-Session's defaults: prefix `session:`, 31 days, msgpack.
    pub fn builder() -> FlaskSessionStoreBuilder {
        FlaskSessionStoreBuilder {
            prefix: "session:".to_owned(),
            lifetime: DEFAULT_MAX_AGE,
            format: SerializationFormat::default(),
            clock: Arc::new(SystemClock),
        }
    }

    /// The Redis key of a session: the prefix and the plain sid.
    fn redis_key(&self, key: &StoreKey) -> String {
        format!("{}{}", self.prefix, URL_SAFE_NO_PAD.encode(key.as_bytes()))
    }

    fn lifetime_secs(&self) -> i64 {
        i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX)
    }

    /// The TTL to write: Flask-Session's lifetime, never past the record's own
    /// deadline, and at least a second (Redis refuses 0).
    fn ttl(&self, expires_at: UnixTime) -> i64 {
        let left = expires_at.saturating_sub(self.clock.now());
        self.lifetime_secs().min(left).max(1)
    }

    fn encode(&self, record: &Record) -> latch::Result<Vec<u8>> {
        let dict = dict_from_record(record).map_err(crate::mapping::data_error)?;
        entry::encode(dict, self.format)
    }

    /// The record for a stored value with `pttl` milliseconds left.
    fn decode(&self, bytes: &[u8], pttl: i64) -> latch::Result<Record> {
        let dict = entry::decode(bytes)?;
        let now = self.clock.now();
        let lifetime = self.lifetime_secs();
        // No TTL (written by hand): treat it as written just now.
        let left = if pttl >= 0 {
            (pttl + 999) / 1000
        } else {
            lifetime
        };
        let written = now.saturating_add(left).saturating_sub(lifetime).min(now);
        let mut record = record_from_dict(dict, written).map_err(crate::mapping::data_error)?;
        record.expires_at = now.saturating_add(left);
        record.version = version_of(bytes);
        Ok(record)
    }
}

fn redis_error(what: &'static str) -> impl FnOnce(redis::RedisError) -> latch::Error {
    move |e| latch::Error::store(what, e)
}

#[async_trait]
impl SessionStore for FlaskSessionStore {
    async fn create(&self, key: &StoreKey, record: &Record) -> latch::Result<bool> {
        let bytes = self.encode(record)?;
        let set: Option<String> = redis::cmd("SET")
            .arg(self.redis_key(key))
            .arg(bytes)
            .arg("NX")
            .arg("EX")
            .arg(self.ttl(record.expires_at))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(redis_error("creating a Flask-Session session"))?;
        Ok(set.is_some())
    }

    async fn load(&self, key: &StoreKey) -> latch::Result<Option<Record>> {
        let redis_key = self.redis_key(key);
        let (bytes, pttl): (Option<Vec<u8>>, i64) = redis::pipe()
            .atomic()
            .get(&redis_key)
            .pttl(&redis_key)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(redis_error("loading a Flask-Session session"))?;
        bytes.map(|b| self.decode(&b, pttl)).transpose()
    }

    async fn save(
        &self,
        key: &StoreKey,
        record: &Record,
        expected_version: u64,
    ) -> latch::Result<SaveOutcome> {
        let bytes = self.encode(record)?;
        let outcome: i64 = self
            .save
            .key(self.redis_key(key))
            .arg(format!("{expected_version:015x}"))
            .arg(bytes)
            .arg(self.ttl(record.expires_at))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(redis_error("saving a Flask-Session session"))?;
        Ok(match outcome {
            0 => SaveOutcome::Gone,
            1 => SaveOutcome::Conflict,
            _ => SaveOutcome::Saved,
        })
    }

    async fn touch(
        &self,
        key: &StoreKey,
        _user_hint: Option<&str>,
        _last_seen: UnixTime,
        expires_at: UnixTime,
    ) -> latch::Result<bool> {
        let refreshed: i64 = redis::cmd("EXPIRE")
            .arg(self.redis_key(key))
            .arg(self.ttl(expires_at))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(redis_error("refreshing a Flask-Session session"))?;
        Ok(refreshed == 1)
    }

    async fn delete(&self, key: &StoreKey) -> latch::Result<bool> {
        let deleted: i64 = redis::cmd("DEL")
            .arg(self.redis_key(key))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(redis_error("deleting a Flask-Session session"))?;
        Ok(deleted > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_sixty_bits_of_sha1_hex() {
        // sha1("abc") = a9993e364706816aba3e25717850c26c9cd0d89d
        assert_eq!(format!("{:015x}", version_of(b"abc")), "a9993e364706816");
        assert!(version_of(b"abc") < 1 << 60);
    }
}
