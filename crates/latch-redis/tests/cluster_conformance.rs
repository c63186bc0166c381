//! The store conformance suite against a 3-node Redis Cluster: the one
//! `LATCH_REDIS_CLUSTER_URLS` names, or else a private one the test starts
//! (so the plain `cargo test` runs it). Sessions, user indexes and the
//! expiry index land in different hash slots, so this proves every script is
//! single-key and the index upkeep works across nodes. Then the same over TLS
//! (T1), on a private cluster whose nodes and bus speak TLS.

mod common;

use std::sync::Arc;

use latch::SessionStore;
use latch_conformance::servers::{ClusterSite, PrivateCluster};
use latch_redis::RedisStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_suite_passes_on_a_cluster() {
    let site = match ClusterSite::get() {
        Ok(site) => site,
        Err(why) => {
            latch_conformance::skip_or_fail::<()>("Redis Cluster", &why);
            return;
        }
    };
    let store = RedisStore::cluster_builder(site.urls.clone())
        .prefix(common::unique_prefix("cluster"))
        .connect()
        .await
        .expect("connect to the cluster");
    let store: Arc<dyn SessionStore> = Arc::new(store);
    latch_conformance::run_all(store, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_suite_passes_on_a_cluster_over_tls() {
    let cluster = match PrivateCluster::start(true) {
        Ok(cluster) => cluster,
        Err(why) => {
            latch_conformance::skip_or_fail::<()>("a private TLS Redis Cluster", &why);
            return;
        }
    };
    let certs = cluster.certs().expect("TLS cluster");
    let urls = cluster.tls_urls().expect("TLS urls");
    // A wrong CA is refused for a cluster as for one server.
    let err = RedisStore::cluster_builder(urls.clone())
        .tls_ca_file(&certs.other_ca)
        .connect()
        .await
        .expect_err("a wrong CA must be refused");
    let msg = format!("{err:?}");
    assert!(
        msg.contains("not signed by a CA this client trusts"),
        "{msg}"
    );

    let store = RedisStore::cluster_builder(urls)
        .tls_ca_file(&certs.ca)
        .prefix(common::unique_prefix("cluster-tls"))
        .connect()
        .await
        .expect("connect to the cluster over TLS");
    let store: Arc<dyn SessionStore> = Arc::new(store);
    latch_conformance::run_all(store, &[]).await;
}
