//! Revoking cookie-only sessions: the markers of [`CookieBackend`].
//!
//! A signed or sealed cookie stays valid until it expires, wherever a copy of it
//! is. To make such sessions revocable, latch keeps small markers in a
//! [`SessionStore`] (any backend) given with
//! [`SessionManagerBuilder::revocation_store`](crate::SessionManagerBuilder::revocation_store):
//!
//! - each cookie session carries a random ID (`_latch.sid`); logout and
//!   `regenerate` file a "revoked session" marker for it until it would have
//!   expired anyway, so a replayed copy is refused;
//! - "sign out everywhere" files a per-user "not before" marker: every session
//!   of that user signed in earlier is refused (the session that asked is
//!   re-issued with a signed note that spares it, keeping its own deadlines);
//!   markers are only ever moved forward, never deleted and re-created.
//!
//! Sign-ins and per-user markers are ordered in milliseconds: every sign-in
//! (`log_in`, `regenerate`) stamps the cookie with the millisecond it was
//! issued, and a marker refuses everything issued at or before its own
//! millisecond. In whole seconds, sessions signed in within the same second
//! as a revocation survived it, and a sign-in right after one was refused.
//!
//! The price is one or two store lookups per request that carries a cookie
//! session (one when nobody is signed in); store failures answer 503, never
//! "accept".

use sha2::{Digest, Sha256};

use super::state::State;
use super::{CookieBackend, Engine};
use crate::error::Result;
use crate::id::StoreKey;
use crate::record::Record;
use crate::time::UnixTime;

/// The reserved data key holding a cookie session's random ID.
pub(crate) const SID_KEY: &str = "_latch.sid";

/// The reserved data key of a cookie session that survived a "sign out
/// everywhere else" at this time (whole seconds; written by earlier versions,
/// still read): per-user markers up to that time spare it.
pub(crate) const NOT_BEFORE_KEY: &str = "_latch.nb";

/// The reserved data key holding the millisecond a cookie session was issued
/// for its user: signed in (or regenerated), or spared by a "sign out
/// everywhere else". Per-user markers at or after it refuse the session,
/// while its `created_at`, and so its absolute timeout, stay as they were.
pub(crate) const ISSUED_MS_KEY: &str = "_latch.iat";

/// The data key of a per-user marker holding its time in milliseconds
/// (markers written by earlier versions have only `created_at`, in seconds).
const MARKER_MS_KEY: &str = "ms";

/// How often a per-user marker is re-read and re-written when another process
/// changes it at the same moment.
const MARKER_ATTEMPTS: u32 = 8;

fn marker_key(kind: &str, subject: &str) -> StoreKey {
    let mut h = Sha256::new();
    h.update(b"latch/v1/revocation\0");
    h.update(kind.as_bytes());
    h.update(b"\0");
    h.update(subject.as_bytes());
    StoreKey::from_bytes(h.finalize().into())
}

/// A new random cookie-session ID.
pub(crate) fn new_sid() -> String {
    crate::id::SessionId::generate().encode()
}

/// A per-user marker's time in milliseconds.
fn marker_millis(marker: &Record) -> i64 {
    marker
        .data
        .get(MARKER_MS_KEY)
        .and_then(serde_json::Value::as_i64)
        .unwrap_or_else(|| marker.created_at.saturating_mul(1000))
}

/// When a cookie session was issued for its user, in milliseconds.
fn issued_millis(record: &Record) -> i64 {
    let seconds = record
        .data
        .get(NOT_BEFORE_KEY)
        .and_then(serde_json::Value::as_i64)
        .map_or(record.created_at, |nb| nb.max(record.created_at));
    let millis = record
        .data
        .get(ISSUED_MS_KEY)
        .and_then(serde_json::Value::as_i64);
    millis.map_or(seconds.saturating_mul(1000), |ms| {
        ms.max(seconds.saturating_mul(1000))
    })
}

impl CookieBackend {
    /// Whether a decoded cookie session has been revoked.
    pub(super) async fn is_revoked(&self, engine: &Engine, record: &Record) -> Result<bool> {
        let Some(store) = self.revocations() else {
            return Ok(false);
        };
        if let Some(sid) = record.data.get(SID_KEY).and_then(|v| v.as_str()) {
            let key = marker_key("session", sid);
            if engine
                .timed("checking revocations", store.load(&key))
                .await?
                .is_some()
            {
                return Ok(true);
            }
        }
        if let Some(user) = &record.user_id {
            let key = marker_key("user", user);
            if let Some(marker) = engine
                .timed("checking revocations", store.load(&key))
                .await?
            {
                // A session issued in the very millisecond of the marker is
                // refused: when in doubt, the revocation wins.
                return Ok(issued_millis(record) <= marker_millis(&marker));
            }
        }
        Ok(false)
    }

