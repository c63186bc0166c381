//! The session manager: configuration, and the framework-neutral request cycle
//! ([`SessionManager::start`] before the handler, [`SessionManager::finish`] after).
//!
//! Framework adapters (such as `latch-axum`) are thin: they hand the `Cookie`
//! headers to `start`, put the [`Session`] where handlers find it, and apply what
//! `finish` returns to the response.

mod finish;
mod load;
mod purge;
mod request;
pub(crate) mod revoke;
mod save;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;

pub use finish::Finished;
pub use purge::PurgeTask;
pub use request::{RawRequest, RequestMeta};

use crate::codec::{
    Aead, CookieFormat, HashedIds, IdFormat, LatchFormat, SealedCodec, SignedCodec,
};
use crate::cookie::{CookieConfig, find_session_cookie};
use crate::error::{Error, ErrorKind, Result};
use crate::id::StoreKey;
use crate::key::Keyring;
use crate::record::Record;
use crate::session::Session;
use crate::session::state::State;
use crate::store::{SessionInfo, SessionStore};
use crate::time::{Clock, Expiry, SystemClock};

/// The three kinds of session.
#[derive(Debug)]
pub(crate) enum Backend {
    /// The data travels in the cookie, signed or sealed.
    Cookie(Box<dyn CookieFormat>),
    /// The cookie holds an opaque ID; the data lives in a store.
    Store(Arc<dyn SessionStore>, Box<dyn IdFormat>),
}

/// Shared by the manager and every session it starts.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) backend: Backend,
    pub(crate) cookie: CookieConfig,
    pub(crate) expiry: Expiry,
    pub(crate) store_timeout: Duration,
    /// The largest record a server-side session may store, in bytes.
    pub(crate) max_record_bytes: usize,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) rejected: AtomicU64,
    /// Where revocation markers for cookie-only sessions live, if anywhere.
    pub(crate) revocations: Option<Arc<dyn SessionStore>>,
    /// The sessions this process is saving right now (see `save.rs`).
    pub(crate) save_shards: Box<[save::SaveShard]>,
}

impl Shared {
    /// The shard of the table of sessions being saved that holds `key`.
    pub(crate) fn save_shard(&self, key: &StoreKey) -> &save::SaveShard {
        &self.save_shards[usize::from(key.as_bytes()[0]) % self.save_shards.len()]
    }

    /// Run a store call under the configured timeout.
    pub(crate) async fn timed<T>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.store_timeout, fut).await {
            Ok(result) => result,
            Err(_) => Err(Error::new(
                ErrorKind::StoreTimeout,
                format!(
                    "session store did not answer within {} ms ({what})",
                    self.store_timeout.as_millis()
                ),
            )),
        }
    }

    fn store(&self) -> Result<&Arc<dyn SessionStore>> {
        match &self.backend {
            Backend::Store(store, _) => Ok(store),
            Backend::Cookie(_) => Err(Error::new(
                ErrorKind::InvalidConfig,
                "listing and revoking sessions needs a server-side store; \
                 cookie-only sessions have no server-side list",
            )),
        }
    }

    pub(crate) async fn list_by_user(&self, user: &str) -> Result<Vec<SessionInfo>> {
        let store = self.store()?;
        let now = self.clock.now();
        self.timed("listing sessions", store.list_by_user(user, now))
            .await
    }

    pub(crate) async fn delete_key(&self, key: &StoreKey) -> Result<bool> {
        let store = self.store()?;
        self.timed("deleting a session", store.delete(key)).await
    }

    pub(crate) async fn delete_by_user(&self, user: &str, keep: Option<&StoreKey>) -> Result<u64> {
        let store = self.store()?;
        self.timed("deleting sessions", store.delete_by_user(user, keep))
            .await
    }

    /// Refuse a data key that is latch's own or that the format reserves.
    pub(crate) fn check_key(&self, key: &str) -> Result<()> {
        let reserved = match &self.backend {
            Backend::Cookie(format) => format.reserved_keys(),
            Backend::Store(_, ids) => ids.reserved_keys(),
        };
        if key.starts_with(crate::session::RESERVED_PREFIX) || reserved.contains(&key) {
            return Err(Error::new(
                ErrorKind::InvalidKey,
                format!(
                    "the session key {key:?} is reserved (latch keeps its own under \
                     {:?}, and this session format gives {reserved:?} a meaning of its own)",
                    crate::session::RESERVED_PREFIX
                ),
            ));
        }
        Ok(())
    }

    /// The form in which the format keeps a value the application stores.
    pub(crate) fn prepare_value(&self, value: serde_json::Value) -> Result<serde_json::Value> {
        match &self.backend {
            Backend::Cookie(format) => format.prepare_value(value),
            Backend::Store(_, ids) => ids.prepare_value(value),
        }
    }

    /// Refuse a record over the size limit, before it reaches any store.
    pub(crate) fn check_record_size(&self, record: &Record) -> Result<()> {
        let size = record.stored_size();
        let limit = self.max_record_bytes;
        if size <= limit {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::RecordTooLarge { size, limit },
            format!(
                "session record would be {size} bytes, over the {limit}-byte limit \
                 (SessionManagerBuilder::max_record_bytes); keep less in the session"
            ),
        ))
    }

    /// Count and log a refused cookie, without its value.
    pub(crate) fn note_rejected(&self, reason: &str) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(reason, cookie = %self.cookie.name(), "session cookie refused; starting a fresh session");
    }
}

