//! Building the whole app from settings, and serving it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use latch::codec::Aead;
use latch::dbsc::DeviceBinding;
use latch::{CookieConfig, Expiry, Keyring, MemoryStore, SessionManager, SessionStore};
use latch_sqlite::SqliteStore;

use crate::app::AppState;
use crate::config::{Settings, StoreSpec, ensure_parent};
use crate::known_browsers::KnownBrowsers;
use crate::limits::Limits;
use crate::users::Users;

/// The most sessions `--store memory` holds.
const MEMORY_STORE_SESSIONS: usize = 100_000;

/// The most sessions `--store sqlite` holds: about 150 MB of disk at the
/// usual session size, 4.6 GB at the largest a client can make (a 1 KB
/// scratch value and an 8 KB `User-Agent`, black-box attack of the
/// sixteenth round). A backstop behind the per-client limits: a flood from
/// ever new addresses that gets past them is answered 503 rather than
/// filling the disk that also holds the accounts.
const SQLITE_STORE_SESSIONS: u64 = 1_000_000;

/// How full each store may get with sessions nobody is signed in to: the
/// rest of its room is kept for sign-ins, which create their session under
/// a new ID. Without it a flood of anonymous sessions (5,000 a second from
/// fake addresses, black-box attack of the sixteenth round) filled the
/// store and then every sign-in got a 503.
const ANONYMOUS_SHARE_PERCENT: u64 = 80;

/// `limit`'s share for anonymous sessions.
const fn anonymous_share(limit: u64) -> u64 {
    limit / 100 * ANONYMOUS_SHARE_PERCENT
}

/// The most throttling counters `--store memory` holds, in a store of their
/// own: counters in the sessions' store could fill it, and then nobody got a
/// session (one outsider did that with sign-in attempts from ever new
/// addresses). Full, it refuses what it counts (sign-ins, sign-ups, new
/// sessions: 503, failing closed); sessions already made carry on.
const MEMORY_STORE_COUNTERS: usize = 100_000;

/// The most throttling counters `--store sqlite` holds, in a file of their
/// own beside the sessions' (see `MEMORY_STORE_COUNTERS`).
const SQLITE_STORE_COUNTERS: u64 = 100_000;

/// The file of `--store sqlite`'s throttling counters, in the sessions'
/// folder.
const SQLITE_COUNTERS_FILE: &str = "latch-demo-counters.db";

/// The store behind `spec`, for server-side kinds.
async fn open_store(settings: &Settings) -> anyhow::Result<Option<Arc<dyn SessionStore>>> {
    Ok(Some(match &settings.store {
        StoreSpec::Sqlite(path) => {
            ensure_parent(path)?;
            Arc::new(
                SqliteStore::builder(path)
                    .max_sessions(SQLITE_STORE_SESSIONS)
                    .max_anonymous_sessions(anonymous_share(SQLITE_STORE_SESSIONS))
                    .open()?,
            )
        }
        // Bounded, so an anonymous flood gets 503s rather than the process
        // running out of memory (about 1 KiB to 64 KiB a session).
        StoreSpec::Memory => Arc::new(
            MemoryStore::with_max_sessions(MEMORY_STORE_SESSIONS)
                .max_anonymous_sessions(anonymous_share(MEMORY_STORE_SESSIONS as u64) as usize),
        ),
        StoreSpec::Redis(url) if settings.redis_read_cache => Arc::new(
            latch_redis::RedisStore::builder(url)
                .read_cache(latch_redis::ReadCache::default())
                .connect()
                .await?,
        ),
        StoreSpec::Redis(url) => Arc::new(latch_redis::RedisStore::connect(url).await?),
        StoreSpec::Postgres(url) => Arc::new(latch_postgres::PostgresStore::connect(url).await?),
        StoreSpec::CookieSigned | StoreSpec::CookieEncrypted => return Ok(None),
    }))
}

