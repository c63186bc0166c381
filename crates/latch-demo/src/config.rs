//! Command-line flags and environment variables, checked before anything starts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;

use crate::listener::ConnLimits;

/// The latch demo site.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "latch-demo",
    version,
    about = "The latch demo site: sign up, sign in, see and revoke your devices.",
    after_help = "The secret key comes from LATCH_SECRET_KEY; without it a strong key is generated \
                  on first start and kept (mode 0600) beside the database.\n\n\
                  Examples:\n  latch-demo\n  latch-demo --store memory --listen 127.0.0.1:3000\n  \
                  latch-demo --store redis://127.0.0.1:6379/ --idle-timeout 900"
)]
pub struct Args {
    /// Address to serve on.
    #[arg(long, env = "LATCH_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Where sessions live: `sqlite[:PATH]`, `memory`, `redis://...`, `postgres://...`,
    /// `cookie-signed` or `cookie-encrypted`. `memory` holds at most 100,000
    /// sessions, for trying things out: a client with a thousand addresses can
    /// fill it, and new sessions then get 503 until the idle timeout ends them.
    #[arg(long, env = "LATCH_STORE", default_value = "sqlite")]
    pub store: String,

    /// Folder for the database, the users and the generated key (unless the
    /// store names its own SQLite file).
    #[arg(long, env = "LATCH_DATA_DIR", default_value = "latch-demo-data")]
    pub data_dir: PathBuf,

    /// Idle timeout of ordinary sessions (signed in without "remember me", and
    /// anonymous ones), in seconds: unused this long, a session ends.
    #[arg(long, env = "LATCH_IDLE_TIMEOUT", default_value_t = 1800)]
    pub idle_timeout: u64,

    /// Absolute timeout of ordinary sessions, in seconds: however active, a
    /// session ends this long after it began.
    #[arg(long, env = "LATCH_ABSOLUTE_TIMEOUT", default_value_t = 43_200)]
    pub absolute_timeout: u64,

    /// Idle timeout of "remember me" sessions, in seconds (default 7 days).
    #[arg(long, env = "LATCH_REMEMBER_IDLE_TIMEOUT", default_value_t = 7 * 86_400)]
    pub remember_idle_timeout: u64,

    /// Absolute timeout of "remember me" sessions, in seconds (default 30 days,
    /// at most 400 days).
    #[arg(long, env = "LATCH_REMEMBER_ABSOLUTE_TIMEOUT", default_value_t = 30 * 86_400)]
    pub remember_absolute_timeout: u64,

    /// How long a store call may take before the request gets a 503, in ms.
    #[arg(long, env = "LATCH_STORE_TIMEOUT_MS", default_value_t = 2000)]
    pub store_timeout_ms: u64,

    /// Plain-http development mode: cookies without Secure and without the
    /// __Host- prefix. Not needed for http://localhost, which browsers treat as
    /// secure.
    #[arg(long, env = "LATCH_INSECURE_DEV_MODE")]
    pub insecure_dev_mode: bool,

    /// A host name browsers use to reach the demo (repeat for several);
    /// requests for any other `Host` get 421, so a page on another name
    /// that resolves to this server (DNS rebinding) cannot use it. Default:
    /// `localhost`, `127.0.0.1` and `[::1]` when listening on loopback, any
    /// host otherwise.
    #[arg(
        long = "allowed-host",
        env = "LATCH_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,

    /// Browsers reach the demo over https, through a TLS-terminating proxy:
    /// state-changing requests must then come from an https page of this
    /// host (without it, from an http one).
    #[arg(long, env = "LATCH_BEHIND_TLS_PROXY")]
    pub behind_tls_proxy: bool,

    /// The address (or CIDR range) of a reverse proxy in front of the demo
    /// (repeat for several): its `X-Forwarded-For` names the client for
    /// throttling and the devices list. From any other peer the header is
    /// ignored. The per-client connection limit still counts the proxy.
    #[arg(
        long = "trusted-proxy",
        env = "LATCH_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<String>,

    /// Keep sessions encrypted in their store (data, user, browser and
    /// address sealed with a key derived from the secret key), so a dump of
    /// the database or of Redis shows none of them. Sessions stored before
    /// it was turned on end.
    #[arg(long, env = "LATCH_ENCRYPT_AT_REST")]
    pub encrypt_at_rest: bool,

