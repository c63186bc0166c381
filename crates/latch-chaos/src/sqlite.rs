//! Looking straight into the demo's SQLite file, read-only, beside the running
//! process (WAL lets readers in while it writes).
//!
//! Session IDs are stored as their SHA-256 (`key`), the data as JSON (`data`),
//! in the table `latch_sessions`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension as _};

/// A read-only connection to `path`.
///
/// # Errors
/// When the file cannot be opened.
pub fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

/// The result of `PRAGMA integrity_check` (`"ok"` when the file is sound).
///
/// # Errors
/// When the file cannot be read.
pub fn integrity_check(path: &Path) -> rusqlite::Result<String> {
    let conn = open(path)?;
    let mut stmt = conn.prepare("PRAGMA integrity_check")?;
    let lines = stmt
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(lines.join("\n"))
}

/// How many session rows there are, and how many of them are expired at
/// `now` (Unix seconds) but not purged yet.
///
/// # Errors
/// When the file cannot be read.
pub fn row_counts(conn: &Connection, now: i64) -> rusqlite::Result<(u64, u64)> {
    conn.query_row(
        "SELECT COUNT(*), COALESCE(SUM(expires_at <= ?1), 0) FROM latch_sessions",
        [now],
        |row| {
            let (rows, expired): (i64, i64) = (row.get(0)?, row.get(1)?);
            Ok((rows.unsigned_abs(), expired.unsigned_abs()))
        },
    )
}

/// The scratch map stored for the session whose cookie value is
/// `cookie_value`; `None` when no row has that ID's hash.
///
/// # Errors
/// When the file cannot be read.
///
/// # Panics
/// When `cookie_value` is not a session ID, or the row's data is not JSON.
pub fn stored_scratch(
    conn: &Connection,
    cookie_value: &str,
) -> rusqlite::Result<Option<BTreeMap<String, String>>> {
    let id = latch::SessionId::parse(cookie_value).expect("a session ID");
    let key = id.store_key();
    let data: Option<String> = conn
        .query_row(
            "SELECT data FROM latch_sessions WHERE key = ?1",
            [key.as_bytes().as_slice()],
            |row| row.get(0),
        )
        .optional()?;
    Ok(data.map(|json| {
        let mut data: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(&json).expect("session data is a JSON object");
        data.remove("scratch")
            .map(|m| serde_json::from_value(m).expect("scratch is a map of strings"))
            .unwrap_or_default()
    }))
}
