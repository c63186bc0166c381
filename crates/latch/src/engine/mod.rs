//! The session engine: what every request's session shares, and the request
//! cycle itself (load on first use, finish after the handler).
//!
//! The choice between cookie-only and server-side sessions is made once, in
//! [`Backend`]; everything here is common to both. A request's own state is
//! [`State`](state::State), changed only through its methods.
//!
//! ```text
//! SessionManager ──start──▶ Session { Arc<Engine>, State }
//!                               │ first method call
//!                               ▼
//!                  Engine::load ─▶ Backend::open (cookie: verify + decode; store: parse ID + load)
//!                               │ handler's changes: State::push (op log)
//!                               ▼
//!                  Engine::finish ─▶ Backend::finish (cookie: seal; store: destroy / regenerate / save / touch)
//! ```

mod backend;
mod cookie;
mod csrf_cookie;
mod dbsc;
mod revoke;
mod save;
pub(crate) mod state;
mod stored;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub(crate) use backend::Backend;
pub(crate) use cookie::CookieBackend;
pub(crate) use csrf_cookie::CsrfCookie;
pub(crate) use stored::StoreBackend;

use crate::cookie::{CookieConfig, IncomingCookie};
use crate::error::{Error, ErrorKind, Result};
use crate::record::{Record, RecordCell};
use crate::store::{ExpiredDeletion, SessionInfo, SessionStore};
use crate::time::{Clock, Expiry, UnixTime};
use crate::wire::Finished;
use state::{Loaded, State};

/// How far in the future an issue time may lie (clock skew between app servers)
/// before a session is refused.
const MAX_CLOCK_SKEW: i64 = 60;

/// Everything sessions share: the backend, the policies, the clock, and the
/// table of sessions this process is saving. One per [`SessionManager`].
///
/// [`SessionManager`]: crate::SessionManager
#[derive(Debug)]
pub(crate) struct Engine {
    backend: Backend,
    cookie: CookieConfig,
    expiry: Expiry,
    store_timeout: Duration,
    /// Whether the backend's store fails its own calls within
    /// `store_timeout` (see [`SessionStore::call_timeout`]), so that
    /// [`timed`](Self::timed) needs no timer of its own.
    store_bounds_calls: bool,
    /// The largest record a server-side session may store, in bytes.
    max_record_bytes: usize,
    clock: Arc<dyn Clock>,
    rejected: AtomicU64,
    /// The sessions this process is saving right now (see `save.rs`).
    saving: save::Saving,
    /// The pre-session CSRF cookie, for server-side sessions with keys.
    csrf_cookie: Option<CsrfCookie>,
    /// Device-bound sessions (DBSC), when turned on.
    binder: Option<crate::dbsc::Binder>,
}

/// The settings an [`Engine`] is built from, checked by the builder.
pub(crate) struct Settings {
    pub(crate) backend: Backend,
    pub(crate) cookie: CookieConfig,
    pub(crate) expiry: Expiry,
    pub(crate) store_timeout: Duration,
    pub(crate) max_record_bytes: usize,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) csrf_cookie: Option<CsrfCookie>,
    pub(crate) binder: Option<crate::dbsc::Binder>,
}

impl Engine {
    pub(crate) fn new(settings: Settings) -> Self {
        let store_bounds_calls = settings
            .backend
            .store()
            .and_then(|store| store.call_timeout())
            .is_some_and(|bound| bound <= settings.store_timeout);
        Self {
            store_bounds_calls,
            backend: settings.backend,
            cookie: settings.cookie,
            expiry: settings.expiry,
            store_timeout: settings.store_timeout,
            max_record_bytes: settings.max_record_bytes,
            clock: settings.clock,
            rejected: AtomicU64::new(0),
            saving: save::Saving::default(),
            csrf_cookie: settings.csrf_cookie,
            binder: settings.binder,
        }
    }

    /// The device-binding settings, when device-bound sessions are on.
    pub(crate) fn binding(&self) -> Option<&crate::dbsc::DeviceBinding> {
        self.binder.as_ref().map(|b| &b.settings)
    }

    /// The cookie settings in force.
    pub(crate) fn cookie(&self) -> &CookieConfig {
        &self.cookie
    }

    /// The expiry policy in force.
    pub(crate) fn expiry(&self) -> &Expiry {
        &self.expiry
    }

    /// The current time, in seconds.
    pub(crate) fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// The store of server-side sessions; `None` for cookie-only sessions.
    pub(crate) fn store(&self) -> Option<&Arc<dyn SessionStore>> {
        self.backend.store()
    }

