//! TLS to PostgreSQL (T1), against private servers that accept only TLS over
//! TCP, with certificates made at test time: the conformance suite over
//! `verify-full`; a wrong CA, a wrong host name and plain text each refused at
//! start-up with a message naming the cause; `verify-ca` accepting the other
//! name; mutual TLS, and a missing client certificate refused; the same URL
//! forms for tools' own connections.

use std::sync::Arc;

use latch::{ErrorKind, SessionStore};
use latch_conformance::servers::{CertFiles, PrivatePostgres};
use latch_postgres::PostgresStore;

/// A private TLS-only server, or `None` after a loud skip.
fn server(require_client_cert: bool) -> Option<PrivatePostgres> {
    match PrivatePostgres::start_tls(require_client_cert) {
        Ok(server) => Some(server),
        Err(why) => latch_conformance::skip_or_fail("a private TLS PostgreSQL", &why),
    }
}

fn certs(server: &PrivatePostgres) -> &CertFiles {
    server.certs().expect("a TLS server")
}

/// `sslmode=verify-full&sslrootcert=<ca>` plus `extra`.
fn verified(server: &PrivatePostgres, host: &str, extra: &str) -> String {
    server.url_via(
        host,
        &format!(
            "sslmode=verify-full&sslrootcert={}{extra}",
            certs(server).ca.display()
        ),
    )
}

/// Connecting to `url` must fail at start-up; returns the message.
async fn refused(url: &str) -> String {
    let err = PostgresStore::connect(url)
        .await
        .expect_err("the connection must be refused");
    assert_eq!(err.kind(), &ErrorKind::Store, "{err:?}");
    format!("{err:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_suite_passes_over_verified_tls() {
    let Some(server) = server(false) else { return };
    let store = PostgresStore::connect(&verified(&server, "127.0.0.1", ""))
        .await
        .expect("connect with verify-full");
    let store: Arc<dyn SessionStore> = Arc::new(store);
    latch_conformance::run_all(store, &[]).await;
}

#[tokio::test]
async fn wrong_ca_wrong_host_and_plain_text_are_refused_and_named() {
    let Some(server) = server(false) else { return };
    let wrong_ca = server.url_via(
        "127.0.0.1",
        &format!(
            "sslmode=verify-full&sslrootcert={}",
            certs(&server).other_ca.display()
        ),
    );
    let msg = refused(&wrong_ca).await;
    assert!(
        msg.contains("not signed by a CA this client trusts"),
        "{msg}"
    );
    assert!(
        msg.contains("sslrootcert"),
        "the message names the fix: {msg}"
    );

    // 127.0.0.2 reaches the same server; the certificate names 127.0.0.1.
    let msg = refused(&verified(&server, "127.0.0.2", "")).await;
    assert!(msg.contains("does not name the host"), "{msg}");
    // verify-ca checks the chain only, and so accepts it.
    let url = server.url_via(
        "127.0.0.2",
        &format!(
            "sslmode=verify-ca&sslrootcert={}",
            certs(&server).ca.display()
        ),
    );
    PostgresStore::connect(&url).await.expect("verify-ca");
    // require (no root certificate) encrypts without checking, as libpq does
    // (and logs a warning); with a root certificate it checks the chain.
    PostgresStore::connect(&server.url_via("127.0.0.2", "sslmode=require"))
        .await
        .expect("require");
    let msg = refused(&server.url_via(
        "127.0.0.1",
        &format!(
            "sslmode=require&sslrootcert={}",
            certs(&server).other_ca.display()
        ),
    ))
    .await;
    assert!(
        msg.contains("not signed by a CA this client trusts"),
        "{msg}"
    );

    // Loopback defaults to plain text, which this server refuses.
    let msg = refused(&server.url_via("127.0.0.1", "")).await;
    assert!(msg.contains("accepts only TLS"), "{msg}");
}

#[tokio::test]
async fn tls_to_a_server_without_tls_is_refused_and_named() {
    let server = match PrivatePostgres::start() {
        Ok(server) => server,
        Err(why) => {
            latch_conformance::skip_or_fail::<()>("a private PostgreSQL", &why);
            return;
        }
    };
    let msg = refused(&format!("{}?sslmode=require", server.url())).await;
    assert!(msg.contains("does not offer TLS"), "{msg}");
}

#[tokio::test]
async fn mutual_tls_works_and_a_missing_client_certificate_is_refused() {
    let Some(server) = server(true) else { return };
    let c = certs(&server);
    let with_cert = verified(
        &server,
        "127.0.0.1",
        &format!(
            "&sslcert={}&sslkey={}",
            c.client_cert.display(),
            c.client_key.display()
        ),
    );
    let store = PostgresStore::connect(&with_cert)
        .await
        .expect("mutual TLS");
    let key = latch::SessionId::generate().store_key();
    assert!(
        store
            .load(&key)
            .await
            .expect("a query over mutual TLS")
            .is_none()
    );

    let msg = refused(&verified(&server, "127.0.0.1", "")).await;
    assert!(msg.contains("requires a client certificate"), "{msg}");

    // Tools read the same URL the same way.
    let (config, tls) = latch_postgres::connect_config(&with_cert).expect("config");
    let (client, connection) = config.connect(tls).await.expect("tool connection");
    tokio::spawn(connection);
    let row = client.query_one("SELECT 1 + 1", &[]).await.expect("query");
    assert_eq!(row.get::<_, i32>(0), 2);
}
