//! Loading a session on first use: decode or look up, then enforce expiry.

use super::{Backend, Shared};
use crate::codec::{CookieFormat, IdFormat};
use crate::cookie::IncomingCookie;
use crate::error::Result;
use crate::record::Record;
use crate::session::state::{Origin, State};
use crate::time::UnixTime;

/// How far in the future an issue time may lie (clock skew between app servers)
/// before a cookie is refused.
const MAX_CLOCK_SKEW: i64 = 60;

impl Shared {
    /// Load the session for `state`'s incoming cookie, or start a fresh one.
    ///
    /// Every kind of bad cookie ends the same way: a fresh session and a removal
    /// cookie. Only store failures are errors.
    pub(crate) async fn load(&self, state: &mut State) -> Result<()> {
        let now = self.clock.now();
        // Read, not taken: if the store fails below, a later call must see the
        // same cookie again rather than start a fresh session.
        let incoming = match &state.raw {
            Some(raw) => raw.incoming(self.cookie.name()),
            None => state.incoming.clone(),
        };
        let loaded = match incoming {
            IncomingCookie::Absent => None,
            IncomingCookie::Duplicate => {
                self.note_rejected("duplicate session cookies in one request");
                state.clear_cookie = true;
                None
            }
            IncomingCookie::One(value) => {
                let found = match &self.backend {
                    Backend::Cookie(format) => {
                        self.open_cookie(format.as_ref(), &value, now, state)
                            .await?
                    }
                    Backend::Store(_, ids) => self.load_stored(ids.as_ref(), &value, now).await?,
                };
                if found.is_none() {
                    state.clear_cookie = true;
                }
                found
            }
        };
        match loaded {
            Some((origin, record)) => {
                state.touch =
                    now - record.last_seen >= crate::time::secs(self.expiry.touch_every());
                state.origin = origin;
                state.record = record;
            }
            None => {
                let mut record = Record::new(now);
                if let Some(raw) = state.raw.take() {
                    let meta = raw.meta();
                    record.user_agent = meta.user_agent;
                    record.ip = meta.ip;
                } else {
                    record.user_agent = state.user_agent.take();
                    record.ip = state.ip.take();
                }
                state.origin = Origin::Fresh;
                state.record = record;
            }
        }
        state.raw = None;
        state.incoming = IncomingCookie::Absent;
        state.loaded = true;
        Ok(())
    }

    async fn open_cookie(
        &self,
        format: &dyn CookieFormat,
        value: &str,
        now: UnixTime,
        state: &mut State,
    ) -> Result<Option<(Origin, Record)>> {
        let decoded = match format.decode(self.cookie.name(), value) {
            Ok(decoded) => decoded,
            Err(rejected) => {
                self.note_rejected(rejected.reason());
                return Ok(None);
            }
        };
        let mut record = decoded.record;
        record.expires_at = record.deadline(&self.expiry);
        if !self.is_current(&record, now) {
            return Ok(None);
        }
        if self.is_revoked(&record).await? {
            self.note_rejected("revoked cookie session");
            return Ok(None);
        }
        state.reissue = decoded.key_index > 0;
        state.cookie_sid = record
            .data
            .get(super::revoke::SID_KEY)
            .and_then(|v| v.as_str())
            .map(|sid| (sid.to_owned(), self.longest_life(&record)));
        Ok(Some((Origin::Cookie, record)))
    }

    async fn load_stored(
        &self,
        ids: &dyn IdFormat,
        value: &str,
        now: UnixTime,
    ) -> Result<Option<(Origin, Record)>> {
        let Backend::Store(store, _) = &self.backend else {
            return Ok(None);
        };
        let Some(id) = ids.parse(value) else {
            self.note_rejected("malformed session id");
            return Ok(None);
        };
        let key = ids.store_key(&id);
        let Some(record) = self.timed("loading a session", store.load(&key)).await? else {
            self.note_rejected("unknown, revoked or purged session id");
            return Ok(None);
        };
        if !self.is_current(&record, now) {
            return Ok(None);
        }
        Ok(Some((Origin::Stored { id, key }, record)))
    }

    /// Expiry check shared by every kind: both deadlines under the policy in force
    /// now (not the one a store row was written under), and no issue time from the
    /// future.
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
}
