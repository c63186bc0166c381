//! Redis: the keyspace of a latch-redis store, read with `SCAN` (every session
//! hash under the prefix) and the expiry index (what a purge would remove).
//!
//! Layout (see latch-redis): `{prefix}s:{hex key}` hashes with fields `rec`
//! (the record as JSON), `seen`, `exp` and `user`; `{prefix}expiry`, a sorted
//! set of hex keys scored by expiry.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Context as _;
use latch::{Record, StoreKey, UnixTime};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client};

use super::{Row, Stats};

/// Keys asked for per `SCAN` call.
const SCAN_COUNT: usize = 1000;
/// Per-command timeout: an admin command should fail, not hang.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A connection and the store's key prefix.
pub struct RedisInventory {
    conn: MultiplexedConnection,
    prefix: String,
}

impl std::fmt::Debug for RedisInventory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisInventory")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// One session's fields, in the order asked for (`None` when missing).
type Fields = Vec<Option<String>>;

impl RedisInventory {
    /// Connect to the server at `url` for the store using `prefix`.
    ///
    /// # Errors
    /// A bad URL or an unreachable server (the message never holds the URL).
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client =
            Client::open(url).map_err(|e| anyhow::anyhow!("the Redis URL is not valid: {e}"))?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT));
        let conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .context("connecting to Redis")?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
        })
    }

    pub async fn stats(&self, now: UnixTime) -> anyhow::Result<Stats> {
        let mut stats = Stats::default();
        let mut users = BTreeSet::new();
        for (_, fields) in self.sessions(&["exp", "user"]).await? {
            let [exp, user] = <[Option<String>; 2]>::try_from(fields).unwrap_or_default();
            // No `exp`: Redis expired the session by TTL since the scan.
            let Some(exp) = exp.and_then(|e| e.parse::<i64>().ok()) else {
                continue;
            };
            stats.total += 1;
            if exp <= now {
                stats.expired += 1;
                continue;
            }
            stats.live += 1;
            match user {
                Some(user) => {
                    users.insert(user);
                }
                None => stats.anonymous += 1,
            }
        }
        stats.users = users.len() as u64;
        Ok(stats)
    }

    pub async fn list(&self, now: UnixTime, limit: usize) -> anyhow::Result<Vec<Row>> {
        let mut rows = Vec::new();
        for (key, fields) in self.sessions(&["rec", "seen", "exp"]).await? {
            let [rec, seen, exp] = <[Option<String>; 3]>::try_from(fields).unwrap_or_default();
            let number = |v: Option<String>| v.and_then(|v| v.parse::<i64>().ok());
            let (Some(rec), Some(seen), Some(exp)) = (rec, number(seen), number(exp)) else {
                continue; // expired by TTL since the scan
            };
            let record: Record = serde_json::from_str(&rec)
                .with_context(|| format!("the stored session {key} is not a latch record"))?;
            rows.push(Row {
                key,
                user_id: record.user_id,
                created_at: record.created_at,
                last_seen: seen,
                expires_at: exp,
                expired: exp <= now,
                user_agent: record.user_agent,
                ip: record.ip,
            });
        }
        rows.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then(a.key.cmp(&b.key)));
        rows.truncate(limit);
        Ok(rows)
    }

    /// Entries of the expiry index due at `now`: what `purge_expired` removes
    /// and counts (sessions Redis already dropped by TTL included).
    pub async fn purgeable(&self, now: UnixTime) -> anyhow::Result<u64> {
        redis::cmd("ZCOUNT")
            .arg(format!("{}expiry", self.prefix))
            .arg("-inf")
            .arg(now)
            .query_async(&mut self.conn.clone())
            .await
            .context("reading the expiry index")
    }

    /// `fields` of every session hash under the prefix. `SCAN` visits the whole
    /// keyspace, a thousand keys per round trip; each batch's fields are read in
    /// one pipelined round trip.
    async fn sessions(&self, fields: &[&str]) -> anyhow::Result<Vec<(StoreKey, Fields)>> {
        let pattern = format!("{}s:*", glob_escape(&self.prefix));
        let mut cursor: u64 = 0;
        let mut found = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(&mut self.conn.clone())
                .await
                .context("scanning for sessions")?;
            let tail = |k: &String| k.get(self.prefix.len() + 2..).and_then(StoreKey::from_hex);
            let keys: Vec<StoreKey> = batch.iter().filter_map(tail).collect();
            found.extend(keys.iter().copied().zip(self.read(&keys, fields).await?));
            if next == 0 {
                // SCAN may return a key more than once.
                found.sort_by_key(|(key, _)| *key);
                found.dedup_by_key(|(key, _)| *key);
                return Ok(found);
            }
            cursor = next;
        }
    }

    /// `HMGET` of `fields` on each session in one pipeline.
    async fn read(&self, keys: &[StoreKey], fields: &[&str]) -> anyhow::Result<Vec<Fields>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("HMGET")
                .arg(format!("{}s:{}", self.prefix, key.to_hex()))
                .arg(fields);
        }
        pipe.query_async(&mut self.conn.clone())
            .await
            .context("reading sessions")
    }
}

/// `prefix` with the glob characters of `SCAN MATCH` escaped.
fn glob_escape(prefix: &str) -> String {
    prefix
        .chars()
        .flat_map(|c| {
            let escape = matches!(c, '*' | '?' | '[' | ']' | '\\').then_some('\\');
            escape.into_iter().chain(std::iter::once(c))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(glob_escape("latch:"), "latch:");
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
