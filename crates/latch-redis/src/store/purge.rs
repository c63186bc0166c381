//! The expiry index `{prefix}expiry`: every session's hex store key scored by
//! its `expires_at` (plus the fraction of a second at which it was filed; see
//! [`fields::expiry_score`]), so `purge_expired` finds expired sessions
//! oldest first without scanning the keyspace.
//!
//! Redis's TTLs delete the sessions themselves; purging removes what TTLs leave
//! behind (these entries, and index entries of sessions it deletes) and deletes
//! sessions that are expired at the caller's `now` but whose TTL has not fired.

use std::collections::BTreeMap;

use futures_util::future::{join_all, try_join_all};
use latch::{Result, StoreKey, UnixTime};

use super::{Context, RedisStore};
use crate::fields;
use crate::scripts::{self, PurgeReply};

impl RedisStore {
    /// Purge up to `limit` expiry entries due at `now`; returns how many expired
    /// sessions were removed, whether this call deleted them or their TTL had.
    pub(super) async fn purge(&self, now: UnixTime, limit: usize) -> Result<u64> {
        if limit == 0 {
            return Ok(0);
        }
        let due = self.expiry_due(now, limit).await?;
        let replies = join_all(due.iter().map(|m| self.purge_member(m, now))).await;
        let mut removed = Vec::new();
        let mut by_user: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut still_live = Vec::new();
        for (member, reply) in due.into_iter().zip(replies) {
            match reply? {
                Some(PurgeReply::Purged { user: Some(user) }) => {
                    by_user.entry(user).or_default().push(member.clone());
                    removed.push(member);
                }
                Some(PurgeReply::Purged { user: None } | PurgeReply::Gone) => removed.push(member),
                Some(PurgeReply::Live { expires_at }) => still_live.push((member, expires_at)),
                // Not a store key: drop the entry without counting it.
                None => self.expiry_remove(&[member]).await?,
            }
        }
        let unfile_users = by_user
            .iter()
            .map(|(user, members)| self.index_remove(user, members));
        try_join_all(unfile_users).await?;
        self.expiry_remove(&removed).await?;
        for (member, expires_at) in still_live {
            self.expiry_rescore(&member, expires_at).await?;
        }
        Ok(removed.len() as u64)
    }

    /// File `key` in the expiry index at `expires_at`.
    pub(super) async fn expiry_add(&self, key: &StoreKey, expires_at: UnixTime) -> Result<()> {
        redis::cmd("ZADD")
            .arg(self.keys.expiry())
            .arg(fields::expiry_score_now(expires_at))
            .arg(key.to_hex())
            .exec_async(&mut self.conn.clone())
            .await
            .context("updating the session expiry index")
    }

    /// Remove `members` (hex store keys) from the expiry index.
    pub(super) async fn expiry_remove(&self, members: &[String]) -> Result<()> {
        if members.is_empty() {
            return Ok(());
        }
        redis::cmd("ZREM")
            .arg(self.keys.expiry())
            .arg(members)
            .exec_async(&mut self.conn.clone())
            .await
            .context("removing entries of the session expiry index")
    }

    /// Move an entry whose session turned out to live longer to its real expiry
    /// (only if the entry is still there).
    async fn expiry_rescore(&self, member: &str, expires_at: UnixTime) -> Result<()> {
        redis::cmd("ZADD")
            .arg(self.keys.expiry())
            .arg("XX")
            .arg(fields::deadline(expires_at))
            .arg(member)
            .exec_async(&mut self.conn.clone())
            .await
            .context("updating the session expiry index")
    }

    /// The oldest `limit` entries due at `now`.
    async fn expiry_due(&self, now: UnixTime, limit: usize) -> Result<Vec<String>> {
        redis::cmd("ZRANGEBYSCORE")
            .arg(self.keys.expiry())
            .arg("-inf")
            .arg(fields::due_before(now))
            .arg("LIMIT")
            .arg(0)
            .arg(i64::try_from(limit).unwrap_or(i64::MAX))
            .query_async(&mut self.conn.clone())
            .await
            .context("reading the session expiry index")
    }

    /// Delete the session an entry names if it expired by `now`; `None` when the
    /// entry is not a store key.
    async fn purge_member(&self, member: &str, now: UnixTime) -> Result<Option<PurgeReply>> {
        let Some(key) = StoreKey::from_hex(member) else {
            return Ok(None);
        };
        scripts::PURGE
            .key(self.keys.session(&key))
            .arg(now)
            .invoke_async(&mut self.conn.clone())
            .await
            .context("purging an expired session")
            .map(Some)
    }
}
