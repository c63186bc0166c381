//! `SqliteStore`: the `SessionStore` implementation.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use latch::{Record, SaveOutcome, SessionInfo, SessionStore, StoreKey, UnixTime};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::config::{Config, Synchronous};
use crate::pool::Pool;

/// Sessions in a SQLite database file.
///
/// Cheap to clone (clones share the connections).
#[derive(Clone)]
pub struct SqliteStore {
    pool: Arc<Pool>,
    path: Arc<PathBuf>,
    /// The most sessions the table may hold (see
    /// [`SqliteStoreBuilder::max_sessions`]).
    max_sessions: Option<i64>,
    /// The count past which sessions without a user are refused (see
    /// [`SqliteStoreBuilder::max_anonymous_sessions`]).
    max_anonymous: Option<i64>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

/// Settings for a [`SqliteStore`]; from [`SqliteStore::builder`].
#[derive(Debug, Clone)]
pub struct SqliteStoreBuilder {
    path: PathBuf,
    config: Config,
}

impl SqliteStoreBuilder {
    /// How hard SQLite works to make each commit durable (default
    /// [`Synchronous::Normal`]).
    #[must_use]
    pub fn synchronous(mut self, sync: Synchronous) -> Self {
        self.config.sync = sync;
        self
    }

    /// The size the write-ahead log file is kept within, in bytes (default
    /// [`DEFAULT_WAL_LIMIT`](crate::DEFAULT_WAL_LIMIT), 64 MiB).
    ///
    /// Past it, the store's checkpoint thread copies the log back into the
    /// database, holding off writes for as long as that takes, and cuts the
    /// file to zero; it does the same once whenever writes pause. Between two
    /// checks (every 200 ms) the log can outgrow the limit by what was written
    /// meanwhile.
    #[must_use]
    pub fn wal_limit(mut self, bytes: u64) -> Self {
        self.config.wal_limit = bytes;
        self
    }

    /// The most sessions the database may hold (default: no limit). Creating
    /// one more fails with a store error (answered `503 Service Unavailable`
    /// by latch-axum, as a store outage is) until a sign-out, a revocation or
    /// a purge of expired sessions frees room. A backstop against filling the
    /// disk with sessions (one per request without a cookie, if nothing else
    /// limits them); limit how fast one client may start sessions as well,
    /// so that a flood does not leave the site full for everyone else.
    ///
    /// The count is kept in the database by triggers, made the first time a
    /// store with a limit opens the file (counting what it holds then), so
    /// every process writing the file keeps it and each enforces the limit it
    /// was opened with. From then on each insert and delete costs one more
    /// page in its commit (about 7 µs of CPU on the project's machine); files
    /// never opened with a limit pay nothing.
    ///
    /// # Example
    /// ```
    /// use latch::{Record, SessionId, SessionStore as _};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// # let dir = std::env::temp_dir().join(format!("latch-max-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let store = latch_sqlite::SqliteStore::builder(dir.join("s.db"))
    ///     .max_sessions(1)
    ///     .open()?;
    /// let (a, b) = (SessionId::generate().store_key(), SessionId::generate().store_key());
    /// assert!(store.create(&a, &Record::new(0)).await?);
    /// let full = store.create(&b, &Record::new(0)).await.unwrap_err();
    /// assert!(full.is_unavailable());
    /// store.delete(&a).await?;
    /// assert!(store.create(&b, &Record::new(0)).await?);
    /// # std::fs::remove_dir_all(dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn max_sessions(mut self, max: u64) -> Self {
        self.config.max_sessions = Some(max);
        self
    }

