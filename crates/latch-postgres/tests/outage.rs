//! A real outage: a private PostgreSQL server is crashed and restarted under a
//! running store. Calls fail fast as "unavailable" (503 over HTTP), the store
//! recovers by itself, and nothing acknowledged before the crash is lost.

mod common;

use std::future::Future;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use latch::{Record, SessionId, SessionManager};
use latch_axum::{Session, SessionError, SessionLayer};
use latch_conformance::servers::PrivatePostgres;
use latch_postgres::PostgresStore;
use tower::ServiceExt;

/// How long latch waits for any one store call.
const STORE_TIMEOUT: Duration = Duration::from_secs(1);
/// A failed call must come back well before a user gives up.
const FAIL_WITHIN: Duration = Duration::from_secs(3);
/// After the server is back, requests must succeed within this.
const RECOVER_WITHIN: Duration = Duration::from_secs(2);

fn header_for(manager: &SessionManager, cookie: Option<&str>) -> Option<String> {
    cookie.map(|c| format!("{}={c}", manager.cookie_config().name()))
}

/// One request that stores `key = value`; the cookie value it set, if any.
async fn write(
    manager: &SessionManager,
    cookie: Option<&str>,
    key: &str,
    value: i64,
) -> latch::Result<Option<String>> {
    let header = header_for(manager, cookie);
    let session = manager.start(header.as_deref(), Default::default());
    session.insert(key, value).await?;
    let set = manager.finish(&session).await?.set_cookie;
    Ok(set.map(|s| s.split(';').next().unwrap_or_default().to_owned()))
}

/// One request that reads `key`.
async fn read(manager: &SessionManager, cookie: &str, key: &str) -> latch::Result<Option<i64>> {
    let header = header_for(manager, Some(cookie));
    let session = manager.start(header.as_deref(), Default::default());
    let value = session.get(key).await?;
    manager.finish(&session).await?;
    Ok(value)
}

/// One request that increments the `visits` counter.
async fn bump(manager: &SessionManager, cookie: &str) -> latch::Result<u64> {
    let header = header_for(manager, Some(cookie));
    let session = manager.start(header.as_deref(), Default::default());
    let n = session
        .update("visits", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    manager.finish(&session).await?;
    Ok(n)
}

/// The cookie value in a `name=value` pair.
fn value_of(pair: &str) -> &str {
    pair.split_once('=').map_or("", |(_, v)| v)
}

/// Run `call` while the server is down: it must fail, as "unavailable", quickly.
async fn fails_fast<T: std::fmt::Debug>(what: &str, call: impl Future<Output = latch::Result<T>>) {
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .unwrap_or_else(|_| panic!("{what}: hung for 10 s against a dead server"));
    let elapsed = started.elapsed();
    let err = result.expect_err(&format!("{what}: succeeded against a dead server"));
    assert!(err.is_unavailable(), "{what}: {err:?}");
    assert!(elapsed < FAIL_WITHIN, "{what}: took {elapsed:?}");
    eprintln!(
        "down: {what} failed in {elapsed:?}: {}",
        common::chain(&err)
    );
}

async fn http_write(session: Session) -> Result<&'static str, SessionError> {
    session.insert("k", "v").await?;
    Ok("written")
}

async fn http_read(session: Session) -> Result<String, SessionError> {
    Ok(session
        .get::<String>("k")
        .await?
        .unwrap_or_else(|| "none".into()))
}

fn app(manager: SessionManager) -> Router {
    Router::new()
        .route("/write", post(http_write))
        .route("/read", get(http_read))
        .layer(SessionLayer::new(manager))
}

