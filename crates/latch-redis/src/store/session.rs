//! Operations on one session: create, load, save, touch, delete.
//!
//! Index upkeep follows one rule, so that a user's index never lacks one of
//! that user's live sessions (which would hide it from "sign out everywhere"):
//! entries are removed only *after* their session is gone, and added
//! - by `create` right *after* the session is written (an entry whose session
//!   does not exist yet could be taken for stale and removed by a listing);
//! - by `save` *before* the write, as the session already exists and must be
//!   findable under its new user from the moment it belongs to that user;
//! - by `touch` *before* the write, under the user the caller loaded, for the
//!   same reason: the entry's score (and the index's TTL) must never fall
//!   behind the session's new expiry; and after the write under the stored
//!   user, when another request changed the user since that load.
//!
//! The expiry index is looser: an entry's score is never *later* than its
//! session's expiry, so purge finds every expired session, but it may be
//! earlier. `create` files the entry alongside the write; `save` and `touch`
//! leave it alone when they move the expiry later (the usual case, one command
//! fewer per write), and lower it after the write when they move the expiry
//! sooner. Purge re-checks each entry it meets against its session and moves
//! the entry of a session that lives on to that session's real expiry
//! (`purge.rs`).
//!
//! When an index command fails the operation reports an error. A create that
//! fails that way is not acknowledged, so nobody holds the new session's ID.

use futures_util::future::try_join;
use latch::{Error, Record, Result, SaveOutcome, StoreKey, UnixTime};

use super::{Context, RedisStore};
use crate::cache::{self, Lookup};
use crate::fields;
use crate::scripts::{self, DeleteReply, SaveReply, TouchReply};

impl RedisStore {
    pub(super) async fn create_session(&self, key: &StoreKey, record: &Record) -> Result<bool> {
        let rec = fields::encode(record)?;
        let mut invocation = scripts::CREATE.key(self.keys.session(key));
        invocation
            .arg(record.version)
            .arg(rec)
            .arg(record.last_seen)
            .arg(record.expires_at)
            .arg(fields::deadline(record.expires_at));
        if let Some(user) = &record.user_id {
            invocation.arg(user);
        }
        let create = async {
            invocation
                .invoke_async::<bool>(&mut self.conn.clone())
                .await
                .context("creating a session")
        };
        // The expiry entry goes out with the write (one round trip): purge
        // only reads entries that are due, and a new session's is not.
        let (created, ()) = try_join(create, self.expiry_add(key, record.expires_at)).await?;
        if created {
            if let Some(user) = &record.user_id {
                self.index_add(user, key, record.expires_at).await?;
            }
        }
        Ok(created)
    }

    pub(super) async fn load_session(&self, key: &StoreKey) -> Result<Option<Record>> {
        let redis_key = self.keys.session(key);
        let Some(cache) = &self.cache else {
            return self.read_direct(key, &redis_key).await;
        };
        match cache.lookup(&redis_key) {
            Lookup::Hit(record) => Ok(Some(record)),
            Lookup::Bypass => self.read_direct(key, &redis_key).await,
            Lookup::Miss(mut ticket) => {
                let fields = match cache::read_session(&mut ticket.conn, &redis_key).await {
                    Ok(fields) => fields,
                    Err(e) if e.is_unrecoverable_error() => {
                        // The tracking connection is gone, whether or not it
                        // said so: drop the cache and read the usual way.
                        cache.lost(&ticket);
                        return self.read_direct(key, &redis_key).await;
                    }
                    Err(e) => return Err(Error::store("loading a session", e)),
                };
                let size = fields.0.as_ref().map_or(0, String::len);
                let record = record_of(key, fields)?;
                cache.keep(&redis_key, &ticket, record.as_ref().map(|r| (r, size)));
                Ok(record)
            }
        }
    }

    /// Read a session through the store's own connection.
    ///
    /// A read is safe to repeat, so one that finds its connection dropped
    /// (killed by the server's idle `timeout`, a proxy, `CLIENT KILL`) is
    /// sent once more, on the connection the driver opens again: the request
    /// behind it gets its session, not a 503. Writes are not repeated (one
    /// may have been applied before the connection dropped).
    async fn read_direct(&self, key: &StoreKey, redis_key: &str) -> Result<Option<Record>> {
        let mut fields = cache::read_session(&mut self.conn.clone(), redis_key).await;
        if fields
            .as_ref()
            .is_err_and(redis::RedisError::is_connection_dropped)
        {
            fields = cache::read_session(&mut self.conn.clone(), redis_key).await;
        }
        record_of(key, fields.context("loading a session")?)
    }