/// The session manager for `settings`.
///
/// # Errors
/// A weak key, an unsafe configuration, or a store that cannot be opened,
/// each with how to fix it.
pub async fn manager(settings: &Settings) -> anyhow::Result<SessionManager> {
    Ok(manager_and_counters(settings).await?.0)
}

/// The session manager for `settings`, and the store that keeps the demo's
/// own counters (sign-in throttling): the session store, or for cookie
/// sessions the SQLite file that holds their revocation markers.
async fn manager_and_counters(
    settings: &Settings,
) -> anyhow::Result<(SessionManager, Arc<dyn SessionStore>, Keyring)> {
    let shortest_idle = settings.idle.min(settings.remember_idle);
    let expiry = Expiry::default()
        .idle(settings.idle)
        .absolute(settings.absolute)
        .remember_idle(settings.remember_idle)
        .remember_absolute(settings.remember_absolute)
        .touch_interval(
            Duration::from_secs(60)
                .min(shortest_idle / 10)
                .max(Duration::from_secs(1)),
        );
    let cookie = if settings.insecure_dev_mode {
        CookieConfig::insecure_dev_mode()
    } else {
        CookieConfig::default()
    };
    let builder = SessionManager::builder()
        .cookie(cookie)
        .expiry(expiry)
        .store_timeout(settings.store_timeout);
    // Loaded (and checked) whatever the store, so a weak key is refused at
    // start-up and switching to cookie sessions keeps the same key.
    let keys = Keyring::new(crate::keys::load_or_generate(&settings.key_file())?);
    let (builder, counters) = match open_store(settings).await? {
        // The devices page lists and ends a user's sessions.
        // Keys: forms shown before sign-in keep their CSRF secret in a
        // signed cookie instead of a stored session per visitor.
        Some(store) => {
            let builder = builder
                .shared_store(Arc::clone(&store))
                .require_user_index()
                .keys(keys.clone());
            let builder = if settings.encrypt_at_rest {
                builder.encrypt_at_rest(keys.clone())
            } else {
                builder
            };
            // A copied session cookie stops working off the device that
            // signed in (DBSC; browsers without it are unaffected).
            let builder = match settings.device_binding {
                Some(lifetime) => {
                    builder.device_bound(DeviceBinding::default().bound_cookie_lifetime(lifetime))
                }
                None => builder,
            };
            let counters: Arc<dyn SessionStore> = match &settings.store {
                StoreSpec::Memory => {
                    Arc::new(MemoryStore::with_max_sessions(MEMORY_STORE_COUNTERS))
                }
                // Apart too: counters are sessions without a user, and in the
                // sessions' table they would count against the anonymous
                // share, so a flood that filled it left no room to count a
                // sign-in attempt. Shared by instances that share the folder.
                StoreSpec::Sqlite(path) => Arc::new(
                    SqliteStore::builder(path.with_file_name(SQLITE_COUNTERS_FILE))
                        .max_sessions(SQLITE_STORE_COUNTERS)
                        .open()?,
                ),
                _ => store,
            };
            (builder, counters)
        }
        None if settings.encrypt_at_rest => anyhow::bail!(
            "--encrypt-at-rest applies to server-side stores (sqlite, memory, redis, postgres); \
             cookie-encrypted sessions are encrypted already"
        ),
        None => {
            // Markers that make cookie sessions revocable (logout, devices)
            // live in the demo's SQLite file.
            let users_db = settings
                .users_db()
                .context("cookie sessions need a data folder")?;
            ensure_parent(&users_db)?;
            let markers: Arc<dyn SessionStore> = Arc::new(SqliteStore::open(&users_db)?);
            let builder = builder.revocation_store(Arc::clone(&markers));
            let builder = if settings.store == StoreSpec::CookieSigned {
                builder.signed_cookies(keys.clone())
            } else {
                builder.encrypted_cookies(keys.clone(), Aead::default())
            };
            (builder, markers)
        }
    };
    let manager = builder.build().context("session configuration refused")?;
    Ok((manager, counters, keys))
}

