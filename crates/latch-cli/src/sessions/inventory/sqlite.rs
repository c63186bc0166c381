//! SQLite: read-only queries on `latch_sessions`, on a read-only connection.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use latch::{StoreKey, UnixTime};
use rusqlite::{Connection, OpenFlags, params};

use super::{Row, Stats, count};

/// Open `path` read-only, refusing a file that is not a latch-sqlite database
/// (so a typo never creates or alters a database).
///
/// # Errors
/// No such file, not SQLite, or no `latch_sessions` table.
pub fn open(path: &Path) -> anyhow::Result<Connection> {
    if !path.is_file() {
        bail!("no session database at {}", path.display());
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening {}", path.display()))?;
    let tables: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'latch_sessions'",
            [],
            |row| row.get(0),
        )
        .with_context(|| format!("reading {}", path.display()))?;
    if tables == 0 {
        bail!(
            "{} has no latch_sessions table: it is not a latch-sqlite database",
            path.display()
        );
    }
    Ok(conn)
}

/// Run `f` on a fresh read-only connection on tokio's blocking pool.
pub async fn blocking<T, F>(path: &Path, f: F) -> anyhow::Result<T>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
{
    let path: PathBuf = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let conn = open(&path)?;
        f(&conn).with_context(|| format!("querying {}", path.display()))
    })
    .await
    .context("the database thread failed")?
}

pub fn stats(conn: &Connection, now: UnixTime) -> rusqlite::Result<Stats> {
    conn.query_row(
        "SELECT COUNT(*),
                COUNT(*) FILTER (WHERE expires_at <= ?1),
                COUNT(DISTINCT user_id) FILTER (WHERE expires_at > ?1),
                COUNT(*) FILTER (WHERE user_id IS NULL AND expires_at > ?1)
         FROM latch_sessions",
        params![now],
        |row| {
            let total = count(row.get(0)?);
            let expired = count(row.get(1)?);
            Ok(Stats {
                total,
                live: total - expired.min(total),
                expired,
                users: count(row.get(2)?),
                anonymous: count(row.get(3)?),
            })
        },
    )
}

pub fn list(conn: &Connection, now: UnixTime, limit: usize) -> rusqlite::Result<Vec<Row>> {
    let mut stmt = conn.prepare(
        "SELECT key, user_id, created_at, last_seen, expires_at, user_agent, ip
         FROM latch_sessions ORDER BY last_seen DESC, key LIMIT ?1",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    stmt.query_map(params![limit], |row| {
        let key: [u8; 32] = row.get(0)?;
        let expires_at: i64 = row.get(4)?;
        Ok(Row {
            key: StoreKey::from_bytes(key),
            user_id: row.get(1)?,
            created_at: row.get(2)?,
            last_seen: row.get(3)?,
            expires_at,
            expired: expires_at <= now,
            user_agent: row.get(5)?,
            ip: row.get(6)?,
            device_proved_at: None,
        })
    })?
    .collect()
}

pub fn purgeable(conn: &Connection, now: UnixTime) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT COUNT(*) FROM latch_sessions WHERE expires_at <= ?1",
        params![now],
        |row| row.get(0).map(count),
    )
}
