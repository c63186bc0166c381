//! Purging at scale: 100,000 expired and 100,000 live sessions in a private
//! schema; purge in batches removes exactly the expired ones, never by scanning
//! the whole table.

mod common;

use std::time::Instant;

use latch::{ExpiredDeletion as _, UserIndex as _};
use tokio_postgres::Client;

/// "Now" for the test; expiry times are placed around it.
const NOW: i64 = 1_800_000_000;
/// Sessions on each side of `NOW`.
const EACH: i64 = 100_000;
/// Rows deleted per purge statement.
const BATCH: usize = 5_000;
/// Live sessions are spread over this many users.
const USERS: i64 = 500;

/// Fill the table straight from SQL: expired sessions expire at
/// `NOW - EACH + 1 ..= NOW` (the last one exactly at `NOW`, which counts as
/// expired), live ones at `NOW + 1 ..= NOW + EACH`. Keys are SHA-256 values like
/// real store keys. Every session belongs to one of `USERS` users.
async fn fill(db: &Client, table: &str) {
    db.batch_execute(&format!(
        "INSERT INTO {table} \
             (key, version, data, created_at, last_seen, expires_at, remember, user_id) \
         SELECT sha256(convert_to(kind || '-' || i, 'UTF8')), 1, '{{\"n\": 1}}', \
                {NOW} - 86400, {NOW} - 3600 + i % 3600, \
                CASE kind WHEN 'expired' THEN {NOW} - {EACH} + i ELSE {NOW} + i END, \
                false, 'purge-user-' || (i % {USERS}) \
         FROM generate_series(1, {EACH}) AS i, (VALUES ('expired'), ('live')) AS k(kind); \
         ANALYZE {table};"
    ))
    .await
    .expect("bulk insert");
}

async fn count(db: &Client, table: &str, condition: &str) -> i64 {
    db.query_one(
        &format!("SELECT count(*) FROM {table} WHERE {condition}"),
        &[],
    )
    .await
    .expect("count")
    .get(0)
}

/// Sequential scans and deleted rows PostgreSQL has recorded for the table.
async fn scan_stats(db: &Client, table: &str) -> (i64, i64) {
    let row = db
        .query_one(
            &format!(
                "SELECT coalesce(seq_scan, 0), coalesce(n_tup_del, 0) \
                 FROM pg_stat_user_tables WHERE relid = '{table}'::regclass"
            ),
            &[],
        )
        .await
        .expect("table statistics");
    (row.get(0), row.get(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_removes_all_expired_in_batches_and_keeps_all_live() {
    let Some(db) = common::raw().await else {
        return;
    };
    let schema = common::Schema::new("purge");
    let table = schema.table("latch_sessions");
    // The store's connections carry a name of their own, so the test can tell
    // when they have closed and reported their statistics.
    let name = schema.name.clone();
    let url = common::url_named(&name);

    // Create the tables (building indexes scans the table), fill them, and take
    // the statistics once the migrating connection has gone.
    drop(schema.store_at(&url).await);
    let started = Instant::now();
    fill(&db, &table).await;
    let filled_in = started.elapsed();
    common::wait_gone(&db, &name).await;
    let (scans_before, _) = scan_stats(&db, &table).await;

    let store = schema.store_at(&url).await;
    let user = "purge-user-7";
    let listed_before = store.list_by_user(user, NOW).await.expect("list").len();

    let started = Instant::now();
    let mut batches = Vec::new();
    loop {
        let n = store.purge_expired(NOW, BATCH).await.expect("purge");
        batches.push(n);
        if n < BATCH as u64 {
            break;
        }
    }
    let purged_in = started.elapsed();
    let listed_after = store.list_by_user(user, NOW).await.expect("list").len();
    eprintln!(
        "filled {} rows in {filled_in:?}; purged {} rows in {} batches in {purged_in:?}",
        2 * EACH,
        batches.iter().sum::<u64>(),
        batches.len()
    );

    let full = (EACH as usize / BATCH) as u64;
    assert_eq!(
        batches,
        [vec![BATCH as u64; full as usize], vec![0]].concat(),
        "every batch but the last is full, and none is larger"
    );
    let per_user = (EACH / USERS) as usize;
    assert_eq!(
        (listed_before, listed_after),
        (per_user, per_user),
        "listing shows the live sessions only, before and after"
    );

    drop(store);
    common::wait_gone(&db, &name).await;
    let (scans_after, deleted) = scan_stats(&db, &table).await;
    assert_eq!(deleted, EACH, "statistics count the purge");
    assert_eq!(
        scans_after, scans_before,
        "purging and listing must use the indexes, not scan the table"
    );

    // Counted last: counting scans the table.
    assert_eq!(count(&db, &table, &format!("expires_at <= {NOW}")).await, 0);
    assert_eq!(
        count(&db, &table, &format!("expires_at > {NOW}")).await,
        EACH
    );
    assert_eq!(count(&db, &table, "true").await, EACH);
}
