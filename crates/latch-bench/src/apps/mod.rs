//! The server configurations under test, each an axum `Router` with the same
//! three routes: `/rw` (read the counter, add one, write it), `/ro` (read it)
//! and `/none` (the session is not touched).

pub mod extra;
pub mod floor;
pub mod latch;
pub mod store_floor;
pub mod ts_handlers;

use std::path::PathBuf;
use std::sync::Arc;

use ::latch::codec::Aead;
use anyhow::Context as _;
use axum::Router;
use axum::routing::get;

/// A server configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Config {
    /// axum with no session layer.
    Bare,
    /// axum with a pass-through layer that does nothing: the floor of any
    /// session layer added with `Router::layer` (axum then wraps every route).
    BareLayer,
    /// latch, signed cookie.
    LatchSigned,
    /// latch, encrypted cookie (XChaCha20-Poly1305, the default).
    LatchEncrypted,
    /// latch, encrypted cookie (AES-256-GCM).
    LatchEncryptedGcm,
    /// latch, `MemoryStore`.
    LatchMemory,
    /// latch, `SqliteStore` in a temporary file.
    LatchSqlite,
    /// latch, `RedisStore` on the private redis-server.
    LatchRedis,
    /// latch, `PostgresStore` in a private schema.
    LatchPostgres,
    /// latch, `RedisStore` on the same private redis-server's TLS port.
    LatchRedisTls,
    /// latch, `SqliteStore` with `encrypt_at_rest`.
    LatchSqliteAtRest,
    /// latch, `RedisStore` with `encrypt_at_rest`.
    LatchRedisAtRest,
    /// latch, `RedisStore` with its opt-in read cache (`CLIENT TRACKING`).
    LatchRedisCached,
    /// tower-sessions 0.14, its memory store.
    TsMemory,
    /// tower-sessions 0.14, tower-sessions-sqlx-store 0.15 (SQLite), separate process.
    TsSqlite,
    /// tower-sessions 0.14, tower-sessions-redis-store 0.16 (fred).
    TsRedis,
    /// axum-extra 0.12 `SignedCookieJar`.
    ExtraSigned,
    /// axum-extra 0.12 `PrivateCookieJar`.
    ExtraPrivate,
    /// The floor of `latch-signed`: a hand-written handler doing only what
    /// latch must (see `apps/floor.rs`).
    FloorSigned,
    /// The floor of `latch-encrypted` (XChaCha20-Poly1305).
    FloorEncrypted,
    /// The floor of `latch-encrypted-gcm` (AES-256-GCM).
    FloorEncryptedGcm,
    /// The floor of `latch-memory`: handlers calling `MemoryStore` themselves
    /// (see `apps/store_floor.rs`).
    FloorMemory,
    /// The floor of `latch-redis`: handlers calling `RedisStore` themselves.
    FloorRedis,
    /// The floor of `latch-sqlite`: handlers calling `SqliteStore` themselves.
    FloorSqlite,
}

impl Config {
    /// Every configuration, in table order.
    pub const ALL: [Config; 24] = [
        Config::Bare,
        Config::BareLayer,
        Config::LatchSigned,
        Config::LatchEncrypted,
        Config::LatchEncryptedGcm,
        Config::LatchMemory,
        Config::LatchSqlite,
        Config::LatchRedis,
        Config::LatchPostgres,
        Config::LatchRedisTls,
        Config::LatchSqliteAtRest,
        Config::LatchRedisAtRest,
        Config::LatchRedisCached,
        Config::TsMemory,
        Config::TsSqlite,
        Config::TsRedis,
        Config::ExtraSigned,
        Config::ExtraPrivate,
        Config::FloorSigned,
        Config::FloorEncrypted,
        Config::FloorEncryptedGcm,
        Config::FloorMemory,
        Config::FloorRedis,
        Config::FloorSqlite,
    ];

    /// The name used on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            Config::Bare => "bare",
            Config::BareLayer => "bare-layer",
            Config::LatchSigned => "latch-signed",
            Config::LatchEncrypted => "latch-encrypted",
            Config::LatchEncryptedGcm => "latch-encrypted-gcm",
            Config::LatchMemory => "latch-memory",
            Config::LatchSqlite => "latch-sqlite",
            Config::LatchRedis => "latch-redis",
            Config::LatchPostgres => "latch-postgres",
            Config::LatchRedisTls => "latch-redis-tls",
            Config::LatchSqliteAtRest => "latch-sqlite-at-rest",
            Config::LatchRedisAtRest => "latch-redis-at-rest",
            Config::LatchRedisCached => "latch-redis-cached",
            Config::TsMemory => "ts-memory",
            Config::TsSqlite => "ts-sqlite",
            Config::TsRedis => "ts-redis",
            Config::ExtraSigned => "extra-signed",
            Config::ExtraPrivate => "extra-private",
            Config::FloorSigned => "floor-signed",
            Config::FloorEncrypted => "floor-encrypted",
            Config::FloorEncryptedGcm => "floor-encrypted-gcm",
            Config::FloorMemory => "floor-memory",
            Config::FloorRedis => "floor-redis",
            Config::FloorSqlite => "floor-sqlite",
        }
    }

    /// Parse a name from [`Config::name`].
    ///
    /// # Errors
    /// For an unknown name, listing the known ones.
    pub fn parse(name: &str) -> anyhow::Result<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.name() == name)
            .with_context(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|c| c.name()).collect();
                format!("unknown configuration {name:?}; known: {}", names.join(","))
            })
    }

    /// Whether this configuration needs the private redis-server.
    pub fn needs_redis(self) -> bool {
        matches!(
            self,
            Config::LatchRedis
                | Config::LatchRedisTls
                | Config::LatchRedisAtRest
                | Config::LatchRedisCached
                | Config::TsRedis
                | Config::FloorRedis
        )
    }
}

