//! The opt-in read cache ([`latch_redis::ReadCache`]) against real Redis
//! servers: reads are served from memory, a logout on another app instance
//! is seen within a measured bound, and the cache is dropped when its
//! invalidation stream is lost (connection closed) or stops being served
//! within its lease (server gone silent).
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::{get, post};
use latch::{ErrorKind, Record, SessionId, SessionManager, SessionStore};
use latch_axum::{Session, SessionError, SessionLayer};
use latch_conformance::servers::PrivateRedis;
use latch_redis::{ReadCache, RedisStore};

/// A store with the read cache on, under `prefix` on `url`.
async fn cached_store(url: &str, prefix: &str, cache: ReadCache) -> Option<RedisStore> {
    match RedisStore::builder(url)
        .prefix(prefix)
        .read_cache(cache)
        .connect()
        .await
    {
        Ok(store) => Some(store),
        Err(e) => latch_conformance::skip_or_fail("Redis", &format!("LATCH_REDIS_URL: {e:?}")),
    }
}

fn private_redis() -> Option<PrivateRedis> {
    match PrivateRedis::start() {
        Ok(server) => Some(server),
        Err(why) => latch_conformance::skip_or_fail("Redis", &why),
    }
}

/// A live record at version `version`.
fn record(version: u64) -> Record {
    common::live_record(version)
}

/// Poll `cond` every millisecond for up to 2 s.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within 2 s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_read_again_is_served_from_memory() {
    let url = common::redis_url();
    let prefix = common::unique_prefix("cache-hit");
    let Some(store) = cached_store(&url, &prefix, ReadCache::default()).await else {
        return;
    };
    let key = SessionId::generate().store_key();
    assert!(store.create(&key, &record(1)).await.unwrap());
    let first = store.load(&key).await.unwrap().unwrap();
    let before = store.read_cache_stats().unwrap();
    let second = store.load(&key).await.unwrap().unwrap();
    let after = store.read_cache_stats().unwrap();
    assert_eq!(first, second);
    assert_eq!(after.hits, before.hits + 1, "{before:?} -> {after:?}");
    assert_eq!(after.misses, before.misses);

    // Change the hash behind the store's back: Redis's invalidation reaches
    // the cache, and the next read sees the change.
    let mut raw = common::raw(&url).await;
    let hash = format!("{prefix}s:{}", key.to_hex());
    let _: () = redis::cmd("HSET")
        .arg(&hash)
        .arg("seen")
        .arg(first.last_seen + 7)
        .query_async(&mut raw)
        .await
        .unwrap();
    let mut seen = 0;
    let deadline = Instant::now() + Duration::from_secs(2);
    while seen != first.last_seen + 7 {
        assert!(Instant::now() < deadline, "the invalidation never arrived");
        seen = store.load(&key).await.unwrap().unwrap().last_seen;
    }
    // A session that does not exist is read from Redis, and not kept.
    let missing = SessionId::generate().store_key();
    assert_eq!(store.load(&missing).await.unwrap(), None);
    assert!(store.create(&missing, &record(1)).await.unwrap());
    assert_eq!(store.load(&missing).await.unwrap().unwrap().version, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn this_stores_own_writes_are_read_back_at_once() {
    let url = common::redis_url();
    let prefix = common::unique_prefix("cache-own");
    let Some(store) = cached_store(&url, &prefix, ReadCache::default()).await else {
        return;
    };
    // No waiting between a write and the next read: the store forgets what
    // it wrote itself, whether or not Redis's invalidation has arrived.
    for _ in 0..50 {
        let key = SessionId::generate().store_key();
        assert!(store.create(&key, &record(1)).await.unwrap());
        assert_eq!(store.load(&key).await.unwrap().unwrap().version, 1);
        assert_eq!(store.load(&key).await.unwrap().unwrap().version, 1);
        let saved = store.save(&key, &record(2), 1).await.unwrap();
        assert_eq!(saved, latch::SaveOutcome::Saved);
        assert_eq!(store.load(&key).await.unwrap().unwrap().version, 2);
        assert!(store.delete(&key).await.unwrap());
        assert_eq!(store.load(&key).await.unwrap(), None);
    }
}

/// A save goes through the cache's own connection and what it wrote is
/// served without a round trip; Redis still tracks the key afterwards, so
/// another instance's later write and delete reach this cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_session_is_served_from_memory_and_others_writes_still_reach_it() {
    let url = common::redis_url();
    let prefix = common::unique_prefix("cache-save");
    let Some(a) = cached_store(&url, &prefix, ReadCache::default()).await else {
        return;
    };
    let Some(b) = cached_store(&url, &prefix, ReadCache::default()).await else {
        return;
    };
    let key = SessionId::generate().store_key();
    assert!(a.create(&key, &record(1)).await.unwrap());
    assert_eq!(a.load(&key).await.unwrap().unwrap().version, 1);
    let mut saved = record(2);
    saved
        .data
        .insert("cart".into(), serde_json::json!({"items": [1, 2.5, "x"]}));
    saved.user_id = Some(common::unique_user());
    assert_eq!(
        a.save(&key, &saved, 1).await.unwrap(),
        latch::SaveOutcome::Saved
    );
    let before = a.read_cache_stats().unwrap();
    let read = a.load(&key).await.unwrap().unwrap();
    let after = a.read_cache_stats().unwrap();
    assert_eq!(
        read, saved,
        "the cached record is what a read from Redis gives"
    );
    assert_eq!(after.hits, before.hits + 1, "{before:?} -> {after:?}");
    assert_eq!(after.misses, before.misses);

    // Instance B writes after A's save: A's cache must hear of it, which it
    // does only if the save left the key tracked.
    let mut newer = saved.clone();
    newer.version = 3;
    assert_eq!(
        b.save(&key, &newer, 2).await.unwrap(),
        latch::SaveOutcome::Saved
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    while a.load(&key).await.unwrap().unwrap().version != 3 {
        assert!(
            Instant::now() < deadline,
            "instance A still serves its own save after B's (the key was not tracked again)"
        );
    }
    // And again after a save through A, for a delete through B.
    let mut third = newer.clone();
    third.version = 4;
    assert_eq!(
        a.save(&key, &third, 3).await.unwrap(),
        latch::SaveOutcome::Saved
    );
    assert_eq!(a.load(&key).await.unwrap().unwrap().version, 4);
    assert!(b.delete(&key).await.unwrap());
    let deadline = Instant::now() + Duration::from_secs(2);
    while a.load(&key).await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "instance A still serves a session B deleted"
        );
    }
    // A conflicting save keeps nothing: the next read goes to Redis.
    let other = SessionId::generate().store_key();
    assert!(a.create(&other, &record(1)).await.unwrap());
    assert_eq!(
        a.save(&other, &record(9), 5).await.unwrap(),
        latch::SaveOutcome::Conflict
    );
    assert_eq!(a.load(&other).await.unwrap().unwrap().version, 1);
}

