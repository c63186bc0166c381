//! Ending a request: write what changed and say which cookie to send.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::revoke::SID_KEY;
use super::{Backend, SessionManager, Shared};
use crate::codec::{CookieFormat, IdFormat, MAX_COOKIE_BYTES};
use crate::error::{Error, ErrorKind, Result};
use crate::id::{SessionId, StoreKey};
use crate::record::Record;
use crate::session::Session;
use crate::session::state::{Origin, State};
use crate::store::{SaveOutcome, SessionStore};
use crate::time::UnixTime;

/// How often a conflicting save is retried before the request fails.
const MAX_SAVE_ATTEMPTS: u32 = 100;
/// How often a freshly drawn ID may collide before creation gives up (with 256-bit
/// IDs even one collision means a broken random source).
const MAX_CREATE_ATTEMPTS: u32 = 4;

/// What the adapter must do to the response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Finished {
    /// A `Set-Cookie` value to send, if any. When present the response must not be
    /// stored by shared caches (`Cache-Control: no-store`).
    pub set_cookie: Option<String>,
    /// Whether the handler read the session, so the response depends on the
    /// `Cookie` header (`Vary: Cookie`).
    pub vary_cookie: bool,
}

impl SessionManager {
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
    pub async fn finish(&self, session: &Session) -> Result<Finished> {
        let mut state = session.state.lock().await;
        if !state.loaded {
            return Ok(Finished::default());
        }
        let shared = &*self.shared;
        let now = shared.clock.now();
        let set_cookie = match &shared.backend {
            Backend::Cookie(format) => {
                shared
                    .finish_cookie(format.as_ref(), &mut state, now)
                    .await?
            }
            Backend::Store(store, ids) => {
                shared
                    .finish_stored(store.as_ref(), ids.as_ref(), &mut state, now)
                    .await?
            }
        };
        Ok(Finished {
            set_cookie,
            vary_cookie: true,
        })
    }
}

impl Shared {
    fn removal_if_needed(&self, state: &State) -> Option<String> {
        (state.clear_cookie || !matches!(state.origin, Origin::Fresh))
            .then(|| self.cookie.removal_cookie())
    }

    /// `Max-Age` for the cookie: until the session's deadline (the earlier of
    /// idle and absolute, refreshed whenever the cookie is re-sent) for
    /// remember-me sessions, none (a browser-session cookie) otherwise. The
    /// browser then drops the cookie when the server would refuse it anyway.
    fn max_age(&self, record: &Record, now: UnixTime) -> Option<i64> {
        record.remember.then(|| record.deadline(&self.expiry) - now)
    }

    fn set_cookie(&self, value: &str, record: &Record, now: UnixTime) -> Result<String> {
        let size = self.cookie.name().len() + value.len();
        if size > MAX_COOKIE_BYTES {
            return Err(Error::new(
                ErrorKind::CookieTooLarge {
                    size,
                    limit: MAX_COOKIE_BYTES,
                },
                format!(
                    "session cookie would be {size} bytes (name + value), over the \
                     {MAX_COOKIE_BYTES}-byte limit browsers accept; keep less in the \
                     session or use a server-side store"
                ),
            ));
        }
        Ok(self.cookie.set_cookie(value, self.max_age(record, now)))
    }

    async fn finish_cookie(
        &self,
        format: &dyn CookieFormat,
        state: &mut State,
        now: UnixTime,
    ) -> Result<Option<String>> {
        let sid = state
            .record
            .data
            .get(SID_KEY)
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        if state.destroyed || state.regenerate {
            // A copy of the old cookie must not outlive logout or regeneration.
            if let Some(sid) = &sid {
                let until = state.record.absolute_deadline(&self.expiry);
                self.revoke_sid(sid, now, until).await?;
            }
        }
        if state.destroyed {
            return Ok(self.removal_if_needed(state));
        }
        let write = state.changed() || state.regenerate || state.touch || state.reissue;
        if !write {
            return Ok(state.clear_cookie.then(|| self.cookie.removal_cookie()));
        }
        if state.is_empty() && !state.record.remember {
            return Ok(self.removal_if_needed(state));
        }
        if self.revocations.is_some() && (sid.is_none() || state.regenerate) {
            let fresh = serde_json::Value::String(super::revoke::new_sid());
            state.record.data.insert(SID_KEY.to_owned(), fresh);
        }
        state.record.last_seen = now;
        let value = format.encode(self.cookie.name(), &state.record, now)?;
        self.set_cookie(&value, &state.record, now).map(Some)
    }