    /// Keep room for sign-ins: once the database holds `max` sessions, a
    /// session created without a signed-in user (`Record::user_id` unset)
    /// is refused like one past [`max_sessions`](Self::max_sessions), while
    /// one created signed in may still use the room above `max`. A sign-in
    /// gives its session a new ID, which creates it signed in, so a flood of
    /// anonymous sessions fills the store only up to `max` and people can
    /// still sign in. Counted as `max_sessions` is (and turns the count on
    /// the same way).
    ///
    /// # Example
    /// ```
    /// use latch::{Record, SessionId, SessionStore as _};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// # let dir = std::env::temp_dir().join(format!("latch-anon-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let store = latch_sqlite::SqliteStore::builder(dir.join("s.db"))
    ///     .max_sessions(2)
    ///     .max_anonymous_sessions(1)
    ///     .open()?;
    /// let new_key = || SessionId::generate().store_key();
    /// assert!(store.create(&new_key(), &Record::new(0)).await?);
    /// assert!(store.create(&new_key(), &Record::new(0)).await.is_err());
    /// let mut signed_in = Record::new(0);
    /// signed_in.user_id = Some("ada".into());
    /// assert!(store.create(&new_key(), &signed_in).await?);
    /// # std::fs::remove_dir_all(dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn max_anonymous_sessions(mut self, max: u64) -> Self {
        self.config.max_anonymous = Some(max);
        self
    }

    /// Open (creating if needed, readable by its owner only) the database,
    /// switch it to WAL and apply any pending migrations.
    ///
    /// # Errors
    /// As [`SqliteStore::open`], and [`latch::ErrorKind::InvalidConfig`] for
    /// `max_sessions(0)`.
    pub fn open(self) -> latch::Result<SqliteStore> {
        let max_sessions = match self.config.max_sessions {
            None => None,
            Some(0) => {
                return Err(latch::Error::invalid_config(
                    "max_sessions(0) would refuse every session: give a limit of at least 1, \
                     or leave it out for no limit",
                ));
            }
            Some(max) => Some(i64::try_from(max).unwrap_or(i64::MAX)),
        };
        let max_anonymous = self
            .config
            .max_anonymous
            .map(|max| i64::try_from(max).unwrap_or(i64::MAX));
        create_owner_only(&self.path)?;
        Ok(SqliteStore {
            pool: Arc::new(Pool::open(&self.path, self.config)?),
            path: Arc::new(self.path),
            max_sessions,
            max_anonymous,
        })
    }
}

/// Create the database file with mode 0600 if it does not exist yet, so the
/// sessions in it (and the WAL and shared-memory files, which SQLite creates
/// with the database file's permissions) are readable by their owner only.
/// An existing file keeps its permissions: the operator chose them.
fn create_owner_only(path: &Path) -> latch::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(latch::Error::store(
            format!("opening the session database {}", path.display()),
            e,
        )),
    }
}

const COLUMNS: &str =
    "key, version, data, created_at, last_seen, expires_at, remember, user_id, user_agent, ip";

impl SqliteStore {
    /// Open (creating if needed) the database at `path`, switch it to WAL and
    /// apply any pending migrations.
    ///
    /// # Errors
    /// [`latch::ErrorKind::Store`] when the file cannot be opened or written, the
    /// file system cannot do WAL, or the schema is newer than this build.
    ///
    /// # Example
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("latch-open-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let store = latch_sqlite::SqliteStore::open(dir.join("s.db"))?;
    /// # std::fs::remove_dir_all(dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> latch::Result<Self> {
        Self::builder(path).open()
    }

