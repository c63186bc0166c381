//! `latch_redis::master_client`, the plain `redis::Client` that tools (the
//! `latch` CLI, latch-flask) get for a store URL, against a private Redis
//! Sentinel set-up (`latch_conformance::servers::PrivateSentinel`): it finds
//! the master, with the URL's database and TLS settings; after a failover a
//! new call finds the new master (the old client does not follow); a master
//! name no sentinel knows is a configuration error naming it, and no
//! reachable sentinel a store error, quickly.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::time::{Duration, Instant};

use latch::ErrorKind;
use latch_conformance::servers::PrivateSentinel;
use redis::ConnectionAddr;

/// Failure detection (1 s), the sentinels' vote and the promotion.
const FAILOVER_BOUND: Duration = Duration::from_secs(30);

fn private_sentinel() -> Option<PrivateSentinel> {
    match PrivateSentinel::start() {
        Ok(setup) => Some(setup),
        Err(why) => latch_conformance::skip_or_fail("a private Redis Sentinel set-up", &why),
    }
}

/// The port a client connects to.
fn port_of(client: &redis::Client) -> u16 {
    match client.get_connection_info().addr() {
        ConnectionAddr::Tcp(_, port) | ConnectionAddr::TcpTls { port, .. } => *port,
        other => panic!("not a TCP address: {other:?}"),
    }
}

/// The port in a `redis://127.0.0.1:PORT/` URL.
fn port_in(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap()
}

/// What `ROLE` says first through `client`: `master` or `slave`.
async fn role(client: &redis::Client) -> redis::RedisResult<String> {
    let mut conn = client.get_multiplexed_async_connection().await?;
    let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut conn).await?;
    match role.first() {
        Some(redis::Value::BulkString(r)) => Ok(String::from_utf8_lossy(r).into_owned()),
        other => panic!("unexpected ROLE reply: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_client_finds_the_master_and_after_a_failover_the_new_one() {
    let Some(mut setup) = private_sentinel() else {
        return;
    };
    let url = format!("{}/3", setup.url());
    let client = latch_redis::master_client(&url).await.unwrap();
    assert_eq!(port_of(&client), port_in(&setup.first_master_url()));
    assert_eq!(client.get_connection_info().redis_settings().db(), 3);
    assert_eq!(role(&client).await.unwrap(), "master");

    setup.kill_master();
    setup.wait_for_failover(FAILOVER_BOUND).unwrap();
    // The old client stays with the dead master's address.
    assert!(role(&client).await.is_err());
    let client = latch_redis::master_client(&url).await.unwrap();
    assert_eq!(port_of(&client), port_in(&setup.first_replica_url()));
    assert_eq!(client.get_connection_info().redis_settings().db(), 3);
    assert_eq!(role(&client).await.unwrap(), "master");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_client_speaks_tls_to_the_master_of_a_rediss_sentinel_url() {
    let setup = match PrivateSentinel::start_tls() {
        Ok(setup) => setup,
        Err(why) => {
            latch_conformance::skip_or_fail::<()>("a private TLS Redis Sentinel set-up", &why);
            return;
        }
    };
    let certs = setup.certs().unwrap();
    let url = format!(
        "{}/2?cacert={}",
        setup.tls_url().unwrap(),
        certs.ca.display()
    );
    let client = latch_redis::master_client(&url).await.unwrap();
    assert!(
        matches!(
            client.get_connection_info().addr(),
            ConnectionAddr::TcpTls {
                insecure: false,
                ..
            }
        ),
        "{:?}",
        client.get_connection_info().addr()
    );
    assert_eq!(client.get_connection_info().redis_settings().db(), 2);
    assert_eq!(role(&client).await.unwrap(), "master");
    // Without the CA the sentinels' certificates are not trusted.
    let err = latch_redis::master_client(setup.tls_url().as_deref().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Store, "{err:?}");
}

#[tokio::test]
async fn master_client_refuses_a_master_name_no_sentinel_knows() {
    let Some(setup) = private_sentinel() else {
        return;
    };
    let url = setup.url().replace("/latchmaster", "/nosuchmaster");
    let err = latch_redis::master_client(&url).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidConfig, "{err:?}");
    assert!(
        err.to_string()
            .starts_with("no Redis sentinel knows a master named \"nosuchmaster\""),
        "{err}"
    );
    // No sentinel at all: a store error, quickly, without the password.
    let nobody = format!(
        "redis+sentinel://:hunter2@127.0.0.1:{}/latchmaster",
        latch_conformance::servers::free_port().unwrap()
    );
    let started = Instant::now();
    let err = latch_redis::master_client(&nobody).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::Store, "{err:?}");
    assert!(
        err.to_string()
            .starts_with("finding the Redis master \"latchmaster\" through Sentinel"),
        "{err}"
    );
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn master_client_is_client_for_other_urls() {
    // No connection is made for one server's URL, as with `client`.
    let client = latch_redis::master_client("redis://127.0.0.1:1/4")
        .await
        .unwrap();
    assert_eq!(port_of(&client), 1);
    assert_eq!(client.get_connection_info().redis_settings().db(), 4);
    let err = latch_redis::master_client("rediss://127.0.0.1:1/#insecure")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidConfig, "{err:?}");
    // And `client` refuses the Sentinel forms, pointing nowhere wrong.
    assert!(latch_redis::client("redis+sentinel://127.0.0.1:1/m").is_err());
}