/// Send one request; status, the `name=value` of any `Set-Cookie`, and the body.
async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    cookie: Option<&str>,
) -> (StatusCode, Option<String>, String) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("infallible service");
    let (parts, body) = res.into_parts();
    let set = parts.headers.get(header::SET_COOKIE).map(|v| {
        let text = v.to_str().expect("ASCII cookie");
        text.split(';').next().unwrap_or_default().to_owned()
    });
    let body = body.collect().await.expect("body").to_bytes();
    (
        parts.status,
        set,
        String::from_utf8(body.to_vec()).expect("UTF-8 body"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_fails_fast_recovers_and_keeps_acknowledged_writes() {
    let server = match PrivatePostgres::start() {
        Ok(server) => server,
        Err(why) => {
            let _: Option<()> =
                latch_conformance::skip_or_fail("a private PostgreSQL server", &why);
            return;
        }
    };
    let store = PostgresStore::builder(&server.url())
        .pool_size(4)
        .connect_timeout(Duration::from_millis(500))
        .wait_timeout(Duration::from_millis(500))
        .connect()
        .await
        .expect("connect to the private server");
    let manager = SessionManager::builder()
        .store(store.clone())
        .store_timeout(STORE_TIMEOUT)
        .build()
        .expect("manager");
    let app = app(manager.clone());

    // Acknowledged writes: 20 sessions, one counter bumped 5 times, one over HTTP.
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let pair = write(&manager, None, "n", i)
            .await
            .expect("write acknowledged")
            .expect("a new session sets a cookie");
        acknowledged.push((value_of(&pair).to_owned(), i));
    }
    let counter = acknowledged[0].0.clone();
    for expected in 1..=5 {
        assert_eq!(bump(&manager, &counter).await.expect("bump"), expected);
    }
    let (status, set, _) = send(&app, "POST", "/write", None).await;
    assert_eq!(status, StatusCode::OK);
    let http_cookie = set.expect("HTTP write sets a cookie");

    server.crash().expect("crash the server");
    let crashed = Instant::now();

    fails_fast("reading a session", read(&manager, &counter, "n")).await;
    fails_fast("updating a session", bump(&manager, &counter)).await;
    fails_fast("creating a session", write(&manager, None, "n", 99)).await;
    fails_fast("purging", manager.purge_expired(100)).await;
    // The store on its own, without latch's timeout around it, fails fast too.
    let key = SessionId::generate().store_key();
    fails_fast("store.load", latch::SessionStore::load(&store, &key)).await;
    fails_fast(
        "store.create",
        latch::SessionStore::create(&store, &key, &Record::new(0)),
    )
    .await;

    let started = Instant::now();
    let (status, set, body) = send(&app, "GET", "/read", Some(&http_cookie)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(
        body,
        "Service temporarily unavailable; please try again shortly.\n"
    );
    assert_eq!(set, None, "no cookie change while down");
    let (status, _, _) = send(&app, "POST", "/write", None).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "a write that was not stored is not acknowledged"
    );
    assert!(
        started.elapsed() < 2 * FAIL_WITHIN,
        "{:?}",
        started.elapsed()
    );

    let down_for = crashed.elapsed();
    server.resume().expect("restart the server");
    let restarted = Instant::now();
    let recovered_in = loop {
        match read(&manager, &counter, "n").await {
            Ok(value) => {
                assert_eq!(value, Some(0));
                break restarted.elapsed();
            }
            Err(err) if restarted.elapsed() < RECOVER_WITHIN => {
                eprintln!("not yet: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("no recovery within {RECOVER_WITHIN:?}: {err:?}"),
        }
    };
    eprintln!("down for {down_for:?}; recovered {recovered_in:?} after the restart");

    for (cookie, value) in &acknowledged {
        assert_eq!(
            read(&manager, cookie, "n")
                .await
                .expect("read after recovery"),
            Some(*value),
            "acknowledged write lost"
        );
    }
    assert_eq!(bump(&manager, &counter).await.expect("bump"), 6);
    let (status, _, body) = send(&app, "GET", "/read", Some(&http_cookie)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "v"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_server_times_out_and_recovers() {
    let server = match PrivatePostgres::start() {
        Ok(server) => server,
        Err(why) => {
            let _: Option<()> =
                latch_conformance::skip_or_fail("a private PostgreSQL server", &why);
            return;
        }
    };
    let store = PostgresStore::builder(&server.url())
        .pool_size(2)
        .connect_timeout(Duration::from_millis(500))
        .wait_timeout(Duration::from_millis(500))
        .connect()
        .await
        .expect("connect to the private server");
    let manager = SessionManager::builder()
        .store(store)
        .store_timeout(STORE_TIMEOUT)
        .build()
        .expect("manager");
    let pair = write(&manager, None, "n", 7)
        .await
        .expect("write acknowledged")
        .expect("a new session sets a cookie");
    let cookie = value_of(&pair).to_owned();

    server.freeze().expect("freeze the server");
    // More calls than pooled connections: every one must give up, none may queue
    // forever behind a stuck connection.
    for round in 0..4 {
        fails_fast(
            &format!("reading a session, round {round}"),
            read(&manager, &cookie, "n"),
        )
        .await;
    }
    fails_fast("creating a session", write(&manager, None, "n", 8)).await;

    server.thaw().expect("thaw the server");
    let thawed = Instant::now();
    let recovered_in = loop {
        match read(&manager, &cookie, "n").await {
            Ok(value) => {
                assert_eq!(value, Some(7), "acknowledged write lost");
                break thawed.elapsed();
            }
            Err(err) if thawed.elapsed() < RECOVER_WITHIN => {
                eprintln!("not yet: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("no recovery within {RECOVER_WITHIN:?}: {err:?}"),
        }
    };
    eprintln!("frozen server: recovered {recovered_in:?} after thawing");
    assert_eq!(bump(&manager, &cookie).await.expect("bump"), 1);
}