    /// With a single Redis server (`redis://` or `rediss://`): keep sessions
    /// read or saved by this process in memory, kept correct by Redis's
    /// invalidations (RESP3 client tracking), so most requests need no
    /// round trip to read their session.
    #[arg(long, env = "LATCH_REDIS_READ_CACHE")]
    pub redis_read_cache: bool,

    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "LATCH_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "LATCH_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Serve HTTPS with a self-signed certificate for localhost made at
    /// start-up (development: to watch device-bound sessions work in
    /// Chromium, whose flags for it are printed).
    #[arg(long, env = "LATCH_TLS_SELF_SIGNED", conflicts_with_all = ["tls_cert", "tls_key"])]
    pub tls_self_signed: bool,

    /// Lifetime of the DBSC bound cookie, in seconds: how long a copied
    /// session keeps working off the device that signed in. Device-bound
    /// sessions are on for server-side stores.
    #[arg(long, env = "LATCH_BOUND_COOKIE_LIFETIME", default_value_t = 600)]
    pub bound_cookie_lifetime: u64,

    /// Turn device-bound sessions (DBSC) off.
    #[arg(long, env = "LATCH_NO_DEVICE_BINDING")]
    pub no_device_binding: bool,

    /// Tokio worker threads (default: one per core).
    #[arg(long, env = "LATCH_WORKER_THREADS")]
    pub worker_threads: Option<usize>,

    /// Seconds a client has to send a complete request head before its
    /// connection is closed (also between requests on a kept-alive one).
    #[arg(long, env = "LATCH_HEADER_TIMEOUT", default_value_t = 10)]
    pub header_timeout: u64,

    /// Seconds a client has to send a whole request body, from the start of
    /// the request.
    #[arg(long, env = "LATCH_BODY_TIMEOUT", default_value_t = 30)]
    pub body_timeout: u64,

    /// Connections open at once (default: what the open-files limit allows,
    /// less 64, at most 1024).
    #[arg(long, env = "LATCH_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// New sessions one client address (an IPv6 /64) may make by writing
    /// without a session cookie, per 5 minutes.
    #[arg(long, env = "LATCH_NEW_SESSIONS_PER_CLIENT", default_value_t = crate::limits::NEW_SESSIONS_PER_CLIENT)]
    pub new_sessions_per_client: u32,

    /// Connections open at once from one client address (an IPv6 /64).
    /// Raise it behind a reverse proxy, where every connection comes from the
    /// proxy.
    #[arg(long, env = "LATCH_MAX_CONNECTIONS_PER_CLIENT", default_value_t = 64)]
    pub max_connections_per_client: usize,

    /// Sign-ups and sign-ins that may wait at once for a password hash
    /// (default: 256 per core). Each holds its request open; past it, a
    /// client with fewer waiting (or fewer recent hashes) takes the place of
    /// one with more, or gets a 503.
    #[arg(long, env = "LATCH_HASH_QUEUE")]
    pub hash_queue: Option<usize>,
}

/// Where sessions are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSpec {
    /// The embedded SQLite store in this file.
    Sqlite(PathBuf),
    /// The in-memory store (lost on restart).
    Memory,
    /// A Redis server.
    Redis(String),
    /// A PostgreSQL server.
    Postgres(String),
    /// Signed cookies.
    CookieSigned,
    /// Encrypted cookies.
    CookieEncrypted,
}

impl StoreSpec {
    /// Parse `--store`, relative to the data folder.
    ///
    /// # Errors
    /// An unknown form, with the list of known ones.
    pub fn parse(text: &str, data_dir: &Path) -> anyhow::Result<Self> {
        Ok(match text {
            "sqlite" => StoreSpec::Sqlite(data_dir.join("latch-demo.db")),
            "memory" => StoreSpec::Memory,
            "cookie-signed" => StoreSpec::CookieSigned,
            "cookie-encrypted" => StoreSpec::CookieEncrypted,
            _ if text.starts_with("sqlite:") && text.len() > "sqlite:".len() => {
                StoreSpec::Sqlite(PathBuf::from(&text["sqlite:".len()..]))
            }
            _ if [
                "redis://",
                "rediss://",
                "redis+sentinel://",
                "rediss+sentinel://",
            ]
            .iter()
            .any(|scheme| text.starts_with(scheme)) =>
            {
                StoreSpec::Redis(text.to_owned())
            }
            _ if text.starts_with("postgres://") || text.starts_with("postgresql://") => {
                StoreSpec::Postgres(text.to_owned())
            }
            _ => bail!(
                "--store {text:?} is not a store latch-demo knows; use one of: sqlite, \
                 sqlite:PATH, memory, redis[s]://HOST:PORT/, \
                 redis[s]+sentinel://HOST:PORT,HOST:PORT/MASTER, postgres://USER@HOST/DB, \
                 cookie-signed, cookie-encrypted"
            ),
        })
    }

