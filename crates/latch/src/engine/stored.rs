//! Server-side sessions: the cookie holds an opaque ID, the record lives in a
//! store. The end of a request takes one of four paths: destroy, regenerate,
//! save (compare-and-swap, see `save.rs`), or touch.

use std::sync::Arc;

use super::Engine;
use super::save;
use super::state::{Ending, Loaded, Origin, State};
use crate::codec::IdFormat;
use crate::error::{Error, ErrorKind, Result};
use crate::id::{SessionId, StoreKey};
use crate::record::{Record, RecordCell};
use crate::store::{InProcess, SessionStore};
use crate::time::UnixTime;

/// How often a freshly drawn ID may collide before creation gives up (with
/// 256-bit IDs even one collision means a broken random source).
const MAX_CREATE_ATTEMPTS: u32 = 4;

/// A store of server-side sessions, and how their IDs look in the cookie.
#[derive(Debug)]
pub(crate) struct StoreBackend {
    store: Arc<dyn SessionStore>,
    ids: Box<dyn IdFormat>,
}

impl StoreBackend {
    pub(crate) fn new(store: Arc<dyn SessionStore>, ids: Box<dyn IdFormat>) -> Self {
        Self { store, ids }
    }

    pub(crate) fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    pub(crate) fn ids(&self) -> &dyn IdFormat {
        self.ids.as_ref()
    }

    /// The session the cookie `value` names, if the ID is well-formed, known
    /// and current.
    pub(crate) async fn open(
        &self,
        engine: &Engine,
        value: &str,
        now: UnixTime,
    ) -> Result<Option<Loaded>> {
        let Some((id, key)) = self.parse(engine, value) else {
            return Ok(None);
        };
        let load = self.store.load_shared(&key);
        let record = engine.timed("loading a session", load).await?;
        Ok(self.opened(engine, id, key, record, now))
    }

    /// [`open`](Self::open) without waiting, from a store that keeps its
    /// records in this process; `None` for any other store.
    pub(crate) fn open_now(
        &self,
        engine: &Engine,
        value: &str,
        now: UnixTime,
    ) -> Option<Result<Option<Loaded>>> {
        let store = self.store.in_process()?;
        let Some((id, key)) = self.parse(engine, value) else {
            return Some(Ok(None));
        };
        Some(
            store
                .load_now(&key)
                .map(|record| self.opened(engine, id, key, record, now)),
        )
    }

    /// The ID in the cookie `value` and its store key, if well-formed.
    fn parse(&self, engine: &Engine, value: &str) -> Option<(SessionId, StoreKey)> {
        let Some(id) = self.ids.parse(value) else {
            engine.note_rejected("malformed session id");
            return None;
        };
        let key = self.ids.store_key(&id);
        Some((id, key))
    }

    /// The session loaded from `record`, if there is one and it is current.
    fn opened(
        &self,
        engine: &Engine,
        id: SessionId,
        key: StoreKey,
        record: Option<Arc<Record>>,
        now: UnixTime,
    ) -> Option<Loaded> {
        let Some(record) = record else {
            engine.note_rejected("unknown, revoked or purged session id");
            return None;
        };
        if !engine.is_current(&record, now) {
            return None;
        }
        let origin = Origin::Stored { id, key };
        Some(engine.loaded(origin, record, false, now))
    }

    /// Write what the request changed; the `Set-Cookie` to send, if any.
    pub(crate) async fn finish(
        &self,
        engine: &Arc<Engine>,
        state: &mut State,
        now: UnixTime,
    ) -> Result<Option<String>> {
        let (id, key) = match state.origin() {
            Origin::Stored { id, key } => (id.clone(), *key),
            Origin::Fresh | Origin::Cookie { .. } => {
                return self.finish_fresh(engine, state, now).await;
            }
        };
        let set_cookie = match state.ending() {
            Ending::Destroy => self.destroy(engine, &key).await?,
            Ending::Regenerate => self.regenerate(engine, state, &key, now).await?,
            Ending::Keep => self.keep(engine, state, &id, &key, now).await?,
        };
        Ok(set_cookie)
    }

    /// [`finish`](Self::finish) when nothing is to be written (a read, or a
    /// fresh session left empty); `None`, with nothing done, otherwise.
    pub(crate) fn finish_now(
        &self,
        engine: &Arc<Engine>,
        state: &mut State,
        now: UnixTime,
    ) -> Option<Result<Option<String>>> {
        let Origin::Stored { id, .. } = state.origin() else {
            if !fresh_is_stored(state) {
                return Some(Ok(fresh_unstored(engine, state)));
            }
            let store = self.store.in_process()?;
            return Some(self.create_fresh(engine, state, now, store));
        };
        let id = id.clone();
        let early = state.early();
        let early_io = early.set_cookie.is_some() || early.gone;
        let io = early_io || state.ending() != Ending::Keep || state.changed() || state.touch_due();
        if io {
            return None;
        }
        let remember_changed = remember_changed(state) || state.early().resend;
        Some(self.resend_if_due(engine, state, &id, remember_changed, now))
    }