    async fn finish_stored(
        &self,
        store: &dyn SessionStore,
        ids: &dyn IdFormat,
        state: &mut State,
        now: UnixTime,
    ) -> Result<Option<String>> {
        let origin = std::mem::replace(&mut state.origin, Origin::Fresh);
        let (id, key) = match origin {
            Origin::Stored { id, key } => (id, key),
            Origin::Fresh | Origin::Cookie => {
                if state.destroyed || !state.changed() || state.is_empty() {
                    return Ok(state.clear_cookie.then(|| self.cookie.removal_cookie()));
                }
                return self
                    .create(store, ids, &mut state.record, now)
                    .await
                    .map(Some);
            }
        };
        if state.destroyed {
            self.timed("deleting a session", store.delete(&key)).await?;
            return Ok(Some(self.cookie.removal_cookie()));
        }
        if state.regenerate {
            let value = self.create(store, ids, &mut state.record, now).await?;
            self.timed("deleting the old session id", store.delete(&key))
                .await?;
            return Ok(Some(value));
        }
        let remember_changed = state
            .ops
            .iter()
            .any(|op| matches!(op, crate::session::state::Op::SetRemember(_)));
        let alive = if state.changed() {
            self.save_with_retry(store, &key, state, now).await?
        } else if state.touch {
            let deadline = {
                let mut r = state.record.clone();
                r.last_seen = now;
                r.deadline(&self.expiry)
            };
            self.timed("refreshing a session", store.touch(&key, now, deadline))
                .await?
        } else {
            true
        };
        if !alive {
            tracing::debug!("session was ended by another request; its changes are dropped");
            return Ok(Some(self.cookie.removal_cookie()));
        }
        let resend = remember_changed || (state.touch && state.record.remember);
        if resend {
            state.record.last_seen = now;
            return self
                .set_cookie(&ids.encode(&id), &state.record, now)
                .map(Some);
        }
        Ok(None)
    }

    /// Store `record` under a new random ID (create-if-absent, redrawing on the
    /// astronomically unlikely collision) and return its `Set-Cookie`.
    async fn create(
        &self,
        store: &dyn SessionStore,
        ids: &dyn IdFormat,
        record: &mut Record,
        now: UnixTime,
    ) -> Result<String> {
        record.last_seen = now;
        record.expires_at = record.deadline(&self.expiry);
        record.version = record.version.saturating_add(1);
        for _ in 0..MAX_CREATE_ATTEMPTS {
            let id = SessionId::generate();
            if self
                .timed(
                    "creating a session",
                    store.create(&ids.store_key(&id), record),
                )
                .await?
            {
                return self.set_cookie(&ids.encode(&id), record, now);
            }
            tracing::error!(
                "freshly generated session id already exists; is the random source broken?"
            );
        }
        Err(Error::new(
            ErrorKind::Conflict,
            "could not draw an unused session id",
        ))
    }

    /// Compare-and-swap the handler's changes; on conflict replay them on the
    /// newest record. Returns `false` when the session was deleted meanwhile.
    async fn save_with_retry(
        &self,
        store: &dyn SessionStore,
        key: &StoreKey,
        state: &mut State,
        now: UnixTime,
    ) -> Result<bool> {
        // Requests of this process saving the same session take turns: a save
        // that comes after another of the same session rebases onto what that
        // one wrote (kept in the stripe while others wait) instead of 32
        // concurrent writers failing their compare-and-swap against each other
        // (quadratic round trips). Other processes are still handled by the
        // compare-and-swap and the reload below.
        let stripe = self.save_stripe(key);
        stripe.waiting.fetch_add(1, Ordering::AcqRel);
        let mut last_saved = stripe.last_saved.lock().await;
        stripe.waiting.fetch_sub(1, Ordering::AcqRel);
        let mut expected = state.record.version;
        if let Some((saved_key, saved)) = last_saved.take() {
            // Versions only grow and each is written once (compare-and-swap),
            // so a newer version saved by this process is the newest we know.
            if saved_key == *key && saved.version > expected {
                expected = saved.version;
                state.record = saved;
                for op in &state.ops {
                    op.apply(&mut state.record)?;
                }
            }
        }
        for attempt in 0..MAX_SAVE_ATTEMPTS {
            let record = &mut state.record;
            record.version = expected + 1;
            record.last_seen = now;
            record.expires_at = record.deadline(&self.expiry);
            match self
                .timed("saving a session", store.save(key, record, expected))
                .await?
            {
                SaveOutcome::Saved => {
                    if stripe.waiting.load(Ordering::Acquire) > 0 {
                        *last_saved = Some((*key, state.record.clone()));
                    }
                    return Ok(true);
                }
                SaveOutcome::Gone => return Ok(false),
                SaveOutcome::Conflict => {}
            }
            backoff(attempt).await;
            let Some(newest) = self.timed("reloading a session", store.load(key)).await? else {
                return Ok(false);
            };
            if newest.is_expired(now, &self.expiry) {
                return Ok(false);
            }
            expected = newest.version;
            state.record = newest;
            for op in &state.ops {
                op.apply(&mut state.record)?;
            }
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!("session save kept conflicting after {MAX_SAVE_ATTEMPTS} attempts"),
        ))
    }
}

/// A short randomized pause after a conflict, growing with the attempt, so that
/// many writers racing on one session spread out instead of colliding in lockstep.
///
/// The first conflict reloads at once: within this process saves already take
/// turns, so it most likely met one other process's write, and a timer sleep
/// costs at least a millisecond on tokio's clock.
async fn backoff(attempt: u32) {
    if attempt == 0 {
        return;
    }
    let mut byte = [0u8; 1];
    crate::rand::fill(&mut byte);
    let cap_us = 50u64 << attempt.min(6);
    let us = u64::from(byte[0]) * cap_us / 255;
    tokio::time::sleep(Duration::from_micros(us)).await;
}
