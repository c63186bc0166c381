//! Settings for a [`PostgresStore`], checked when it connects.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use latch::{Error, Result};

use crate::PostgresStore;
use crate::migrate;
use crate::sql::{Sql, check_schema};
use crate::tls::{self, Prepared, SslMode, TlsSettings};

/// Connections kept open at most, unless [`pool_size`](PostgresStoreBuilder::pool_size) says otherwise.
const DEFAULT_POOL_SIZE: usize = 16;
/// Matches latch's default per-call store timeout: past it the request has
/// already been answered with a 503.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long unacknowledged data may sit on a socket before the kernel drops the
/// connection, so a server that vanished from the network is noticed and its
/// connection is replaced instead of being reused.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings for a [`PostgresStore`]: pool size, timeouts, schema and TLS.
///
/// Nothing is checked or opened until [`connect`](Self::connect).
///
/// ## TLS
/// TLS uses rustls. The URL takes libpq's parameters `sslmode`,
/// `sslrootcert`, `sslcert` and `sslkey`
/// (`postgres://app@db.internal/app?sslmode=verify-full&sslrootcert=/etc/ssl/db-ca.pem`),
/// and the builder the same settings ([`ssl_mode`](Self::ssl_mode),
/// [`ssl_root_cert`](Self::ssl_root_cert), [`ssl_client_cert`](Self::ssl_client_cert)),
/// which win over the URL's.
///
/// | `sslmode` | encrypted | server's certificate checked |
/// |---|---|---|
/// | `disable` | no | - |
/// | `prefer` | if the server offers TLS | no (a warning is logged at start-up) |
/// | `require` | yes | no (a warning is logged); with `sslrootcert`, as `verify-ca`, as libpq does |
/// | `verify-ca` | yes | signed by a trusted CA; any host name |
/// | `verify-full` | yes | signed by a trusted CA (the system's roots, or `sslrootcert`) and naming the host |
///
/// **Default**: `verify-full` for a server reached over the network, and
/// `disable` for loopback addresses (`localhost`, `127.0.0.1`, `::1`) and Unix
/// sockets. libpq's own default, `prefer`, neither checks who answers nor
/// refuses plain text, which is not what a careful user expects for session
/// data; a database on the same machine is not behind a network.
///
/// # Example
/// ```no_run
/// use std::time::Duration;
/// use latch_postgres::PostgresStore;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = PostgresStore::builder("postgres://app@db.internal/app")
///     .pool_size(32)
///     .connect_timeout(Duration::from_secs(1))
///     .schema("auth")
///     .connect()
///     .await?;
/// # Ok(()) }
/// ```
#[must_use = "a builder does nothing until `connect` is called"]
pub struct PostgresStoreBuilder {
    url: String,
    pool_size: usize,
    connect_timeout: Option<Duration>,
    wait_timeout: Duration,
    schema: Option<String>,
    tls: TlsSettings,
}

