//! Versioned schema migrations, tracked in `PRAGMA user_version`.

use rusqlite::Connection;

/// Each entry moves the schema from version `i` to `i + 1`. Append only: never
/// edit a migration that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: the sessions table and its two indexes.
    "CREATE TABLE latch_sessions (
        key        BLOB PRIMARY KEY NOT NULL, -- SHA-256 of the session id
        version    INTEGER NOT NULL,
        data       TEXT NOT NULL,             -- JSON object
        created_at INTEGER NOT NULL,
        last_seen  INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        remember   INTEGER NOT NULL,
        user_id    TEXT,
        user_agent TEXT,
        ip         TEXT
    ) WITHOUT ROWID;
    CREATE INDEX latch_sessions_expires_at ON latch_sessions (expires_at);
    CREATE INDEX latch_sessions_user_id ON latch_sessions (user_id) WHERE user_id IS NOT NULL;",
];

/// The count of rows kept for stores with a limit is not a migration: it is
/// made the first time such a store opens the file ([`count_rows`]), so a
/// file no store with a limit ever opened pays nothing for it.
///
/// The schema version this build writes.
pub(crate) const CURRENT: i64 = MIGRATIONS.len() as i64;

/// Bring the schema up to [`CURRENT`]; refuse a database from a newer build.
pub(crate) fn run(conn: &mut Connection) -> latch::Result<()> {
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|e| latch::Error::store("reading the schema version", e))?;
    if found > CURRENT {
        return Err(latch::Error::store_msg(format!(
            "the session database has schema version {found}, newer than the {CURRENT} this \
             build of latch-sqlite knows; upgrade latch or use another database file"
        )));
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        // IMMEDIATE takes the write lock first, so two processes opening the same
        // file at once apply each migration exactly once.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| latch::Error::store("starting a migration", e))?;
        let now: i64 = tx
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(|e| latch::Error::store("reading the schema version", e))?;
        if now > i as i64 {
            continue; // another process got there first
        }
        tx.execute_batch(sql)
            .and_then(|()| tx.pragma_update(None, "user_version", i as i64 + 1))
            .and_then(|()| tx.commit())
            .map_err(|e| latch::Error::store(format!("applying schema migration {}", i + 1), e))?;
    }
    Ok(())
}

/// How many rows `latch_sessions` holds, kept by triggers in the same
/// transaction as each insert and delete (whichever process writes the
/// file), so a store with a limit checks it without counting the table,
/// which costs a scan. A conflicting insert (`ON CONFLICT DO NOTHING`)
/// fires no trigger. About 7 µs of CPU per insert or delete (one more page
/// in each commit), which is why it is made only when asked for.
const COUNT_ROWS: &str = "CREATE TABLE IF NOT EXISTS latch_session_count (n INTEGER NOT NULL);
    DELETE FROM latch_session_count;
    INSERT INTO latch_session_count (n) SELECT count(*) FROM latch_sessions;
    CREATE TRIGGER latch_sessions_count_insert AFTER INSERT ON latch_sessions
        BEGIN UPDATE latch_session_count SET n = n + 1; END;
    CREATE TRIGGER latch_sessions_count_delete AFTER DELETE ON latch_sessions
        BEGIN UPDATE latch_session_count SET n = n - 1; END;";

/// Start counting the sessions table's rows, unless the file already does:
/// the table, its first count and the triggers in one transaction, which
/// takes the write lock first, so the count starts exact even while another
/// process writes.
pub(crate) fn count_rows(conn: &mut Connection) -> latch::Result<()> {
    let err = |e| latch::Error::store("starting to count the sessions", e);
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(err)?;
    let counted: i64 = tx
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' \
             AND name = 'latch_sessions_count_insert'",
            [],
            |row| row.get(0),
        )
        .map_err(err)?;
    if counted == 0 {
        tx.execute_batch(COUNT_ROWS).map_err(err)?;
    }
    tx.commit().map_err(err)
}
