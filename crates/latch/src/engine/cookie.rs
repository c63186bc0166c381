//! Cookie-only sessions: the record travels in the cookie, signed or sealed.

use std::sync::Arc;

use super::Engine;
use super::revoke::{ISSUED_MS_KEY, SID_KEY};
use super::state::{CookieSid, Ending, Loaded, Origin, State};
use crate::codec::CookieFormat;
use crate::error::Result;
use crate::record::Record;
use crate::store::SessionStore;
use crate::time::UnixTime;

/// Where cookie-only sessions keep what they need: the format of the cookie,
/// and the store of revocation markers, if they are revocable.
#[derive(Debug)]
pub(crate) struct CookieBackend {
    format: Box<dyn CookieFormat>,
    revocations: Option<Arc<dyn SessionStore>>,
}

impl CookieBackend {
    pub(crate) fn new(
        format: Box<dyn CookieFormat>,
        revocations: Option<Arc<dyn SessionStore>>,
    ) -> Self {
        Self {
            format,
            revocations,
        }
    }

    pub(crate) fn format(&self) -> &dyn CookieFormat {
        self.format.as_ref()
    }

    /// The store of revocation markers, if sessions are revocable.
    pub(crate) fn revocations(&self) -> Option<&Arc<dyn SessionStore>> {
        self.revocations.as_ref()
    }

    /// The session in the cookie `value`, if authentic, current and not
    /// revoked.
    pub(crate) async fn open(
        &self,
        engine: &Engine,
        value: &str,
        now: UnixTime,
    ) -> Result<Option<Loaded>> {
        let Some((record, reissue)) = self.authentic(engine, value, now) else {
            return Ok(None);
        };
        if self.is_revoked(engine, &record).await? {
            engine.note_rejected("revoked cookie session");
            return Ok(None);
        }
        Ok(Some(self.loaded(engine, record, reissue, now)))
    }

    /// [`open`](Self::open) without waiting, for sessions that are not
    /// revocable (no store to ask); `None` when they are.
    pub(crate) fn open_now(
        &self,
        engine: &Engine,
        value: &str,
        now: UnixTime,
    ) -> Option<Option<Loaded>> {
        if self.revocations.is_some() {
            return None;
        }
        Some(
            self.authentic(engine, value, now)
                .map(|(record, reissue)| self.loaded(engine, record, reissue, now)),
        )
    }

    /// The record in the cookie `value` if it is authentic and current, and
    /// whether to re-issue it (an older key or layout).
    fn authentic(&self, engine: &Engine, value: &str, now: UnixTime) -> Option<(Record, bool)> {
        let decoded = match self.format.decode(engine.cookie().name(), value) {
            Ok(decoded) => decoded,
            Err(rejected) => {
                engine.note_rejected(rejected.reason());
                return None;
            }
        };
        let mut record = decoded.record;
        record.expires_at = record.deadline(engine.expiry());
        // Expiry first: it needs no store lookup.
        if !engine.is_current(&record, now) {
            return None;
        }
        Some((record, decoded.key_index > 0 || decoded.outdated))
    }

    fn loaded(&self, engine: &Engine, record: Record, reissue: bool, now: UnixTime) -> Loaded {
        let sid = record
            .data
            .get(SID_KEY)
            .and_then(|v| v.as_str())
            .map(|sid| CookieSid {
                sid: sid.to_owned(),
                until: self.longest_life(engine, &record),
                signed_in: record.user_id.is_some(),
            });
        engine.loaded(Origin::Cookie { sid }, record, reissue, now)
    }

    /// Seal what the session holds now; the `Set-Cookie` to send, if any.
    pub(crate) async fn finish(
        &self,
        engine: &Arc<Engine>,
        state: &mut State,
        now: UnixTime,
    ) -> Result<Option<String>> {
        if let Some(loaded) = revocation_due(state) {
            self.revoke_sid(engine, &loaded.sid, now, loaded.until)
                .await?;
        }
        self.seal(engine, state, now)
    }

    /// [`finish`](Self::finish) when no revocation marker is to be filed
    /// (every request but a logout or regeneration of a revocable session).
    pub(crate) fn finish_now(
        &self,
        engine: &Arc<Engine>,
        state: &mut State,
        now: UnixTime,
    ) -> Option<Result<Option<String>>> {
        if revocation_due(state).is_some() {
            return None;
        }
        Some(self.seal(engine, state, now))
    }

    /// The cookie that carries what the session holds now, its removal, or
    /// nothing when the client's cookie is still right.
    fn seal(
        &self,
        engine: &Arc<Engine>,
        state: &mut State,
        now: UnixTime,
    ) -> Result<Option<String>> {
        let ending = state.ending();
        if ending == Ending::Destroy {
            return Ok(engine.removal_if_needed(state));
        }
        let regenerate = ending == Ending::Regenerate;
        let write = state.changed() || regenerate || state.touch_due() || state.wants_reissue();
        if !write {
            return Ok(state
                .refused_cookie()
                .then(|| engine.cookie().removal_cookie()));
        }
        if state.is_empty() && !state.record().remember {
            return Ok(engine.removal_if_needed(state));
        }
        if self.revocations.is_some() {
            if regenerate || !state.record().data.contains_key(SID_KEY) {
                let fresh = serde_json::Value::String(super::revoke::new_sid());
                state.set_internal(SID_KEY, fresh);
            }
            if regenerate {
                // Signed in (or re-issued) now: per-user revocations before
                // this millisecond do not apply to it.
                let issued = serde_json::Value::from(engine.clock.now_millis());
                state.set_internal(ISSUED_MS_KEY, issued);
            }
        }
        state.record_mut().last_seen = now;
        let value = self
            .format
            .encode(engine.cookie().name(), state.record(), now)?;
        engine.set_cookie(&value, state.record(), now).map(Some)
    }
}

/// The cookie's revocable ID, when this request's ending must file it: a copy
/// of the old cookie must not outlive logout or regeneration. Ending an
/// anonymous session files nothing: a copy signs nobody in, and anyone could
/// otherwise fill the store with markers by signing out anonymously again and
/// again.
fn revocation_due(state: &State) -> Option<&CookieSid> {
    let Origin::Cookie { sid: Some(loaded) } = state.origin() else {
        return None;
    };
    let revoke = match state.ending() {
        Ending::Keep => false,
        Ending::Regenerate => true,
        Ending::Destroy => loaded.signed_in,
    };
    revoke.then_some(loaded)
}
