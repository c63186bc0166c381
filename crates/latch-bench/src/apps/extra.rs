//! axum-extra's signed and private cookie jars holding the counter.

use axum::Router;
use axum::routing::get;
use axum_extra::extract::cookie::{Cookie, Key, PrivateCookieJar, SameSite, SignedCookieJar};

fn cookie(n: u64) -> Cookie<'static> {
    // The same attributes latch sets by default.
    Cookie::build(("n", n.to_string()))
        .path("/")
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Lax)
        .build()
}

fn counter(value: Option<Cookie<'static>>) -> Option<u64> {
    value.and_then(|c| c.value().parse().ok())
}

async fn signed_rw(jar: SignedCookieJar) -> (SignedCookieJar, String) {
    let n = counter(jar.get("n")).unwrap_or(0) + 1;
    (jar.add(cookie(n)), n.to_string())
}

async fn signed_ro(jar: SignedCookieJar) -> String {
    counter(jar.get("n")).unwrap_or(0).to_string()
}

async fn private_rw(jar: PrivateCookieJar) -> (PrivateCookieJar, String) {
    let n = counter(jar.get("n")).unwrap_or(0) + 1;
    (jar.add(cookie(n)), n.to_string())
}

async fn private_ro(jar: PrivateCookieJar) -> String {
    counter(jar.get("n")).unwrap_or(0).to_string()
}

async fn untouched() -> &'static str {
    "ok"
}

/// The signed jar's routes.
pub fn signed() -> Router {
    Router::new()
        .route("/rw", get(signed_rw))
        .route("/ro", get(signed_ro))
        .route("/none", get(untouched))
        .with_state(Key::generate())
}

/// The private (encrypted) jar's routes.
pub fn private() -> Router {
    Router::new()
        .route("/rw", get(private_rw))
        .route("/ro", get(private_ro))
        .route("/none", get(untouched))
        .with_state(Key::generate())
}
