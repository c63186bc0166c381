//! Ending a request: write what changed and say which cookie to send.

use std::sync::Arc;

use super::revoke::{ISSUED_MS_KEY, SID_KEY};
use super::{Backend, SessionManager, Shared};
use crate::codec::{CookieFormat, IdFormat, MAX_COOKIE_BYTES};
use crate::error::{Error, ErrorKind, Result};
use crate::id::{SessionId, StoreKey};
use crate::record::Record;
use crate::session::Session;
use crate::session::state::{Origin, State};
use crate::store::SessionStore;
use crate::time::UnixTime;

/// How often a freshly drawn ID may collide before creation gives up (with 256-bit
/// IDs even one collision means a broken random source).
const MAX_CREATE_ATTEMPTS: u32 = 4;

/// What the adapter must do to the response. Its `Debug` output shows the
/// cookie's attributes, never its value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Finished {
    /// A `Set-Cookie` value to send, if any. When present the response must not be
    /// stored by shared caches (`Cache-Control: no-store`).
    pub set_cookie: Option<String>,
    /// Whether the handler read the session, so the response depends on the
    /// `Cookie` header (`Vary: Cookie`).
    pub vary_cookie: bool,
    /// Whether the handler read a signed-in session, so the response may show
    /// that user's data: adapters keep it out of every cache
    /// (`Cache-Control: no-store`) unless the handler chose its own
    /// `Cache-Control`.
    pub signed_in: bool,
}

impl std::fmt::Debug for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `name=value; attributes`: keep the name and the attributes.
        let redacted = self.set_cookie.as_deref().map(|c| {
            let (pair, attributes) = c.split_once(';').unwrap_or((c, ""));
            let name = pair.split_once('=').map_or(pair, |(name, _)| name);
            format!("{name}=<redacted>;{attributes}")
        });
        f.debug_struct("Finished")
            .field("set_cookie", &redacted)
            .field("vary_cookie", &self.vary_cookie)
            .field("signed_in", &self.signed_in)
            .finish()
    }
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
        let signed_in = state.record.user_id.is_some();
        let set_cookie = match &shared.backend {
            Backend::Cookie(format) => {
                shared
                    .finish_cookie(format.as_ref(), &mut state, now)
                    .await?
            }
            Backend::Store(store, ids) => {
                Shared::finish_stored(&self.shared, store, ids.as_ref(), &mut state, now).await?
            }
        };
        Ok(Finished {
            set_cookie,
            vary_cookie: true,
            signed_in,
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
        if state.destroyed || state.regenerate {
            // A copy of the old cookie must not outlive logout or regeneration.
            if let Some((sid, until)) = &state.cookie_sid {
                self.revoke_sid(sid, now, *until).await?;
            }
        }
        let has_sid = state.record.data.contains_key(SID_KEY);
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
        if self.revocations.is_some() && (!has_sid || state.regenerate) {
            let fresh = serde_json::Value::String(super::revoke::new_sid());
            state.record.data.insert(SID_KEY.to_owned(), fresh);
        }
        if state.regenerate && self.revocations.is_some() {
            // Signed in (or re-issued) now: per-user revocations before this
            // millisecond do not apply to it.
            let issued = serde_json::Value::from(self.clock.now_millis());
            state.record.data.insert(ISSUED_MS_KEY.to_owned(), issued);
        }
        state.record.last_seen = now;
        let value = format.encode(self.cookie.name(), &state.record, now)?;
        self.set_cookie(&value, &state.record, now).map(Some)
    }

    async fn finish_stored(
        self: &Arc<Self>,
        store_arc: &Arc<dyn SessionStore>,
        ids: &dyn IdFormat,
        state: &mut State,
        now: UnixTime,
    ) -> Result<Option<String>> {
        let store = store_arc.as_ref();
        let origin = std::mem::replace(&mut state.origin, Origin::Fresh);
        let (id, key) = match origin {
            Origin::Stored { id, key } => (id, key),
            Origin::Fresh | Origin::Cookie => {
                if state.destroyed || !state.changed() || state.is_empty() {
                    return Ok(state.clear_cookie.then(|| self.cookie.removal_cookie()));
                }
                let (value, _) = self.create(store, ids, &mut state.record, now).await?;
                return Ok(Some(value));
            }
        };
        if state.destroyed {
            self.timed("deleting a session", store.delete(&key)).await?;
            return Ok(Some(self.cookie.removal_cookie()));
        }
        if state.regenerate {
            // Start from what is stored now, so that changes other requests
            // saved under the old ID since this request loaded it move to the
            // new ID too (this request's changes replayed on top); a session
            // ended meanwhile is not regenerated at all.
            let Some(latest) = self.timed("loading a session", store.load(&key)).await? else {
                tracing::debug!("session was ended by another request; not regenerated");
                return Ok(Some(self.cookie.removal_cookie()));
            };
            if latest.version != state.record.version {
                let mut record = latest;
                for op in &state.ops {
                    op.apply(&mut record)?;
                }
                state.record = record;
            }
            // Create first, so a store failure leaves the old session in place;
            // then retire the old ID. If it was already gone, a logout or a
            // revocation ended the session in between: its copy under the new
            // ID must not bring it back.
            let (value, new_key) = self.create(store, ids, &mut state.record, now).await?;
            let retired = self
                .timed("deleting the old session id", store.delete(&key))
                .await?;
            if !retired {
                self.timed("deleting a session", store.delete(&new_key))
                    .await?;
                tracing::debug!("session was ended by another request; not regenerated");
                return Ok(Some(self.cookie.removal_cookie()));
            }
            return Ok(Some(value));
        }
        let remember_changed = state
            .ops
            .iter()
            .any(|op| matches!(op, crate::session::state::Op::SetRemember(_)));
        let alive = if state.changed() {
            self.check_record_size(&state.record)?;
            super::save::save(self, store_arc, &key, state, now).await?
        } else if state.touch {
            let deadline = {
                let mut r = state.record.clone();
                r.last_seen = now;
                r.deadline(&self.expiry)
            };
            let user = state.record.user_id.as_deref();
            self.timed(
                "refreshing a session",
                store.touch(&key, user, now, deadline),
            )
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
    /// astronomically unlikely collision); returns its `Set-Cookie` and key.
    async fn create(
        &self,
        store: &dyn SessionStore,
        ids: &dyn IdFormat,
        record: &mut Record,
        now: UnixTime,
    ) -> Result<(String, StoreKey)> {
        self.check_record_size(record)?;
        record.last_seen = now;
        record.expires_at = record.deadline(&self.expiry);
        record.version = record.version.saturating_add(1);
        for _ in 0..MAX_CREATE_ATTEMPTS {
            let id = SessionId::generate();
            let key = ids.store_key(&id);
            if self
                .timed("creating a session", store.create(&key, record))
                .await?
            {
                let value = self.set_cookie(&ids.encode(&id), record, now)?;
                return Ok((value, key));
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
}