/// The users table for `settings`.
///
/// # Errors
/// When the database cannot be opened.
pub async fn users(settings: &Settings) -> anyhow::Result<Users> {
    let users = match (&settings.store, settings.users_db()) {
        (StoreSpec::Postgres(url), _) => Users::open_postgres(url).await?,
        (_, Some(path)) => Users::open(&path)?,
        (_, None) => anyhow::bail!("no place for users: give --store sqlite or postgres://..."),
    };
    match settings.hash_queue {
        Some(jobs) => users.with_hash_queue(jobs),
        None => Ok(users),
    }
}

/// The router for `settings`, plus the purge tasks that must live as long.
///
/// # Errors
/// As [`manager`] and [`users`].
pub async fn app(settings: &Settings) -> anyhow::Result<(Router, Vec<latch::PurgeTask>)> {
    let (manager, counters, keys) = manager_and_counters(settings).await?;
    let users = users(settings).await?;
    let limits = Limits::new(Arc::clone(&counters), settings.new_sessions_per_client)?;
    // Server-side sessions, or the revocation markers of cookie sessions (and
    // expired throttling counters, where they live beside them).
    let every = Duration::from_secs(60);
    let mut purgers = vec![manager.spawn_purger(every, 1000)];
    if matches!(settings.store, StoreSpec::Memory | StoreSpec::Sqlite(_)) {
        // The counters have a store of their own.
        let counters = latch::SessionManager::builder()
            .shared_store(counters)
            .build()?;
        purgers.push(counters.spawn_purger(every, 1000));
    }
    let known_browsers = KnownBrowsers::new(&keys, !settings.insecure_dev_mode)?;
    let state = AppState {
        users,
        manager,
        limits,
        known_browsers,
        scheme: settings.public_scheme(),
        proxies: settings.trusted_proxies.clone(),
    };
    let mut router = crate::app::router_with(state);
    if settings.public_scheme() == "https" {
        router = router.layer(axum::middleware::map_response(hsts));
    }
    if settings.allowed_hosts.is_empty() {
        tracing::warn!(
            "serving every Host name: pass --allowed-host with the site's name so that \
             pages on other names that resolve here (DNS rebinding) cannot use it"
        );
    }
    Ok((
        crate::app::only_for_hosts(router, settings.allowed_hosts.clone()),
        purgers,
    ))
}