    /// The SQLite file that holds users (and sessions, for the SQLite store);
    /// `None` when users live in PostgreSQL.
    pub fn users_db(&self, data_dir: &Path) -> Option<PathBuf> {
        match self {
            StoreSpec::Sqlite(path) => Some(path.clone()),
            StoreSpec::Postgres(_) => None,
            _ => Some(data_dir.join("latch-demo.db")),
        }
    }

    /// Where a generated key is kept: beside the database.
    pub fn key_file(&self, data_dir: &Path) -> PathBuf {
        match self {
            StoreSpec::Sqlite(path) => path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .join("latch-demo.key"),
            _ => data_dir.join("latch-demo.key"),
        }
    }
}

/// Everything the app needs, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to serve on.
    pub listen: SocketAddr,
    /// Where sessions live.
    pub store: StoreSpec,
    /// Folder for generated files.
    pub data_dir: PathBuf,
    /// Idle timeout.
    pub idle: Duration,
    /// Absolute timeout.
    pub absolute: Duration,
    /// Idle timeout of remember-me sessions.
    pub remember_idle: Duration,
    /// Absolute timeout of remember-me sessions.
    pub remember_absolute: Duration,
    /// Connection bounds.
    pub conn_limits: ConnLimits,
    /// New sessions per client address per 5 minutes.
    pub new_sessions_per_client: u32,
    /// Jobs that may wait for a password hash, if not the default.
    pub hash_queue: Option<usize>,
    /// Store call timeout.
    pub store_timeout: Duration,
    /// Plain-http development mode.
    pub insecure_dev_mode: bool,
    /// Browsers reach the demo over https through a proxy.
    pub behind_tls_proxy: bool,
    /// Reverse proxies believed about the client's address.
    pub trusted_proxies: latch_axum::TrustedProxies,
    /// Sessions encrypted in their store.
    pub encrypt_at_rest: bool,
    /// The Redis store's local read cache.
    pub redis_read_cache: bool,
    /// The `Host` names served (empty: any).
    pub allowed_hosts: Vec<String>,
    /// Serve HTTPS from this certificate.
    pub tls: Option<crate::tls::TlsSource>,
    /// Device-bound sessions with this bound-cookie lifetime, or off.
    pub device_binding: Option<Duration>,
}

