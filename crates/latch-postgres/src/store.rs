//! The store itself: each trait method is one statement on a pooled connection.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::{Object, Pool};
use latch::{Error, Record, Result, SaveOutcome, SessionInfo, SessionStore, StoreKey, UnixTime};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::builder::PostgresStoreBuilder;
use crate::row::{self, Encoded};
use crate::sql::Sql;

/// Statement parameters, as the driver takes them.
type Params<'a> = [&'a (dyn ToSql + Sync)];

/// Server-side sessions in PostgreSQL, through a connection pool.
///
/// Rows are keyed by the [`StoreKey`] (SHA-256 of the session ID), so the table
/// holds no usable cookie. Saves are compare-and-swap on a version column, and a
/// deleted session is never written back. Cloning is cheap and shares the pool.
///
/// # Example
/// ```no_run
/// use latch::SessionManager;
/// use latch_postgres::PostgresStore;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = PostgresStore::connect("postgres://app@localhost/app").await?;
/// let manager = SessionManager::builder().store(store).build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    sql: Arc<Sql>,
}

impl PostgresStore {
    /// Connect with the default settings (16 connections, 2-second timeouts,
    /// tables in the `search_path` schema) and bring the schema up to date.
    ///
    /// # Errors
    /// As [`PostgresStoreBuilder::connect`].
    ///
    /// # Example
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let url = std::env::var("DATABASE_URL")?;
    /// let store = latch_postgres::PostgresStore::connect(&url).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str) -> Result<Self> {
        Self::builder(url).connect().await
    }

    /// Start configuring a store for the database at `url`
    /// (`postgres://user:password@host:port/database?option=value`, or the
    /// `key=value` form).
    ///
    /// # Example
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = latch_postgres::PostgresStore::builder("postgres://app@localhost/app")
    ///     .pool_size(8)
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn builder(url: &str) -> PostgresStoreBuilder {
        PostgresStoreBuilder::new(url)
    }

    /// The sessions table as statements name it (`latch_sessions`, or
    /// `"schema".latch_sessions`), for operators' own queries.
    ///
    /// # Example
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = latch_postgres::PostgresStore::builder("postgres://app@localhost/app")
    ///     .schema("auth")
    ///     .connect()
    ///     .await?;
    /// assert_eq!(store.table(), "\"auth\".latch_sessions");
    /// # Ok(()) }
    /// ```
    pub fn table(&self) -> &str {
        &self.sql.sessions
    }

    pub(crate) fn new(pool: Pool, sql: Sql) -> Self {
        Self {
            pool,
            sql: Arc::new(sql),
        }
    }

    async fn client(&self, what: &'static str) -> Result<Object> {
        self.pool.get().await.map_err(|e| Error::store(what, e))
    }

    /// Run `sql` (prepared once per connection); rows affected.
    async fn execute(&self, what: &'static str, sql: &str, params: &Params<'_>) -> Result<u64> {
        let client = self.client(what).await?;
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(|e| Error::store(what, e))?;
        client
            .execute(&statement, params)
            .await
            .map_err(|e| Error::store(what, e))
    }

    /// Run `sql` (prepared once per connection); the rows it returns.
    async fn query(&self, what: &'static str, sql: &str, params: &Params<'_>) -> Result<Vec<Row>> {
        let client = self.client(what).await?;
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(|e| Error::store(what, e))?;
        client
            .query(&statement, params)
            .await
            .map_err(|e| Error::store(what, e))
    }
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn create(&self, key: &StoreKey, record: &Record) -> Result<bool> {
        let enc = Encoded::new(record)?;
        let key = key.as_bytes().as_slice();
        let params = columns(&key, &enc, record);
        let inserted = self
            .execute(
                "creating a session in PostgreSQL",
                &self.sql.create,
                &params,
            )
            .await?;
        Ok(inserted == 1)
    }

    async fn load(&self, key: &StoreKey) -> Result<Option<Record>> {
        let key = key.as_bytes().as_slice();
        let rows = self
            .query("loading a session from PostgreSQL", &self.sql.load, &[&key])
            .await?;
        rows.first().map(row::record).transpose()
    }

    async fn save(
        &self,
        key: &StoreKey,
        record: &Record,
        expected_version: u64,
    ) -> Result<SaveOutcome> {
        let enc = Encoded::new(record)?;
        let expected = row::version_to_sql(expected_version)?;
        let key = key.as_bytes().as_slice();
        let mut params = columns(&key, &enc, record);
        params.push(&expected);
        let what = "saving a session to PostgreSQL";
        let rows = self.query(what, &self.sql.save, &params).await?;
        let outcome = rows
            .first()
            .ok_or_else(|| Error::store_msg(format!("{what}: the statement returned no row")))?;
        save_outcome(outcome)
    }

    async fn touch(
        &self,
        key: &StoreKey,
        _user_hint: Option<&str>,
        last_seen: UnixTime,
        expires_at: UnixTime,
    ) -> Result<bool> {
        let key = key.as_bytes().as_slice();
        let updated = self
            .execute(
                "touching a session in PostgreSQL",
                &self.sql.touch,
                &[&key, &last_seen, &expires_at],
            )
            .await?;
        Ok(updated == 1)
    }

    async fn delete(&self, key: &StoreKey) -> Result<bool> {
        let key = key.as_bytes().as_slice();
        let deleted = self
            .execute(
                "deleting a session from PostgreSQL",
                &self.sql.delete,
                &[&key],
            )
            .await?;
        Ok(deleted == 1)
    }

    fn user_index(&self) -> Option<&dyn latch::UserIndex> {
        Some(self)
    }

    fn expired_deletion(&self) -> Option<&dyn latch::ExpiredDeletion> {
        Some(self)
    }
}