/// Browsers reach the site over HTTPS only, from now on for a year
/// (`Strict-Transport-Security`), unless the handler set its own.
async fn hsts(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    if !headers.contains_key(http::header::STRICT_TRANSPORT_SECURITY) {
        headers.insert(
            http::header::STRICT_TRANSPORT_SECURITY,
            http::HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// Serve until Ctrl-C or SIGTERM.
///
/// # Errors
/// When the address cannot be bound, or as [`app`].
pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let (router, _purger) = app(&settings).await?;
    let tls = settings
        .tls
        .as_ref()
        .map(crate::tls::Tls::load)
        .transpose()?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("binding {}", settings.listen))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let shown = if bound.ip().is_loopback() {
        format!("{scheme}://localhost:{}", bound.port())
    } else {
        format!("{scheme}://{bound}")
    };
    println!(
        "latch-demo: serving {shown} (store: {})",
        describe(&settings.store)
    );
    if let Some(spki) = tls.as_ref().and_then(|t| t.spki_sha256.as_deref()) {
        println!(
            "latch-demo: self-signed certificate; to watch device-bound sessions, start \
             Chromium with: {}",
            crate::tls::chromium_flags(spki)
        );
    }
    let tls = tls.map(|t| t.config);
    crate::listener::serve(listener, router, settings.conn_limits, tls, shutdown())
        .await
        .context("serving")
}

fn describe(spec: &StoreSpec) -> String {
    match spec {
        StoreSpec::Sqlite(path) => format!("sqlite:{}", path.display()),
        StoreSpec::Memory => "memory".into(),
        StoreSpec::Redis(_) => "redis".into(),
        StoreSpec::Postgres(_) => "postgres".into(),
        StoreSpec::CookieSigned => "cookie-signed".into(),
        StoreSpec::CookieEncrypted => "cookie-encrypted".into(),
    }
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// The whole `latch-demo` program: parse the flags, set up logging, serve, and
/// exit 1 with the error chain on failure. Both the `latch-demo` binary and the
/// fault-injection crate's copy of it are this one call.
pub fn main() {
    use clap::Parser as _;
    let args = crate::config::Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    if let Err(err) = run_with_args(&args) {
        eprintln!("latch-demo: {err:#}");
        std::process::exit(1);
    }
}

fn run_with_args(args: &crate::config::Args) -> anyhow::Result<()> {
    let settings = Settings::from_args(args)?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.worker_threads {
        runtime.worker_threads(n.max(1));
    }
    runtime.enable_all().build()?.block_on(run(settings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[tokio::test]
    async fn remember_me_timeouts_reach_the_session_manager() {
        let dir = std::env::temp_dir().join(format!(
            "latch-demo-serve-{}-{}",
            std::process::id(),
            &latch::SessionId::generate().encode()[..8]
        ));
        let args = crate::config::Args::try_parse_from([
            "latch-demo".as_ref(),
            "--store".as_ref(),
            "memory".as_ref(),
            "--data-dir".as_ref(),
            dir.as_os_str(),
            "--remember-idle-timeout".as_ref(),
            "5".as_ref(),
            "--remember-absolute-timeout".as_ref(),
            "8".as_ref(),
        ])
        .unwrap();
        let manager = manager(&Settings::from_args(&args).unwrap()).await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(manager.expiry().idle_timeout(true), Duration::from_secs(5));
        assert_eq!(
            manager.expiry().absolute_timeout(true),
            Duration::from_secs(8)
        );
        assert!(manager.expiry().touch_every() < Duration::from_secs(5));
    }

    /// With `--store memory` or `sqlite`, throttling counters live in a
    /// bounded store of their own: counters filling the sessions' store had
    /// left every visitor without a session (attack round nine), and in the
    /// sessions' table they would count against the share kept from
    /// anonymous sessions. A full counter store refuses counting (fail
    /// closed), and sessions are still made.
    #[tokio::test]
    async fn memory_sessions_do_not_share_their_room_with_throttling_counters() {
        for (store, apart) in [("memory", true), ("sqlite", true)] {
            let dir = std::env::temp_dir().join(format!(
                "latch-demo-serve-{}-{}",
                std::process::id(),
                &latch::SessionId::generate().encode()[..8]
            ));
            let args = crate::config::Args::try_parse_from([
                "latch-demo".as_ref(),
                "--store".as_ref(),
                store.as_ref(),
                "--data-dir".as_ref(),
                dir.as_os_str(),
            ])
            .unwrap();
            let (manager, counters, _) = manager_and_counters(&Settings::from_args(&args).unwrap())
                .await
                .unwrap();
            let sessions = manager.store().unwrap();
            assert_eq!(!Arc::ptr_eq(sessions, &counters), apart, "{store}");
            if store == "memory" {
                // Fill the counters' store: counting fails, sessions go on.
                let limits = Limits::new(Arc::clone(&counters), 10).unwrap();
                let mut refused = false;
                for i in 0..=MEMORY_STORE_COUNTERS as u32 {
                    let client = std::net::IpAddr::from(std::net::Ipv4Addr::from(i));
                    if limits.new_session(Some(client)).await.is_err() {
                        refused = true;
                        break;
                    }
                }
                assert!(refused, "the counters' store is not bounded");
                let session = manager.start(None, latch::RequestMeta::default());
                session.insert("k", 1).await.unwrap();
                assert!(manager.finish(&session).await.unwrap().set_cookie.is_some());
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
