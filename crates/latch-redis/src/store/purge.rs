//! The expiry index `{prefix}expiry`: every session's hex store key scored by
//! an expiry no later than its session's (plus the fraction of a second at
//! which it was filed; see [`fields::expiry_score`]), so `purge_expired` finds
//! expired sessions oldest first without scanning the keyspace.
//!
//! A save or touch that moves a session's expiry later leaves its entry where
//! it was (`session.rs`): the entry then comes due early, purge finds the
//! session live and moves the entry to the session's real expiry. An active
//! session thus costs the index one update per idle period instead of one
//! per write.
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

/// The most batches one `purge` call reads: with entries of live sessions
/// coming due early, a call could otherwise keep reading for as long as
/// sessions were active.
const MAX_ROUNDS: usize = 16;

impl RedisStore {
    /// Remove up to `limit` sessions expired at `now`; returns how many were
    /// removed, whether this call deleted them or their TTL had.
    ///
    /// Entries of sessions that live on (moved later by a save or touch) come
    /// due early; they are moved to their session's real expiry and do not
    /// count, and the next entries due are read in their place. So a call
    /// answers fewer than `limit` only when nothing more is due (or after
    /// [`MAX_ROUNDS`] batches, a bound on one call's work), which is what
    /// callers of `purge_expired` loop on.
    pub(super) async fn purge(&self, now: UnixTime, limit: usize) -> Result<u64> {
        let mut removed = 0;
        for _ in 0..MAX_ROUNDS {
            let want = limit - removed;
            if want == 0 {
                break;
            }
            let (round, read) = self.purge_round(now, want).await?;
            removed += round;
            if read < want {
                break;
            }
        }
        Ok(removed as u64)
    }

    /// One batch of [`purge`](Self::purge): up to `limit` entries due at
    /// `now`; returns how many sessions it removed and how many entries it read.
    async fn purge_round(&self, now: UnixTime, limit: usize) -> Result<(usize, usize)> {
        let due = self.expiry_due(now, limit).await?;
        let read = due.len();
        let replies = join_all(due.iter().map(|m| self.purge_member(m, now))).await;
        let mut removed = Vec::new();
        let mut by_user: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut still_live = Vec::new();
        let mut not_keys = Vec::new();
        for (member, reply) in due.into_iter().zip(replies) {
            match reply? {
                Some(PurgeReply::Purged { user: Some(user) }) => {
                    by_user.entry(user).or_default().push(member.clone());
                    removed.push(member);
                }
                Some(PurgeReply::Purged { user: None } | PurgeReply::Gone) => removed.push(member),
                Some(PurgeReply::Live { expires_at }) => still_live.push((member, expires_at)),
                // Not a store key: drop the entry without counting it.
                None => not_keys.push(member),
            }
        }
        let unfile_users = by_user
            .iter()
            .map(|(user, members)| self.index_remove(user, members));
        try_join_all(unfile_users).await?;
        self.expiry_remove(&removed).await?;
        self.expiry_remove(&not_keys).await?;
        try_join_all(
            still_live
                .iter()
                .map(|(member, expires_at)| self.expiry_rescore(member, *expires_at)),
        )
        .await?;
        Ok((removed.len(), read))
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

    /// Lower `key`'s entry to `expires_at` after a save or touch moved its
    /// session's expiry sooner (`LT`: of two such writes racing, the sooner
    /// expiry wins whatever order their commands arrive in).
    pub(super) async fn expiry_lower(&self, key: &StoreKey, expires_at: UnixTime) -> Result<()> {
        redis::cmd("ZADD")
            .arg(self.keys.expiry())
            .arg("LT")
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
