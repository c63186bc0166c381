//! Versioned schema migrations, applied at start-up.
//!
//! Each migration runs once, in its own transaction, which first takes a
//! transaction-scoped advisory lock: when several servers start together one
//! migrates while the others wait, then find nothing left to do. A database whose
//! schema is newer than this build knows is refused, not written to.

use deadpool_postgres::{Client, Transaction};
use latch::{Error, Result};

use crate::sql::Sql;

/// One step of the schema, identified by its version.
#[derive(Debug)]
pub(crate) struct Migration {
    /// Versions run from 1 with no gaps; the applied ones are recorded.
    pub(crate) version: i64,
    /// Shown in the log when applied.
    pub(crate) description: &'static str,
    /// SQL with `{sessions}` standing for the (qualified) sessions table.
    sql: &'static str,
}

/// Every migration this build knows, oldest first. Never edit a released one:
/// add the next.
pub(crate) const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    description: "sessions table, expiry index, per-user index",
    sql: "
        CREATE TABLE {sessions} (
            key        bytea   PRIMARY KEY CHECK (octet_length(key) = 32),
            version    bigint  NOT NULL CHECK (version >= 0),
            data       json    NOT NULL,
            created_at bigint  NOT NULL,
            last_seen  bigint  NOT NULL,
            expires_at bigint  NOT NULL,
            remember   boolean NOT NULL,
            user_id    text,
            user_agent text,
            ip         text
        );
        CREATE INDEX latch_sessions_expires_at ON {sessions} (expires_at);
        CREATE INDEX latch_sessions_user_id ON {sessions} (user_id)
            WHERE user_id IS NOT NULL;
    ",
}];

/// The newest schema version this build knows.
pub(crate) const LATEST: i64 = MIGRATIONS.len() as i64;

/// Advisory lock key shared by every latch-postgres process ("latchmig" in ASCII).
/// One key for all schemas: migrations are rare and short, so serialising them
/// across schemas costs nothing and keeps the rule simple.
const LOCK_KEY: i64 = 0x6c61_7463_686d_6967;

/// Bring the schema up to [`LATEST`], one migration per transaction.
///
/// The version is read again under the lock before each step, so a migration
/// another server applied meanwhile is never applied twice.
///
/// # Errors
/// A store error when PostgreSQL fails, or when the database records a version
/// newer than [`LATEST`].
pub(crate) async fn run(client: &mut Client, sql: &Sql) -> Result<()> {
    loop {
        let tx = client
            .transaction()
            .await
            .map_err(|e| Error::store("starting a migration transaction", e))?;
        let current = lock_and_read(&tx, sql).await?;
        let Some(next) = MIGRATIONS.iter().find(|m| m.version > current) else {
            return commit(tx).await;
        };
        apply(&tx, sql, next).await?;
        commit(tx).await?;
    }
}

/// Take the migration lock, make sure the bookkeeping exists, and read the version
/// (refusing one newer than [`LATEST`]).
async fn lock_and_read(tx: &Transaction<'_>, sql: &Sql) -> Result<i64> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await
        .map_err(|e| Error::store("taking the migration lock", e))?;
    if let Some(schema) = &sql.schema {
        tx.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
            .await
            .map_err(|e| Error::store("creating the session schema", e))?;
    }
    tx.batch_execute(&format!(
        "CREATE TABLE IF NOT EXISTS {} (\
             version bigint PRIMARY KEY, \
             applied_at timestamptz NOT NULL DEFAULT now())",
        sql.migrations
    ))
    .await
    .map_err(|e| Error::store("creating the migrations table", e))?;
    let current = current_version(tx, sql).await?;
    refuse_newer(current)?;
    Ok(current)
}

async fn current_version(tx: &Transaction<'_>, sql: &Sql) -> Result<i64> {
    let row = tx
        .query_one(
            &format!("SELECT coalesce(max(version), 0) FROM {}", sql.migrations),
            &[],
        )
        .await
        .map_err(|e| Error::store("reading the schema version", e))?;
    row.try_get(0)
        .map_err(|e| Error::store("reading the schema version", e))
}

/// An older build must not write to a schema it does not understand: it could
/// break the invariants a newer migration set up.
fn refuse_newer(current: i64) -> Result<()> {
    if current > LATEST {
        return Err(Error::store_msg(format!(
            "the session schema is at version {current}, newer than version {LATEST} that \
             this build of latch-postgres knows; upgrade latch-postgres rather than run an \
             older build against it"
        )));
    }
    Ok(())
}

async fn apply(tx: &Transaction<'_>, sql: &Sql, migration: &Migration) -> Result<()> {
    tx.batch_execute(&migration.sql.replace("{sessions}", &sql.sessions))
        .await
        .map_err(|e| Error::store(format!("applying migration {}", migration.version), e))?;
    tx.execute(
        &format!("INSERT INTO {} (version) VALUES ($1)", sql.migrations),
        &[&migration.version],
    )
    .await
    .map_err(|e| Error::store("recording a migration", e))?;
    tracing::info!(
        version = migration.version,
        description = migration.description,
        table = %sql.sessions,
        "applied latch-postgres migration"
    );
    Ok(())
}

async fn commit(tx: Transaction<'_>) -> Result<()> {
    tx.commit()
        .await
        .map_err(|e| Error::store("committing a migration", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_run_from_one_without_gaps() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1, "{}", m.description);
        }
        assert_eq!(LATEST, MIGRATIONS.len() as i64);
    }

    #[test]
    fn known_versions_pass_and_newer_ones_are_refused() {
        assert!(refuse_newer(0).is_ok());
        assert!(refuse_newer(LATEST).is_ok());
        let err = refuse_newer(LATEST + 1).unwrap_err();
        assert_eq!(err.kind(), &latch::ErrorKind::Store);
        assert_eq!(
            err.to_string(),
            format!(
                "the session schema is at version {}, newer than version {LATEST} that this \
                 build of latch-postgres knows; upgrade latch-postgres rather than run an \
                 older build against it",
                LATEST + 1
            )
        );
    }

    #[test]
    fn migrations_name_the_table_only_through_the_placeholder() {
        for m in MIGRATIONS {
            let text = m.sql.replace("{sessions}", "");
            assert!(!text.contains("ON latch_sessions"), "{}", m.description);
            assert!(!text.contains("TABLE latch_sessions"), "{}", m.description);
        }
    }
}
