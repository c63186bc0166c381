//! The session manager: configuration, and the framework-neutral request cycle
//! ([`SessionManager::start`] before the handler, [`SessionManager::finish`] after).
//!
//! Framework adapters (such as `latch-axum`) are thin: they hand the `Cookie`
//! headers to `start`, put the [`Session`] where handlers find it, and apply what
//! `finish` returns to the response. The work itself is the engine's
//! (`crate::engine`).

mod builder;
mod purge;

use std::sync::Arc;

pub use builder::{DEFAULT_MAX_RECORD_BYTES, SessionManagerBuilder};
pub use purge::PurgeTask;

use crate::cookie::CookieConfig;
use crate::engine::Engine;
use crate::engine::state::{Input, State};
use crate::error::Result;
use crate::session::Session;
use crate::store::SessionStore;
use crate::time::Expiry;
use crate::wire::{Finished, RawRequest, RequestMeta};

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
    engine: Arc<Engine>,
}

impl SessionManager {
    fn from_engine(engine: Engine) -> Self {
        Self {
            engine: Arc::new(engine),
        }
    }

    /// Start configuring a manager.
    pub fn builder() -> SessionManagerBuilder {
        SessionManagerBuilder::default()
    }

    /// Begin a request: find the session cookie among the values of every `Cookie`
    /// header. Nothing is decoded or loaded until a handler uses the session.
    ///
    /// With a framework latch has no adapter for, a request is `start`, the
    /// handler's use of the [`Session`], then [`finish`](Self::finish), whose
    /// headers go on the response.
    ///
    /// # Example
    /// ```
    /// use latch::{MemoryStore, RequestMeta, SessionManager};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// let manager = SessionManager::builder().store(MemoryStore::new()).build()?;
    ///
    /// // First request: no cookie yet.
    /// let meta = RequestMeta { user_agent: Some("curl/8.0".into()), ip: None };
    /// let session = manager.start(std::iter::empty(), meta);
    /// session.insert("theme", "dark").await?;
    /// let finished = manager.finish(&session).await?;
    /// let set_cookie = finished.set_cookie.expect("a new session sets its cookie");
    /// assert!(set_cookie.starts_with("__Host-session="));
    ///
    /// // The browser sends it back as `name=value` in its Cookie header.
    /// let cookie = set_cookie.split(';').next().unwrap_or_default();
    /// let session = manager.start([cookie, "other=1"], RequestMeta::default());
    /// assert_eq!(session.get::<String>("theme").await?.as_deref(), Some("dark"));
    /// assert!(manager.finish(&session).await?.set_cookie.is_none(), "nothing changed");
    /// # Ok::<(), latch::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start<'a>(
        &self,
        cookie_headers: impl IntoIterator<Item = &'a str>,
        meta: RequestMeta,
    ) -> Session {
        let cookies = cookie_headers.into_iter().map(str::to_owned).collect();
        self.session(Input::Headers { cookies, meta })
    }

    /// Begin a request from its raw headers, parsing nothing until a handler uses
    /// the session: the cheapest start, used by the axum adapter.
    pub fn start_raw(&self, raw: RawRequest) -> Session {
        self.session(Input::Raw(raw))
    }

    fn session(&self, input: Input) -> Session {
        Session::new(Arc::clone(&self.engine), State::new(input))
    }

    /// The cookie settings in force.
    pub fn cookie_config(&self) -> &CookieConfig {
        self.engine.cookie()
    }

    /// The expiry policy in force.
    pub fn expiry(&self) -> &Expiry {
        self.engine.expiry()
    }

    /// The device-binding settings, when device-bound sessions are on
    /// ([`SessionManagerBuilder::device_bound`]).
    pub fn device_binding(&self) -> Option<&crate::dbsc::DeviceBinding> {
        self.engine.binding()
    }

    /// Answer a request to the DBSC registration or refresh path (adapters
    /// call this; see [`crate::dbsc`]). `raw` carries the request's cookies.
    ///
    /// Never fails: a refusal is a 4xx answer (400 malformed, 401 a proof
    /// that does not verify or a registration challenge that is not pending,
    /// 403 with a fresh challenge, 404 no such bound session), and a store
    /// failure is `503`.
    pub async fn answer_device_binding(
        &self,
        raw: RawRequest,
        endpoint: crate::dbsc::Endpoint,
        request: &crate::dbsc::BindingRequest,
    ) -> crate::dbsc::BindingAnswer {
        let session = self.start_raw(raw);
        let mut state = session.lock_state().await;
        match self
            .engine
            .answer_binding(&mut state, endpoint, request)
            .await
        {
            Ok(answer) => answer,
            Err(err) if err.is_unavailable() => {
                tracing::warn!(error = %err, "device binding: session store unavailable");
                crate::dbsc::BindingAnswer::status(503)
            }
            Err(err) => {
                tracing::info!(error = %err, "device binding request refused");
                crate::dbsc::BindingAnswer::status(400)
            }
        }
    }

    /// The store of server-side sessions; `None` for cookie-only sessions.
    pub fn store(&self) -> Option<&Arc<dyn SessionStore>> {
        self.engine.store()
    }

    /// End every session of `user`: deleted from the store for server-side
    /// sessions (returns how many), or refused from now on for cookie-only
    /// sessions with a revocation store (returns 0: cookies cannot be counted).
    ///
    /// # Errors
    /// A store failure, or cookie-only sessions without a revocation store.
    ///
    /// # Example
    /// An administrator locks an account:
    /// ```
    /// use latch::{MemoryStore, SessionManager};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// let manager = SessionManager::builder().store(MemoryStore::new()).build()?;
    /// for _ in 0..2 {
    ///     let session = manager.start(std::iter::empty(), Default::default());
    ///     session.log_in("mallory").await?;
    ///     manager.finish(&session).await?;
    /// }
    /// assert_eq!(manager.revoke_user("mallory").await?, 2);
    /// # Ok::<(), latch::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn revoke_user(&self, user: &str) -> Result<u64> {
        self.engine.revoke_user(user).await
    }

    /// How many incoming session cookies were refused (bad, expired, unknown,
    /// duplicated) since start-up.
    pub fn rejected_cookies(&self) -> u64 {
        self.engine.rejected_cookies()
    }

    /// Delete expired sessions in batches of `batch` until none is left, and
    /// the expired markers of the
    /// [revocation store](SessionManagerBuilder::revocation_store) (a marker
    /// lives only as long as the cookie it refuses could); returns how many of
    /// both.
    ///
    /// # Errors
    /// A store failure or timeout.
    ///
    /// # Example
    /// A periodic task; stores that expire records by themselves (Redis) have
    /// nothing to purge.
    /// ```
    /// use std::time::Duration;
    /// use latch::{MemoryStore, SessionManager};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
    /// let manager = SessionManager::builder().store(MemoryStore::new()).build()?;
    /// let purger = manager.clone();
    /// let task = tokio::spawn(async move {
    ///     let mut every = tokio::time::interval(Duration::from_secs(600));
    ///     loop {
    ///         every.tick().await;
    ///         if let Err(err) = purger.purge_expired(1000).await {
    ///             eprintln!("purge failed, will retry: {err}");
    ///         }
    ///     }
    /// });
    /// # task.abort();
    /// assert_eq!(manager.purge_expired(1000).await?, 0);
    /// # Ok::<(), latch::Error>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn purge_expired(&self, batch: usize) -> Result<u64> {
        self.engine.purge_expired(batch).await
    }

    /// Save what the handler changed and compute the cookie to send.
    ///
    /// Untouched sessions cost nothing. Fresh sessions are created only when
    /// written to. Store sessions are saved with compare-and-swap: on a conflict
    /// the handler's changes are replayed on the newest record, so concurrent
    /// requests that change different keys all keep their changes, and a session
    /// deleted meanwhile (logout, revoke) is never brought back.
    ///
    /// # Errors
    /// A store failure or timeout (answer 503), or [`ErrorKind::CookieTooLarge`]
    /// when a cookie session no longer fits in 4096 bytes (the data is not dropped
    /// silently: the request fails).
    ///
    /// [`ErrorKind::CookieTooLarge`]: crate::ErrorKind::CookieTooLarge
    pub async fn finish(&self, session: &Session) -> Result<Finished> {
        let mut state = session.lock_state().await;
        self.engine.finish(&mut state).await
    }

    /// [`finish`](Self::finish) without waiting, for adapters that can skip
    /// an asynchronous step when it is not needed: `Some` with what `finish`
    /// would answer when finishing needs no waiting (a read, a cookie
    /// session's new cookie, a fresh session left empty, a new session in a
    /// store that keeps its records in this process, see
    /// [`InProcess`](crate::InProcess)); `None`, with nothing done, when it
    /// does (a write, a refresh, a logout, a revocation, a new session in a
    /// store across the network) or another task holds the session; then
    /// call `finish`.
    ///
    /// # Example
    /// ```
    /// use latch::{MemoryStore, SessionManager};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let manager = SessionManager::builder().store(MemoryStore::new()).build()?;
    /// let session = manager.start(std::iter::empty(), Default::default());
    /// session.insert("theme", "dark").await?;
    /// // The memory store creates the new session at once.
    /// let created = manager.finish_now(&session).expect("in process").unwrap();
    /// let cookie = created.set_cookie.unwrap();
    /// let pair = cookie.split(';').next().unwrap();
    ///
    /// let session = manager.start(Some(pair), Default::default());
    /// assert_eq!(session.get::<String>("theme").await?.as_deref(), Some("dark"));
    /// // A read needs no store at the end.
    /// let finished = manager.finish_now(&session).expect("a read").unwrap();
    /// assert!(finished.set_cookie.is_none() && finished.vary_cookie);
    ///
    /// // A write to a stored session is a compare-and-swap: that is for `finish`.
    /// let session = manager.start(Some(pair), Default::default());
    /// session.insert("theme", "light").await?;
    /// assert!(manager.finish_now(&session).is_none());
    /// manager.finish(&session).await?;
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<_, Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`finish`](Self::finish), for what it checks without a store
    /// ([`ErrorKind::CookieTooLarge`]).
    ///
    /// [`ErrorKind::CookieTooLarge`]: crate::ErrorKind::CookieTooLarge
    pub fn finish_now(&self, session: &Session) -> Option<Result<Finished>> {
        let mut state = session.try_lock_state()?;
        self.engine.finish_now(&mut state)
    }
}