/// A save dropped on its way (the request was cancelled) after a read
/// shared its ticket and kept the older record: no invalidation comes for
/// the cache's own write, so the store must forget the key itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_save_leaves_no_older_record_behind() {
    let url = common::redis_url();
    let prefix = common::unique_prefix("cache-cancel");
    let Some(store) = cached_store(&url, &prefix, ReadCache::default()).await else {
        return;
    };
    let mut raw = common::raw(&url).await;
    let hash = |key: &latch::StoreKey| format!("{prefix}s:{}", key.to_hex());
    let mut waker = std::task::Context::from_waker(std::task::Waker::noop());
    let mut raced = 0;
    for round in 0..20 {
        let key = SessionId::generate().store_key();
        assert!(store.create(&key, &record(1)).await.unwrap());
        // With a user, the save first files the index entry (a round trip
        // on the store's connection) before its script goes out.
        let mut newer = record(2);
        newer.user_id = Some(common::unique_user());
        let mut save = Box::pin(store.save(&key, &newer, 1));
        if save.as_mut().poll(&mut waker).is_ready() {
            continue; // done within one poll: nothing to cancel this round
        }
        // A read while the save waits: it shares the save's ticket. It
        // usually finds the older record (the case this test is after);
        // rarely the save's script has already gone out within that poll.
        if store.load(&key).await.unwrap().unwrap().version == 1 {
            raced += 1;
        }
        // Let the index entry's reply come, so the script goes out, then
        // cancel the save before its reply is handled.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let _ = save.as_mut().poll(&mut waker);
        drop(save);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let stored: Option<u64> = redis::cmd("HGET")
            .arg(hash(&key))
            .arg("ver")
            .query_async(&mut raw)
            .await
            .unwrap();
        let read = store.load(&key).await.unwrap().unwrap().version;
        assert_eq!(
            Some(read),
            stored,
            "round {round}: the cache kept an older record"
        );
    }
    assert!(
        raced >= 5,
        "only {raced} of 20 rounds read before the save went out"
    );
}