    /// Configure a store at `path` before opening it.
    ///
    /// # Example
    /// ```
    /// use latch_sqlite::{SqliteStore, Synchronous};
    ///
    /// # let dir = std::env::temp_dir().join(format!("latch-builder-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let store = SqliteStore::builder(dir.join("s.db"))
    ///     .synchronous(Synchronous::Full)
    ///     .wal_limit(16 << 20)
    ///     .open()?;
    /// # std::fs::remove_dir_all(dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(path: impl AsRef<Path>) -> SqliteStoreBuilder {
        SqliteStoreBuilder {
            path: path.as_ref().to_owned(),
            config: Config::default(),
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run `f` on the writer connection on the blocking thread pool.
    async fn write<T, F>(&self, what: &'static str, f: F) -> latch::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let pool = Arc::clone(&self.pool);
        blocking(what, move |abandoned: &AtomicBool| {
            let mut conn = pool.writer();
            // The caller gave up (its store timeout passed, the request was
            // answered 503) while this write queued for the connection: do not
            // write what nobody is waiting for, and let the queue drain.
            if abandoned.load(Ordering::Acquire) {
                return Err(latch::Error::store(what, Abandoned));
            }
            f(&mut conn).map_err(|e| latch::Error::store(what, e))
        })
        .await
    }

    /// Run `f` on a reader connection on the blocking thread pool.
    async fn read<T, F>(&self, what: &'static str, f: F) -> latch::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let pool = Arc::clone(&self.pool);
        blocking(what, move |_: &AtomicBool| {
            f(&pool.reader()).map_err(|e| latch::Error::store(what, e))
        })
        .await
    }
}

impl SqliteStore {
    /// `create` for a store of at most `max` sessions: the insert happens only
    /// while the count is under it, in one statement, so concurrent creates
    /// (from this process or another on the same file) cannot pass it.
    async fn create_within(
        &self,
        key: &StoreKey,
        record: &Record,
        max: i64,
    ) -> latch::Result<bool> {
        let (key, record) = (*key, record.clone());
        let made = self
            .write("creating a session", move |conn| {
                let tx = conn.transaction()?;
                // The `WHERE` also keeps SQLite from reading `ON CONFLICT` as
                // part of the `SELECT` (its documented parsing ambiguity).
                let sql = format!(
                    "INSERT INTO latch_sessions ({COLUMNS}) \
                     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 \
                     WHERE (SELECT n FROM latch_session_count) < ?11 \
                     ON CONFLICT (key) DO NOTHING"
                );
                let n = insert(&mut tx.prepare_cached(&sql)?, &key, &record, Some(max))?;
                // Not made: either the key is taken (the create-if-absent
                // answer) or the store is full. Asked in the same
                // transaction, so no other writer changes the answer between.
                let made = if n == 1 {
                    Some(true)
                } else if tx
                    .prepare_cached("SELECT 1 FROM latch_sessions WHERE key = ?1")?
                    .exists([key.as_bytes()])?
                {
                    Some(false)
                } else {
                    None
                };
                tx.commit()?;
                Ok(made)
            })
            .await?;
        made.ok_or_else(|| {
            latch::Error::store_msg(format!(
                "creating a session: the session database holds its limit of {max} sessions \
                 for this one (SqliteStoreBuilder::max_sessions, or max_anonymous_sessions for \
                 a session without a signed-in user)"
            ))
        })
    }
}

/// Sets its flag when dropped: when the future awaiting a blocking task is
/// dropped (a timeout), the task can see that nobody waits for it any more.
struct Abandon(Arc<AtomicBool>);

impl Drop for Abandon {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// A write skipped because its caller stopped waiting before it reached the
/// connection.
#[derive(Debug)]
struct Abandoned;

impl std::fmt::Display for Abandoned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the caller stopped waiting before the write began; it was not carried out")
    }
}

impl std::error::Error for Abandoned {}

/// Run `f` on the blocking thread pool; `f` is told whether its caller has
/// stopped waiting.
async fn blocking<T, F>(what: &'static str, f: F) -> latch::Result<T>
where
    T: Send + 'static,
    F: FnOnce(&AtomicBool) -> latch::Result<T> + Send + 'static,
{
    let abandoned = Arc::new(AtomicBool::new(false));
    let _abandon = Abandon(Arc::clone(&abandoned));
    match tokio::task::spawn_blocking(move || f(&abandoned)).await {
        Ok(result) => result,
        Err(join) => Err(latch::Error::store(what, join)),
    }
}

fn data_json(record: &Record) -> rusqlite::Result<String> {
    serde_json::to_string(&record.data)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))
}

/// Run `insert`, whose parameters are the columns of `COLUMNS` in order
/// and then `limit` when there is one, for `record` under `key`.
fn insert(
    insert: &mut rusqlite::CachedStatement<'_>,
    key: &StoreKey,
    record: &Record,
    limit: Option<i64>,
) -> rusqlite::Result<usize> {
    let (version, data) = (version(record.version), data_json(record)?);
    let columns: [&dyn rusqlite::ToSql; 10] = [
        key.as_bytes(),
        &version,
        &data,
        &record.created_at,
        &record.last_seen,
        &record.expires_at,
        &record.remember,
        &record.user_id,
        &record.user_agent,
        &record.ip,
    ];
    match &limit {
        None => insert.execute(&columns[..]),
        Some(limit) => {
            let mut with_limit = columns.to_vec();
            with_limit.push(limit);
            insert.execute(with_limit.as_slice())
        }
    }
}

