//! The `Session` handle that request handlers use.

mod flash;

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
// async-lock's mutex rather than tokio's: taking and releasing it uncontended
// is one atomic operation each, where tokio's takes an inner lock on every
// release, and every request that uses its session takes it.
use futures_util::lock::{Mutex, MutexGuard};

use flash::FLASH_KEY;
pub use flash::{Flash, MAX_PENDING_FLASHES};

use crate::csrf;
use crate::engine::Engine;
use crate::engine::state::{Op, State};
use crate::error::{Error, ErrorKind, Result};
use crate::id::StoreKey;
use crate::store::SessionInfo;
use crate::time::UnixTime;

/// One request's view of its session.
///
/// Cheap to clone; clones share state. Nothing is loaded until a method needs it,
/// so a handler that never calls one costs no store round trip and sends no cookie.
/// Changes are written when the response goes out, by the adapter's call to
/// [`SessionManager::finish`](crate::SessionManager::finish).
///
/// Every method is `async` because the first call may load the session from the
/// store; they fail only when the store does (see [`Error::is_unavailable`]) or
/// when a value cannot be (de)serialized.
///
/// # Example
/// ```
/// use latch::{Keyring, SecretKey, SessionManager};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
/// let manager = SessionManager::builder()
///     .signed_cookies(Keyring::new(SecretKey::generate()))
///     .build()?;
/// let session = manager.start(std::iter::empty(), Default::default());
/// session.insert("theme", "dark").await?;
/// assert_eq!(session.get::<String>("theme").await?.as_deref(), Some("dark"));
/// let finished = manager.finish(&session).await?;
/// assert!(finished.set_cookie.unwrap().starts_with("__Host-session="));
/// # Ok::<(), latch::Error>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Session {
    /// One allocation per request, and one reference count to move per clone.
    inner: Arc<Shared>,
}

/// What every clone of a request's session shares.
struct Shared {
    engine: Arc<Engine>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Session(..)")
    }
}

/// The timing facts of a session, for a profile page or `/api/me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionFacts {
    /// When the session was created.
    pub created_at: UnixTime,
    /// When it was last seen (as of the start of this request).
    pub last_seen: UnixTime,
    /// When it expires if left idle: the idle deadline, or the absolute one
    /// when that comes first.
    pub idle_expires_at: UnixTime,
    /// When it expires however active it is.
    pub absolute_expires_at: UnixTime,
    /// Whether it is a remember-me session.
    pub remember: bool,
    /// Whether this request started it (no valid session arrived).
    pub is_new: bool,
}

fn to_value<T: Serialize>(value: T) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| {
        Error::new(ErrorKind::Serialization, "cannot serialize a session value").with_source(e)
    })
}

/// `value` as a `T`, read in place (`&Value` is a serde deserializer), so
/// a read copies only what `T` keeps.
fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T> {
    T::deserialize(value).map_err(|e| {
        Error::new(
            ErrorKind::Serialization,
            "session value has an unexpected type",
        )
        .with_source(e)
    })
}

impl Session {
    pub(crate) fn new(engine: Arc<Engine>, state: State) -> Self {
        Self {
            inner: Arc::new(Shared {
                engine,
                state: Mutex::new(state),
            }),
        }
    }

    /// The request's state, for the end of the request.
    pub(crate) async fn lock_state(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().await
    }