#[async_trait]
impl latch::UserIndex for PostgresStore {
    async fn list_by_user(&self, user_id: &str, now: UnixTime) -> Result<Vec<SessionInfo>> {
        let rows = self
            .query(
                "listing a user's sessions in PostgreSQL",
                &self.sql.list_by_user,
                &[&user_id, &now],
            )
            .await?;
        rows.iter().map(row::info).collect()
    }

    async fn delete_by_user(&self, user_id: &str, keep: Option<&StoreKey>) -> Result<u64> {
        let what = "deleting a user's sessions from PostgreSQL";
        match keep {
            None => {
                self.execute(what, &self.sql.delete_by_user, &[&user_id])
                    .await
            }
            Some(keep) => {
                let keep = keep.as_bytes().as_slice();
                self.execute(what, &self.sql.delete_by_user_except, &[&user_id, &keep])
                    .await
            }
        }
    }

    async fn delete_one_by_user(
        &self,
        user_id: &str,
        key: &StoreKey,
        keep: Option<&StoreKey>,
    ) -> Result<bool> {
        let what = "revoking one of a user's sessions in PostgreSQL";
        let key = key.as_bytes().as_slice();
        let n = match keep {
            None => {
                self.execute(what, &self.sql.delete_one_by_user, &[&user_id, &key])
                    .await?
            }
            Some(keep) => {
                let keep = keep.as_bytes().as_slice();
                self.execute(
                    what,
                    &self.sql.delete_one_by_user_except,
                    &[&user_id, &key, &keep],
                )
                .await?
            }
        };
        Ok(n > 0)
    }
}

#[async_trait]
impl latch::ExpiredDeletion for PostgresStore {
    async fn purge_expired(&self, now: UnixTime, limit: usize) -> Result<u64> {
        if limit == 0 {
            return Ok(0);
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.execute(
            "purging expired sessions from PostgreSQL",
            &self.sql.purge,
            &[&now, &limit],
        )
        .await
    }
}

/// A record's columns, bound as `$1` to `$10` in the order of the create and save
/// statements.
fn columns<'a>(
    key: &'a &'a [u8],
    enc: &'a Encoded,
    record: &'a Record,
) -> Vec<&'a (dyn ToSql + Sync)> {
    vec![
        key,
        &enc.version,
        &enc.data,
        &record.created_at,
        &record.last_seen,
        &record.expires_at,
        &record.remember,
        &record.user_id,
        &record.user_agent,
        &record.ip,
    ]
}

/// Read the `saved` / `present` pair the save statement returns.
fn save_outcome(row: &Row) -> Result<SaveOutcome> {
    let read = |column| {
        row.try_get::<_, bool>(column)
            .map_err(|e| Error::store("reading the outcome of a session save", e))
    };
    Ok(match (read("saved")?, read("present")?) {
        (true, _) => SaveOutcome::Saved,
        (false, true) => SaveOutcome::Conflict,
        (false, false) => SaveOutcome::Gone,
    })
}

impl fmt::Debug for PostgresStore {
    // The pool's own `Debug` would print connection settings; the table and the
    // pool's occupancy are what an operator needs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PostgresStore")
            .field("table", &self.sql.sessions)
            .field("pool_size", &status.size)
            .field("pool_available", &status.available)
            .field("pool_max_size", &status.max_size)
            .finish()
    }
}
