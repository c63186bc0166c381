//! Sessions generated straight into a store, in the store's own layout, for
//! the scale curves. Session `i` of a set has the ID
//! `SHA-256(seed | i as 8 bytes big-endian)`, so a cookie for any generated
//! session can be made without reading the store back.

use latch::{Record, SessionId, UnixTime};
use sha2::{Digest, Sha256};

/// The seed of live sessions.
pub const LIVE: &str = "latch-bench-id";
/// The seed of sessions generated already expired (for the purge test).
pub const EXPIRED: &str = "latch-bench-exp";

/// The ID bytes of session `i` of the set `seed`.
pub fn id_bytes(seed: &str, i: u64) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(seed.as_bytes());
    h.update(i.to_be_bytes());
    h.finalize().into()
}

/// Session `i`'s ID.
pub fn id(seed: &str, i: u64) -> SessionId {
    SessionId::from_bytes(id_bytes(seed, i))
}

/// The record every generated session holds: what the load benchmark's
/// handler writes (`{"n": 1}`), version 1, no user.
pub fn record(now: UnixTime, expires_at: UnixTime) -> Record {
    let mut r = Record::new(now);
    r.data.insert("n".into(), 1.into());
    r.expires_at = expires_at;
    r.version = 1;
    r
}

/// `count` indices spread over `0..n`, deterministic (a fixed LCG).
pub fn sample(n: u64, count: usize) -> Vec<u64> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..count)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 11) % n.max(1)
        })
        .collect()
}

/// SQLite: plain inserts in large transactions on one connection.
pub mod sqlite {
    use std::path::Path;

    use latch::UnixTime;

    /// Insert sessions `range` of `seed` into the latch-sqlite file at `path`.
    ///
    /// # Errors
    /// On SQLite errors.
    pub fn fill(
        path: &Path,
        seed: &str,
        range: std::ops::Range<u64>,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> anyhow::Result<()> {
        let mut conn = rusqlite::Connection::open(path)?;
        conn.pragma_update(None, "synchronous", "OFF")?;
        let data = serde_json::to_string(&super::record(now, expires_at).data)?;
        let mut i = range.start;
        while i < range.end {
            let end = (i + 200_000).min(range.end);
            let tx = conn.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO latch_sessions (key, version, data, created_at, last_seen, \
                     expires_at, remember, user_id, user_agent, ip) \
                     VALUES (?1, 1, ?2, ?3, ?3, ?4, 0, NULL, NULL, NULL)",
                )?;
                for j in i..end {
                    let key = super::id(seed, j).store_key();
                    stmt.execute(rusqlite::params![key.as_bytes(), data, now, expires_at])?;
                }
            }
            tx.commit()?;
            i = end;
        }
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

/// PostgreSQL: `generate_series` with the keys computed by the server
/// (`sha256` of the ID, itself `sha256(seed || int8send(i))`).
pub mod postgres {
    use latch::UnixTime;

    /// Insert sessions `range` of `seed` into `latch_sessions` of the database at `url`.
    ///
    /// # Errors
    /// On SQL errors.
    pub async fn fill(
        url: &str,
        seed: &str,
        range: std::ops::Range<u64>,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> anyhow::Result<()> {
        let client = crate::backends::pg_client(url).await?;
        let data = serde_json::to_string(&super::record(now, expires_at).data)?;
        let sql = "INSERT INTO latch_sessions (key, version, data, created_at, last_seen, \
                   expires_at, remember, user_id, user_agent, ip) \
                   SELECT sha256(sha256(convert_to($5, 'UTF8') || int8send(i))), 1, $6::text::json, \
                   $3, $3, $4, false, NULL, NULL, NULL \
                   FROM generate_series($1::bigint, $2::bigint) AS i";
        let mut i = range.start;
        while i < range.end {
            let end = (i + 500_000).min(range.end);
            let (a, b) = (i64::try_from(i)?, i64::try_from(end)? - 1);
            client
                .execute(sql, &[&a, &b, &now, &expires_at, &seed, &data])
                .await?;
            i = end;
        }
        client.batch_execute("ANALYZE latch_sessions").await?;
        Ok(())
    }
}

/// Redis: pipelined `HSET` + `EXPIREAT` per session and batched `ZADD`s to the
/// expiry index, in latch-redis's key layout under the default prefix.
pub mod redis_fill {
    use latch::UnixTime;

    /// Insert sessions `range` of `seed` into the Redis at `url`.
    ///
    /// # Errors
    /// On Redis errors.
    pub async fn fill(
        url: &str,
        seed: &str,
        range: std::ops::Range<u64>,
        now: UnixTime,
        expires_at: UnixTime,
    ) -> anyhow::Result<()> {
        let client = redis::Client::open(url)?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let rec = serde_json::to_string(&super::record(now, expires_at))?;
        let prefix = latch_redis::DEFAULT_PREFIX;
        let mut i = range.start;
        while i < range.end {
            let end = (i + 5_000).min(range.end);
            let mut pipe = redis::pipe();
            let mut zadd = redis::cmd("ZADD");
            zadd.arg(format!("{prefix}expiry"));
            for j in i..end {
                let hex = super::id(seed, j).store_key().to_hex();
                let key = format!("{prefix}s:{hex}");
                pipe.cmd("HSET")
                    .arg(&key)
                    .arg("ver")
                    .arg(1)
                    .arg("rec")
                    .arg(&rec)
                    .arg("seen")
                    .arg(now)
                    .arg("exp")
                    .arg(expires_at)
                    .ignore();
                pipe.cmd("EXPIREAT").arg(&key).arg(expires_at).ignore();
                zadd.arg(expires_at).arg(hex);
            }
            pipe.add_command(zadd).ignore();
            pipe.exec_async(&mut conn).await?;
            i = end;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_distinct_per_seed() {
        assert_eq!(id_bytes(LIVE, 7), id_bytes(LIVE, 7));
        assert_ne!(id_bytes(LIVE, 7), id_bytes(LIVE, 8));
        assert_ne!(id_bytes(LIVE, 7), id_bytes(EXPIRED, 7));
        // The same construction PostgreSQL uses: sha256(seed || int8send(i)).
        let mut h = Sha256::new();
        h.update(b"latch-bench-id\x00\x00\x00\x00\x00\x00\x00\x01");
        assert_eq!(id_bytes(LIVE, 1), <[u8; 32]>::from(h.finalize()));
    }

    #[test]
    fn samples_stay_in_range_and_spread() {
        let s = sample(1_000, 500);
        assert_eq!(s.len(), 500);
        assert!(s.iter().all(|&i| i < 1_000));
        let distinct: std::collections::HashSet<_> = s.iter().collect();
        assert!(distinct.len() > 300, "{}", distinct.len());
        assert!(s.iter().any(|&i| i >= 900) && s.iter().any(|&i| i < 100));
    }

    #[test]
    fn generated_record_matches_what_the_handler_writes() {
        let r = record(100, 200);
        assert_eq!(serde_json::to_string(&r.data).unwrap(), r#"{"n":1}"#);
        assert_eq!((r.version, r.expires_at, r.last_seen), (1, 200, 100));
    }
}