/// Where the store-backed configurations keep their data.
#[derive(Debug, Clone)]
pub struct Env {
    /// The private redis-server.
    pub redis_url: String,
    /// The same server's TLS port, with its CA (`rediss://...?cacert=...`).
    pub redis_tls_url: String,
    /// The PostgreSQL server.
    pub postgres_url: String,
    /// The schema latch-postgres uses for the load benchmark (dropped afterwards).
    pub pg_schema: String,
    /// A private directory for SQLite files.
    pub dir: PathBuf,
}

/// Build the router for `config` (inside the server's runtime: store clients
/// spawn their connection tasks there). `cell` makes file names and Redis
/// prefixes unique per measurement, so every cell starts empty.
///
/// # Errors
/// When a store cannot be opened or reached.
pub async fn router(config: Config, env: &Env, cell: usize) -> anyhow::Result<Router> {
    Ok(match config {
        Config::Bare => Router::new()
            .route("/rw", get(|| async { "ok" }))
            .route("/ro", get(|| async { "ok" }))
            .route("/none", get(|| async { "ok" })),
        Config::BareLayer => Router::new()
            .route("/rw", get(|| async { "ok" }))
            .route("/ro", get(|| async { "ok" }))
            .route("/none", get(|| async { "ok" }))
            .layer(tower::layer::layer_fn(PassThrough)),
        Config::LatchSigned => latch::router(latch::signed()?),
        Config::LatchEncrypted => latch::router(latch::encrypted(Aead::XChaCha20Poly1305)?),
        Config::LatchEncryptedGcm => latch::router(latch::encrypted(Aead::Aes256Gcm)?),
        Config::LatchMemory => latch::router(
            latch::builder()
                .store(::latch::MemoryStore::new())
                .build()?,
        ),
        Config::LatchSqlite => {
            let store = latch_sqlite::SqliteStore::open(env.dir.join(format!("latch-{cell}.db")))?;
            latch::router(latch::builder().store(store).build()?)
        }
        Config::LatchRedis
        | Config::LatchRedisTls
        | Config::LatchRedisAtRest
        | Config::LatchRedisCached => {
            let url = if config == Config::LatchRedisTls {
                &env.redis_tls_url
            } else {
                &env.redis_url
            };
            let mut store = latch_redis::RedisStore::builder(url).prefix(format!("bench{cell}:"));
            if config == Config::LatchRedisCached {
                store = store.read_cache(latch_redis::ReadCache::default());
            }
            let store = store.connect().await?;
            let builder = latch::builder().store(store);
            latch::router(
                match config {
                    Config::LatchRedisAtRest => builder.encrypt_at_rest(latch::at_rest_keys()),
                    _ => builder,
                }
                .build()?,
            )
        }
        Config::LatchSqliteAtRest => {
            let store = latch_sqlite::SqliteStore::open(env.dir.join(format!("latch-{cell}.db")))?;
            latch::router(
                latch::builder()
                    .store(store)
                    .encrypt_at_rest(latch::at_rest_keys())
                    .build()?,
            )
        }
        Config::LatchPostgres => {
            let store = latch_postgres::PostgresStore::builder(&env.postgres_url)
                .schema(&env.pg_schema)
                .connect()
                .await?;
            latch::router(latch::builder().store(store).build()?)
        }
        Config::TsMemory => ts_handlers::router(tower_sessions::MemoryStore::default()),
        Config::TsRedis => {
            use tower_sessions_redis_store::fred::prelude::{
                ClientLike as _, Config as FredConfig, Pool,
            };
            let config = FredConfig::from_url(&env.redis_url)?;
            // One multiplexed connection, like latch-redis's connection manager.
            let pool = Pool::new(config, None, None, None, 1)?;
            let _task = pool.connect();
            pool.wait_for_connect().await?;
            ts_handlers::router(tower_sessions_redis_store::RedisStore::new(pool))
        }
        Config::TsSqlite => anyhow::bail!("ts-sqlite runs as a separate process"),
        Config::ExtraSigned => extra::signed(),
        Config::ExtraPrivate => extra::private(),
        Config::FloorSigned => floor::signed(),
        Config::FloorEncrypted => floor::sealed(),
        Config::FloorEncryptedGcm => floor::sealed_gcm(),
        Config::FloorMemory => store_floor::router(Arc::new(::latch::MemoryStore::new())),
        Config::FloorRedis => store_floor::router(Arc::new(
            latch_redis::RedisStore::builder(&env.redis_url)
                .prefix(format!("bench{cell}:"))
                .connect()
                .await?,
        )),
        Config::FloorSqlite => store_floor::router(Arc::new(latch_sqlite::SqliteStore::open(
            env.dir.join(format!("floor-{cell}.db")),
        )?)),
    })
}

/// A service that hands every request to `S` and returns its future as is.
#[derive(Debug, Clone)]
pub struct PassThrough<S>(S);

impl<S, R> tower::Service<R> for PassThrough<S>
where
    S: tower::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        self.0.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_known_ones() {
        for c in Config::ALL {
            assert_eq!(Config::parse(c.name()).unwrap(), c);
        }
        let err = Config::parse("nope").unwrap_err().to_string();
        assert!(err.contains("known: bare,bare-layer,latch-signed"), "{err}");
    }
}