    /// Save through the store's connection, or through the read cache's
    /// tracking connection under `through`. Also answers the size of the
    /// stored record, for the cache.
    pub(super) async fn save_session(
        &self,
        key: &StoreKey,
        record: &Record,
        expected_version: u64,
        through: Option<&cache::Saving>,
    ) -> Result<(SaveOutcome, usize)> {
        let rec = fields::encode(record)?;
        let size = rec.len();
        if let Some(user) = &record.user_id {
            // Before the write: the session exists, so from the moment it belongs
            // to `user` it must be findable in that user's index.
            self.index_add(user, key, record.expires_at).await?;
        }
        let mut invocation = scripts::SAVE.key(self.keys.session(key));
        invocation
            .arg(expected_version)
            .arg(record.version)
            .arg(rec)
            .arg(record.last_seen)
            .arg(record.expires_at)
            .arg(fields::deadline(record.expires_at))
            // On the tracking connection, read the key again once written.
            .arg(if through.is_some() { "1" } else { "0" });
        if let Some(user) = &record.user_id {
            invocation.arg(user);
        }
        let save = async {
            let Some(ticket) = through.map(|saving| &saving.ticket) else {
                return invocation
                    .invoke_async::<SaveReply>(&mut self.conn.clone())
                    .await
                    .context("saving a session");
            };
            let reply = invocation
                .invoke_async::<SaveReply>(&mut ticket.conn.clone())
                .await;
            if let (Err(e), Some(cache)) = (&reply, &self.cache) {
                if e.is_unrecoverable_error() {
                    // As for a read: the tracking connection is gone, whether
                    // or not it said so. The save is not retried elsewhere
                    // (it may have been applied): it fails like any save
                    // whose connection broke.
                    cache.lost(ticket);
                }
            }
            reply.context("saving a session")
        };
        match save.await? {
            SaveReply::Gone => Ok((SaveOutcome::Gone, size)),
            SaveReply::Conflict => Ok((SaveOutcome::Conflict, size)),
            SaveReply::Saved { previous, sooner } => {
                if sooner {
                    // The entry may now be later than the session's expiry.
                    self.expiry_lower(key, record.expires_at).await?;
                }
                if let Some(old) = previous.filter(|p| record.user_id.as_deref() != Some(p)) {
                    self.index_remove(&old, &[key.to_hex()]).await?;
                }
                Ok((SaveOutcome::Saved, size))
            }
        }
    }

    pub(super) async fn touch_session(
        &self,
        key: &StoreKey,
        user_hint: Option<&str>,
        last_seen: UnixTime,
        expires_at: UnixTime,
    ) -> Result<bool> {
        if let Some(user) = user_hint {
            // Before the write, as in save: once the session lives until
            // `expires_at`, its entry must already say so, or a failure between
            // the two would let the entry (and the index's own TTL) lapse while
            // the session lives on, hidden from "sign out everywhere".
            self.index_add(user, key, expires_at).await?;
        }
        let reply = scripts::TOUCH
            .key(self.keys.session(key))
            .arg(last_seen)
            .arg(expires_at)
            .arg(fields::deadline(expires_at))
            .invoke_async::<TouchReply>(&mut self.conn.clone())
            .await
            .context("touching a session")?;
        match reply {
            TouchReply::Gone => {
                // Take back what was just filed for a session that is gone.
                self.unfile(key, user_hint).await?;
                Ok(false)
            }
            TouchReply::Touched { user, sooner } => {
                if sooner {
                    // As in save: the entry may now be later than the expiry.
                    self.expiry_lower(key, expires_at).await?;
                }
                // The stored user differs from the hint only when another
                // request changed it since the caller's load: file it under the
                // stored user too (after the write: only the script knew it).
                match user.as_deref() {
                    Some(stored) if Some(stored) != user_hint => {
                        self.index_add(stored, key, expires_at).await?;
                    }
                    _ => {}
                }
                Ok(true)
            }
        }
    }

    pub(super) async fn delete_session(&self, key: &StoreKey) -> Result<bool> {
        match self.delete_script(key, None).await? {
            DeleteReply::Deleted { user } => {
                self.unfile(key, user.as_deref()).await?;
                Ok(true)
            }
            DeleteReply::Gone => Ok(false),
            DeleteReply::Kept => Err(Error::store_msg(
                "Redis kept a session that was to be deleted unconditionally",
            )),
        }
    }

    /// Delete the session under `key`; with `owner`, only if it is that user's.
    pub(super) async fn delete_script(
        &self,
        key: &StoreKey,
        owner: Option<&str>,
    ) -> Result<DeleteReply> {
        let mut invocation = scripts::DELETE.key(self.keys.session(key));
        if let Some(user) = owner {
            invocation.arg(user);
        }
        invocation
            .invoke_async(&mut self.conn.clone())
            .await
            .context("deleting a session")
    }

    /// Remove a deleted session from both indexes.
    pub(super) async fn unfile(&self, key: &StoreKey, user: Option<&str>) -> Result<()> {
        let hex = [key.to_hex()];
        let by_user = async {
            match user {
                Some(user) => self.index_remove(user, &hex).await,
                None => Ok(()),
            }
        };
        try_join(by_user, self.expiry_remove(&hex)).await?;
        Ok(())
    }
}

/// The record in a session hash's `rec`, `seen` and `exp` fields, if any.
fn record_of(
    key: &StoreKey,
    fields: (Option<String>, Option<i64>, Option<i64>),
) -> Result<Option<Record>> {
    match fields {
        (Some(rec), Some(seen), Some(exp)) => fields::decode(&rec, seen, exp).map(Some),
        (None, None, None) => Ok(None),
        // HMGET reads the hash atomically and every write sets all three.
        _ => Err(Error::store_msg(format!(
            "the stored session {key} is missing fields; it was not written by latch-redis"
        ))),
    }
}
