//! A visit counter on latch sessions: `cargo run -p latch-axum --example counter`,
//! then open http://localhost:3000 (browsers treat localhost as secure, so the
//! `Secure`, `__Host-` cookie works over plain http there).

use axum::{Router, routing::get};
use latch::{MemoryStore, SessionManager};
use latch_axum::{Session, SessionError, SessionLayer};

async fn visits(session: Session) -> Result<String, SessionError> {
    let n: u64 = session
        .update("visits", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    Ok(format!("You have visited {n} times.\n"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manager = SessionManager::builder()
        .store(MemoryStore::new())
        .build()?;
    let app = Router::new()
        .route("/", get(visits))
        .layer(SessionLayer::new(manager));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://localhost:3000");
    axum::serve(listener, app).await?;
    Ok(())
}
