//! The demo's users table on a PostgreSQL server that stops answering: sign-in
//! and sign-up fail within a few seconds instead of hanging, and work again
//! once the server is back.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::time::{Duration, Instant};

use latch_conformance::servers::PrivatePostgres;
use latch_demo::users::Users;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_postgres_fails_user_queries_in_bounded_time() {
    let server = match PrivatePostgres::start() {
        Ok(server) => server,
        Err(why) => {
            latch_conformance::skip_or_fail::<()>("PostgreSQL", &why);
            return;
        }
    };
    let users = Users::open_postgres(&server.url()).await.unwrap();
    users
        .create("ann", "correct horse battery", None)
        .await
        .unwrap()
        .unwrap();
    assert!(
        users
            .verify("ann", "correct horse battery", None)
            .await
            .unwrap()
    );

    server.freeze().unwrap();
    for attempt in ["verify", "create"] {
        let started = Instant::now();
        let failed = match attempt {
            "verify" => users
                .verify("ann", "correct horse battery", None)
                .await
                .is_err(),
            _ => users
                .create("bob", "correct horse battery", None)
                .await
                .is_err(),
        };
        let took = started.elapsed();
        assert!(failed, "{attempt} succeeded against a frozen server");
        assert!(
            took < Duration::from_secs(10),
            "{attempt} waited {took:?} on a frozen server"
        );
    }
    server.thaw().unwrap();

    // Back: the pool replaces what the freeze left behind.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match users.verify("ann", "correct horse battery", None).await {
            Ok(ok) => {
                assert!(ok);
                break;
            }
            Err(e) => assert!(Instant::now() < deadline, "not back after thaw: {e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
