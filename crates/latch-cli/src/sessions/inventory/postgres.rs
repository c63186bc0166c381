//! PostgreSQL: read-only queries on `latch_sessions`, on a connection of its own.

use anyhow::{Context as _, bail};
use latch::{StoreKey, UnixTime};
use tokio_postgres::Client;

use super::{Row, Stats, count};

/// A connection and the (qualified) sessions table.
#[derive(Debug)]
pub struct PgInventory {
    client: Client,
    table: String,
}

impl PgInventory {
    /// Connect and check that the sessions table exists (in `schema`, or on the
    /// search path), so a wrong database is reported rather than migrated.
    ///
    /// # Errors
    /// An unreachable server, a refused log-in, a bad schema name, or no table.
    pub async fn connect(url: &str, schema: Option<&str>) -> anyhow::Result<Self> {
        let table = match schema {
            Some(s) if is_plain_identifier(s) => format!("\"{s}\".latch_sessions"),
            Some(_) => bail!(
                "--pg-schema must be 1 to 63 characters of a-z, 0-9 and _, not starting with a digit"
            ),
            None => "latch_sessions".to_owned(),
        };
        // The store's own reading of the URL: sslmode, sslrootcert, sslcert,
        // sslkey, and its default (verify-full off the machine).
        let (config, tls) = latch_postgres::connect_config(url)?;
        let (client, connection) = config
            .connect(tls)
            .await
            .context("connecting to PostgreSQL")?;
        // The connection runs until the client is dropped; its error, if any,
        // surfaces as the failure of the query that was waiting.
        tokio::spawn(connection);
        let found: bool = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
            .await
            .context("looking for the sessions table")?
            .get(0);
        if !found {
            bail!("this database has no {table} table: it holds no latch-postgres sessions");
        }
        Ok(Self { client, table })
    }

    pub async fn stats(&self, now: UnixTime) -> anyhow::Result<Stats> {
        let row = self
            .client
            .query_one(
                &format!(
                    "SELECT COUNT(*),
                            COUNT(*) FILTER (WHERE expires_at <= $1),
                            COUNT(DISTINCT user_id) FILTER (WHERE expires_at > $1),
                            COUNT(*) FILTER (WHERE user_id IS NULL AND expires_at > $1)
                     FROM {}",
                    self.table
                ),
                &[&now],
            )
            .await
            .context("counting sessions")?;
        let total = count(row.get(0));
        let expired = count(row.get(1));
        Ok(Stats {
            total,
            live: total - expired.min(total),
            expired,
            users: count(row.get(2)),
            anonymous: count(row.get(3)),
        })
    }

    pub async fn list(&self, now: UnixTime, limit: usize) -> anyhow::Result<Vec<Row>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT key, user_id, created_at, last_seen, expires_at, user_agent, ip
                     FROM {} ORDER BY last_seen DESC, key LIMIT $1",
                    self.table
                ),
                &[&limit],
            )
            .await
            .context("listing sessions")?;
        rows.iter()
            .map(|r| {
                let key: Vec<u8> = r.get(0);
                let key: [u8; 32] = key
                    .try_into()
                    .map_err(|_| anyhow::anyhow!("a stored key is not 32 bytes"))?;
                let expires_at: i64 = r.get(4);
                Ok(Row {
                    key: StoreKey::from_bytes(key),
                    user_id: r.get(1),
                    created_at: r.get(2),
                    last_seen: r.get(3),
                    expires_at,
                    expired: expires_at <= now,
                    user_agent: r.get(5),
                    ip: r.get(6),
                    device_proved_at: None,
                })
            })
            .collect()
    }

    pub async fn purgeable(&self, now: UnixTime) -> anyhow::Result<u64> {
        let row = self
            .client
            .query_one(
                &format!("SELECT COUNT(*) FROM {} WHERE expires_at <= $1", self.table),
                &[&now],
            )
            .await
            .context("counting expired sessions")?;
        Ok(count(row.get(0)))
    }
}

/// The schema names latch-postgres accepts: these mean the same quoted or not.
fn is_plain_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}
