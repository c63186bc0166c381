//! The per-user index: a sorted set `{prefix}u:{user}` of hex store keys scored
//! by `expires_at`, read by `list_by_user` and `delete_by_user`.
//!
//! The index is advisory: it may hold entries whose session is gone (removed
//! here when met) or now belongs to another user (skipped; every session is
//! loaded and its own user id checked before it is listed or deleted).

use std::time::Duration;

use futures_util::future::join_all;
use latch::{Record, Result, SessionInfo, StoreKey, UnixTime};

use super::{Context, RedisStore};
use crate::fields;
use crate::scripts::{self, DeleteReply};

impl RedisStore {
    pub(super) async fn list_user(&self, user: &str, now: UnixTime) -> Result<Vec<SessionInfo>> {
        let index = self.keys.user(user);
        // Scores never fall below their session's expiry (index_add.lua uses GT),
        // so these entries name sessions expired at `now`: save and touch raise
        // an entry before they extend its session (session.rs).
        redis::cmd("ZREMRANGEBYSCORE")
            .arg(&index)
            .arg("-inf")
            .arg(now)
            .exec_async(&mut self.conn.clone())
            .await
            .context("dropping expired entries of a user's index")?;
        let members = self.index_members(&index).await?;
        let loaded = join_all(members.iter().map(|m| self.load_member(m))).await;
        let mut live = Vec::new();
        let mut stale = Vec::new();
        for (member, result) in members.into_iter().zip(loaded) {
            match result? {
                None => stale.push(member),
                Some((key, record)) => {
                    if record.user_id.as_deref() == Some(user) && record.expires_at > now {
                        live.push(SessionInfo::from_record(key, &record));
                    }
                }
            }
        }
        self.index_remove(user, &stale).await?;
        live.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then(a.key.cmp(&b.key)));
        Ok(live)
    }

    /// Delete `user`'s sessions but `keep`; with `keep`, only while it
    /// exists, one such call per user at a time (see the crate docs).
    pub(super) async fn delete_user(&self, user: &str, keep: Option<&StoreKey>) -> Result<u64> {
        match keep {
            None => self.delete_user_sessions(user, None).await,
            Some(kept) => {
                self.while_kept(user, kept, 0, self.delete_user_sessions(user, keep))
                    .await
            }
        }
    }

    /// Delete `key` if it is `user`'s; with `keep`, as [`Self::delete_user`].
    pub(super) async fn delete_user_session(
        &self,
        user: &str,
        key: &StoreKey,
        keep: Option<&StoreKey>,
    ) -> Result<bool> {
        let delete = async {
            match self.delete_script(key, Some(user)).await? {
                DeleteReply::Deleted { user } => {
                    self.unfile(key, user.as_deref()).await?;
                    Ok(true)
                }
                DeleteReply::Gone | DeleteReply::Kept => Ok(false),
            }
        };
        match keep {
            None => delete.await,
            Some(kept) => self.while_kept(user, kept, false, delete).await,
        }
    }

    /// Run `op` under `user`'s sign-out lock if the session under `kept`
    /// exists; `otherwise` if it does not.
    async fn while_kept<T>(
        &self,
        user: &str,
        kept: &StoreKey,
        otherwise: T,
        op: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let token = self.lock_sign_out(user).await?;
        let done = async {
            let exists: bool = redis::cmd("EXISTS")
                .arg(self.keys.session(kept))
                .query_async(&mut self.conn.clone())
                .await
                .context("checking the session kept by a sign-out")?;
            if !exists {
                return Ok(otherwise);
            }
            op.await
        }
        .await;
        // A failed release leaves the lock to its expiry, which only delays
        // this user's next sign-out; the answer stands.
        let _ = scripts::UNLOCK
            .key(self.keys.sign_out_lock(user))
            .arg(&token)
            .invoke_async::<i64>(&mut self.conn.clone())
            .await;
        done
    }

    /// Take `user`'s sign-out lock, waiting for another holder; its token.
    async fn lock_sign_out(&self, user: &str) -> Result<String> {
        let lock = self.keys.sign_out_lock(user);
        let token = latch::SessionId::generate().store_key().to_hex();
        // No holder outlives the operation timeout (it is cancelled then),
        // so neither need its lock; at least a second for a store with a
        // very short timeout.
        let ttl = self.operation_timeout.max(Duration::from_secs(1));
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let mut pause = Duration::from_millis(1);
        loop {
            let taken: Option<String> = redis::cmd("SET")
                .arg(&lock)
                .arg(&token)
                .arg("NX")
                .arg("PX")
                .arg(ttl_ms)
                .query_async(&mut self.conn.clone())
                .await
                .context("taking a user's sign-out lock")?;
            if taken.is_some() {
                return Ok(token);
            }
            // Another device of this user is signing out everywhere else:
            // its few commands take milliseconds (the caller's timeout
            // bounds the wait). Backing off keeps many waiters of one user
            // (a flood of sign-outs) from becoming a flood of `SET`s.
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(32));
        }
    }

    async fn delete_user_sessions(&self, user: &str, keep: Option<&StoreKey>) -> Result<u64> {
        let keep = keep.map(StoreKey::to_hex);
        let members: Vec<String> = self
            .index_members(&self.keys.user(user))
            .await?
            .into_iter()
            .filter(|m| Some(m) != keep.as_ref())
            .collect();
        let replies = join_all(members.iter().map(|m| self.delete_member(m, user))).await;
        let (mut deleted, mut unfiled) = (Vec::new(), Vec::new());
        for (member, reply) in members.into_iter().zip(replies) {
            match reply? {
                Some(DeleteReply::Deleted { .. }) => {
                    deleted.push(member.clone());
                    unfiled.push(member);
                }
                Some(DeleteReply::Gone) | None => unfiled.push(member),
                Some(DeleteReply::Kept) => {}
            }
        }
        futures_util::future::try_join(
            self.index_remove(user, &unfiled),
            self.expiry_remove(&deleted),
        )
        .await?;
        Ok(deleted.len() as u64)
    }

    /// Add `key` to `user`'s index with score `expires_at` (never lowering a score)
    /// and extend the index's TTL to its highest score.
    pub(super) async fn index_add(
        &self,
        user: &str,
        key: &StoreKey,
        expires_at: UnixTime,
    ) -> Result<()> {
        scripts::INDEX_ADD
            .key(self.keys.user(user))
            .arg(key.to_hex())
            .arg(fields::deadline(expires_at))
            .invoke_async::<()>(&mut self.conn.clone())
            .await
            .context("updating a user's session index")
    }

    /// Remove `members` (hex store keys) from `user`'s index.
    pub(super) async fn index_remove(&self, user: &str, members: &[String]) -> Result<()> {
        if members.is_empty() {
            return Ok(());
        }
        redis::cmd("ZREM")
            .arg(self.keys.user(user))
            .arg(members)
            .exec_async(&mut self.conn.clone())
            .await
            .context("removing entries of a user's session index")
    }

    async fn index_members(&self, index: &str) -> Result<Vec<String>> {
        redis::cmd("ZRANGE")
            .arg(index)
            .arg(0)
            .arg(-1)
            .query_async(&mut self.conn.clone())
            .await
            .context("reading a user's session index")
    }

    /// The session an index entry names; `None` when it is gone or the entry is
    /// not a store key at all.
    async fn load_member(&self, member: &str) -> Result<Option<(StoreKey, Record)>> {
        let Some(key) = StoreKey::from_hex(member) else {
            return Ok(None);
        };
        Ok(self.load_session(&key).await?.map(|record| (key, record)))
    }

    /// Delete the session an index entry names if it is `user`'s; `None` when
    /// the entry is not a store key.
    async fn delete_member(&self, member: &str, user: &str) -> Result<Option<DeleteReply>> {
        match StoreKey::from_hex(member) {
            Some(key) => self.delete_script(&key, Some(user)).await.map(Some),
            None => Ok(None),
        }
    }
}
