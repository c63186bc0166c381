//! A real outage: a private `redis-server` is killed (SIGKILL) and restarted on
//! the same port while one store and one `SessionManager` keep serving.
//! Calls fail fast with "unavailable" errors (503 over HTTP) while it is down,
//! work again within 2 s of its return without rebuilding anything, and every
//! acknowledged write is still there (the server runs with
//! `appendfsync always`, so what it acknowledged is on disk when it is killed).
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use http::StatusCode;
use latch::{ErrorKind, SessionId, SessionManager, SessionStore, UserIndex as _};
use latch_conformance::servers::PrivateRedis;
use latch_redis::RedisStore;

/// How long a failing call may take: well above the 1 s timeouts, well below a hang.
const FAIL_FAST: Duration = Duration::from_secs(3);

/// A private `redis-server`, or `None` after a loud skip when there is none.
fn private_redis() -> Option<PrivateRedis> {
    match PrivateRedis::start() {
        Ok(server) => Some(server),
        Err(why) => latch_conformance::skip_or_fail("Redis", &why),
    }
}

fn app(manager: SessionManager) -> Router {
    common::counter_app(manager)
}

fn store_key_of(cookie_pair: &str) -> latch::StoreKey {
    let value = cookie_pair.split_once('=').unwrap().1;
    SessionId::parse(value).unwrap().store_key()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_fails_fast_recovers_and_loses_nothing_acknowledged() {
    let Some(mut server) = private_redis() else {
        return;
    };
    let store = Arc::new(
        RedisStore::builder(server.url())
            .prefix("outage:")
            .connection_timeout(Duration::from_millis(500))
            .response_timeout(Duration::from_secs(1))
            .operation_timeout(Duration::from_secs(1))
            .connect()
            .await
            .unwrap(),
    );
    // The store bounds its own calls, so latch arms no second timer: what
    // follows shows the store's bound alone still fails every call fast.
    assert_eq!(
        latch::SessionStore::call_timeout(&*store),
        Some(Duration::from_secs(1))
    );
    let manager = SessionManager::builder()
        .shared_store(store.clone())
        .store_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let app = app(manager.clone());

    // Acknowledged writes: three sessions, each counted up to 3.
    let mut cookies = Vec::new();
    for _ in 0..3 {
        let (status, cookie, body) = common::send(&app, "POST", "/add", None).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "1"));
        cookies.push(cookie.expect("a new session sets a cookie"));
    }
    for cookie in &cookies {
        for expected in ["2", "3"] {
            let (status, _, body) = common::send(&app, "POST", "/add", Some(cookie)).await;
            assert_eq!((status, body.as_str()), (StatusCode::OK, expected));
        }
    }

    server.kill();

    // Down: every kind of call fails fast, as "unavailable".
    let started = Instant::now();
    let (status, _, body) = common::send(&app, "GET", "/count", Some(&cookies[0])).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        "Service temporarily unavailable; please try again shortly.\n"
    );
    assert!(started.elapsed() < FAIL_FAST, "{:?}", started.elapsed());

    let started = Instant::now();
    let (status, cookie, _) = common::send(&app, "POST", "/add", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        cookie, None,
        "a session that was not stored is not handed out"
    );
    assert!(started.elapsed() < FAIL_FAST, "{:?}", started.elapsed());

    let started = Instant::now();
    let err = store.load(&store_key_of(&cookies[1])).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert_eq!(err.kind(), &ErrorKind::Store);
    assert!(std::error::Error::source(&err).is_some(), "cause kept");
    assert!(started.elapsed() < FAIL_FAST, "{:?}", started.elapsed());

    let started = Instant::now();
    let session = manager.start(Some(cookies[2].as_str()), Default::default());
    let err = session.get::<u64>("n").await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert!(started.elapsed() < FAIL_FAST, "{:?}", started.elapsed());

    // Back: the same store serves again within 2 s of the server's return.
    server.resume().unwrap();
    let back = Instant::now();
    loop {
        let (status, _, _) = common::send(&app, "GET", "/count", Some(&cookies[0])).await;
        if status == StatusCode::OK {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(2),
            "not recovered 2 s after the server returned (last status {status})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        back.elapsed() < Duration::from_secs(2),
        "{:?}",
        back.elapsed()
    );
    eprintln!("recovered {:?} after the server returned", back.elapsed());

    // Nothing acknowledged was lost, and writes work again.
    for cookie in &cookies {
        let (status, _, body) = common::send(&app, "GET", "/count", Some(cookie)).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "3"), "{cookie}");
    }
    let (status, _, body) = common::send(&app, "POST", "/add", Some(&cookies[0])).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "4"));
}