/// `POST /login` signs in as alice, `GET /me` names the user (or `nobody`),
/// `POST /logout` ends the session.
fn site(manager: SessionManager) -> Router {
    async fn login(session: Session) -> Result<&'static str, SessionError> {
        session.log_in("alice").await?;
        Ok("ok")
    }
    async fn me(session: Session) -> Result<String, SessionError> {
        Ok(session
            .user_id()
            .await?
            .unwrap_or_else(|| "nobody".to_owned()))
    }
    async fn logout(session: Session) -> Result<&'static str, SessionError> {
        session.destroy().await?;
        Ok("bye")
    }
    Router::new()
        .route("/login", post(login))
        .route("/me", get(me))
        .route("/logout", post(logout))
        .layer(SessionLayer::new(manager))
}

/// Serve `app` on a free loopback port; returns its base URL.
async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// One app instance: its URL and its store (to read the cache's counters).
async fn instance(url: &str, prefix: &str) -> Option<(String, Arc<RedisStore>)> {
    let store = Arc::new(cached_store(url, prefix, ReadCache::default()).await?);
    let manager = SessionManager::builder()
        .shared_store(store.clone())
        .build()
        .unwrap();
    Some((serve(site(manager)).await, store))
}

/// Two app instances on one Redis, both caching: after instance A's logout
/// response is out, how long does instance B still take the old cookie?
/// Measured over real HTTP; the bound asserted is the 10 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_one_instance_is_seen_by_the_other_within_the_bound() {
    const ROUNDS: usize = 100;
    const BOUND: Duration = Duration::from_millis(10);
    let url = common::redis_url();
    let prefix = common::unique_prefix("cache-two");
    let Some((a, _)) = instance(&url, &prefix).await else {
        return;
    };
    let (b, b_store) = instance(&url, &prefix).await.unwrap();
    // Plain http on loopback: the client sends the (Secure) cookie by hand.
    let http = reqwest::Client::new();
    let get = |base: &str, path: &str, cookie: &str| {
        http.get(format!("{base}{path}"))
            .header("cookie", cookie)
            .send()
    };

    let mut stale_rounds = 0;
    let mut longest = Duration::ZERO;
    for _ in 0..ROUNDS {
        let signed_in = http.post(format!("{a}/login")).send().await.unwrap();
        let cookie = signed_in
            .headers()
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        // B reads it twice: the second read is a cache hit.
        let hits = b_store.read_cache_stats().unwrap().hits;
        for _ in 0..2 {
            let body = get(&b, "/me", &cookie).await.unwrap().text().await.unwrap();
            assert_eq!(body, "alice");
        }
        assert!(
            b_store.read_cache_stats().unwrap().hits > hits,
            "B never hit its cache"
        );

        let out = http
            .post(format!("{a}/logout"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert!(out.status().is_success());
        let logged_out = Instant::now();
        let mut stale = false;
        loop {
            let body = get(&b, "/me", &cookie).await.unwrap().text().await.unwrap();
            if body == "nobody" {
                break;
            }
            assert_eq!(body, "alice");
            stale = true;
            let window = logged_out.elapsed();
            assert!(
                window < BOUND,
                "instance B still took the logged-out cookie {window:?} after A's logout"
            );
        }
        if stale {
            stale_rounds += 1;
            longest = longest.max(logged_out.elapsed());
        }
    }
    println!(
        "read cache, two instances: {stale_rounds} of {ROUNDS} logouts were still taken by the \
         other instance on its first request after the logout response; longest window \
         {longest:?} (bound {BOUND:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_is_dropped_when_its_connection_is_lost() {
    let Some(server) = private_redis() else {
        return;
    };
    // A long lease: the heartbeat (every 30 s) cannot be what notices the
    // loss here, the connection's own report of it must.
    let lease = ReadCache::default().lease(Duration::from_secs(60));
    let cached = cached_store(&server.url(), "drop:", lease).await.unwrap();
    let writer = RedisStore::builder(server.url())
        .prefix("drop:")
        .connect()
        .await
        .unwrap();
    let key = SessionId::generate().store_key();
    assert!(writer.create(&key, &record(1)).await.unwrap());
    cached.load(&key).await.unwrap();
    let hits = cached.read_cache_stats().unwrap().hits;
    assert_eq!(cached.load(&key).await.unwrap().unwrap().version, 1);
    assert_eq!(cached.read_cache_stats().unwrap().hits, hits + 1);

    // Every client connection is closed by the server; what is written
    // meanwhile is never announced to the cache's old connection.
    let mut admin = common::raw(&server.url()).await;
    let _: () = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("normal")
        .arg("SKIPME")
        .arg("yes")
        .query_async(&mut admin)
        .await
        .unwrap();
    eventually("the cache noticing its lost connection", || {
        cached.read_cache_stats().unwrap().drops == 1
    })
    .await;
    let mut saved = writer.save(&key, &record(2), 1).await;
    if saved.is_err() {
        // The writer's own connection was closed too; it reconnects.
        saved = writer.save(&key, &record(2), 1).await;
    }
    assert_eq!(saved.unwrap(), latch::SaveOutcome::Saved);
    // The store's own connection was closed too: its first command fails
    // and it reconnects (as in tests/outage.rs).
    let mut loaded = cached.load(&key).await;
    if loaded.is_err() {
        loaded = cached.load(&key).await;
    }
    assert_eq!(
        loaded.unwrap().unwrap().version,
        2,
        "a cache that outlived its invalidation stream answered with the old record"
    );
    // A new tracking connection is opened at once, and the cache serves again.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let hits = cached.read_cache_stats().unwrap().hits;
        assert_eq!(cached.load(&key).await.unwrap().unwrap().version, 2);
        if cached.read_cache_stats().unwrap().hits > hits {
            break;
        }
        assert!(Instant::now() < deadline, "the cache never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_stops_cached_reads_within_the_lease() {
    const LEASE: Duration = Duration::from_millis(400);
    let Some(server) = private_redis() else {
        return;
    };
    let store = RedisStore::builder(server.url())
        .prefix("lease:")
        // Longer than the lease: the heartbeat's PING does not fail in time,
        // the lease alone must stop the cache.
        .response_timeout(Duration::from_secs(3))
        .operation_timeout(Duration::from_millis(600))
        .read_cache(ReadCache::default().lease(LEASE))
        .connect()
        .await
        .unwrap();
    let key = SessionId::generate().store_key();
    assert!(store.create(&key, &record(1)).await.unwrap());
    store.load(&key).await.unwrap();
    assert!(store.load(&key).await.is_ok());

    // SIGSTOP: the connection stays open but nothing comes back, so no
    // invalidation could arrive either.
    server.freeze().unwrap();
    let frozen = Instant::now();
    tokio::time::sleep(LEASE + Duration::from_millis(100)).await;
    let read = store.load(&key).await;
    let elapsed = frozen.elapsed();
    server.thaw().unwrap();
    let err = read.expect_err("a cached session was served past its lease");
    assert_eq!(err.kind(), &ErrorKind::Store, "{err:?} after {elapsed:?}");

    // Once the server answers again, reads work and are cached again.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let hits = store.read_cache_stats().unwrap().hits;
        if let Ok(Some(found)) = store.load(&key).await {
            assert_eq!(found.version, 1);
            if store.read_cache_stats().unwrap().hits > hits {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the cache never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A read cache starts only on a master: on a replica (like an old master
/// after a failover behind one name) the writes that should invalidate it
/// would be made elsewhere. The heartbeat asks the same `ROLE` question.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_cache_is_refused_on_a_replica() {
    let Some(master) = private_redis() else {
        return;
    };
    let replica = PrivateRedis::start_replica_of(&master).unwrap();
    let err = RedisStore::builder(replica.url())
        .read_cache(ReadCache::default())
        .connect()
        .await
        .expect_err("a read cache on a replica");
    assert!(
        err.to_string().contains("needs the server to be a master"),
        "{err}"
    );
    // The same server without the cache connects (reads from a replica are
    // the operator's choice).
    assert!(RedisStore::builder(replica.url()).connect().await.is_ok());
}