    /// How many incoming session cookies were refused since start-up.
    pub(crate) fn rejected_cookies(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// Run a store call under the configured timeout.
    ///
    /// The timer is only armed once the call has had to wait: a store that
    /// answers at once (the memory store, a cache hit) pays no timer
    /// registration and no clock read. A store that fails its own calls
    /// within the timeout (latch-redis) gets no second timer at all.
    pub(crate) async fn timed<T>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        if self.store_bounds_calls {
            return fut.await;
        }
        let mut fut = std::pin::pin!(fut);
        let mut timer = std::pin::pin!(None::<tokio::time::Sleep>);
        let timeout = self.store_timeout;
        std::future::poll_fn(|cx| {
            if let std::task::Poll::Ready(result) = fut.as_mut().poll(cx) {
                return std::task::Poll::Ready(result);
            }
            if timer.is_none() {
                timer.set(Some(tokio::time::sleep(timeout)));
            }
            match timer.as_mut().as_pin_mut() {
                Some(sleep) => sleep.poll(cx).map(|()| {
                    Err(Error::new(
                        ErrorKind::StoreTimeout,
                        format!(
                            "session store did not answer within {} ms ({what})",
                            timeout.as_millis()
                        ),
                    ))
                }),
                None => std::task::Poll::Pending,
            }
        })
        .await
    }

