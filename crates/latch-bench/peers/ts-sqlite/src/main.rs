//! tower-sessions + tower-sessions-sqlx-store (SQLite) behind the same three
//! routes as latch-bench's in-process configurations, on a tokio runtime with
//! one worker thread. Usage: `ts-sqlite-peer DB_PATH`; prints `listening ADDR`.

#[path = "../../../src/apps/ts_handlers.rs"]
mod ts_handlers;

use std::str::FromStr as _;

use tower_sessions_sqlx_store::SqliteStore;
use tower_sessions_sqlx_store::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous,
};

fn main() -> anyhow::Result<()> {
    let db = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: ts-sqlite-peer DB_PATH"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        // WAL and synchronous=NORMAL, as latch-sqlite opens its file.
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{db}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        let pool = SqlitePool::connect_with(options).await?;
        let store = SqliteStore::new(pool);
        store.migrate().await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("listening {}", listener.local_addr()?);
        let app = ts_handlers::router(store);
        tokio::spawn(async move { axum::serve(listener, app).await }).await??;
        anyhow::Ok(())
    })
}