/// A server that accepts connections but never answers (SIGSTOP) is the case
/// only timeouts can catch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_server_times_out_and_the_store_recovers() {
    let Some(server) = private_redis() else {
        return;
    };
    let store = RedisStore::builder(server.url())
        .prefix("hung:")
        .connection_timeout(Duration::from_millis(500))
        .response_timeout(Duration::from_millis(500))
        .operation_timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap();
    let key = SessionId::generate().store_key();
    let mut record = latch::Record::new(common::wall_now());
    record.expires_at = common::wall_now() + 600;
    assert!(store.create(&key, &record).await.unwrap());

    server.freeze().unwrap();
    for _ in 0..3 {
        let started = Instant::now();
        let err = store.load(&key).await.unwrap_err();
        assert!(err.is_unavailable(), "{err:?}");
        assert!(started.elapsed() < FAIL_FAST, "{:?}", started.elapsed());
        eprintln!(
            "hung server: load failed after {:?}: {err}",
            started.elapsed()
        );
    }
    let started = Instant::now();
    let err = store.list_by_user("someone", common::wall_now()).await;
    assert!(err.unwrap_err().is_unavailable());
    assert!(started.elapsed() < FAIL_FAST, "{:?}", started.elapsed());

    server.thaw().unwrap();
    let back = Instant::now();
    let loaded = loop {
        match store.load(&key).await {
            Ok(loaded) => break loaded,
            Err(e) => assert!(
                back.elapsed() < Duration::from_secs(2),
                "not recovered 2 s after the server resumed: {e:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        back.elapsed() < Duration::from_secs(2),
        "{:?}",
        back.elapsed()
    );
    assert_eq!(loaded.map(|r| r.version), Some(record.version));
}

#[tokio::test]
async fn connecting_to_a_down_server_fails_fast() {
    let url = format!(
        "redis://127.0.0.1:{}/",
        latch_conformance::servers::free_port().unwrap()
    );
    let started = Instant::now();
    let err = RedisStore::builder(&url)
        .connection_timeout(Duration::from_millis(500))
        .operation_timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Store);
    assert!(err.is_unavailable());
    assert!(started.elapsed() < FAIL_FAST, "{:?}", started.elapsed());
}

/// A connection the server drops (its idle `timeout`, a proxy, `CLIENT
/// KILL`) costs no failed read: the read is sent again on the connection the
/// driver opens anew. Found by a black-box attack: the first request after
/// each kill got a 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_costs_no_failed_read() {
    let Some(server) = private_redis() else {
        return;
    };
    let store = RedisStore::builder(server.url())
        .prefix("dropped:")
        .connect()
        .await
        .unwrap();
    let key = SessionId::generate().store_key();
    assert!(store.create(&key, &common::live_record(1)).await.unwrap());
    let mut raw = common::raw(&server.url()).await;
    for round in 0..5 {
        let killed: i64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("normal")
            .arg("SKIPME")
            .arg("yes")
            .query_async(&mut raw)
            .await
            .unwrap();
        assert!(
            killed >= 1,
            "round {round}: no connection of the store was killed"
        );
        let loaded = store.load(&key).await;
        assert!(
            matches!(&loaded, Ok(Some(r)) if r.version == 1),
            "round {round}: {loaded:?}"
        );
    }
}
