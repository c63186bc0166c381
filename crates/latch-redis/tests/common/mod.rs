//! Shared by the integration tests: where the servers are, and fresh stores.
//!
//! Server addresses are read at run time: `LATCH_REDIS_URL` (default
//! `redis://127.0.0.1:6379/`); the cluster tests use `LATCH_REDIS_CLUSTER_URLS`
//! or start a private cluster (`latch_conformance::servers::ClusterSite`). A
//! missing server is a loud skip, or a failure with `LATCH_REQUIRE_BACKENDS=1`.
#![allow(dead_code)] // each test binary uses its own part of this module

use std::time::{SystemTime, UNIX_EPOCH};

use latch::SessionId;
use latch_redis::RedisStore;

/// The single server's URL.
pub fn redis_url() -> String {
    std::env::var("LATCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned())
}

/// A key prefix no other test uses, so tests can share a server in parallel.
pub fn unique_prefix(tag: &str) -> String {
    format!(
        "latch-test:{tag}:{}:",
        &SessionId::generate().encode()[..12]
    )
}

/// A user id no other test uses.
pub fn unique_user() -> String {
    format!("user-{}", &SessionId::generate().encode()[..16])
}

/// A store on the single server under `prefix`, or `None` (after a loud skip)
/// when the server is unreachable.
pub async fn single_store(prefix: &str) -> Option<RedisStore> {
    let url = redis_url();
    match RedisStore::builder(&url).prefix(prefix).connect().await {
        Ok(store) => Some(store),
        // The URL may carry a password: name the variable, not its value.
        Err(e) => latch_conformance::skip_or_fail("Redis", &format!("LATCH_REDIS_URL: {e:?}")),
    }
}

/// A plain connection to the single server, to look at what the store wrote.
pub async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("valid URL")
        .get_multiplexed_async_connection()
        .await
        .expect("connect for inspection")
}

/// The wall clock in Unix seconds (Redis TTLs run on it).
pub fn wall_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

/// A record at `version` that lives ten minutes from now.
pub fn live_record(version: u64) -> latch::Record {
    let mut record = latch::Record::new(wall_now());
    record.expires_at = wall_now() + 600;
    record.version = version;
    record
}

/// Write a session through `store` and read it back: the connection works
/// both ways.
pub async fn one_round_trip(store: &RedisStore) {
    use latch::{Record, SessionStore as _};
    let key = SessionId::generate().store_key();
    let mut record = Record::new(wall_now());
    record.expires_at = wall_now() + 600;
    record.version = 1;
    assert!(store.create(&key, &record).await.expect("create"));
    let loaded = store.load(&key).await.expect("load").expect("the session");
    assert_eq!(loaded.version, 1);
    assert!(store.delete(&key).await.expect("delete"));
}

/// `POST /add` (add one to the session's counter, answer the new value) and
/// `GET /count` (answer it) under a `SessionLayer` of `manager`: the app the
/// outage and failover tests drive.
pub fn counter_app(manager: latch::SessionManager) -> axum::Router {
    use axum::routing::{get, post};
    use latch_axum::{Session, SessionError, SessionLayer};

    async fn add(session: Session) -> Result<String, SessionError> {
        let n: u64 = session
            .update("n", |n: Option<u64>| n.unwrap_or(0) + 1)
            .await?;
        Ok(n.to_string())
    }
    async fn count(session: Session) -> Result<String, SessionError> {
        Ok(session.get::<u64>("n").await?.unwrap_or(0).to_string())
    }
    axum::Router::new()
        .route("/add", post(add))
        .route("/count", get(count))
        .layer(SessionLayer::new(manager))
}

/// Send one request to `app`; returns the status, the `name=value` of a
/// Set-Cookie (if any) and the body.
pub async fn send(
    app: &axum::Router,
    method: &str,
    uri: &str,
    cookie: Option<&str>,
) -> (http::StatusCode, Option<String>, String) {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;
    let mut req = http::Request::builder().method(method).uri(uri);
    if let Some(c) = cookie {
        req = req.header(http::header::COOKIE, c);
    }
    let res = app
        .clone()
        .oneshot(req.body(axum::body::Body::empty()).expect("a request"))
        .await
        .expect("the router answers");
    let (parts, body) = res.into_parts();
    let set_cookie = parts
        .headers
        .get(http::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
    let bytes = body.collect().await.expect("the body").to_bytes();
    (
        parts.status,
        set_cookie,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}
