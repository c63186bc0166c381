//! Migrations against a real server: idempotent, safe when servers start
//! together, and refusing a schema newer than this build knows. Also what
//! `connect` refuses.

mod common;

use std::time::{Duration, Instant};

use latch::{ErrorKind, Record, SessionId, SessionStore};
use latch_postgres::PostgresStore;
use tokio_postgres::Client;

/// The versions recorded in the schema's migrations table, in order.
async fn versions(db: &Client, schema: &common::Schema) -> Vec<i64> {
    db.query(
        &format!(
            "SELECT version FROM {} ORDER BY version",
            schema.table("latch_schema_migrations")
        ),
        &[],
    )
    .await
    .expect("read migrations")
    .iter()
    .map(|row| row.get(0))
    .collect()
}

/// `name: definition` of every index on the schema's sessions table.
async fn indexes(db: &Client, schema: &common::Schema) -> Vec<String> {
    db.query(
        "SELECT indexname || ': ' || indexdef FROM pg_indexes \
         WHERE schemaname = $1 AND tablename = 'latch_sessions' ORDER BY indexname",
        &[&schema.name],
    )
    .await
    .expect("read indexes")
    .iter()
    .map(|row| row.get(0))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_twice_migrates_once_and_keeps_sessions() {
    let Some(db) = common::raw().await else {
        return;
    };
    let schema = common::Schema::new("migrate_twice");
    let first = schema.store().await;
    let key = SessionId::generate().store_key();
    assert!(first.create(&key, &Record::new(1)).await.expect("create"));

    let second = schema.store().await;
    assert_eq!(versions(&db, &schema).await, [1]);
    assert!(
        second.load(&key).await.expect("load").is_some(),
        "a second connect must not recreate the table"
    );
    let s = &schema.name;
    assert_eq!(
        indexes(&db, &schema).await,
        [
            format!(
                "latch_sessions_expires_at: CREATE INDEX latch_sessions_expires_at \
                 ON {s}.latch_sessions USING btree (expires_at)"
            ),
            format!(
                "latch_sessions_pkey: CREATE UNIQUE INDEX latch_sessions_pkey \
                 ON {s}.latch_sessions USING btree (key)"
            ),
            format!(
                "latch_sessions_user_id: CREATE INDEX latch_sessions_user_id \
                 ON {s}.latch_sessions USING btree (user_id) WHERE (user_id IS NOT NULL)"
            ),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_starting_together_migrate_once() {
    let Some(db) = common::raw().await else {
        return;
    };
    let schema = common::Schema::new("migrate_race");
    let starts: Vec<_> = (0..8)
        .map(|_| {
            let name = schema.name.clone();
            tokio::spawn(async move {
                PostgresStore::builder(&common::url())
                    .schema(&name)
                    .pool_size(1)
                    .connect()
                    .await
            })
        })
        .collect();
    for start in starts {
        let result = start.await.expect("task");
        assert!(result.is_ok(), "concurrent connect failed: {result:?}");
    }
    assert_eq!(versions(&db, &schema).await, [1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_schema_is_refused_with_a_clear_message() {
    let Some(db) = common::raw().await else {
        return;
    };
    let schema = common::Schema::new("migrate_newer");
    drop(schema.store().await);
    let known = *versions(&db, &schema).await.last().expect("migrated");
    db.execute(
        &format!(
            "INSERT INTO {} (version) VALUES ($1)",
            schema.table("latch_schema_migrations")
        ),
        &[&(known + 1)],
    )
    .await
    .expect("record a future migration");

    let err = PostgresStore::builder(&common::url())
        .schema(&schema.name)
        .connect()
        .await
        .expect_err("a newer schema must be refused");
    assert_eq!(err.kind(), &ErrorKind::Store);
    assert_eq!(
        err.to_string(),
        format!(
            "the session schema is at version {}, newer than version {known} that this build \
             of latch-postgres knows; upgrade latch-postgres rather than run an older build \
             against it",
            known + 1
        )
    );
    assert_eq!(
        versions(&db, &schema).await,
        [(1..=known).collect::<Vec<_>>(), vec![known + 1]].concat(),
        "nothing was written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_fails_fast_with_a_store_error() {
    // Nothing listens on port 1 of loopback: the connection is refused at once.
    let started = Instant::now();
    let err = PostgresStore::builder("postgres://postgres@127.0.0.1:1/test")
        .connect_timeout(Duration::from_millis(500))
        .connect()
        .await
        .expect_err("nothing listens there");
    assert_eq!(err.kind(), &ErrorKind::Store);
    assert!(err.is_unavailable());
    assert_eq!(err.to_string(), "connecting to PostgreSQL");
    let cause = std::error::Error::source(&err).expect("the driver's error is kept");
    assert!(
        common::chain(cause).contains("onnection refused"),
        "{}",
        common::chain(cause)
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}