    /// Count and log a refused cookie, without its value.
    pub(crate) fn note_rejected(&self, reason: &str) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(reason, cookie = %self.cookie.name(), "session cookie refused; starting a fresh session");
    }

    /// Refuse a data key that is latch's own or that the format reserves.
    pub(crate) fn check_key(&self, key: &str) -> Result<()> {
        let reserved = self.backend.reserved_keys();
        if key.starts_with(crate::record::RESERVED_PREFIX) || reserved.contains(&key) {
            return Err(Error::new(
                ErrorKind::InvalidKey,
                format!(
                    "the session key {key:?} is reserved (latch keeps its own under \
                     {:?}, and this session format gives {reserved:?} a meaning of its own)",
                    crate::record::RESERVED_PREFIX
                ),
            ));
        }
        Ok(())
    }

    /// The form in which the format keeps a value the application stores.
    pub(crate) fn prepare_value(&self, value: serde_json::Value) -> Result<serde_json::Value> {
        self.backend.prepare_value(value)
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

    /// Load the session for `state`'s request, or start a fresh one.
    ///
    /// Every kind of bad cookie ends the same way: a fresh session and a
    /// removal cookie. Only store failures are errors (and leave the request's
    /// input in place, so a later call tries again with the same cookie).
    /// Callers try [`load_now`](Self::load_now) first.
    pub(crate) async fn load(&self, state: &mut State) -> Result<()> {
        let now = self.now();
        let found = match self.incoming(state) {
            Some(value) => {
                let found = self.backend.open(self, &value, now).await?;
                refuse_unopened(state, &found);
                found
            }
            None => None,
        };
        self.settle_load(state, found, now);
        Ok(())
    }

    /// [`load`](Self::load) without waiting, when loading needs no store (no
    /// cookie, a cookie session that is not revocable, a store that keeps
    /// its records in this process); `None`, with nothing done, when it does.
    ///
    /// Kept apart so that the future of every method that loads a session
    /// (and of every handler that awaits one) holds no store lookup's state:
    /// the waiting path is boxed by its caller.
    pub(crate) fn load_now(&self, state: &mut State) -> Option<Result<()>> {
        let now = self.now();
        let found = match self.incoming(state) {
            Some(value) => match self.backend.open_now(self, &value, now)? {
                Ok(found) => {
                    refuse_unopened(state, &found);
                    found
                }
                Err(err) => return Some(Err(err)),
            },
            None => None,
        };
        self.settle_load(state, found, now);
        Some(Ok(()))
    }

    /// The request's session cookie, if it sent exactly one; two or more are
    /// refused (which one would the browser mean?).
    fn incoming(&self, state: &mut State) -> Option<String> {
        let incoming = state.input().map_or(IncomingCookie::Absent, |input| {
            input.incoming(self.cookie.name())
        });
        match incoming {
            IncomingCookie::Absent => None,
            IncomingCookie::Duplicate => {
                self.note_rejected("duplicate session cookies in one request");
                state.refuse_cookie();
                None
            }
            IncomingCookie::One(value) => Some(value),
        }
    }

    /// Use what loading `found` at `now`, or start a fresh session.
    fn settle_load(&self, state: &mut State, found: Option<Loaded>, now: UnixTime) {
        match found {
            Some(loaded) if self.check_binding(state, &loaded, now) => {
                state.loaded_from(loaded, now);
            }
            // A device-bound session without its bound cookie: served as a
            // visitor without a session, and no removal cookie, so the real
            // device's cookie stays for its refresh.
            Some(_) | None => state.started_fresh(now),
        }
    }

    /// Whether `record` may be used at `now`: both deadlines under the policy
    /// in force now (not the one a store row was written under), and no issue
    /// time from the future. Backends check it before any further lookup.
    fn is_current(&self, record: &Record, now: UnixTime) -> bool {
        if record.last_seen > now + MAX_CLOCK_SKEW || record.created_at > record.last_seen {
            self.note_rejected("session times in the future");
            return false;
        }
        if record.is_expired(now, &self.expiry) {
            self.note_rejected("expired session");
            return false;
        }
        true
    }

    /// Whether a loaded record's `last_seen` is due for a refresh at `now`.
    fn touch_due(&self, record: &Record, now: UnixTime) -> bool {
        now - record.last_seen >= crate::time::secs(self.expiry.touch_every())
    }

    /// A loaded session, with its refresh due or not.
    pub(crate) fn loaded(
        &self,
        origin: state::Origin,
        record: impl Into<RecordCell>,
        reissue: bool,
        now: UnixTime,
    ) -> Loaded {
        let record = record.into();
        Loaded {
            touch_due: self.touch_due(record.get(), now),
            origin,
            record,
            reissue,
        }
    }

    /// Save what the handler changed and compute the cookie to send.
    pub(crate) async fn finish(self: &Arc<Self>, state: &mut State) -> Result<Finished> {
        if !state.is_loaded() {
            return Ok(Finished::default());
        }
        let now = state.now();
        let before = Before::of(state);
        let set_cookie = self.backend.finish(self, state, now).await?;
        self.finished(state, before, set_cookie, now)
    }

    /// [`finish`](Self::finish) without waiting, when finishing needs no
    /// store: a read, a cookie session's new cookie. `None`, with nothing
    /// done, when it does (a write, a refresh, a revocation).
    pub(crate) fn finish_now(self: &Arc<Self>, state: &mut State) -> Option<Result<Finished>> {
        if !state.is_loaded() {
            return Some(Ok(Finished::default()));
        }
        let now = state.now();
        let before = Before::of(state);
        let set_cookie = match self.backend.finish_now(self, state, now)? {
            Ok(set_cookie) => set_cookie,
            Err(err) => return Some(Err(err)),
        };
        Some(self.finished(state, before, set_cookie, now))
    }

    /// What the response gets once the backend has finished.
    fn finished(
        &self,
        state: &mut State,
        before: Before,
        set_cookie: Option<String>,
        now: UnixTime,
    ) -> Result<Finished> {
        let mut other_cookies = self.pre_session_csrf_cookie(state, now)?;
        if before.ends {
            other_cookies.extend(self.bound_cookie_removal(state));
        }
        Ok(Finished {
            set_cookie,
            other_cookies,
            vary_cookie: true,
            signed_in: before.signed_in,
            headers: state.take_headers(),
        })
    }

    /// Write the request's changes now (see [`Session::save`]); cookie-only
    /// sessions are written with the response anyway.
    ///
    /// [`Session::save`]: crate::Session::save
    pub(crate) async fn save_now(self: &Arc<Self>, state: &mut State) -> Result<()> {
        match &self.backend {
            Backend::Store(stored) => {
                let now = state.now();
                stored.save_now(self, state, now).await
            }
            Backend::Cookie(_) => Ok(()),
        }
    }

    /// The CSRF secret of a visitor without a stored session: the one their
    /// pre-session CSRF cookie carries, or (when `make`) a new one, sent in
    /// that cookie at the end of the request. `None` where it does not apply
    /// (cookie-only sessions, no keys, or a stored session, whose secret is
    /// in its record).
    pub(crate) fn pre_session_csrf(&self, state: &mut State, make: bool) -> Option<String> {
        let cookie = self.csrf_cookie.as_ref()?;
        if !state.is_fresh() {
            return None;
        }
        if let Some(csrf) = state.pre_csrf() {
            return Some(csrf.secret.clone());
        }
        let incoming = state
            .input()
            .and_then(|input| cookie.incoming(input, self.now()));
        let (secret, new) = match incoming {
            Some(secret) => (secret, false),
            None if make => (crate::csrf::new_secret(), true),
            None => return None,
        };
        let csrf = state::PreSessionCsrf { secret, new };
        state.set_pre_csrf(csrf.clone());
        Some(csrf.secret)
    }

    /// The pre-session CSRF cookie to send: a new secret while no session is
    /// stored, or its removal once one is (the secret then lives in the
    /// record, or was replaced at sign-in).
    fn pre_session_csrf_cookie(&self, state: &State, now: UnixTime) -> Result<Vec<String>> {
        let (Some(cookie), Some(csrf)) = (&self.csrf_cookie, state.pre_csrf()) else {
            return Ok(Vec::new());
        };
        Ok(match (state.created(), csrf.new) {
            (false, true) => vec![cookie.set_cookie(&csrf.secret, now)?],
            (true, false) => vec![cookie.removal()],
            _ => Vec::new(),
        })
    }

    /// A removal cookie when the request carried a session cookie that the
    /// response must take back (refused, or a session that ends now).
    fn removal_if_needed(&self, state: &State) -> Option<String> {
        (state.refused_cookie() || !state.is_fresh()).then(|| self.cookie.removal_cookie())
    }

    /// `Max-Age` for the cookie: until the session's deadline (the earlier of
    /// idle and absolute, refreshed whenever the cookie is re-sent) for
    /// remember-me sessions, none (a browser-session cookie) otherwise. The
    /// browser then drops the cookie when the server would refuse it anyway.
    fn max_age(&self, record: &Record, now: UnixTime) -> Option<i64> {
        record.remember.then(|| record.deadline(&self.expiry) - now)
    }

    /// The `Set-Cookie` value for `value`, refused when over the browser limit.
    fn set_cookie(&self, value: &str, record: &Record, now: UnixTime) -> Result<String> {
        let size = self.cookie.name().len() + value.len();
        let limit = crate::codec::MAX_COOKIE_BYTES;
        if size > limit {
            return Err(Error::new(
                ErrorKind::CookieTooLarge { size, limit },
                format!(
                    "session cookie would be {size} bytes (name + value), over the \
                     {limit}-byte limit browsers accept; keep less in the session or use a \
                     server-side store"
                ),
            ));
        }
        Ok(self.cookie.set_cookie(value, self.max_age(record, now)))
    }

    /// The signed-in user's live sessions.
    pub(crate) async fn list_by_user(&self, user: &str) -> Result<Vec<SessionInfo>> {
        let (_, index) = self.backend.user_index()?;
        let now = self.now();
        self.timed("listing sessions", index.list_by_user(user, now))
            .await
    }

    /// Delete `user`'s session filed under `key`, only while `keep` (the
    /// caller's own session) exists.
    pub(crate) async fn revoke_device(
        &self,
        user: &str,
        key: &crate::id::StoreKey,
        keep: Option<&crate::id::StoreKey>,
    ) -> Result<bool> {
        let (_, index) = self.backend.user_index()?;
        self.timed(
            "deleting a session",
            index.delete_one_by_user(user, key, keep),
        )
        .await
    }

    /// Refuse, at start-up, a configuration that cannot list a user's
    /// sessions.
    pub(crate) fn check_user_index(&self) -> Result<()> {
        self.backend.user_index().map(drop)
    }

    /// End every session of `user` (server-side: deleted, returns how many;
    /// cookie-only: refused from now on, returns 0).
    pub(crate) async fn revoke_user(&self, user: &str) -> Result<u64> {
        self.backend.revoke_user(self, user).await
    }

    /// End every session of `state`'s user but this one.
    pub(crate) async fn sign_out_everywhere_else(
        &self,
        state: &mut State,
        user: &str,
    ) -> Result<u64> {
        self.backend
            .sign_out_everywhere_else(self, state, user)
            .await
    }

    /// Delete expired sessions (and revocation markers) in batches.
    pub(crate) async fn purge_expired(&self, batch: usize) -> Result<u64> {
        match self.backend.expired_deletion() {
            Some(store) => self.purge_with(store, batch).await,
            None => Ok(0),
        }
    }

    async fn purge_with(&self, store: &dyn ExpiredDeletion, batch: usize) -> Result<u64> {
        let batch = batch.max(1);
        let mut total = 0;
        loop {
            let n = self
                .timed("purging sessions", store.purge_expired(self.now(), batch))
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

/// A session cookie that did not open (forged, expired, unknown): the
/// response takes it back.
fn refuse_unopened(state: &mut State, found: &Option<Loaded>) {
    if found.is_none() {
        state.refuse_cookie();
    }
}

/// What finishing needs to know of the session as the handler left it,
/// before the backend changes it.
#[derive(Clone, Copy)]
struct Before {
    signed_in: bool,
    /// A session that existed is being ended (logout).
    ends: bool,
}

impl Before {
    fn of(state: &State) -> Self {
        Self {
            signed_in: state.record().user_id.is_some(),
            ends: state.ending() == state::Ending::Destroy && !state.is_fresh(),
        }
    }
}