    /// A session that arrived with no valid cookie: stored only when the
    /// handler wrote something worth keeping.
    async fn finish_fresh(
        &self,
        engine: &Engine,
        state: &mut State,
        now: UnixTime,
    ) -> Result<Option<String>> {
        if !fresh_is_stored(state) {
            return Ok(fresh_unstored(engine, state));
        }
        if let Some(store) = self.store.in_process() {
            return self.create_fresh(engine, state, now, store);
        }
        Self::prepare_fresh(engine, state, now);
        let (_, _, value) = self.create(engine, state, now).await?;
        state.mark_created();
        Ok(Some(value))
    }

    /// What a fresh session's record takes in before it is first stored.
    fn prepare_fresh(engine: &Engine, state: &mut State, now: UnixTime) {
        // The secret of the forms this visitor already has moves into the
        // record, so they keep working; signing in starts a new one instead.
        let pending = engine.pre_session_csrf(state, false);
        let adopt = pending.filter(|_| state.ending() != Ending::Regenerate);
        if let Some(secret) = adopt {
            state.set_internal(crate::csrf::CSRF_KEY, serde_json::Value::String(secret));
        }
        if state.ending() == Ending::Regenerate {
            engine.begin_binding(state, now);
        }
    }

    /// [`finish_fresh`](Self::finish_fresh) on a store that answers at once.
    fn create_fresh(
        &self,
        engine: &Engine,
        state: &mut State,
        now: UnixTime,
        store: &dyn InProcess,
    ) -> Result<Option<String>> {
        Self::prepare_fresh(engine, state, now);
        let record = Self::prepare_record(engine, state, now)?;
        for _ in 0..MAX_CREATE_ATTEMPTS {
            let (id, key) = self.draw();
            if store.create_now(&key, &record)? {
                let value = engine.set_cookie(&self.ids.encode(&id), &record, now)?;
                state.mark_created();
                return Ok(Some(value));
            }
            id_collision();
        }
        Err(no_free_id())
    }

    /// Logout: delete the session and expire the cookie.
    async fn destroy(&self, engine: &Engine, key: &StoreKey) -> Result<Option<String>> {
        engine
            .timed("deleting a session", self.store.delete(key))
            .await?;
        Ok(Some(engine.cookie().removal_cookie()))
    }

    /// A new ID for the same session. It starts from what is stored now, so
    /// changes other requests saved under the old ID since this request loaded
    /// it move to the new ID too (this request's changes replayed on top); a
    /// session ended meanwhile is not regenerated at all.
    async fn regenerate(
        &self,
        engine: &Engine,
        state: &mut State,
        key: &StoreKey,
        now: UnixTime,
    ) -> Result<Option<String>> {
        let load = self.store.load_shared(key);
        let Some(latest) = engine.timed("loading a session", load).await? else {
            // Ended by a logout, or already moved to a new ID by a concurrent
            // request of the same browser (a double-submitted sign-in form).
            // No Set-Cookie at all: a removal cookie here could arrive after the
            // winner's response and delete the cookie it just set; the old
            // cookie is dead in the store either way.
            tracing::debug!("session was ended or regenerated by another request");
            return Ok(None);
        };
        if latest.version != state.record().version {
            let mut record = RecordCell::from(latest);
            for op in state.ops() {
                op.apply(record.make_mut())?;
            }
            state.settle(record);
        }
        engine.begin_binding(state, now);
        // Create first, so a store failure leaves the old session in place;
        // then retire the old ID. If it was already gone, a logout or a
        // revocation ended the session in between: its copy under the new
        // ID must not bring it back.
        let (_, new_key, value) = self.create(engine, state, now).await?;
        let retire = self.store.delete(key);
        let retired = engine.timed("deleting the old session id", retire).await?;
        if !retired {
            engine
                .timed("deleting a session", self.store.delete(&new_key))
                .await?;
            tracing::debug!("session was ended or regenerated by another request");
            return Ok(None);
        }
        Ok(Some(value))
    }

    /// Save the changes so far now rather than at the end of the request
    /// ([`Session::save`](crate::Session::save)): a fresh session is created,
    /// a stored one saved (compare-and-swap, replay); the request then sees
    /// what was stored. Logout and regeneration still happen at the end.
    pub(crate) async fn save_now(
        &self,
        engine: &Arc<Engine>,
        state: &mut State,
        now: UnixTime,
    ) -> Result<()> {
        if !state.changed() || state.ending() != Ending::Keep {
            return Ok(());
        }
        let key = match state.origin() {
            Origin::Stored { key, .. } => *key,
            Origin::Fresh | Origin::Cookie { .. } => {
                if state.is_empty() {
                    return Ok(());
                }
                if let Some(secret) = engine.pre_session_csrf(state, false) {
                    state.set_internal(crate::csrf::CSRF_KEY, serde_json::Value::String(secret));
                }
                let (id, key, value) = self.create(engine, state, now).await?;
                state.stored_early(id, key, value);
                return Ok(());
            }
        };
        engine.check_record_size(state.record())?;
        let remember_changed = remember_changed(state);
        if save::save(engine, &self.store, &key, state, now).await? {
            state.early_mut().resend |= remember_changed;
        } else {
            state.early_mut().gone = true;
        }
        Ok(())
    }

