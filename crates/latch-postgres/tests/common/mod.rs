//! Shared by the test binaries: the server URL, a raw SQL client for checking
//! what is really in the tables, and private schemas that clean up after
//! themselves.
// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::time::Duration;

use latch::SessionId;
use latch_postgres::PostgresStore;
use tokio_postgres::{Client, NoTls};

/// Where the tests find PostgreSQL, read at run time.
pub fn url() -> String {
    std::env::var("LATCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// An error and every cause under it, on one line.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// A plain connection for SQL checks, or `None` (after `skip_or_fail`) when the
/// server cannot be reached.
pub async fn raw() -> Option<Client> {
    raw_at(&url()).await
}

/// Like [`raw`], for another server.
pub async fn raw_at(url: &str) -> Option<Client> {
    let mut config: tokio_postgres::Config = url.parse().expect("LATCH_POSTGRES_URL parses");
    config.connect_timeout(Duration::from_secs(3));
    match config.connect(NoTls).await {
        Ok((client, connection)) => {
            tokio::spawn(connection);
            Some(client)
        }
        // The URL is left out of the message: it may carry a password.
        Err(e) => latch_conformance::skip_or_fail("PostgreSQL", &chain(&e)),
    }
}

/// The store in the default schema, or `None` when the server is unreachable.
/// Once the server answers, a store that fails to connect is a test failure.
pub async fn store() -> Option<PostgresStore> {
    raw().await?;
    Some(
        PostgresStore::connect(&url())
            .await
            .expect("the store connects to a reachable server"),
    )
}

/// [`url`] with one more connection option.
pub fn url_with(option: &str, value: &str) -> String {
    let url = url();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let glue = if url.contains('?') { '&' } else { '?' };
        format!("{url}{glue}{option}={value}")
    } else {
        format!("{url} {option}={value}")
    }
}

/// [`url`] with the connections' `application_name` set to `name`, so a test can
/// find its own server processes in `pg_stat_activity`.
pub fn url_named(name: &str) -> String {
    url_with("application_name", name)
}

/// Wait until no server process connected as `name` is left (a dropped pool
/// closes its connections asynchronously). A process reports its statistics
/// before it leaves `pg_stat_activity`, so afterwards they are all counted.
pub async fn wait_gone(db: &Client, name: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let left: i64 = db
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                &[&name],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        if left == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{left} connections named {name} still open after 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A schema name no other test run uses.
pub fn unique_schema(purpose: &str) -> String {
    let tag: String = SessionId::generate()
        .store_key()
        .to_hex()
        .chars()
        .take(12)
        .collect();
    format!("latch_test_{purpose}_{tag}")
}

/// A private schema, dropped with everything in it when the guard goes away,
/// whether the test passed or not.
pub struct Schema {
    pub name: String,
}

impl Schema {
    /// Reserve a fresh schema name (created by the store's first `connect`).
    pub fn new(purpose: &str) -> Self {
        Self {
            name: unique_schema(purpose),
        }
    }

    /// A store with its tables in this schema.
    pub async fn store(&self) -> PostgresStore {
        self.store_at(&url()).await
    }

    /// A store with its tables in this schema, connecting with `url`.
    pub async fn store_at(&self, url: &str) -> PostgresStore {
        PostgresStore::builder(url)
            .schema(&self.name)
            .connect()
            .await
            .expect("the store connects and migrates")
    }

    /// A table of this schema, qualified.
    pub fn table(&self, table: &str) -> String {
        format!("\"{}\".{table}", self.name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on: clean up
        // from a thread with a runtime of its own.
        let sql = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name);
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for clean-up");
            rt.block_on(async {
                let (client, connection) = url()
                    .parse::<tokio_postgres::Config>()?
                    .connect(NoTls)
                    .await?;
                tokio::spawn(connection);
                client.batch_execute(&sql).await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test schema {}: {dropped:?}", self.name);
        }
    }
}
