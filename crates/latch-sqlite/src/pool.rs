//! A writer connection, a few reader connections and a checkpointer thread.
//!
//! Written by hand rather than with a pool crate because SQLite wants exactly
//! this shape: one writer (SQLite allows one at a time anyway, and a single
//! writer never hits SQLITE_BUSY between its own transactions) and readers that,
//! thanks to WAL, never wait for it.
//!
//! WAL checkpoints (copying the log back into the database file) run on a
//! thread of their own, not inside a request's commit: SQLite's automatic
//! checkpoint would make every thousandth write pay for copying 4 MB, which at
//! millions of sessions was most of the store's 99th-percentile latency.
//!
//! That thread also keeps the log file bounded. A passive checkpoint never
//! waits, so under sustained writes it never catches up with the writer, the
//! log is never restarted, and the file grows for as long as the writes go on
//! (an attack grew it past 2 GB in 12 s); and SQLite never shrinks the file by
//! itself. So when the file passes its limit, and once whenever writes pause,
//! the thread runs a TRUNCATE checkpoint, which waits for readers, holds off
//! the writer while it copies the log back, and cuts the file to zero bytes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::config::{Config, Synchronous};

pub(crate) struct Pool {
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    /// Writes since start; the checkpointer runs when it has moved.
    writes: Arc<AtomicU64>,
    /// Dropping it (with the pool) stops the checkpointer thread.
    _stop_checkpoints: mpsc::Sender<()>,
}

/// How often the checkpointer looks for new writes.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

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
    pub(crate) fn open(path: &Path, config: Config) -> latch::Result<Self> {
        let Config {
            sync,
            wal_limit,
            readers,
            max_sessions,
            max_anonymous,
        } = config;
        let err = |e| {
            latch::Error::store(
                format!("opening the session database {}", path.display()),
                e,
            )
        };
        let mut writer = Connection::open(path).map_err(err)?;
        // On a new database, let purges give their pages back to the file
        // system (with the default, a file that once held many sessions never
        // shrinks: an attack left 67 MB for an empty table). It only takes
        // effect before the first table and before the switch to WAL; on an
        // existing database it changes nothing.
        writer
            .pragma_update(None, "auto_vacuum", "INCREMENTAL")
            .map_err(err)?;
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
        writer
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(err)?;
        // When the log restarts after a complete checkpoint, cut the file
        // back to the limit.
        writer
            .pragma_update(
                None,
                "journal_size_limit",
                i64::try_from(wal_limit).unwrap_or(i64::MAX),
            )
            .map_err(err)?;
        crate::migrate::run(&mut writer)?;
        if max_sessions.is_some() || max_anonymous.is_some() {
            crate::migrate::count_rows(&mut writer)?;
        }
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
        let writes = Arc::new(AtomicU64::new(0));
        let checkpointer = Connection::open(path).map_err(err)?;
        configure(&checkpointer, sync).map_err(err)?;
        // A TRUNCATE checkpoint holds off the writer while it waits for
        // readers: give up (and retry next round) well within a request's
        // store timeout.
        checkpointer
            .busy_timeout(Duration::from_millis(500))
            .map_err(err)?;
        let (stop, stopped) = mpsc::channel();
        let seen = Arc::clone(&writes);
        let wal = Wal {
            path: wal_path(path),
            limit: wal_limit,
        };
        std::thread::Builder::new()
            .name("latch-sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpointer, &seen, &wal, &stopped))
            .map_err(|e| latch::Error::store("starting the SQLite checkpoint thread", e))?;
        Ok(Self {
            writer: Mutex::new(writer),
            readers,
            writes,
            _stop_checkpoints: stop,
        })
    }

    /// The writer connection; the caller is about to write.
    pub(crate) fn writer(&self) -> MutexGuard<'_, Connection> {
        self.writes.fetch_add(1, Ordering::Relaxed);
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

/// The write-ahead log file of a database and its size limit.
struct Wal {
    path: PathBuf,
    limit: u64,
}

impl Wal {
    fn size(&self) -> u64 {
        std::fs::metadata(&self.path).map_or(0, |m| m.len())
    }
}

/// SQLite's name for the log of the database at `db`.
fn wal_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// Checkpoint the WAL whenever there were writes, until the pool is dropped.
///
/// PASSIVE checkpoints never block the writer or readers; frames still read by
/// an open read transaction wait for the next round. After a complete
/// checkpoint the writer starts the log from the beginning again, so the WAL
/// file stays about as large as one round's writes. When it is over its
/// limit anyway (writes faster than a passive checkpoint can follow), or
/// writes have paused for a round and a log is left, a TRUNCATE checkpoint
/// brings it back to zero bytes.
fn checkpoint_loop(conn: &Connection, writes: &AtomicU64, wal: &Wal, stop: &mpsc::Receiver<()>) {
    let mut done = 0;
    let mut idle_rounds = 0u32;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        let now = writes.load(Ordering::Relaxed);
        idle_rounds = if now == done {
            idle_rounds.saturating_add(1)
        } else {
            0
        };
        let size = wal.size();
        let mode = if size > wal.limit || (idle_rounds == 1 && size > 0) {
            "TRUNCATE"
        } else if now != done {
            "PASSIVE"
        } else {
            continue;
        };
        let sql = format!("PRAGMA wal_checkpoint({mode})");
        // The row is (busy, log frames, checkpointed frames); busy = 1 means a
        // TRUNCATE could not get its locks within the busy timeout (the next
        // round tries again).
        match conn.query_row(&sql, [], |row| row.get::<_, i64>(0)) {
            Ok(busy) => {
                done = now;
                if mode == "TRUNCATE" {
                    tracing::debug!(wal_bytes = size, busy, "SQLite WAL truncation");
                    // Done: nothing more to do until the next writes. Busy:
                    // try again next round.
                    idle_rounds = if busy == 0 { idle_rounds.max(2) } else { 0 };
                }
            }
            Err(e) => tracing::warn!("SQLite WAL checkpoint failed (will retry): {e}"),
        }
    }
}
