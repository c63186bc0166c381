//! [`SessionManagerBuilder`]: every setting, checked once when the manager is
//! built.

use std::sync::Arc;
use std::time::Duration;

use super::SessionManager;
use crate::codec::{
    Aead, CookieFormat, HashedIds, IdFormat, LatchFormat, SealedCodec, SignedCodec,
};
use crate::cookie::CookieConfig;
use crate::dbsc::{Binder, DeviceBinding};
use crate::engine::{Backend, CookieBackend, CsrfCookie, Engine, Settings, StoreBackend};
use crate::error::{Error, ErrorKind, Result};
use crate::key::Keyring;
use crate::store::{EncryptedStore, SessionStore};
use crate::time::{Clock, Expiry, SystemClock};

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
    require_user_index: bool,
    keys: Option<Keyring>,
    at_rest: Option<Keyring>,
    device_binding: Option<DeviceBinding>,
}

/// The smallest [`SessionManagerBuilder::max_record_bytes`] accepted: room for
/// a user id, a user agent, an address and a CSRF secret.
const MIN_RECORD_BYTES: usize = 1024;

/// The default of [`SessionManagerBuilder::max_record_bytes`]: 64 KiB.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 64 * 1024;

/// The kind of session chosen, until `build` makes it a [`Backend`].
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
            require_user_index: false,
            keys: None,
            at_rest: None,
            device_binding: None,
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
    ///
    /// # Example
    /// ```
    /// use std::time::Duration;
    /// use latch::{MemoryStore, SessionManager};
    ///
    /// let manager = SessionManager::builder()
    ///     .store(MemoryStore::new())
    ///     .store_timeout(Duration::from_millis(500))
    ///     .build()?;
    /// assert!(SessionManager::builder()
    ///     .store(MemoryStore::new())
    ///     .store_timeout(Duration::ZERO)
    ///     .build()
    ///     .is_err());
    /// # drop(manager);
    /// # Ok::<(), latch::Error>(())
    /// ```
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

    /// Keys for what server-side sessions sign: the pre-session CSRF cookie,
    /// which lets a form for a visitor without a session carry a CSRF token
    /// without storing anything (without keys, rendering such a form stores a
    /// session). Cookie-only sessions take their keys with
    /// [`signed_cookies`](Self::signed_cookies) or
    /// [`encrypted_cookies`](Self::encrypted_cookies) and need none here.
    ///
    /// | mode | what the keys do |
    /// |---|---|
    /// | signed / encrypted cookies | sign or seal the session cookie itself |
    /// | server-side, with `keys` | sign the pre-session CSRF cookie |
    /// | server-side, without | nothing is signed; session IDs are random and stores keep only their hash |
    ///
    /// # Example
    /// ```
    /// use latch::{Keyring, MemoryStore, SecretKey, SessionManager};
    ///
    /// let keys = Keyring::new(SecretKey::generate()); // SecretKey::from_env(...) in production
    /// let manager = SessionManager::builder()
    ///     .store(MemoryStore::new())
    ///     .keys(keys)
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn keys(mut self, keys: Keyring) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Refuse, when the manager is built, a configuration that cannot list
    /// and end a user's sessions: cookie-only sessions, or a store without a
    /// [`UserIndex`](crate::UserIndex) (such as Flask-Session's). Call it when
    /// the app uses [`Session::devices`](crate::Session::devices),
    /// `revoke_device`, `sign_out_everywhere_else` or
    /// [`SessionManager::revoke_user`], so the mistake shows at start-up
    /// rather than in the first request that needs them.
    ///
    /// # Example
    /// ```
    /// use latch::{Keyring, MemoryStore, SecretKey, SessionManager};
    ///
    /// let devices = SessionManager::builder().store(MemoryStore::new()).require_user_index();
    /// assert!(devices.build().is_ok());
    /// let cookies = SessionManager::builder()
    ///     .signed_cookies(Keyring::new(SecretKey::generate()))
    ///     .require_user_index();
    /// assert!(cookies.build().is_err());
    /// ```
    #[must_use]
    pub fn require_user_index(mut self) -> Self {
        self.require_user_index = true;
        self
    }

    /// Make cookie-only sessions revocable: logout, `regenerate` and "sign out
    /// everywhere" file markers in `store` (any backend), and every request with
    /// a cookie session checks them. Without it a copied signed/encrypted cookie
    /// stays valid until it expires. Ignored for server-side sessions, which are
    /// revocable by nature.
    ///
    /// # Example
    /// ```
    /// use std::sync::Arc;
    /// use latch::{Keyring, MemoryStore, SecretKey, SessionManager};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// let manager = SessionManager::builder()
    ///     .signed_cookies(Keyring::new(SecretKey::generate()))
    ///     .revocation_store(Arc::new(MemoryStore::new())) // Redis or SQL in production
    ///     .build()?;
    /// let session = manager.start(std::iter::empty(), Default::default());
    /// session.log_in("ada").await?;
    /// let cookie = manager.finish(&session).await?.set_cookie.unwrap_or_default();
    /// let cookie = cookie.split(';').next().unwrap_or_default();
    ///
    /// let session = manager.start([cookie], Default::default());
    /// session.destroy().await?;
    /// manager.finish(&session).await?;
    /// // A copy of the signed cookie no longer signs anyone in.
    /// let replay = manager.start([cookie], Default::default());
    /// assert_eq!(replay.user_id().await?, None);
    /// # Ok::<(), latch::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn revocation_store(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.revocations = Some(store);
        self
    }

    /// Keep server-side sessions encrypted in their store: the data, the
    /// signed-in user and the client facts are sealed (XChaCha20-Poly1305)
    /// under a key derived from `keys`, bound to the session's store key,
    /// so a dump of the database or of Redis reveals none of them and a
    /// record copied under another session does not open. See
    /// [`EncryptedStore`](crate::store::EncryptedStore) for exactly what
    /// stays in clear (times, the remember-me flag, the version) and how
    /// rotation works (every key of the ring opens; saves re-seal under the
    /// current one).
    ///
    /// A record that does not open loads as no session (a fresh one, never
    /// an error), and that includes every record stored before this was
    /// turned on: enabling it signs everybody out once. Cookie-only
    /// sessions are refused here: use
    /// [`encrypted_cookies`](Self::encrypted_cookies).
    ///
    /// # Example
    /// ```
    /// use latch::{Keyring, MemoryStore, SecretKey, SessionManager};
    ///
    /// let keys = Keyring::new(SecretKey::generate()); // SecretKey::from_env(..) in production
    /// let manager = SessionManager::builder()
    ///     .store(MemoryStore::new())
    ///     .encrypt_at_rest(keys)
    ///     .build()?;
    /// # drop(manager);
    /// # Ok::<(), latch::Error>(())
    /// ```
    #[must_use]
    pub fn encrypt_at_rest(mut self, keys: Keyring) -> Self {
        self.at_rest = Some(keys);
        self
    }

    /// Use another clock (tests use [`ManualClock`](crate::ManualClock)).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Bind signed-in sessions to the browser's device with DBSC (see
    /// [`crate::dbsc`]): a copied cookie stops working off the device within
    /// the bound cookie's lifetime. Off by default; browsers without DBSC keep
    /// working as before. Server-side sessions only (the builder refuses
    /// cookie-only ones), and the adapter answers the two paths.
    ///
    /// # Example
    /// ```
    /// use latch::{MemoryStore, SessionManager, dbsc::DeviceBinding};
    ///
    /// let manager = SessionManager::builder()
    ///     .store(MemoryStore::new())
    ///     .device_bound(DeviceBinding::default())
    ///     .build()?;
    /// assert!(manager.device_binding().is_some());
    /// # Ok::<(), latch::Error>(())
    /// ```
    #[must_use]
    pub fn device_bound(mut self, binding: DeviceBinding) -> Self {
        self.device_binding = Some(binding);
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
        let backend = match (kind, &self.at_rest) {
            (Kind::Store(store), Some(keys)) => {
                let sealed: Arc<dyn SessionStore> = Arc::new(EncryptedStore::new(store, keys));
                Backend::Store(StoreBackend::new(sealed, self.id_format))
            }
            (_, Some(_)) => {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    "encrypt_at_rest applies to server-side stores; cookie-only sessions are \
                     sealed with encrypted_cookies(keys, aead) instead",
                ));
            }
            (Kind::Store(store), None) => Backend::Store(StoreBackend::new(store, self.id_format)),
            (Kind::Signed(keys), None) => {
                cookies(LatchFormat::new(SignedCodec::new(&keys)), self.revocations)
            }
            (Kind::Sealed(keys, aead), None) => {
                if aead == Aead::Aes256Gcm {
                    tracing::warn!(
                        "encrypted cookies use AES-256-GCM with random 96-bit nonces: rotate the \
                         key before all processes sharing it have sealed 2^32 cookies in total \
                         (each process stops by itself at 2^30); XChaCha20-Poly1305, the \
                         default, has no such limit"
                    );
                }
                cookies(
                    LatchFormat::new(SealedCodec::new(&keys, aead)),
                    self.revocations,
                )
            }
            (Kind::Format(format), None) => {
                Backend::Cookie(CookieBackend::new(format, self.revocations))
            }
        };
        let binder = match (&self.device_binding, &backend) {
            (None, _) => None,
            (Some(binding), Backend::Store(_)) => {
                binding.validate()?;
                Some(Binder::new(binding.clone(), &self.cookie))
            }
            (Some(_), Backend::Cookie(_)) => {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    "device_bound needs server-side sessions (store(...)): a device's \
                     challenges are single-use and its public key is kept in the session \
                     record, which cookie-only sessions do not have",
                ));
            }
        };
        let require_user_index = self.require_user_index;
        let csrf_cookie = match (&backend, &self.keys) {
            (Backend::Store(_), Some(keys)) => Some(CsrfCookie::new(
                &self.cookie,
                keys,
                crate::time::secs(self.expiry.idle_timeout(false)),
            )),
            _ => None,
        };
        let engine = Engine::new(Settings {
            backend,
            cookie: self.cookie,
            expiry: self.expiry,
            store_timeout: self.store_timeout,
            max_record_bytes: self.max_record_bytes,
            clock: self.clock,
            csrf_cookie,
            binder,
        });
        if require_user_index {
            engine.check_user_index()?;
        }
        Ok(SessionManager::from_engine(engine))
    }
}

/// Cookie-only sessions in `format`, revocable when `revocations` is given.
fn cookies(format: impl CookieFormat, revocations: Option<Arc<dyn SessionStore>>) -> Backend {
    Backend::Cookie(CookieBackend::new(Box::new(format), revocations))
}