impl Settings {
    /// Check the flags.
    ///
    /// # Errors
    /// Bad store spec or timeouts, each with how to fix it.
    pub fn from_args(args: &Args) -> anyhow::Result<Self> {
        let store = StoreSpec::parse(&args.store, &args.data_dir)?;
        if [
            args.idle_timeout,
            args.absolute_timeout,
            args.remember_idle_timeout,
            args.remember_absolute_timeout,
        ]
        .contains(&0)
        {
            bail!(
                "--idle-timeout, --absolute-timeout, --remember-idle-timeout and \
                 --remember-absolute-timeout must each be at least 1 second"
            );
        }
        let limit = 3600;
        if ![args.header_timeout, args.body_timeout]
            .iter()
            .all(|t| (1..=limit).contains(t))
        {
            bail!(
                "--header-timeout and --body-timeout must be between 1 and {limit} seconds \
                 (they bound how long a slow client may hold a connection)"
            );
        }
        if args.max_connections == Some(0)
            || args.max_connections_per_client == 0
            || args.new_sessions_per_client == 0
            || args.hash_queue == Some(0)
        {
            bail!(
                "--max-connections, --max-connections-per-client, --new-sessions-per-client \
                 and --hash-queue must be at least 1"
            );
        }
        let defaults = ConnLimits::default();
        let conn_limits = ConnLimits {
            header_timeout: Duration::from_secs(args.header_timeout),
            body_timeout: Duration::from_secs(args.body_timeout),
            max_connections: args.max_connections.unwrap_or(defaults.max_connections),
            max_per_client: args.max_connections_per_client,
        };
        if args.bound_cookie_lifetime == 0 || args.bound_cookie_lifetime > 86_400 {
            bail!("--bound-cookie-lifetime must be between 1 and 86400 seconds");
        }
        let tls = match (&args.tls_cert, &args.tls_key, args.tls_self_signed) {
            (Some(cert), Some(key), _) => Some(crate::tls::TlsSource::Files {
                cert: cert.clone(),
                key: key.clone(),
            }),
            (None, None, true) => Some(crate::tls::TlsSource::SelfSigned),
            _ => None,
        };
        if args.store_timeout_ms == 0 {
            bail!("--store-timeout-ms must be at least 1");
        }
        if args.redis_read_cache && !matches!(&store, StoreSpec::Redis(_)) {
            bail!(
                "--redis-read-cache needs --store redis://HOST:PORT/ (one Redis server); \
                 leave it off for other stores"
            );
        }
        Ok(Self {
            listen: args.listen,
            store,
            data_dir: args.data_dir.clone(),
            idle: Duration::from_secs(args.idle_timeout),
            absolute: Duration::from_secs(args.absolute_timeout),
            remember_idle: Duration::from_secs(args.remember_idle_timeout),
            remember_absolute: Duration::from_secs(args.remember_absolute_timeout),
            conn_limits,
            new_sessions_per_client: args.new_sessions_per_client,
            hash_queue: args.hash_queue,
            store_timeout: Duration::from_millis(args.store_timeout_ms),
            insecure_dev_mode: args.insecure_dev_mode,
            behind_tls_proxy: args.behind_tls_proxy,
            encrypt_at_rest: args.encrypt_at_rest,
            redis_read_cache: args.redis_read_cache,
            trusted_proxies: latch_axum::TrustedProxies::new(&args.trusted_proxies)
                .map_err(|e| anyhow::anyhow!("--trusted-proxy: {e}"))?,
            tls,
            device_binding: (!args.no_device_binding)
                .then(|| Duration::from_secs(args.bound_cookie_lifetime)),
            allowed_hosts: if args.allowed_hosts.is_empty() && args.listen.ip().is_loopback() {
                ["localhost", "127.0.0.1", "[::1]"]
                    .map(String::from)
                    .to_vec()
            } else {
                args.allowed_hosts.clone()
            },
        })
    }

    /// The scheme browsers use to reach the demo.
    pub fn public_scheme(&self) -> &'static str {
        if self.behind_tls_proxy || self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// Where the users live.
    pub fn users_db(&self) -> Option<PathBuf> {
        self.store.users_db(&self.data_dir)
    }

    /// Where a generated key is kept.
    pub fn key_file(&self) -> PathBuf {
        self.store.key_file(&self.data_dir)
    }
}

/// Make sure the folder holding `path` exists; folders it creates are
/// readable by their owner only (they hold the key and the password hashes).
/// An existing folder keeps its permissions.
///
/// # Errors
/// When it cannot be created.
pub fn ensure_parent(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .with_context(|| format!("creating the folder {}", parent.display()))?;
    }
    Ok(())
}

