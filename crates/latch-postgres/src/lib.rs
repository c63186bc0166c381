//! # latch-postgres: latch sessions in PostgreSQL
//!
//! A [`latch::SessionStore`] on PostgreSQL, for applications that run several
//! servers against one database and want sessions to survive restarts. It uses
//! `tokio-postgres` with a `deadpool-postgres` pool and creates its own tables at
//! start-up.
//!
//! ## Example
//! ```no_run
//! use latch::SessionManager;
//! use latch_postgres::PostgresStore;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let url = std::env::var("DATABASE_URL")?; // postgres://app:secret@db.internal/app
//! let store = PostgresStore::connect(&url).await?; // connects and migrates
//! let manager = SessionManager::builder().store(store.clone()).build()?;
//!
//! // From a periodic task: delete expired rows, 1000 per statement.
//! let purged = manager.purge_expired(1000).await?;
//! # Ok(()) }
//! ```
//!
//! ## The table
//! One row per session in `latch_sessions`, in the connection's default schema or
//! the one given to [`PostgresStoreBuilder::schema`]:
//!
//! | column | type | holds |
//! |---|---|---|
//! | `key` | `bytea` primary key | the [`latch::StoreKey`]: SHA-256 of the session ID, 32 bytes |
//! | `version` | `bigint` | the compare-and-swap version |
//! | `data` | `json` | the session's key/value data, as written |
//! | `created_at`, `last_seen`, `expires_at` | `bigint` | Unix seconds |
//! | `remember` | `boolean` | "remember me" |
//! | `user_id`, `user_agent`, `ip` | `text`, nullable | the devices-list facts |
//!
//! Session IDs are hashed at rest: a copy of the table (a backup, a replica, a
//! leaked dump) gives no cookie that works. An index on `expires_at` serves purging
//! and a partial index on `user_id` (where not null) serves listing and revoking a
//! user's sessions, so both cost what they touch, never a scan of every session.
//! `data` is `json` rather than `jsonb` so every value a session can hold comes
//! back exactly as written (`jsonb` refuses strings containing `\u0000`).
//!
//! ## Consistency
//! - `create` is `INSERT ... ON CONFLICT DO NOTHING`: an existing session is never
//!   overwritten.
//! - `save` is compare-and-swap: `UPDATE ... WHERE key = $1 AND version = $expected`,
//!   and in the same statement whether the row exists, to answer `Conflict` or
//!   `Gone`. It never inserts, so a session deleted by a logout stays deleted.
//! - `purge_expired` deletes one batch of the oldest expired rows per statement,
//!   skipping rows another server is purging at the same moment.
//!
//! ## Migrations
//! The schema is versioned. Applied versions are recorded in
//! `latch_schema_migrations` (next to the sessions table); on every
//! [`connect`](PostgresStoreBuilder::connect) each missing migration is applied
//! once, in its own transaction, under a transaction-scoped advisory lock, so
//! servers starting together do not race. A database whose recorded version is
//! newer than this build knows is refused with an error rather than written to:
//! upgrade the application instead. The connecting role needs the right to create
//! tables (and the schema, if one is given) the first time.
//!
//! ## Outages
//! A store call against a server that is down or unreachable fails rather than
//! hangs: opening a connection, waiting for a pooled one and the kernel's wait for
//! unacknowledged data are all bounded (see [`PostgresStoreBuilder`]), and latch
//! wraps every store call in its own timeout. Errors are
//! [`latch::ErrorKind::Store`] with the driver's error as their source, which
//! adapters answer with `503 Service Unavailable`. Connections broken by a server
//! restart are dropped from the pool and replaced on the next call, so the store
//! recovers by itself when the server is back.
//!
//! A server that keeps connections open but stops answering (hung, or replies
//! lost on the network) is bounded only by latch's per-call timeout: a statement
//! already sent waits for it. As with any timeout, a write reported as failed may
//! still be applied if the server wakes up later; a write reported as done is
//! always stored.
//!
//! ## TLS
//! TLS uses rustls, with libpq's `sslmode`, `sslrootcert`, `sslcert` and `sslkey`
//! in the URL or on the builder. Without `sslmode`, a server reached over the
//! network gets `verify-full` (certificate and host name checked against the
//! system's roots or `sslrootcert`) and a loopback or Unix-socket server plain
//! text. See [`PostgresStoreBuilder`]'s TLS section for every mode.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod builder;
mod migrate;
mod row;
mod sql;
mod store;
mod tls;

pub use builder::PostgresStoreBuilder;
pub use store::PostgresStore;
pub use tls::SslMode;

/// The `tokio-postgres` configuration and TLS connector for `url`, read as the
/// store reads it (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`, and the same
/// default), for tools that open their own connections to the store's
/// database (the `latch` CLI, the demo's user table).
///
/// # Example
/// ```
/// let (config, _tls) = latch_postgres::connect_config("postgres://app@db.example/app?sslmode=require")?;
/// assert_eq!(config.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
/// # Ok::<(), latch::Error>(())
/// ```
///
/// # Errors
/// [`latch::ErrorKind::InvalidConfig`] for a URL or TLS file that is not valid.
pub fn connect_config(
    url: &str,
) -> latch::Result<(
    tokio_postgres::Config,
    tokio_postgres_rustls::MakeRustlsConnect,
)> {
    let prepared = tls::prepare(url, &tls::TlsSettings::default())?;
    Ok((prepared.config, prepared.connector))
}