/// Runs sessions: built once at start-up, shared by every request.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use latch::{CookieConfig, Expiry, MemoryStore, SessionManager};
///
/// let manager = SessionManager::builder()
///     .store(MemoryStore::new())
///     .cookie(CookieConfig::default())
///     .expiry(Expiry::default().idle(Duration::from_secs(20 * 60)))
///     .build()?;
/// assert_eq!(manager.cookie_config().name(), "__Host-session");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct SessionManager {
    shared: Arc<Shared>,
}

impl SessionManager {
    /// Start configuring a manager.
    pub fn builder() -> SessionManagerBuilder {
        SessionManagerBuilder::default()
    }

    /// Begin a request: find the session cookie among the values of every `Cookie`
    /// header. Nothing is decoded or loaded until a handler uses the session.
    pub fn start<'a>(
        &self,
        cookie_headers: impl IntoIterator<Item = &'a str>,
        meta: RequestMeta,
    ) -> Session {
        let incoming = find_session_cookie(cookie_headers, self.shared.cookie.name());
        self.session(State::new(incoming, meta.user_agent, meta.ip))
    }

    /// Begin a request from its raw headers, parsing nothing until a handler uses
    /// the session: the cheapest start, used by the axum adapter.
    pub fn start_raw(&self, raw: RawRequest) -> Session {
        self.session(State::raw(raw))
    }

    fn session(&self, state: State) -> Session {
        Session {
            shared: Arc::clone(&self.shared),
            state: Arc::new(Mutex::new(state)),
        }
    }

    /// The cookie settings in force.
    pub fn cookie_config(&self) -> &CookieConfig {
        &self.shared.cookie
    }

    /// The expiry policy in force.
    pub fn expiry(&self) -> &Expiry {
        &self.shared.expiry
    }

    /// The store of server-side sessions; `None` for cookie-only sessions.
    pub fn store(&self) -> Option<&Arc<dyn SessionStore>> {
        match &self.shared.backend {
            Backend::Store(store, _) => Some(store),
            Backend::Cookie(_) => None,
        }
    }

    /// End every session of `user`: deleted from the store for server-side
    /// sessions (returns how many), or refused from now on for cookie-only
    /// sessions with a revocation store (returns 0: cookies cannot be counted).
    ///
    /// # Errors
    /// A store failure, or cookie-only sessions without a revocation store.
    pub async fn revoke_user(&self, user: &str) -> Result<u64> {
        match &self.shared.backend {
            Backend::Store(..) => self.shared.delete_by_user(user, None).await,
            Backend::Cookie(_) => self.shared.revoke_user_cookies(user).await.map(|_| 0),
        }
    }

    /// How many incoming session cookies were refused (bad, expired, unknown,
    /// duplicated) since start-up.
    pub fn rejected_cookies(&self) -> u64 {
        self.shared.rejected.load(Ordering::Relaxed)
    }

    /// Delete expired sessions in batches of `batch` until none is left, and
    /// the expired markers of the
    /// [revocation store](SessionManagerBuilder::revocation_store) (a marker
    /// lives only as long as the cookie it refuses could); returns how many of
    /// both.
    ///
    /// # Errors
    /// A store failure or timeout.
    pub async fn purge_expired(&self, batch: usize) -> Result<u64> {
        let mut total = 0;
        if let Backend::Store(store, _) = &self.shared.backend {
            total += self.purge_store(store.as_ref(), batch).await?;
        }
        if let Some(revocations) = &self.shared.revocations {
            total += self.purge_store(revocations.as_ref(), batch).await?;
        }
        Ok(total)
    }

    async fn purge_store(&self, store: &dyn SessionStore, batch: usize) -> Result<u64> {
        let batch = batch.max(1);
        let mut total = 0;
        loop {
            let now = self.shared.clock.now();
            let n = self
                .shared
                .timed("purging sessions", store.purge_expired(now, batch))
                .await?;
            total += n;
            if n < batch as u64 {
                return Ok(total);
            }
            // Let request handling in between batches.
            tokio::task::yield_now().await;
        }
    }
}