    /// Until when a copy of the cookie session `record` could be valid: the
    /// later of its two absolute deadlines, since `set_remember` in another
    /// request can make a copy with the same ID a remember-me one.
    pub(super) fn longest_life(&self, engine: &Engine, record: &Record) -> UnixTime {
        let expiry = engine.expiry();
        let longest = expiry
            .absolute_timeout(true)
            .max(expiry.absolute_timeout(false));
        record.created_at.saturating_add(crate::time::secs(longest))
    }

    /// File a marker revoking the cookie session `sid` until `until`.
    pub(super) async fn revoke_sid(
        &self,
        engine: &Engine,
        sid: &str,
        now: UnixTime,
        until: UnixTime,
    ) -> Result<()> {
        let Some(store) = self.revocations() else {
            return Ok(());
        };
        let mut marker = Record::new(now);
        marker.expires_at = until;
        let key = marker_key("session", sid);
        engine
            .timed("revoking a session", store.create(&key, &marker))
            .await?;
        Ok(())
    }

    /// Refuse every cookie session of `user` but the one in `state`, which
    /// is re-issued marked as issued after the refusal (keeping its
    /// deadlines); returns 0: cookies cannot be counted.
    pub(super) async fn sign_out_everywhere_else(
        &self,
        engine: &Engine,
        state: &mut State,
        user: &str,
    ) -> Result<u64> {
        let revoked_at = self.revoke_user(engine, user).await?;
        state.set_internal(
            ISSUED_MS_KEY,
            serde_json::Value::from(revoked_at.saturating_add(1)),
        );
        state.reissue();
        Ok(0)
    }

    /// Refuse every cookie session of `user` issued before now; returns the
    /// marker's time in milliseconds (a session issued after it survives).
    pub(super) async fn revoke_user(&self, engine: &Engine, user: &str) -> Result<i64> {
        let Some(store) = self.revocations() else {
            return Err(crate::error::Error::new(
                crate::error::ErrorKind::InvalidConfig,
                "revoking cookie-only sessions needs a revocation store: \
                 SessionManagerBuilder::revocation_store",
            ));
        };
        let now_ms = engine.clock.now_millis();
        let now = now_ms.div_euclid(1000);
        let mut marker = Record::new(now);
        marker.data.insert(MARKER_MS_KEY.into(), now_ms.into());
        // Long enough to outlive every session it must refuse.
        let expiry = engine.expiry();
        marker.expires_at = now
            .saturating_add(crate::time::secs(expiry.absolute_timeout(true)))
            .max(now.saturating_add(crate::time::secs(expiry.absolute_timeout(false))));
        let key = marker_key("user", user);
        // Never delete a marker to replace it: a failure in between would
        // un-revoke every cookie the old marker refused. Create it, or move the
        // existing one forward with compare-and-swap.
        for _ in 0..MARKER_ATTEMPTS {
            let step = "revoking a user's sessions";
            if engine.timed(step, store.create(&key, &marker)).await? {
                return Ok(now_ms);
            }
            let Some(current) = engine.timed(step, store.load(&key)).await? else {
                continue; // expired and purged meanwhile: create again
            };
            let current_ms = marker_millis(&current);
            if current_ms >= now_ms && current.expires_at >= marker.expires_at {
                return Ok(current_ms);
            }
            let mut next = marker.clone();
            let next_ms = now_ms.max(current_ms);
            next.data.insert(MARKER_MS_KEY.into(), next_ms.into());
            next.created_at = next.created_at.max(current.created_at);
            next.expires_at = next.expires_at.max(current.expires_at);
            next.version = current.version.saturating_add(1);
            if engine
                .timed(step, store.save(&key, &next, current.version))
                .await?
                == crate::store::SaveOutcome::Saved
            {
                return Ok(next_ms);
            }
        }
        Err(crate::error::Error::new(
            crate::error::ErrorKind::Conflict,
            "the user's revocation marker kept changing; try again",
        ))
    }
}
