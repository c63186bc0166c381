//! Opening a store: the store crate's `SessionStore`, plus the backend's
//! [`Inventory`] for what the trait cannot answer.

use std::sync::Arc;

use anyhow::Context as _;
use latch::SessionStore;

use super::inventory::{Inventory, PgInventory, RedisInventory};
use super::target::StoreUrl;

/// An open store.
#[derive(Debug)]
pub struct Opened {
    /// The store, as the application uses it.
    pub store: Arc<dyn SessionStore>,
    /// The backend's own read-only queries.
    pub inventory: Inventory,
}

/// Open the store at `url`. The backend-specific check comes first, so a path
/// or database that holds no latch sessions is refused before the store crate
/// would create its tables there.
///
/// # Errors
/// Not a latch store, or unreachable.
pub async fn open(
    url: &StoreUrl,
    redis_prefix: &str,
    pg_schema: Option<&str>,
) -> anyhow::Result<Opened> {
    match url {
        StoreUrl::Sqlite(path) => {
            let checked = path.clone();
            tokio::task::spawn_blocking(move || super::inventory::check_sqlite(&checked))
                .await
                .context("the database thread failed")??;
            let store = latch_sqlite::SqliteStore::open(path)?;
            Ok(Opened {
                store: Arc::new(store),
                inventory: Inventory::Sqlite(path.clone()),
            })
        }
        StoreUrl::Redis(url) => {
            let builder = latch_redis::RedisStore::builder(url).prefix(redis_prefix);
            let store = builder.connect().await?;
            redis(store, RedisInventory::connect(url, redis_prefix).await?)
        }
        StoreUrl::RedisCluster(urls) => {
            let builder =
                latch_redis::RedisStore::cluster_builder(urls.iter().map(|u| u.to_string()))
                    .prefix(redis_prefix);
            let store = builder.connect().await?;
            redis(
                store,
                RedisInventory::connect_cluster(urls, redis_prefix).await?,
            )
        }
        StoreUrl::Postgres(url) => {
            let inventory = PgInventory::connect(url, pg_schema).await?;
            let mut builder = latch_postgres::PostgresStore::builder(url).pool_size(2);
            if let Some(schema) = pg_schema {
                builder = builder.schema(schema);
            }
            Ok(Opened {
                store: Arc::new(builder.connect().await?),
                inventory: Inventory::Postgres(inventory),
            })
        }
    }
}

fn redis(store: latch_redis::RedisStore, inventory: RedisInventory) -> anyhow::Result<Opened> {
    Ok(Opened {
        store: Arc::new(store),
        inventory: Inventory::Redis(inventory),
    })
}