/// Builder for [`SessionManager`]; [`build`](Self::build) refuses unsafe settings.
#[derive(Debug)]
pub struct SessionManagerBuilder {
    kind: Option<Kind>,
    id_format: Box<dyn IdFormat>,
    cookie: CookieConfig,
    expiry: Expiry,
    store_timeout: Duration,
    max_record_bytes: usize,
    clock: Arc<dyn Clock>,
    revocations: Option<Arc<dyn SessionStore>>,
}

/// The smallest [`SessionManagerBuilder::max_record_bytes`] accepted: room for
/// a user id, a user agent, an address and a CSRF secret.
const MIN_RECORD_BYTES: usize = 1024;

/// The default of [`SessionManagerBuilder::max_record_bytes`]: 64 KiB.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 64 * 1024;

#[derive(Debug)]
enum Kind {
    Signed(Keyring),
    Sealed(Keyring, Aead),
    Format(Box<dyn CookieFormat>),
    Store(Arc<dyn SessionStore>),
}

impl Default for SessionManagerBuilder {
    fn default() -> Self {
        Self {
            kind: None,
            id_format: Box::new(HashedIds),
            cookie: CookieConfig::default(),
            expiry: Expiry::default(),
            store_timeout: Duration::from_secs(2),
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            clock: Arc::new(SystemClock),
            revocations: None,
        }
    }
}

impl SessionManagerBuilder {
    /// Keep session data in a signed cookie (readable by the client, not changeable).
    #[must_use]
    pub fn signed_cookies(mut self, keys: Keyring) -> Self {
        self.kind = Some(Kind::Signed(keys));
        self
    }

    /// Keep session data in an encrypted cookie (neither readable nor
    /// changeable). Use [`Aead::default`] (XChaCha20-Poly1305) unless AES is
    /// a requirement: AES-256-GCM's random nonces limit how many cookies one
    /// key may seal across the whole deployment (see [`Aead::Aes256Gcm`]).
    #[must_use]
    pub fn encrypted_cookies(mut self, keys: Keyring, aead: Aead) -> Self {
        self.kind = Some(Kind::Sealed(keys, aead));
        self
    }

    /// Keep session data in the cookie in another `format` (for interoperability,
    /// such as Flask's cookies in `latch-flask`).
    #[must_use]
    pub fn cookie_format(mut self, format: impl CookieFormat) -> Self {
        self.kind = Some(Kind::Format(Box::new(format)));
        self
    }

    /// Write server-side session IDs in another `format` (default: [`HashedIds`]:
    /// base64url in the cookie, SHA-256 in the store).
    #[must_use]
    pub fn id_format(mut self, format: impl IdFormat) -> Self {
        self.id_format = Box::new(format);
        self
    }

    /// Keep session data in `store`; the cookie carries only a random ID.
    #[must_use]
    pub fn store(self, store: impl SessionStore) -> Self {
        self.shared_store(Arc::new(store))
    }

    /// Like [`store`](Self::store), for a store already behind an `Arc`.
    #[must_use]
    pub fn shared_store(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.kind = Some(Kind::Store(store));
        self
    }

    /// Set the cookie attributes (default: [`CookieConfig::default`]).
    #[must_use]
    pub fn cookie(mut self, cookie: CookieConfig) -> Self {
        self.cookie = cookie;
        self
    }

    /// Set the expiry policy (default: [`Expiry::default`]).
    #[must_use]
    pub fn expiry(mut self, expiry: Expiry) -> Self {
        self.expiry = expiry;
        self
    }

