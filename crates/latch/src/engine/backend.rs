//! Cookie-only or server-side: the one place the engine tells them apart.

use std::sync::Arc;

use super::state::{Loaded, State};
use super::{CookieBackend, Engine, StoreBackend};
use crate::error::{Error, Result};
use crate::store::{ExpiredDeletion, SessionStore, UserIndex};
use crate::time::UnixTime;

/// Where a session's data lives.
#[derive(Debug)]
pub(crate) enum Backend {
    /// In the cookie, signed or sealed (with revocation markers in a store,
    /// when one is given).
    Cookie(CookieBackend),
    /// In a store; the cookie holds an opaque ID.
    Store(StoreBackend),
}

impl Backend {
    /// Data keys the format gives a meaning of its own.
    pub(crate) fn reserved_keys(&self) -> &'static [&'static str] {
        match self {
            Backend::Cookie(cookie) => cookie.format().reserved_keys(),
            Backend::Store(stored) => stored.ids().reserved_keys(),
        }
    }

    /// The form in which the format keeps a value the application stores.
    pub(crate) fn prepare_value(&self, value: serde_json::Value) -> Result<serde_json::Value> {
        match self {
            Backend::Cookie(cookie) => cookie.format().prepare_value(value),
            Backend::Store(stored) => stored.ids().prepare_value(value),
        }
    }

    /// The session the cookie `value` carries or names, if it is valid (not
    /// yet checked for expiry); `None` for anything refused.
    pub(crate) async fn open(
        &self,
        engine: &Engine,
        value: &str,
        now: UnixTime,
    ) -> Result<Option<Loaded>> {
        match self {
            Backend::Cookie(cookie) => cookie.open(engine, value, now).await,
            Backend::Store(stored) => stored.open(engine, value, now).await,
        }
    }

    /// [`open`](Self::open) when that needs no waiting (cookie sessions that
    /// are not revocable, a store that keeps its records in this process);
    /// `None` when it does.
    pub(crate) fn open_now(
        &self,
        engine: &Engine,
        value: &str,
        now: UnixTime,
    ) -> Option<Result<Option<Loaded>>> {
        match self {
            Backend::Cookie(cookie) => cookie.open_now(engine, value, now).map(Ok),
            Backend::Store(stored) => stored.open_now(engine, value, now),
        }
    }

    /// Write what changed; the `Set-Cookie` to send, if any.
    pub(crate) async fn finish(
        &self,
        engine: &Arc<Engine>,
        state: &mut State,
        now: UnixTime,
    ) -> Result<Option<String>> {
        match self {
            Backend::Cookie(cookie) => cookie.finish(engine, state, now).await,
            Backend::Store(stored) => stored.finish(engine, state, now).await,
        }
    }

    /// [`finish`](Self::finish) when that needs no I/O; `None`, with nothing
    /// done, when it does.
    pub(crate) fn finish_now(
        &self,
        engine: &Arc<Engine>,
        state: &mut State,
        now: UnixTime,
    ) -> Option<Result<Option<String>>> {
        match self {
            Backend::Cookie(cookie) => cookie.finish_now(engine, state, now),
            Backend::Store(stored) => stored.finish_now(engine, state, now),
        }
    }

    /// The store of server-side sessions.
    pub(crate) fn store(&self) -> Option<&Arc<dyn SessionStore>> {
        match self {
            Backend::Cookie(_) => None,
            Backend::Store(stored) => Some(stored.store()),
        }
    }

    /// The store that lists and ends a user's sessions, and its index.
    pub(crate) fn user_index(&self) -> Result<(&dyn SessionStore, &dyn UserIndex)> {
        let store = self.store().ok_or_else(|| {
            Error::invalid_config(
                "listing and revoking sessions needs a server-side store; cookie-only \
                 sessions have no server-side list",
            )
        })?;
        let index = store.user_index().ok_or_else(|| {
            Error::invalid_config(format!(
                "this store ({store:?}) keeps no index of sessions by user, so it cannot list \
                 or end a user's sessions; use a store that does (latch's SQLite, Redis, \
                 PostgreSQL and memory stores do), and call \
                 SessionManagerBuilder::require_user_index to have this checked at start-up"
            ))
        })?;
        Ok((store.as_ref(), index))
    }

    /// End every session of `user`.
    pub(crate) async fn revoke_user(&self, engine: &Engine, user: &str) -> Result<u64> {
        match self {
            Backend::Cookie(cookie) => cookie.revoke_user(engine, user).await.map(|_| 0),
            Backend::Store(_) => {
                let (_, index) = self.user_index()?;
                engine
                    .timed("deleting sessions", index.delete_by_user(user, None))
                    .await
            }
        }
    }

    /// End every session of `user` but the one in `state`.
    pub(crate) async fn sign_out_everywhere_else(
        &self,
        engine: &Engine,
        state: &mut State,
        user: &str,
    ) -> Result<u64> {
        match self {
            Backend::Cookie(cookie) => cookie.sign_out_everywhere_else(engine, state, user).await,
            Backend::Store(_) => {
                let (_, index) = self.user_index()?;
                let keep = state.stored_key();
                engine
                    .timed(
                        "deleting sessions",
                        index.delete_by_user(user, keep.as_ref()),
                    )
                    .await
            }
        }
    }

    /// What deletes expired entries: the session store's, or the revocation
    /// markers' of cookie sessions; `None` when neither has (or needs) it.
    pub(crate) fn expired_deletion(&self) -> Option<&dyn ExpiredDeletion> {
        match self {
            Backend::Cookie(cookie) => cookie.revocations()?.expired_deletion(),
            Backend::Store(stored) => stored.store().expired_deletion(),
        }
    }
}