    /// The same ID: save the changes (compare-and-swap), or refresh
    /// `last_seen` when it is due; re-send the cookie when its lifetime
    /// changed.
    async fn keep(
        &self,
        engine: &Arc<Engine>,
        state: &mut State,
        id: &SessionId,
        key: &StoreKey,
        now: UnixTime,
    ) -> Result<Option<String>> {
        if let Some(created) = state.take_early_cookie() {
            // Created by an early save; anything changed since is saved now.
            if state.changed() {
                engine.check_record_size(state.record())?;
                save::save(engine, &self.store, key, state, now).await?;
            }
            return Ok(Some(created));
        }
        if state.early().gone {
            return Ok(Some(engine.cookie().removal_cookie()));
        }
        let remember_changed = remember_changed(state) || state.early().resend;
        let alive = if state.changed() {
            engine.check_record_size(state.record())?;
            save::save(engine, &self.store, key, state, now).await?
        } else if state.touch_due() {
            self.touch(engine, state, key, now).await?
        } else {
            true
        };
        if !alive {
            tracing::debug!("session was ended by another request; its changes are dropped");
            return Ok(Some(engine.cookie().removal_cookie()));
        }
        self.resend_if_due(engine, state, id, remember_changed, now)
    }

    /// The session's cookie again when its lifetime in the browser changed
    /// (remember-me turned on or off, or a remembered session refreshed).
    fn resend_if_due(
        &self,
        engine: &Engine,
        state: &mut State,
        id: &SessionId,
        remember_changed: bool,
        now: UnixTime,
    ) -> Result<Option<String>> {
        let resend = remember_changed || (state.touch_due() && state.record().remember);
        if !resend {
            return Ok(None);
        }
        state.record_mut().last_seen = now;
        engine
            .set_cookie(&self.ids.encode(id), state.record(), now)
            .map(Some)
    }

    /// Refresh `last_seen` and the deadline; `false` when the session is gone.
    async fn touch(
        &self,
        engine: &Engine,
        state: &State,
        key: &StoreKey,
        now: UnixTime,
    ) -> Result<bool> {
        let record = state.record();
        // The deadline depends only on these: no copy of the session's data.
        let deadline = Record {
            created_at: record.created_at,
            last_seen: now,
            remember: record.remember,
            ..Record::new(0)
        }
        .deadline(engine.expiry());
        let user = record.user_id.as_deref();
        let touch = self.store.touch(key, user, now, deadline);
        engine.timed("refreshing a session", touch).await
    }

    /// Store `record` under a new random ID (create-if-absent, redrawing on the
    /// astronomically unlikely collision); returns its ID, key and `Set-Cookie`.
    async fn create(
        &self,
        engine: &Engine,
        state: &mut State,
        now: UnixTime,
    ) -> Result<(SessionId, StoreKey, String)> {
        let record = Self::prepare_record(engine, state, now)?;
        for _ in 0..MAX_CREATE_ATTEMPTS {
            let (id, key) = self.draw();
            let create = self.store.create_shared(&key, &record);
            if engine.timed("creating a session", create).await? {
                let value = engine.set_cookie(&self.ids.encode(&id), &record, now)?;
                return Ok((id, key, value));
            }
            id_collision();
        }
        Err(no_free_id())
    }

    /// The record to create, its times and version set, shared for the store.
    fn prepare_record(engine: &Engine, state: &mut State, now: UnixTime) -> Result<Arc<Record>> {
        let record = state.record_mut();
        engine.check_record_size(record)?;
        record.last_seen = now;
        record.expires_at = record.deadline(engine.expiry());
        record.version = record.version.saturating_add(1);
        Ok(state.share_record())
    }

    /// A new random ID and its store key.
    fn draw(&self) -> (SessionId, StoreKey) {
        let id = SessionId::generate();
        let key = self.ids.store_key(&id);
        (id, key)
    }
}

fn id_collision() {
    tracing::error!("freshly generated session id already exists; is the random source broken?");
}

fn no_free_id() -> Error {
    Error::new(ErrorKind::Conflict, "could not draw an unused session id")
}

/// Whether the request changed the session's remember-me flag (its cookie's
/// lifetime).
fn remember_changed(state: &State) -> bool {
    state
        .ops()
        .iter()
        .any(|op| matches!(op, super::state::Op::SetRemember(_)))
}

/// Whether a session that arrived without a valid cookie is to be stored: the
/// handler wrote something worth keeping and did not end it.
fn fresh_is_stored(state: &State) -> bool {
    state.ending() != Ending::Destroy && state.changed() && !state.is_empty()
}

/// What a fresh session that is not stored sends: the removal of a cookie
/// that was refused, so the browser stops sending it.
fn fresh_unstored(engine: &Engine, state: &State) -> Option<String> {
    state
        .refused_cookie()
        .then(|| engine.cookie().removal_cookie())
}
