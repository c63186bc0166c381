//! latch behind latch-axum's `SessionLayer`, with get + insert handlers.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use latch::codec::Aead;
use latch::{Expiry, Keyring, SecretKey, SessionManager, SessionManagerBuilder};
use latch_axum::{Session, SessionError, SessionLayer};

/// Read the counter, add one, write it back (get + insert, like the peers).
async fn read_write(session: Session) -> Result<String, SessionError> {
    let n: u64 = session.get::<u64>("n").await?.unwrap_or(0) + 1;
    session.insert("n", n).await?;
    Ok(n.to_string())
}

/// Read the counter only.
async fn read_only(session: Session) -> Result<String, SessionError> {
    let n: Option<u64> = session.get("n").await?;
    Ok(n.unwrap_or(0).to_string())
}

async fn untouched() -> &'static str {
    "ok"
}

/// The three routes under a `SessionLayer` of `manager`.
pub fn router(manager: SessionManager) -> Router {
    Router::new()
        .route("/rw", get(read_write))
        .route("/ro", get(read_only))
        .route("/none", get(untouched))
        .layer(SessionLayer::new(manager))
}

/// The builder every latch configuration starts from: sessions live a day, so a
/// long scale run never sees its generated sessions expire.
pub fn builder() -> SessionManagerBuilder {
    SessionManager::builder().expiry(long_expiry())
}

/// One day idle, two days absolute.
pub fn long_expiry() -> Expiry {
    Expiry::default()
        .absolute(Duration::from_secs(2 * 86_400))
        .idle(Duration::from_secs(86_400))
}

/// Signed cookies under a fresh key.
pub fn signed() -> anyhow::Result<SessionManager> {
    Ok(builder()
        .signed_cookies(Keyring::new(SecretKey::generate()))
        .build()?)
}

/// Encrypted cookies with `aead` under a fresh key.
pub fn encrypted(aead: Aead) -> anyhow::Result<SessionManager> {
    Ok(builder()
        .encrypted_cookies(Keyring::new(SecretKey::generate()), aead)
        .build()?)
}

/// A fresh keyring for `encrypt_at_rest`.
pub fn at_rest_keys() -> Keyring {
    Keyring::new(SecretKey::generate())
}