    /// The request's state if no other task holds it now.
    pub(crate) fn try_lock_state(&self) -> Option<MutexGuard<'_, State>> {
        self.inner.state.try_lock()
    }

    /// Whether no method has used this session yet: nothing was loaded, so
    /// [`SessionManager::finish`](crate::SessionManager::finish) has nothing to
    /// do and adapters may skip it. `false` while another task holds the session.
    ///
    /// # Example
    /// ```
    /// use latch::{MemoryStore, SessionManager};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let manager = SessionManager::builder().store(MemoryStore::new()).build()?;
    /// let session = manager.start(std::iter::empty(), Default::default());
    /// assert!(session.is_untouched());
    /// session.get::<String>("theme").await?;
    /// assert!(!session.is_untouched());
    /// # Ok::<(), latch::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_untouched(&self) -> bool {
        self.inner
            .state
            .try_lock()
            .is_some_and(|state| !state.is_loaded())
    }

    /// Lock the state, loading the session first if this is the first access.
    async fn loaded(&self) -> Result<MutexGuard<'_, State>> {
        let mut state = self.inner.state.lock().await;
        if !state.is_loaded() {
            match self.inner.engine.load_now(&mut state) {
                Some(loaded) => loaded?,
                // Boxed: a store lookup's future is large, and inline it
                // would make every future that loads a session (every
                // handler's) as large, even where no store is asked.
                None => Box::pin(self.inner.engine.load(&mut state)).await?,
            }
        }
        Ok(state)
    }

    /// The value under `key`, deserialized as `T`; `None` when absent.
    ///
    /// # Errors
    /// A store failure, or [`ErrorKind::Serialization`] when the stored value is not
    /// a `T`.
    ///
    /// # Example
    /// Any serde type goes in and comes back out:
    /// ```
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize, PartialEq, Debug)]
    /// struct Prefs {
    ///     theme: String,
    ///     page_size: u32,
    /// }
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// # let manager = latch::SessionManager::builder().store(latch::MemoryStore::new()).build()?;
    /// # let session = manager.start(std::iter::empty(), Default::default());
    /// session.insert("prefs", Prefs { theme: "dark".into(), page_size: 50 }).await?;
    /// let prefs: Option<Prefs> = session.get("prefs").await?;
    /// assert_eq!(prefs.map(|p| p.page_size), Some(50));
    /// assert_eq!(session.get::<Prefs>("missing").await?, None);
    /// // The wrong type is an error, not a silent default.
    /// assert!(session.get::<u64>("prefs").await.is_err());
    /// # Ok::<(), latch::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let state = self.loaded().await?;
        state.get(key).map(from_value).transpose()
    }

    /// Store `value` under `key`, replacing any previous value.
    ///
    /// # Errors
    /// A store failure, [`ErrorKind::InvalidKey`] for a key starting with
    /// `_latch.` (or one the session format reserves), or
    /// [`ErrorKind::Serialization`].
    pub async fn insert<T: Serialize>(&self, key: &str, value: T) -> Result<()> {
        self.inner.engine.check_key(key)?;
        let value = self.inner.engine.prepare_value(to_value(value)?)?;
        self.loaded().await?.push(Op::Insert(key.to_owned(), value))
    }

    /// Remove `key`; returns whether it was present.
    ///
    /// # Errors
    /// A store failure or a reserved key.
    ///
    /// # Example
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// # let manager = latch::SessionManager::builder().store(latch::MemoryStore::new()).build()?;
    /// # let session = manager.start(std::iter::empty(), Default::default());
    /// session.insert("draft", "hello").await?;
    /// assert!(session.remove("draft").await?);
    /// assert!(!session.remove("draft").await?);
    /// assert!(session.remove("_latch.csrf").await.is_err(), "latch's own keys are off limits");
    /// # Ok::<(), latch::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn remove(&self, key: &str) -> Result<bool> {
        self.inner.engine.check_key(key)?;
        let mut state = self.loaded().await?;
        let present = state.get(key).is_some();
        if present {
            state.push(Op::Remove(key.to_owned()))?;
        }
        Ok(present)
    }

    /// Remove every key the application set (the session itself, its ID, its
    /// user, and latch's own entries such as the CSRF secret and pending
    /// flash messages stay). To end the session, use
    /// [`destroy`](Self::destroy).
    ///
    /// # Errors
    /// A store failure.
    pub async fn clear(&self) -> Result<()> {
        self.loaded().await?.push(Op::Clear)
    }

    /// Replace the value under `key` with `f(old)`, composing with concurrent
    /// requests; returns `f` of the value *this request* sees.
    ///
    /// If another request saved the same session in the meantime, latch re-runs
    /// `f` on the newest stored value when saving, so concurrent updates compose:
    /// 32 concurrent `update("n", |n| n.unwrap_or(0) + 1)` end at 32. `f` must
    /// therefore be a pure function of its input. The value returned is the one
    /// computed now, from what this request loaded (plus its own changes): with
    /// concurrent writers the stored value can end up different (three
    /// concurrent increments can each return 1 while 3 is stored). To answer
    /// with what was stored, call [`save`](Self::save) and read the value
    /// again. (Cookie-only sessions have no shared copy to merge with; there
    /// the last response wins.)
    ///
    /// # Errors
    /// A store failure, a reserved key, or a value of the wrong type.
    ///
    /// # Example
    /// ```
    /// # use latch::{MemoryStore, SessionManager};
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
    /// # let manager = SessionManager::builder().store(MemoryStore::new()).build()?;
    /// # let session = manager.start(std::iter::empty(), Default::default());
    /// let n: u64 = session.update("visits", |n: Option<u64>| n.unwrap_or(0) + 1).await?;
    /// assert_eq!(n, 1);
    /// # Ok::<(), latch::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn update<T, F>(&self, key: &str, f: F) -> Result<T>
    where
        T: Serialize + DeserializeOwned,
        F: Fn(Option<T>) -> T + Send + Sync + 'static,
    {
        self.inner.engine.check_key(key)?;
        let shared = Arc::clone(&self.inner.engine);
        let op = Op::Update(
            key.to_owned(),
            Arc::new(move |old: Option<&Value>| {
                let old = old.map(from_value::<T>).transpose()?;
                shared.prepare_value(to_value(f(old))?)
            }),
        );
        let mut state = self.loaded().await?;
        state.push(op)?;
        // OK to index: `push` just inserted the key.
        from_value(state.get(key).unwrap_or(&Value::Null))
    }

    /// Like [`update`](Self::update), for a change that is not always
    /// allowed: `f` returns `None` to refuse the value it finds (a cart that is
    /// full, a counter at its limit), and the session is left as it was.
    ///
    /// The refusal holds under concurrency: when this request's change is
    /// replayed on a newer stored value (another request saved meanwhile) and
    /// `f` refuses that one, nothing this request changed is saved and the
    /// request fails with [`ErrorKind::UpdateRefused`] (adapters answer `409
    /// Conflict`), so a change is never acknowledged and then dropped.
    ///
    /// # Errors
    /// [`ErrorKind::UpdateRefused`] when `f` refuses now; a store failure, a
    /// reserved key, or a value of the wrong type. Passed on with `?` from an
    /// axum handler, a refusal becomes a `409` with a generic body; match
    /// [`ErrorKind::UpdateRefused`] to answer in your app's own words ("your
    /// cart is full").
    ///
    /// # Example
    /// ```
    /// # use latch::{ErrorKind, MemoryStore, SessionManager};
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
    /// # let manager = SessionManager::builder().store(MemoryStore::new()).build()?;
    /// # let session = manager.start(std::iter::empty(), Default::default());
    /// let add = |n: Option<u32>| n.unwrap_or(0).checked_add(1).filter(|n| *n <= 2);
    /// assert_eq!(session.try_update("items", add).await?, 1);
    /// assert_eq!(session.try_update("items", add).await?, 2);
    /// let full = session.try_update("items", add).await.unwrap_err();
    /// assert_eq!(full.kind(), &ErrorKind::UpdateRefused);
    /// # Ok::<(), latch::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn try_update<T, F>(&self, key: &str, f: F) -> Result<T>
    where
        T: Serialize + DeserializeOwned,
        F: Fn(Option<T>) -> Option<T> + Send + Sync + 'static,
    {
        self.inner.engine.check_key(key)?;
        let shared = Arc::clone(&self.inner.engine);
        let owned_key = key.to_owned();
        let op = Op::Update(
            key.to_owned(),
            Arc::new(move |old: Option<&Value>| {
                let old = old.map(from_value::<T>).transpose()?;
                let new = f(old).ok_or_else(|| {
                    Error::new(
                        ErrorKind::UpdateRefused,
                        format!(
                            "the change to {owned_key:?} was refused for the value the session \
                             holds now"
                        ),
                    )
                })?;
                shared.prepare_value(to_value(new)?)
            }),
        );
        let mut state = self.loaded().await?;
        state.push(op)?;
        // OK to index: `push` just inserted the key.
        from_value(state.get(key).unwrap_or(&Value::Null))
    }

    /// Write this request's changes now, instead of when the response goes
    /// out, so the handler can answer with what was stored: afterwards,
    /// [`get`](Self::get) reads the stored record (with other requests'
    /// concurrent changes merged in, and [`update`](Self::update)s re-run on
    /// them). Changes made after `save` are written at the end as usual.
    ///
    /// What `get` then shows is the store's state just after this request's
    /// write, which may already include requests that saved after it: ten
    /// concurrent "add one" requests store 10, and each can answer any
    /// number up to 10, some the same (never a number that was not stored).
    /// Concurrent requests merge only once the session exists: requests
    /// that race *before* the visitor has a session each create their own.
    ///
    /// A fresh session is created now; sign-in ([`log_in`](Self::log_in),
    /// [`regenerate`](Self::regenerate)) and [`destroy`](Self::destroy) still
    /// take effect when the response goes out, and a `save` after them waits
    /// for that too. Cookie-only sessions are written with the response
    /// whatever happens, so here it does nothing.
    ///
    /// # Errors
    /// A store failure or timeout (answer 503), a record over the size limit,
    /// or [`ErrorKind::UpdateRefused`] when a [`try_update`](Self::try_update)
    /// refuses on replay.
    ///
    /// # Example
    /// ```
    /// use std::collections::BTreeMap;
    /// # use latch::{MemoryStore, SessionManager};
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
    /// # let manager = SessionManager::builder().store(MemoryStore::new()).build()?;
    /// # let session = manager.start(std::iter::empty(), Default::default());
    /// session
    ///     .update("cart", |cart: Option<BTreeMap<String, u32>>| {
    ///         let mut cart = cart.unwrap_or_default();
    ///         *cart.entry("apple".into()).or_default() += 1;
    ///         cart
    ///     })
    ///     .await?;
    /// session.save().await?;
    /// // What the store holds now, other requests' additions included.
    /// let cart: BTreeMap<String, u32> = session.get("cart").await?.unwrap_or_default();
    /// assert_eq!(cart["apple"], 1);
    /// # Ok::<(), latch::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn save(&self) -> Result<()> {
        let mut state = self.loaded().await?;
        self.inner.engine.save_now(&mut state).await
    }

    /// Give the session a new ID, keep its data, and kill the old ID in the store.
    ///
    /// Call it at login and at every privilege change, so an ID planted or seen
    /// before the change is worth nothing after it (session fixation).
    ///
    /// # Errors
    /// A store failure while loading.
    pub async fn regenerate(&self) -> Result<()> {
        self.loaded().await?.regenerate();
        Ok(())
    }

    /// Sign `user_id` in: regenerate the ID, record the user for the per-user
    /// index ("devices", "sign out everywhere") with this request's user agent
    /// and address, and start a new CSRF secret (so a form fetched before
    /// signing in no longer posts: fetch it again).
    ///
    /// # Errors
    /// A store failure while loading.
    ///
    /// # Example
    /// ```
    /// use latch::{MemoryStore, SessionManager};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// let manager = SessionManager::builder().store(MemoryStore::new()).build()?;
    /// let session = manager.start(std::iter::empty(), Default::default());
    /// session.insert("cart", vec!["apple"]).await?; // an anonymous visit
    /// let before = manager.finish(&session).await?.set_cookie.unwrap_or_default();
    /// let before = before.split(';').next().unwrap_or_default();
    ///
    /// // (after checking the password)
    /// let session = manager.start([before], Default::default());
    /// session.log_in("ada").await?;
    /// let after = manager.finish(&session).await?.set_cookie.unwrap_or_default();
    /// let after = after.split(';').next().unwrap_or_default();
    /// assert_ne!(before, after, "a new id at sign-in");
    ///
    /// let old = manager.start([before], Default::default());
    /// assert_eq!(old.user_id().await?, None, "the pre-login id is dead");
    /// let new = manager.start([after], Default::default());
    /// assert_eq!(new.user_id().await?.as_deref(), Some("ada"));
    /// assert_eq!(new.get::<Vec<String>>("cart").await?.map(|c| c.len()), Some(1));
    /// # Ok::<(), latch::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn log_in(&self, user_id: impl Into<String>) -> Result<()> {
        let mut state = self.loaded().await?;
        state.regenerate();
        if state.get(csrf::CSRF_KEY).is_some() {
            state.push(Op::Remove(csrf::CSRF_KEY.to_owned()))?;
        }
        // The devices list shows the browser and address that signed in,
        // not those of the visit that started the anonymous session.
        let client = state.client();
        state.push(Op::SetClient(client))?;
        state.push(Op::SetUser(Some(user_id.into())))
    }

    /// A CSRF token for a form or a header, bound to this session and masked
    /// afresh on every call (so it is safe in compressed responses). The
    /// session's secret is created on first use, which writes the session.
    ///
    /// # Errors
    /// A store failure.
    ///
    /// # Example
    /// ```
    /// # use latch::{MemoryStore, SessionManager};
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build()?.block_on(async {
    /// # let manager = SessionManager::builder().store(MemoryStore::new()).build()?;
    /// # let session = manager.start(std::iter::empty(), Default::default());
    /// let token = session.csrf_token().await?;
    /// assert!(session.verify_csrf(&token).await?);
    /// assert!(!session.verify_csrf("forged").await?);
    /// # Ok::<(), latch::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn csrf_token(&self) -> Result<String> {
        let mut state = self.loaded().await?;
        let existing = state
            .get(csrf::CSRF_KEY)
            .and_then(Value::as_str)
            .and_then(csrf::mask);
        if let Some(token) = existing {
            return Ok(token);
        }
        // A visitor without a stored session: the secret travels in a signed
        // cookie of its own, and nothing is stored (with keys configured).
        if let Some(secret) = self.inner.engine.pre_session_csrf(&mut state, true) {
            return csrf::mask(&secret).ok_or_else(|| {
                Error::new(ErrorKind::Serialization, "a CSRF secret did not decode")
            });
        }
        // None yet, or one latch did not make (a store shared with other
        // code): start a new secret rather than fail the request.
        let secret = csrf::new_secret();
        state.push(Op::Insert(
            csrf::CSRF_KEY.to_owned(),
            Value::String(secret.clone()),
        ))?;
        csrf::mask(&secret).ok_or_else(|| {
            Error::new(
                ErrorKind::Serialization,
                "a freshly made CSRF secret did not decode",
            )
        })
    }

    /// Whether `submitted` is a CSRF token this session issued (constant-time).
    /// `false` when the session has no CSRF secret.
    ///
    /// # Errors
    /// A store failure.
    pub async fn verify_csrf(&self, submitted: &str) -> Result<bool> {
        let mut state = self.loaded().await?;
        let stored = state
            .get(csrf::CSRF_KEY)
            .and_then(Value::as_str)
            .map(str::to_owned);
        let secret = match stored {
            Some(secret) => Some(secret),
            None => self.inner.engine.pre_session_csrf(&mut state, false),
        };
        Ok(secret.is_some_and(|secret| csrf::verify(&secret, submitted)))
    }

    /// The signed-in user, if any.
    ///
    /// # Errors
    /// A store failure.
    pub async fn user_id(&self) -> Result<Option<String>> {
        Ok(self.loaded().await?.record().user_id.clone())
    }

    /// Make this a remember-me session (persistent cookie, the longer timeouts of
    /// [`Expiry`](crate::Expiry)) or a browser-session one.
    ///
    /// # Errors
    /// A store failure while loading.
    ///
    /// # Example
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// # let manager = latch::SessionManager::builder().store(latch::MemoryStore::new()).build()?;
    /// # let session = manager.start(std::iter::empty(), Default::default());
    /// session.log_in("ada").await?;
    /// session.set_remember(true).await?; // the "remember me" box was ticked
    /// let set_cookie = manager.finish(&session).await?.set_cookie.unwrap_or_default();
    /// assert!(set_cookie.contains("Max-Age="), "a persistent cookie: {set_cookie}");
    /// # Ok::<(), latch::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn set_remember(&self, remember: bool) -> Result<()> {
        let mut state = self.loaded().await?;
        if state.record().remember != remember {
            state.push(Op::SetRemember(remember))?;
        }
        Ok(())
    }

    /// End the session (logout): it is deleted from the store and the cookie is
    /// expired with the same `Path`/`Domain` when the response goes out. A replay
    /// of the old cookie afterwards finds nothing.
    ///
    /// # Errors
    /// A store failure while loading.
    ///
    /// # Example
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// # let manager = latch::SessionManager::builder().store(latch::MemoryStore::new()).build()?;
    /// # let session = manager.start(std::iter::empty(), Default::default());
    /// session.log_in("ada").await?;
    /// let cookie = manager.finish(&session).await?.set_cookie.unwrap_or_default();
    /// let cookie = cookie.split(';').next().unwrap_or_default();
    ///
    /// let session = manager.start([cookie], Default::default());
    /// session.destroy().await?;
    /// let removal = manager.finish(&session).await?.set_cookie.unwrap_or_default();
    /// assert!(removal.contains("Max-Age=0"));
    ///
    /// // Someone who kept a copy of the cookie is not signed in with it.
    /// let replay = manager.start([cookie], Default::default());
    /// assert_eq!(replay.user_id().await?, None);
    /// # Ok::<(), latch::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn destroy(&self) -> Result<()> {
        self.loaded().await?.destroy();
        Ok(())
    }

    /// Queue a flash message for the next page. At most
    /// [`MAX_PENDING_FLASHES`] are kept; one more drops the oldest.
    ///
    /// # Errors
    /// A store failure.
    pub async fn flash(&self, level: &str, message: &str) -> Result<()> {
        let flash = to_value(Flash::new(level, message))?;
        let op = Op::Update(
            FLASH_KEY.to_owned(),
            Arc::new(move |old: Option<&Value>| {
                let mut list = match old {
                    Some(Value::Array(items)) => items.clone(),
                    _ => Vec::new(),
                };
                list.push(flash.clone());
                let over = list.len().saturating_sub(MAX_PENDING_FLASHES);
                list.drain(..over);
                Ok(Value::Array(list))
            }),
        );
        self.loaded().await?.push(op)
    }

    /// Take the pending flash messages; each is returned once.
    ///
    /// # Errors
    /// A store failure.
    pub async fn take_flashes(&self) -> Result<Vec<Flash>> {
        let mut state = self.loaded().await?;
        let Some(value) = state.get(FLASH_KEY).cloned() else {
            return Ok(Vec::new());
        };
        state.push(Op::Remove(FLASH_KEY.to_owned()))?;
        // A malformed flash list is dropped rather than failing the page.
        Ok(serde_json::from_value(value).unwrap_or_default())
    }

    /// Created/last-seen/expiry times of this session.
    ///
    /// # Errors
    /// A store failure.
    ///
    /// # Example
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// # let manager = latch::SessionManager::builder().store(latch::MemoryStore::new()).build()?;
    /// # let session = manager.start(std::iter::empty(), Default::default());
    /// let facts = session.facts().await?;
    /// assert!(facts.is_new);
    /// assert!(facts.idle_expires_at <= facts.absolute_expires_at);
    /// # Ok::<(), latch::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn facts(&self) -> Result<SessionFacts> {
        let state = self.loaded().await?;
        let policy = self.inner.engine.expiry();
        let record = state.record();
        let absolute = record.absolute_deadline(policy);
        Ok(SessionFacts {
            created_at: record.created_at,
            last_seen: record.last_seen,
            idle_expires_at: record.idle_deadline(policy).min(absolute),
            absolute_expires_at: absolute,
            remember: record.remember,
            is_new: state.is_fresh(),
        })
    }

    /// What this request proved about its session's device binding (see
    /// [`crate::dbsc`]): [`DeviceStatus::Proven`] when the session is
    /// device-bound and the request carried a live bound cookie. Require it
    /// for sensitive actions to refuse sessions of browsers without DBSC.
    ///
    /// A device-bound session that arrives without its bound cookie is never
    /// seen by handlers at all: it is served as a visitor without a session.
    ///
    /// [`DeviceStatus::Proven`]: crate::dbsc::DeviceStatus::Proven
    ///
    /// # Errors
    /// A store failure.
    pub async fn device_status(&self) -> Result<crate::dbsc::DeviceStatus> {
        Ok(self.loaded().await?.device())
    }

    /// Whether this session is device-bound and this request proved it
    /// (shorthand for [`device_status`](Self::device_status)).
    ///
    /// # Errors
    /// A store failure.
    pub async fn is_device_bound(&self) -> Result<bool> {
        Ok(matches!(
            self.device_status().await?,
            crate::dbsc::DeviceStatus::Proven { .. }
        ))
    }

    /// This session's store key ("this device" in a devices list), if it is a
    /// stored session.
    ///
    /// # Errors
    /// A store failure.
    pub async fn store_key(&self) -> Result<Option<StoreKey>> {
        Ok(self.loaded().await?.stored_key())
    }

    /// The signed-in user's live sessions (devices), most recently used first.
    /// Empty when nobody is signed in.
    ///
    /// # Errors
    /// A store failure, or [`ErrorKind::InvalidConfig`] for cookie-only sessions,
    /// which have no server-side list.
    ///
    /// # Example
    /// Ada signs in on a laptop and a phone; from the laptop she lists her
    /// devices, ends the phone's session, then every other one:
    /// ```
    /// use latch::{MemoryStore, RequestMeta, SessionManager};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// let manager = SessionManager::builder().store(MemoryStore::new()).build()?;
    /// let mut cookies = Vec::new();
    /// for agent in ["laptop", "phone"] {
    ///     let meta = RequestMeta { user_agent: Some(agent.into()), ip: None };
    ///     let session = manager.start(std::iter::empty(), meta);
    ///     session.log_in("ada").await?;
    ///     let set = manager.finish(&session).await?.set_cookie.unwrap_or_default();
    ///     cookies.push(set.split(';').next().unwrap_or_default().to_owned());
    /// }
    ///
    /// let laptop = manager.start([cookies[0].as_str()], Default::default());
    /// let devices = laptop.devices().await?;
    /// assert_eq!(devices.len(), 2);
    /// let this = laptop.store_key().await?;
    /// let phone = devices.iter().find(|d| Some(d.key) != this).expect("two devices");
    /// assert_eq!(phone.user_agent.as_deref(), Some("phone"));
    /// assert!(laptop.revoke_device(&phone.key).await?);
    /// assert_eq!(laptop.devices().await?.len(), 1);
    /// assert_eq!(laptop.sign_out_everywhere_else().await?, 0, "only this one is left");
    /// # Ok::<(), latch::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn devices(&self) -> Result<Vec<SessionInfo>> {
        let Some(user) = self.user_id().await? else {
            return Ok(Vec::new());
        };
        self.inner.engine.list_by_user(&user).await
    }

    /// End one of the signed-in user's sessions, found by its store key. Keys that
    /// belong to another user are ignored (returns `false`), and so is every key
    /// once this session itself has been ended (by another device's "sign out
    /// everywhere else", checked atomically with the deletion: see
    /// [`UserIndex::delete_one_by_user`](crate::UserIndex::delete_one_by_user)).
    ///
    /// # Errors
    /// A store failure, or cookie-only sessions.
    pub async fn revoke_device(&self, key: &StoreKey) -> Result<bool> {
        let state = self.loaded().await?;
        let Some(user) = state.record().user_id.clone() else {
            return Ok(false);
        };
        self.inner
            .engine
            .revoke_device(&user, key, state.stored_key().as_ref())
            .await
    }

    /// End every session of the signed-in user but this one; returns how many
    /// (always 0 for cookie-only sessions, which cannot be counted).
    ///
    /// Cookie-only sessions need a
    /// [revocation store](crate::SessionManagerBuilder::revocation_store): every
    /// older session of the user is refused from now on, and this one is
    /// re-issued marked as issued after that refusal (its absolute timeout is
    /// kept: calling this again and again never extends a session's life).
    ///
    /// # Errors
    /// A store failure, or cookie-only sessions without a revocation store.
    pub async fn sign_out_everywhere_else(&self) -> Result<u64> {
        let mut state = self.loaded().await?;
        let Some(user) = state.record().user_id.clone() else {
            return Ok(0);
        };
        self.inner
            .engine
            .sign_out_everywhere_else(&mut state, &user)
            .await
    }
}
