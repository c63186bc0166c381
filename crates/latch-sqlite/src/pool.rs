//! A writer connection and a few reader connections.
//!
//! Written by hand rather than with a pool crate because SQLite wants exactly
//! this shape: one writer (SQLite allows one at a time anyway, and a single
//! writer never hits SQLITE_BUSY between its own transactions) and readers that,
//! thanks to WAL, never wait for it.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OpenFlags};

use crate::store::Synchronous;

pub(crate) struct Pool {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
}

fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic in another call cannot leave a connection half-way through a
    // transaction: rusqlite rolls back uncommitted transactions on drop.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn configure(conn: &Connection, sync: Synchronous) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "synchronous", sync.pragma())?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

impl Pool {
    pub(crate) fn open(path: &Path, readers: usize, sync: Synchronous) -> latch::Result<Self> {
        let err = |e| {
            latch::Error::store(
                format!("opening the session database {}", path.display()),
                e,
            )
        };
        let mut writer = Connection::open(path).map_err(err)?;
        let mode: String = writer
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(latch::Error::store_msg(format!(
                "{} cannot use write-ahead logging (journal mode stays {mode}); put the \
                 database on a local file system",
                path.display()
            )));
        }
        configure(&writer, sync).map_err(err)?;
        crate::migrate::run(&mut writer)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let readers = (0..readers.max(1))
            .map(|_| {
                let conn = Connection::open_with_flags(path, flags)?;
                configure(&conn, sync)?;
                Ok(Mutex::new(conn))
            })
            .collect::<rusqlite::Result<_>>()
            .map_err(err)?;
        Ok(Self {
            writer: Mutex::new(writer),
            readers,
        })
    }

    pub(crate) fn writer(&self) -> MutexGuard<'_, Connection> {
        lock(&self.writer)
    }

    /// A free reader if there is one, else wait for the first.
    pub(crate) fn reader(&self) -> MutexGuard<'_, Connection> {
        self.readers
            .iter()
            .find_map(|m| m.try_lock().ok())
            .unwrap_or_else(|| lock(&self.readers[0]))
    }
}
