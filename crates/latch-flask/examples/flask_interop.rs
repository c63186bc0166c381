//! The Rust half of `examples/flask-interop/`: an axum app that shares sign-in
//! with the Flask app there. See that folder's README for running both behind
//! one domain.
//!
//! ```text
//! FLASK_SECRET_KEY=... cargo run -p latch-flask --example flask_interop
//! ```
//!
//! Environment (the same values as the Flask app's):
//! - `FLASK_SECRET_KEY` (required): Flask's `SECRET_KEY`.
//! - `SESSION_BACKEND`: `cookie` (default, Flask's signed cookie) or `redis`
//!   (Flask-Session in Redis).
//! - `REDIS_URL`: for `redis`, default `redis://127.0.0.1:6379/`.
//! - `INSECURE_DEV_COOKIES=1`: plain-http development only (no `Secure`).
//! - `LISTEN`: default `127.0.0.1:3000`.

use std::time::Duration;

use axum::Router;
use axum::response::Html;
use axum::routing::{get, post};
use latch::{CookieConfig, SessionManager};
use latch_axum::{Session, SessionError, SessionLayer};
use latch_flask::{FlaskCookieFormat, FlaskSessionIds, FlaskSessionStore, flask_expiry};

/// Flask's default `PERMANENT_SESSION_LIFETIME`; the Flask app sets the same.
const LIFETIME: Duration = latch_flask::DEFAULT_MAX_AGE;

async fn home(session: Session) -> Result<Html<String>, SessionError> {
    let visits = session
        .update("rust_visits", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    let who = match session.user_id().await? {
        Some(user) => format!(
            "Signed in as <b>{}</b> (by Flask or Rust).",
            html_escape(&user)
        ),
        None => "Not signed in. <a href=\"/login\">Sign in with Flask</a>.".to_owned(),
    };
    Ok(Html(format!(
        "<h1>Rust (axum + latch)</h1><p>{who}</p><p>Rust pages seen in this session: \
         {visits}</p><form method=post action=/rust/logout><button>Sign out (in Rust)\
         </button></form><p><a href=\"/\">Flask pages</a></p>"
    )))
}

async fn logout(session: Session) -> Result<Html<&'static str>, SessionError> {
    // Ends the session for both apps: the Flask cookie is removed (cookie mode)
    // or the shared Redis entry deleted (Flask-Session mode).
    session.destroy().await?;
    Ok(Html(
        "<p>Signed out everywhere. <a href=\"/rust/\">Back</a></p>",
    ))
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn cookie_config() -> anyhow::Result<CookieConfig> {
    let builder = CookieConfig::builder().name("session");
    let builder = if std::env::var("INSECURE_DEV_COOKIES").is_ok_and(|v| v == "1") {
        builder.insecure_dev_mode()
    } else {
        builder
    };
    Ok(builder.build()?)
}

async fn manager() -> anyhow::Result<SessionManager> {
    let key = std::env::var("FLASK_SECRET_KEY")
        .map_err(|_| anyhow::anyhow!("set FLASK_SECRET_KEY to the Flask app's SECRET_KEY"))?;
    let backend = std::env::var("SESSION_BACKEND").unwrap_or_else(|_| "cookie".into());
    let builder = if backend == "redis" {
        let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".into());
        let store = FlaskSessionStore::builder()
            .lifetime(LIFETIME)
            .connect(&url)
            .await?;
        SessionManager::builder()
            .store(store)
            .id_format(FlaskSessionIds::unsigned())
            .expiry(flask_expiry(LIFETIME)?)
    } else {
        FlaskCookieFormat::new(&key)?
            .max_age(LIFETIME)
            .configure(SessionManager::builder())?
    };
    Ok(builder.cookie(cookie_config()?).build()?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let app = Router::new()
        .route("/rust/", get(home))
        .route("/rust/logout", post(logout))
        .layer(SessionLayer::new(manager().await?));
    let addr = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("Rust app on http://{addr}/rust/");
    axum::serve(listener, app).await?;
    Ok(())
}
