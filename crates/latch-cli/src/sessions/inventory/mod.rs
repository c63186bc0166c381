//! Read-only questions the `SessionStore` trait does not answer: every session
//! (not one user's), counts, and how many sessions a purge would remove. Each
//! backend answers them with its own queries, one module each, opening the
//! database or server directly.

mod postgres;
mod redis;
mod sqlite;

use latch::{StoreKey, UnixTime};
use serde::Serialize;

pub use self::postgres::PgInventory;
pub use self::redis::RedisInventory;

/// Refuse a path that is not a latch-sqlite database.
///
/// # Errors
/// No such file, not SQLite, or no sessions table.
pub fn check_sqlite(path: &std::path::Path) -> anyhow::Result<()> {
    sqlite::open(path).map(drop)
}

/// Counts over the whole store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Sessions stored, expired ones included.
    pub total: u64,
    /// Sessions not expired.
    pub live: u64,
    /// Expired sessions still stored (a purge deletes them).
    pub expired: u64,
    /// Distinct users with a live session.
    pub users: u64,
    /// Live sessions with no user (not signed in).
    pub anonymous: u64,
}

/// One session as `list` shows it: never its data, never its ID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The store key (SHA-256 of the session ID), in hex.
    #[serde(serialize_with = "hex")]
    pub key: StoreKey,
    /// The signed-in user.
    pub user_id: Option<String>,
    /// Created at.
    pub created_at: UnixTime,
    /// Last used at.
    pub last_seen: UnixTime,
    /// Expires at.
    pub expires_at: UnixTime,
    /// Whether `expires_at` has passed.
    pub expired: bool,
    /// The browser, as recorded.
    pub user_agent: Option<String>,
    /// The client address, as recorded.
    pub ip: Option<String>,
    /// When a device-bound (DBSC) session last proved its device key; only
    /// known where the store lists sessions per user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_proved_at: Option<UnixTime>,
}

/// Serialize a store key as its 64 hex digits.
pub fn hex<S: serde::Serializer>(key: &StoreKey, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&key.to_hex())
}

/// The backend-specific reader of one store.
#[derive(Debug)]
pub enum Inventory {
    /// A latch-sqlite file.
    Sqlite(std::path::PathBuf),
    /// A latch-redis server.
    Redis(RedisInventory),
    /// A latch-postgres database.
    Postgres(PgInventory),
}

impl Inventory {
    /// Counts at `now`.
    ///
    /// # Errors
    /// The database or server failed.
    pub async fn stats(&self, now: UnixTime) -> anyhow::Result<Stats> {
        match self {
            Inventory::Sqlite(path) => sqlite::blocking(path, move |c| sqlite::stats(c, now)).await,
            Inventory::Redis(r) => r.stats(now).await,
            Inventory::Postgres(p) => p.stats(now).await,
        }
    }

    /// Up to `limit` sessions, most recently used first.
    ///
    /// # Errors
    /// The database or server failed.
    pub async fn list(&self, now: UnixTime, limit: usize) -> anyhow::Result<Vec<Row>> {
        match self {
            Inventory::Sqlite(path) => {
                sqlite::blocking(path, move |c| sqlite::list(c, now, limit)).await
            }
            Inventory::Redis(r) => r.list(now, limit).await,
            Inventory::Postgres(p) => p.list(now, limit).await,
        }
    }

    /// How many sessions `purge_expired(now, ..)` would count as removed.
    ///
    /// # Errors
    /// The database or server failed.
    pub async fn purgeable(&self, now: UnixTime) -> anyhow::Result<u64> {
        match self {
            Inventory::Sqlite(path) => {
                sqlite::blocking(path, move |c| sqlite::purgeable(c, now)).await
            }
            Inventory::Redis(r) => r.purgeable(now).await,
            Inventory::Postgres(p) => p.purgeable(now).await,
        }
    }
}

/// A count from a database as the unsigned number it is.
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