impl PostgresStoreBuilder {
    pub(crate) fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            pool_size: DEFAULT_POOL_SIZE,
            connect_timeout: None,
            wait_timeout: DEFAULT_TIMEOUT,
            schema: None,
            tls: TlsSettings::default(),
        }
    }

    /// How to use TLS (default: `verify-full`, or `disable` for a loopback or
    /// Unix-socket server; see the TLS section above). Same as `sslmode=` in
    /// the URL.
    ///
    /// # Example
    /// ```no_run
    /// use latch_postgres::{PostgresStore, SslMode};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = PostgresStore::builder("postgres://app@db.internal/app")
    ///     .ssl_mode(SslMode::VerifyFull)
    ///     .ssl_root_cert("/etc/ssl/db-ca.pem")
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn ssl_mode(mut self, mode: SslMode) -> Self {
        self.tls.mode = Some(mode);
        self
    }

    /// Trust the CA certificate(s) in this PEM file instead of the system's
    /// root certificates. Same as `sslrootcert=` in the URL.
    pub fn ssl_root_cert(mut self, path: impl Into<PathBuf>) -> Self {
        self.tls.root_cert = Some(path.into());
        self
    }

    /// Present this client certificate and key (PEM files) to a server that
    /// asks for one (`clientcert=verify-ca` or `cert` authentication). Same as
    /// `sslcert=` and `sslkey=` in the URL.
    pub fn ssl_client_cert(mut self, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        self.tls.client = Some((cert.into(), key.into()));
        self
    }

    /// Keep at most `size` connections open (default 16; at least 1).
    ///
    /// # Example
    /// ```
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// # rt.block_on(async {
    /// let err = latch_postgres::PostgresStore::builder("postgres://app@localhost/app")
    ///     .pool_size(0)
    ///     .connect()
    ///     .await
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), &latch::ErrorKind::InvalidConfig);
    /// # });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// Give up opening a connection after `timeout` (default: the URL's
    /// `connect_timeout`, else 2 seconds). Also bounds the whole of creating a
    /// pooled connection, log-in included.
    ///
    /// # Example
    /// ```
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// # rt.block_on(async {
    /// use std::time::Duration;
    ///
    /// let err = latch_postgres::PostgresStore::builder("postgres://app@localhost/app")
    ///     .connect_timeout(Duration::ZERO)
    ///     .connect()
    ///     .await
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), &latch::ErrorKind::InvalidConfig);
    /// # });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Give up waiting for a free pooled connection after `timeout` (default 2
    /// seconds).
    ///
    /// # Example
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    ///
    /// let store = latch_postgres::PostgresStore::builder("postgres://app@localhost/app")
    ///     .wait_timeout(Duration::from_millis(500))
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.wait_timeout = timeout;
        self
    }

    /// Keep the tables in the PostgreSQL schema `name`, created if missing
    /// (default: the first schema of the connection's `search_path`, normally
    /// `public`). The name must be 1 to 63 characters of `a-z`, `0-9` and `_`, not
    /// starting with a digit.
    ///
    /// # Example
    /// ```
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// # rt.block_on(async {
    /// let err = latch_postgres::PostgresStore::builder("postgres://app@localhost/app")
    ///     .schema("Auth; DROP TABLE users")
    ///     .connect()
    ///     .await
    ///     .unwrap_err();
    /// assert_eq!(err.kind(), &latch::ErrorKind::InvalidConfig);
    /// # });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn schema(mut self, name: &str) -> Self {
        self.schema = Some(name.to_owned());
        self
    }

    /// Check the settings, open the pool and bring the schema up to date.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidConfig`](latch::ErrorKind::InvalidConfig) for a bad URL,
    /// a pool size of 0, a zero timeout or a refused schema name, before anything
    /// is opened. [`ErrorKind::Store`](latch::ErrorKind::Store) when PostgreSQL
    /// cannot be reached or a migration fails, or when the database's schema is
    /// newer than this build knows.
    ///
    /// # Example
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = latch_postgres::PostgresStore::builder("postgres://app@localhost/app")
    ///     .connect()
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(self) -> Result<PostgresStore> {
        self.check()?;
        let prepared = self.pg_config()?;
        let mode = prepared.mode;
        let pool = self.pool(prepared)?;
        let sql = Sql::new(self.schema.as_deref());
        let mut client = pool.get().await.map_err(|e| tls::connect_error(mode, e))?;
        migrate::run(&mut client, &sql).await?;
        Ok(PostgresStore::new(pool, sql))
    }

    fn check(&self) -> Result<()> {
        if self.pool_size == 0 {
            return Err(Error::invalid_config(
                "the PostgreSQL pool size must be at least 1",
            ));
        }
        if self.wait_timeout.is_zero() || self.connect_timeout.is_some_and(|t| t.is_zero()) {
            return Err(Error::invalid_config(
                "PostgreSQL timeouts must be above zero",
            ));
        }
        self.schema.as_deref().map_or(Ok(()), check_schema)
    }

    /// The driver's settings: the URL, TLS, and the timeouts that keep a dead
    /// server from hanging requests.
    fn pg_config(&self) -> Result<Prepared> {
        let mut prepared = tls::prepare(&self.url, &self.tls)?;
        let config = &mut prepared.config;
        let timeout = self
            .connect_timeout
            .or(config.get_connect_timeout().copied())
            .unwrap_or(DEFAULT_TIMEOUT);
        config.connect_timeout(timeout);
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(TCP_USER_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("latch");
        }
        Ok(prepared)
    }

    fn pool(&self, prepared: Prepared) -> Result<Pool> {
        let Prepared {
            config, connector, ..
        } = prepared;
        let create_timeout = config.get_connect_timeout().copied();
        // `Fast` recycling checks only that the connection is still open, which a
        // server restart or crash closes; a test query per checkout would double
        // the round trips of every session call.
        let manager = Manager::from_config(
            config,
            connector,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        Pool::builder(manager)
            .max_size(self.pool_size)
            .wait_timeout(Some(self.wait_timeout))
            .create_timeout(create_timeout)
            .recycle_timeout(create_timeout)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| Error::store("building the PostgreSQL connection pool", e))
    }
}

impl fmt::Debug for PostgresStoreBuilder {
    // The URL may carry a password: leave it out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStoreBuilder")
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("wait_timeout", &self.wait_timeout)
            .field("schema", &self.schema)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder() -> PostgresStoreBuilder {
        PostgresStoreBuilder::new("postgres://app:hunter2@db.invalid:5432/app")
    }

    #[test]
    fn defaults_pass_the_checks() {
        assert!(builder().check().is_ok());
    }