/// Create the file at `path` readable by its owner only, if it does not exist
/// yet (SQLite then creates its WAL and shared-memory files with the same
/// permissions).
///
/// # Errors
/// When it cannot be created.
pub fn create_owner_only(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    ensure_parent(path)?;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_specs_parse() {
        let dir = Path::new("d");
        assert_eq!(
            StoreSpec::parse("sqlite", dir).unwrap(),
            StoreSpec::Sqlite("d/latch-demo.db".into())
        );
        assert_eq!(
            StoreSpec::parse("sqlite:/x/y.db", dir).unwrap(),
            StoreSpec::Sqlite("/x/y.db".into())
        );
        assert_eq!(StoreSpec::parse("memory", dir).unwrap(), StoreSpec::Memory);
        assert!(matches!(
            StoreSpec::parse("redis://h:1/", dir).unwrap(),
            StoreSpec::Redis(_)
        ));
        assert!(matches!(
            StoreSpec::parse("rediss+sentinel://s1,s2/mymaster", dir).unwrap(),
            StoreSpec::Redis(_)
        ));
        assert!(matches!(
            StoreSpec::parse("postgresql://u@h/db", dir).unwrap(),
            StoreSpec::Postgres(_)
        ));
        let err = StoreSpec::parse("mysql://x", dir).unwrap_err().to_string();
        assert!(err.contains("use one of: sqlite"), "{err}");
    }

    #[test]
    fn key_file_sits_beside_the_database() {
        let dir = Path::new("d");
        assert_eq!(
            StoreSpec::Sqlite("/a/b.db".into()).key_file(dir),
            Path::new("/a/latch-demo.key")
        );
        assert_eq!(
            StoreSpec::Sqlite("b.db".into()).key_file(dir),
            Path::new("./latch-demo.key")
        );
        assert_eq!(
            StoreSpec::Memory.key_file(dir),
            Path::new("d/latch-demo.key")
        );
    }

    #[test]
    fn remember_me_has_its_own_timeouts_and_help_says_what_each_governs() {
        let args = Args::try_parse_from([
            "latch-demo",
            "--absolute-timeout",
            "6",
            "--remember-idle-timeout",
            "5",
            "--remember-absolute-timeout",
            "8",
        ])
        .unwrap();
        let settings = Settings::from_args(&args).unwrap();
        assert_eq!(settings.absolute, Duration::from_secs(6));
        assert_eq!(settings.remember_idle, Duration::from_secs(5));
        assert_eq!(settings.remember_absolute, Duration::from_secs(8));
        let help = <Args as clap::CommandFactory>::command()
            .render_long_help()
            .to_string();
        for phrase in [
            "Idle timeout of ordinary sessions",
            "Absolute timeout of \"remember me\" sessions",
            "--max-connections-per-client",
            "--header-timeout",
        ] {
            assert!(help.contains(phrase), "{phrase} missing from --help");
        }
        let zero = Args::try_parse_from(["latch-demo", "--remember-idle-timeout", "0"]).unwrap();
        assert!(Settings::from_args(&zero).is_err());
    }

    #[test]
    fn client_timeouts_are_bounded() {
        // Found by the black-box attack: a body timeout of u64::MAX was
        // taken, and every other timeout flag is range-checked.
        for (flag, value, ok) in [
            ("--body-timeout", "18446744073709551615", false),
            ("--header-timeout", "3601", false),
            ("--body-timeout", "0", false),
            ("--header-timeout", "3600", true),
            ("--body-timeout", "1", true),
        ] {
            let args = Args::try_parse_from(["latch-demo", flag, value]).unwrap();
            match Settings::from_args(&args) {
                Ok(_) => assert!(ok, "{flag} {value} was taken"),
                Err(err) => {
                    assert!(!ok, "{flag} {value} was refused: {err}");
                    assert!(err.to_string().contains("between 1 and 3600"), "{err}");
                }
            }
        }
    }

    #[test]
    fn the_redis_read_cache_needs_a_redis_store() {
        let args = Args::try_parse_from(["latch-demo", "--redis-read-cache"]).unwrap();
        let err = Settings::from_args(&args).unwrap_err().to_string();
        assert!(err.contains("--store redis://"), "{err}");
        let args = Args::try_parse_from([
            "latch-demo",
            "--store",
            "redis://127.0.0.1:6379/",
            "--redis-read-cache",
        ])
        .unwrap();
        assert!(Settings::from_args(&args).unwrap().redis_read_cache);
    }

    #[test]
    fn trusted_proxies_are_checked_at_start_up() {
        let args =
            Args::try_parse_from(["latch-demo", "--trusted-proxy", "10.0.0.0/8,::1"]).unwrap();
        assert!(Settings::from_args(&args).is_ok());
        let bad = Args::try_parse_from(["latch-demo", "--trusted-proxy", "proxy.local"]).unwrap();
        let err = Settings::from_args(&bad).unwrap_err().to_string();
        assert!(
            err.contains("--trusted-proxy") && err.contains("proxy.local"),
            "{err}"
        );
    }
}