    /// Set how long a store call may take before the request gets a 503
    /// (default 2 seconds).
    #[must_use]
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.store_timeout = timeout;
        self
    }

    /// Limit what one server-side session may hold, in bytes (its data as
    /// JSON plus the user and client facts; default
    /// [`DEFAULT_MAX_RECORD_BYTES`], 64 KiB).
    ///
    /// A session is per-user scratch space that every request may read and
    /// rewrite whole, and a client can often decide what goes into it (a cart,
    /// a form draft): without a limit one client can grow one record, and the
    /// store's disk and write log with it, without bound. 64 KiB is sixteen
    /// times what a cookie session may carry (4 KiB), and the size of the
    /// `TEXT` column that Rails' database session store has long lived within.
    /// A save over the limit fails the request with
    /// [`ErrorKind::RecordTooLarge`] (the adapter answers 500 and logs it)
    /// and writes nothing, the same way on every store; the limit is
    /// checked on the merged record too when concurrent requests' changes are
    /// combined. Cookie sessions have their own 4096-byte limit.
    ///
    /// # Example
    /// ```
    /// use latch::{MemoryStore, SessionManager};
    ///
    /// let manager = SessionManager::builder()
    ///     .store(MemoryStore::new())
    ///     .max_record_bytes(16 * 1024)
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn max_record_bytes(mut self, limit: usize) -> Self {
        self.max_record_bytes = limit;
        self
    }

    /// Make cookie-only sessions revocable: logout, `regenerate` and "sign out
    /// everywhere" file markers in `store` (any backend), and every request with
    /// a cookie session checks them. Without it a copied signed/encrypted cookie
    /// stays valid until it expires. Ignored for server-side sessions, which are
    /// revocable by nature.
    #[must_use]
    pub fn revocation_store(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.revocations = Some(store);
        self
    }

    /// Use another clock (tests use [`ManualClock`](crate::ManualClock)).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Check everything and build the manager.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidConfig`] when no session kind was chosen, the expiry
    /// policy is inconsistent or over 400 days, or the store timeout is zero.
    /// Logs a warning when the cookie is in plain-http dev mode.
    pub fn build(self) -> Result<SessionManager> {
        let kind = self.kind.ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidConfig,
                "choose a session kind: signed_cookies(keys), encrypted_cookies(keys, aead) \
                 or store(store)",
            )
        })?;
        self.expiry.validate()?;
        if self.store_timeout.is_zero() {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "the store timeout must be above zero",
            ));
        }
        if self.max_record_bytes < MIN_RECORD_BYTES {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "max_record_bytes({}) is too small to hold a signed-in session; use at \
                     least {MIN_RECORD_BYTES} (the default is {DEFAULT_MAX_RECORD_BYTES})",
                    self.max_record_bytes
                ),
            ));
        }
        if !self.cookie.is_secure() {
            tracing::warn!(
                cookie = %self.cookie.name(),
                "latch is in plain-http development mode: the session cookie is sent without \
                 Secure and can be stolen on the network; never use this in production"
            );
        }
        let backend = match kind {
            Kind::Signed(keys) => {
                Backend::Cookie(Box::new(LatchFormat::new(SignedCodec::new(&keys))))
            }
            Kind::Sealed(keys, aead) => {
                if aead == Aead::Aes256Gcm {
                    tracing::warn!(
                        "encrypted cookies use AES-256-GCM with random 96-bit nonces: rotate the \
                         key before all processes sharing it have sealed 2^32 cookies in total \
                         (each process stops by itself at 2^30); XChaCha20-Poly1305, the \
                         default, has no such limit"
                    );
                }
                Backend::Cookie(Box::new(LatchFormat::new(SealedCodec::new(&keys, aead))))
            }
            Kind::Format(format) => Backend::Cookie(format),
            Kind::Store(store) => Backend::Store(store, self.id_format),
        };
        Ok(SessionManager {
            shared: Arc::new(Shared {
                backend,
                cookie: self.cookie,
                expiry: self.expiry,
                store_timeout: self.store_timeout,
                max_record_bytes: self.max_record_bytes,
                clock: self.clock,
                rejected: AtomicU64::new(0),
                revocations: self.revocations,
                save_shards: (0..save::SAVE_SHARDS)
                    .map(|_| save::SaveShard::default())
                    .collect(),
            }),
        })
    }
}