    #[test]
    fn zero_pool_and_zero_timeouts_are_refused() {
        for b in [
            builder().pool_size(0),
            builder().connect_timeout(Duration::ZERO),
            builder().wait_timeout(Duration::ZERO),
            builder().schema("Bad-Name"),
        ] {
            let err = b.check().unwrap_err();
            assert_eq!(err.kind(), &latch::ErrorKind::InvalidConfig, "{b:?}");
        }
    }

    #[test]
    fn timeouts_default_to_two_seconds_and_url_values_are_kept() {
        let config = builder().pg_config().unwrap().config;
        assert_eq!(config.get_connect_timeout(), Some(&DEFAULT_TIMEOUT));
        assert_eq!(config.get_tcp_user_timeout(), Some(&TCP_USER_TIMEOUT));
        assert_eq!(config.get_application_name(), Some("latch"));
        let from_url = PostgresStoreBuilder::new("postgres://app@db.invalid/app?connect_timeout=7")
            .pg_config()
            .unwrap()
            .config;
        assert_eq!(
            from_url.get_connect_timeout(),
            Some(&Duration::from_secs(7))
        );
        let explicit = builder()
            .connect_timeout(Duration::from_millis(300))
            .pg_config()
            .unwrap()
            .config;
        assert_eq!(
            explicit.get_connect_timeout(),
            Some(&Duration::from_millis(300))
        );
    }

    #[test]
    fn bad_url_is_invalid_config_without_the_password() {
        let err = PostgresStoreBuilder::new("postgres://app:hunter2@db.invalid:notaport/app")
            .pg_config()
            .err()
            .expect("refused");
        assert_eq!(err.kind(), &latch::ErrorKind::InvalidConfig);
        assert_eq!(err.to_string(), "invalid PostgreSQL URL");
        let chain = format!("{err:?}");
        assert!(chain.starts_with("invalid PostgreSQL URL: "), "{chain}");
        assert!(!chain.contains("hunter2"), "{chain}");
    }

    #[test]
    fn ssl_mode_defaults_to_verify_full_off_the_machine_and_disable_on_it() {
        let mode = |url: &str| PostgresStoreBuilder::new(url).pg_config().map(|p| p.mode);
        assert_eq!(
            mode("postgres://app@db.example/app").unwrap(),
            SslMode::VerifyFull
        );
        assert_eq!(
            mode("postgres://app@10.0.0.5/app").unwrap(),
            SslMode::VerifyFull
        );
        assert_eq!(
            mode("postgres://app@127.0.0.1/app").unwrap(),
            SslMode::Disable
        );
        assert_eq!(
            mode("postgres://app@localhost/app").unwrap(),
            SslMode::Disable
        );
        assert_eq!(mode("postgres://app@[::1]/app").unwrap(), SslMode::Disable);
        assert_eq!(
            mode("host=/run/postgresql user=app").unwrap(),
            SslMode::Disable
        );
        // What the URL or the builder says wins.
        assert_eq!(
            mode("postgres://app@localhost/app?sslmode=verify-ca").unwrap(),
            SslMode::VerifyCa
        );
        assert_eq!(
            mode("host=db.example user=app sslmode=require").unwrap(),
            SslMode::Require
        );
        let built = PostgresStoreBuilder::new("postgres://app@db.example/app?sslmode=require")
            .ssl_mode(SslMode::Disable)
            .pg_config()
            .map(|p| p.mode)
            .unwrap();
        assert_eq!(built, SslMode::Disable);
    }

    #[test]
    fn bad_tls_settings_are_refused_with_the_fix() {
        let refused = |b: PostgresStoreBuilder| {
            let err = b.pg_config().err().expect("refused");
            assert_eq!(err.kind(), &latch::ErrorKind::InvalidConfig, "{err:?}");
            err.to_string()
        };
        let msg = refused(PostgresStoreBuilder::new(
            "postgres://a@db.example/a?sslmode=maybe",
        ));
        assert!(msg.contains("verify-full"), "{msg}");
        let msg = refused(PostgresStoreBuilder::new(
            "postgres://a@db.example/a?sslcert=/tmp/c.pem",
        ));
        assert!(msg.contains("sslkey"), "{msg}");
        let msg = refused(PostgresStoreBuilder::new(
            "postgres://a@127.0.0.1/a?sslrootcert=/tmp/ca.pem",
        ));
        assert!(msg.contains("sslmode=verify-full"), "{msg}");
        let msg = refused(PostgresStoreBuilder::new(
            "postgres://a@db.example/a?sslrootcert=/nonexistent/latch-ca.pem",
        ));
        assert!(msg.contains("/nonexistent/latch-ca.pem"), "{msg}");
    }

    #[test]
    fn debug_leaves_the_url_out() {
        let text = format!("{:?}", builder());
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("pool_size: 16"), "{text}");
    }
}
