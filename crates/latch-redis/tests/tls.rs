//! TLS to Redis (T1), against private `redis-server`s serving TLS with
//! certificates made at test time: the conformance suite over TLS; a wrong CA,
//! a wrong host name and plain text to a TLS port each refused at start-up
//! with a message naming the cause; mutual TLS, and a missing client
//! certificate refused; the CA and client files given in the URL alone.

mod common;

use std::sync::Arc;

use latch::{ErrorKind, SessionStore};
use latch_conformance::servers::PrivateRedis;
use latch_redis::RedisStore;

/// A private TLS server, or `None` after a loud skip.
fn server(require_client_cert: bool) -> Option<PrivateRedis> {
    match PrivateRedis::start_tls(require_client_cert) {
        Ok(server) => Some(server),
        Err(why) => latch_conformance::skip_or_fail("a private TLS redis-server", &why),
    }
}

/// Connecting with `builder` must fail at start-up; returns the message.
async fn refused(builder: latch_redis::RedisStoreBuilder) -> String {
    let err = builder
        .connect()
        .await
        .expect_err("the connection must be refused");
    assert_eq!(err.kind(), &ErrorKind::Store, "{err:?}");
    format!("{err:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_suite_passes_over_tls() {
    let Some(server) = server(false) else { return };
    let certs = server.certs().expect("TLS server");
    let store = RedisStore::builder(server.tls_url().expect("TLS url"))
        .tls_ca_file(&certs.ca)
        .prefix(common::unique_prefix("tls"))
        .connect()
        .await
        .expect("connect over TLS");
    let store: Arc<dyn SessionStore> = Arc::new(store);
    latch_conformance::run_all(store, &[]).await;
}

#[tokio::test]
async fn a_wrong_ca_is_refused_and_named() {
    let Some(server) = server(false) else { return };
    let certs = server.certs().expect("TLS server");
    let msg = refused(
        RedisStore::builder(server.tls_url().expect("TLS url")).tls_ca_file(&certs.other_ca),
    )
    .await;
    assert!(
        msg.contains("not signed by a CA this client trusts"),
        "{msg}"
    );
    assert!(msg.contains("cacert"), "the message names the fix: {msg}");
    // The system's roots do not know the test CA either.
    let msg = refused(RedisStore::builder(server.tls_url().expect("TLS url"))).await;
    assert!(
        msg.contains("not signed by a CA this client trusts"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_wrong_host_name_is_refused_and_named() {
    let Some(server) = server(false) else { return };
    let certs = server.certs().expect("TLS server");
    // 127.0.0.2 reaches the same server; its certificate names 127.0.0.1 only.
    let msg = refused(
        RedisStore::builder(server.tls_url_via("127.0.0.2").expect("TLS url"))
            .tls_ca_file(&certs.ca),
    )
    .await;
    assert!(msg.contains("does not name the host"), "{msg}");
}

#[tokio::test]
async fn plain_text_to_a_tls_port_and_tls_to_a_plain_port_are_refused() {
    let Some(server) = server(false) else { return };
    let certs = server.certs().expect("TLS server");
    let tls_url = server.tls_url().expect("TLS url");
    let plain_to_tls = tls_url.replace("rediss://", "redis://");
    let msg = refused(
        RedisStore::builder(plain_to_tls).connection_timeout(std::time::Duration::from_millis(500)),
    )
    .await;
    assert!(
        msg.contains("rediss://"),
        "the message says to use TLS: {msg}"
    );
    let tls_to_plain = server.url().replace("redis://", "rediss://");
    let msg = refused(
        RedisStore::builder(tls_to_plain)
            .tls_ca_file(&certs.ca)
            .connection_timeout(std::time::Duration::from_millis(500)),
    )
    .await;
    assert!(
        msg.contains("does not speak TLS, use a redis:// URL"),
        "{msg}"
    );
}

#[tokio::test]
async fn mutual_tls_works_and_a_missing_client_certificate_is_refused() {
    let Some(server) = server(true) else { return };
    let certs = server.certs().expect("TLS server");
    let url = server.tls_url().expect("TLS url");
    let store = RedisStore::builder(&url)
        .tls_ca_file(&certs.ca)
        .tls_client_cert(&certs.client_cert, &certs.client_key)
        .prefix(common::unique_prefix("mtls"))
        .connect()
        .await
        .expect("mutual TLS");
    common::one_round_trip(&store).await;

    let msg = refused(RedisStore::builder(&url).tls_ca_file(&certs.ca)).await;
    assert!(msg.contains("requires a client certificate"), "{msg}");
}

#[tokio::test]
async fn the_url_alone_can_carry_the_ca_and_client_certificate() {
    let Some(server) = server(true) else { return };
    let url = server.tls_url_with_files().expect("TLS url");
    let store = RedisStore::builder(&url)
        .prefix(common::unique_prefix("tls-url"))
        .connect()
        .await
        .expect("TLS from the URL alone");
    common::one_round_trip(&store).await;
    // The plain client for tools (the CLI, latch-flask) reads the same URL.
    let client = latch_redis::client(&url).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("tool connection over mutual TLS");
    let pong: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .expect("PING");
    assert_eq!(pong, "PONG");
}

#[tokio::test]
async fn turning_verification_off_takes_the_named_option() {
    let Some(server) = server(false) else { return };
    // No CA given: refused by default...
    refused(RedisStore::builder(server.tls_url().expect("TLS url"))).await;
    // ...accepted only through the loudly named builder method.
    let store = RedisStore::builder(server.tls_url().expect("TLS url"))
        .danger_accept_invalid_certificates()
        .prefix(common::unique_prefix("insecure"))
        .connect()
        .await
        .expect("verification off");
    common::one_round_trip(&store).await;
}

/// The read cache's own tracking connection speaks the same TLS, client
/// certificate included, as the store's connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_cache_connects_with_the_same_mutual_tls() {
    use latch::SessionStore as _;
    let Some(server) = server(true) else { return };
    let certs = server.certs().expect("TLS server");
    let store = RedisStore::builder(server.tls_url().expect("TLS url"))
        .tls_ca_file(&certs.ca)
        .tls_client_cert(&certs.client_cert, &certs.client_key)
        .prefix(common::unique_prefix("tls-cache"))
        .read_cache(latch_redis::ReadCache::default())
        .connect()
        .await
        .expect("the store and its read cache over mutual TLS");
    let key = latch::SessionId::generate().store_key();
    let mut record = latch::Record::new(common::wall_now());
    record.expires_at = common::wall_now() + 600;
    record.version = 1;
    assert!(store.create(&key, &record).await.expect("store call"));
    store.load(&key).await.expect("store call");
    let hits = store.read_cache_stats().expect("cache on").hits;
    assert_eq!(
        store
            .load(&key)
            .await
            .expect("store call")
            .expect("the session")
            .version,
        1
    );
    assert_eq!(store.read_cache_stats().expect("cache on").hits, hits + 1);
}
