//! Revoking cookie-only sessions.
//!
//! A signed or sealed cookie stays valid until it expires, wherever a copy of it
//! is. To make such sessions revocable, latch keeps small markers in a
//! [`SessionStore`] (any backend) given with
//! [`SessionManagerBuilder::revocation_store`](super::SessionManagerBuilder::revocation_store):
//!
//! - each cookie session carries a random ID (`_latch.sid`); logout and
//!   `regenerate` file a "revoked session" marker for it until it would have
//!   expired anyway, so a replayed copy is refused;
//! - "sign out everywhere" files a per-user "not before" marker: every session
//!   of that user created earlier is refused (the session that asked is
//!   re-issued with a signed note that spares it, keeping its own deadlines);
//!   markers are only ever moved forward, never deleted and re-created.
//!
//! The price is one or two store lookups per request that carries a cookie
//! session (one when nobody is signed in); store failures answer 503, never
//! "accept".

use sha2::{Digest, Sha256};

use super::Shared;
use crate::error::Result;
use crate::id::StoreKey;
use crate::record::Record;
use crate::time::UnixTime;

/// The reserved data key holding a cookie session's random ID.
pub(crate) const SID_KEY: &str = "_latch.sid";

/// The reserved data key of a cookie session that survived a "sign out
/// everywhere else" at this time: per-user markers up to that time spare it,
/// while its `created_at`, and so its absolute timeout, stay as they were.
pub(crate) const NOT_BEFORE_KEY: &str = "_latch.nb";

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

impl Shared {
    /// Whether a decoded cookie session has been revoked.
    pub(crate) async fn is_revoked(&self, record: &Record) -> Result<bool> {
        let Some(store) = &self.revocations else {
            return Ok(false);
        };
        if let Some(sid) = record.data.get(SID_KEY).and_then(|v| v.as_str()) {
            let key = marker_key("session", sid);
            if self
                .timed("checking revocations", store.load(&key))
                .await?
                .is_some()
            {
                return Ok(true);
            }
        }
        if let Some(user) = &record.user_id {
            let key = marker_key("user", user);
            if let Some(marker) = self.timed("checking revocations", store.load(&key)).await? {
                // `created_at` of the marker is the "not before" time.
                let spared = record.data.get(NOT_BEFORE_KEY).and_then(|v| v.as_i64());
                let issued = spared.map_or(record.created_at, |t| t.max(record.created_at));
                return Ok(issued < marker.created_at);
            }
        }
        Ok(false)
    }

    /// File a marker revoking the cookie session `sid` until `until`.
    pub(crate) async fn revoke_sid(&self, sid: &str, now: UnixTime, until: UnixTime) -> Result<()> {
        let Some(store) = &self.revocations else {
            return Ok(());
        };
        let mut marker = Record::new(now);
        marker.expires_at = until;
        let key = marker_key("session", sid);
        self.timed("revoking a session", store.create(&key, &marker))
            .await?;
        Ok(())
    }

    /// Refuse every cookie session of `user` created before `now`.
    pub(crate) async fn revoke_user_cookies(&self, user: &str, now: UnixTime) -> Result<()> {
        let Some(store) = &self.revocations else {
            return Err(crate::error::Error::new(
                crate::error::ErrorKind::InvalidConfig,
                "revoking cookie-only sessions needs a revocation store: \
                 SessionManagerBuilder::revocation_store",
            ));
        };
        let mut marker = Record::new(now);
        // Long enough to outlive every session it must refuse.
        marker.expires_at = now
            .saturating_add(crate::time::secs(self.expiry.absolute_timeout(true)))
            .max(now.saturating_add(crate::time::secs(self.expiry.absolute_timeout(false))));
        let key = marker_key("user", user);
        // Never delete a marker to replace it: a failure in between would
        // un-revoke every cookie the old marker refused. Create it, or move the
        // existing one forward with compare-and-swap.
        for _ in 0..MARKER_ATTEMPTS {
            let step = "revoking a user's sessions";
            if self.timed(step, store.create(&key, &marker)).await? {
                return Ok(());
            }
            let Some(current) = self.timed(step, store.load(&key)).await? else {
                continue; // expired and purged meanwhile: create again
            };
            if current.created_at >= marker.created_at && current.expires_at >= marker.expires_at {
                return Ok(());
            }
            let mut next = marker.clone();
            next.created_at = next.created_at.max(current.created_at);
            next.expires_at = next.expires_at.max(current.expires_at);
            next.version = current.version.saturating_add(1);
            if self
                .timed(step, store.save(&key, &next, current.version))
                .await?
                == crate::store::SaveOutcome::Saved
            {
                return Ok(());
            }
        }
        Err(crate::error::Error::new(
            crate::error::ErrorKind::Conflict,
            "the user's revocation marker kept changing; try again",
        ))
    }
}