fn row_to_record(row: &Row<'_>) -> rusqlite::Result<Record> {
    let data: String = row.get(2)?;
    let data = serde_json::from_str(&data).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, e.into())
    })?;
    Ok(Record {
        data,
        version: u64::try_from(row.get::<_, i64>(1)?).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Integer, e.into())
        })?,
        created_at: row.get(3)?,
        last_seen: row.get(4)?,
        expires_at: row.get(5)?,
        remember: row.get(6)?,
        user_id: row.get(7)?,
        user_agent: row.get(8)?,
        ip: row.get(9)?,
    })
}

fn row_to_key(row: &Row<'_>) -> rusqlite::Result<StoreKey> {
    let bytes: [u8; 32] = row.get(0)?;
    Ok(StoreKey::from_bytes(bytes))
}

fn version(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create(&self, key: &StoreKey, record: &Record) -> latch::Result<bool> {
        let anonymous = if record.user_id.is_none() {
            self.max_anonymous
        } else {
            None
        };
        let limit = match (self.max_sessions, anonymous) {
            (Some(all), Some(anonymous)) => Some(all.min(anonymous)),
            (all, anonymous) => all.or(anonymous),
        };
        if let Some(max) = limit {
            return self.create_within(key, record, max).await;
        }
        let (key, record) = (*key, record.clone());
        self.write("creating a session", move |conn| {
            let sql = format!(
                "INSERT INTO latch_sessions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
                 ON CONFLICT (key) DO NOTHING"
            );
            let n = insert(&mut conn.prepare_cached(&sql)?, &key, &record, None)?;
            Ok(n == 1)
        })
        .await
    }

    async fn load(&self, key: &StoreKey) -> latch::Result<Option<Record>> {
        let key = *key;
        self.read("loading a session", move |conn| {
            let sql = format!("SELECT {COLUMNS} FROM latch_sessions WHERE key = ?1");
            conn.prepare_cached(&sql)?
                .query_row([key.as_bytes()], row_to_record)
                .optional()
        })
        .await
    }

    async fn save(
        &self,
        key: &StoreKey,
        record: &Record,
        expected: u64,
    ) -> latch::Result<SaveOutcome> {
        let (key, record) = (*key, record.clone());
        self.write("saving a session", move |conn| {
            let tx = conn.transaction()?;
            let n = tx
                .prepare_cached(
                    "UPDATE latch_sessions SET version = ?3, data = ?4, last_seen = ?5, \
                     expires_at = ?6, remember = ?7, user_id = ?8, user_agent = ?9, ip = ?10, \
                     created_at = ?11 WHERE key = ?1 AND version = ?2",
                )?
                .execute(params![
                    key.as_bytes(),
                    version(expected),
                    version(record.version),
                    data_json(&record)?,
                    record.last_seen,
                    record.expires_at,
                    record.remember,
                    record.user_id,
                    record.user_agent,
                    record.ip,
                    record.created_at,
                ])?;
            let outcome = if n == 1 {
                SaveOutcome::Saved
            } else {
                let exists = tx
                    .prepare_cached("SELECT 1 FROM latch_sessions WHERE key = ?1")?
                    .exists([key.as_bytes()])?;
                if exists {
                    SaveOutcome::Conflict
                } else {
                    SaveOutcome::Gone
                }
            };
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }

    async fn touch(
        &self,
        key: &StoreKey,
        _user_hint: Option<&str>,
        last_seen: UnixTime,
        expires_at: UnixTime,
    ) -> latch::Result<bool> {
        let key = *key;
        self.write("refreshing a session", move |conn| {
            let n = conn
                .prepare_cached(
                    "UPDATE latch_sessions SET last_seen = ?2, expires_at = ?3 WHERE key = ?1",
                )?
                .execute(params![key.as_bytes(), last_seen, expires_at])?;
            Ok(n == 1)
        })
        .await
    }

    async fn delete(&self, key: &StoreKey) -> latch::Result<bool> {
        let key = *key;
        self.write("deleting a session", move |conn| {
            let n = conn
                .prepare_cached("DELETE FROM latch_sessions WHERE key = ?1")?
                .execute([key.as_bytes()])?;
            Ok(n == 1)
        })
        .await
    }

    fn user_index(&self) -> Option<&dyn latch::UserIndex> {
        Some(self)
    }

    fn expired_deletion(&self) -> Option<&dyn latch::ExpiredDeletion> {
        Some(self)
    }
}

#[async_trait]
impl latch::UserIndex for SqliteStore {
    async fn list_by_user(&self, user_id: &str, now: UnixTime) -> latch::Result<Vec<SessionInfo>> {
        let user = user_id.to_owned();
        self.read("listing a user's sessions", move |conn| {
            let sql = format!(
                "SELECT {COLUMNS} FROM latch_sessions WHERE user_id = ?1 AND expires_at > ?2 \
                 ORDER BY last_seen DESC"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt.query_map(params![user, now], |row| {
                Ok(SessionInfo::from_record(
                    row_to_key(row)?,
                    &row_to_record(row)?,
                ))
            })?;
            rows.collect()
        })
        .await
    }

    async fn delete_by_user(&self, user_id: &str, keep: Option<&StoreKey>) -> latch::Result<u64> {
        let (user, keep) = (user_id.to_owned(), keep.copied());
        self.write("deleting a user's sessions", move |conn| {
            let n = match keep {
                None => conn
                    .prepare_cached("DELETE FROM latch_sessions WHERE user_id = ?1")?
                    .execute(params![user])?,
                // One statement, so checking the kept session and deleting
                // the others is one write (see `UserIndex::delete_by_user`).
                Some(keep) => conn
                    .prepare_cached(
                        "DELETE FROM latch_sessions WHERE user_id = ?1 AND key != ?2 \
                         AND EXISTS (SELECT 1 FROM latch_sessions WHERE key = ?2)",
                    )?
                    .execute(params![user, keep.as_bytes().as_slice()])?,
            };
            Ok(n as u64)
        })
        .await
    }

    async fn delete_one_by_user(
        &self,
        user_id: &str,
        key: &StoreKey,
        keep: Option<&StoreKey>,
    ) -> latch::Result<bool> {
        let (user, key, keep) = (user_id.to_owned(), *key, keep.copied());
        self.write("revoking one of a user's sessions", move |conn| {
            let key = key.as_bytes().as_slice();
            let n = match keep {
                None => conn
                    .prepare_cached("DELETE FROM latch_sessions WHERE key = ?1 AND user_id = ?2")?
                    .execute(params![key, user])?,
                Some(keep) => conn
                    .prepare_cached(
                        "DELETE FROM latch_sessions WHERE key = ?1 AND user_id = ?2 \
                         AND EXISTS (SELECT 1 FROM latch_sessions WHERE key = ?3)",
                    )?
                    .execute(params![key, user, keep.as_bytes().as_slice()])?,
            };
            Ok(n > 0)
        })
        .await
    }
}

#[async_trait]
impl latch::ExpiredDeletion for SqliteStore {
    async fn purge_expired(&self, now: UnixTime, limit: usize) -> latch::Result<u64> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.write("purging expired sessions", move |conn| {
            // The subquery walks the expires_at index from the oldest entry and
            // stops after `limit` rows: cost follows what expired, not the table.
            let n = conn
                .prepare_cached(
                    "DELETE FROM latch_sessions WHERE key IN (SELECT key FROM latch_sessions \
                     WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2)",
                )?
                .execute(params![now, limit])?;
            if n > 0 {
                // Give the freed pages back (a database made before this
                // setting existed has no auto-vacuum, and this does nothing).
                // Stepped to the end: each step frees one page, and
                // `execute_batch` steps once.
                let mut vacuum = conn.prepare_cached("PRAGMA incremental_vacuum")?;
                let mut steps = vacuum.query([])?;
                while steps.next()?.is_some() {}
            }
            Ok(n as u64)
        })
        .await
    }
}
