//! A private `redis-server` (its own port and directory, append-only file
//! fsynced on every write) is SIGKILLed and restarted under a steady load
//! against the demo: while it is down requests get 503s (no 500, no crash),
//! the demo recovers within 2 s of the server's return, and every write that
//! was acknowledged before, during or after is there at the end.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::time::Duration;

use latch_chaos::demo::Demo;
use latch_chaos::outage::{self, Plan};
use latch_conformance::servers::PrivateRedis;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_under_load_gives_503s_recovers_and_loses_nothing() {
    let mut server = match PrivateRedis::start() {
        Ok(server) => server,
        Err(why) => {
            latch_conformance::skip_or_fail::<()>("Redis", &why);
            return;
        }
    };
    let data = latch_chaos::temp_dir("redis-outage");
    let mut demo = Demo::start(
        &latch_chaos::demo_bin!(),
        &data,
        ["--store", &server.url(), "--store-timeout-ms", "1000"],
    );
    let server = std::sync::Mutex::new(&mut server);
    let outcome = outage::run(
        &mut demo,
        &Plan::default(),
        || server.lock().unwrap().kill(),
        || server.lock().unwrap().resume().unwrap(),
    )
    .await;
    eprintln!("redis outage: {outcome}");
    outage::assert_held(&outcome, Duration::from_secs(2));
    drop(demo);
    let _ = std::fs::remove_dir_all(data);
}
