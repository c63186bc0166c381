//! tower-sessions handlers, shared by the in-process peers and the separate
//! tower-sessions SQLite peer binary (which cannot be linked into latch-bench).

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use tower_sessions::{SessionManagerLayer, SessionStore};

/// Read the counter, add one, write it back.
async fn read_write(session: tower_sessions::Session) -> Result<String, StatusCode> {
    let n: u64 = session
        .get::<u64>("n")
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?
        .unwrap_or(0)
        + 1;
    session
        .insert("n", n)
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    Ok(n.to_string())
}

/// Read the counter only.
async fn read_only(session: tower_sessions::Session) -> Result<String, StatusCode> {
    let n: Option<u64> = session
        .get("n")
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    Ok(n.unwrap_or(0).to_string())
}

async fn untouched() -> &'static str {
    "ok"
}

/// The three routes under a tower-sessions layer over `store` (HTTP: the
/// cookie is not marked Secure, as wrk talks plain HTTP on loopback).
pub fn router<S: SessionStore + Clone>(store: S) -> Router {
    Router::new()
        .route("/rw", get(read_write))
        .route("/ro", get(read_only))
        .route("/none", get(untouched))
        .layer(SessionManagerLayer::new(store).with_secure(false))
}
