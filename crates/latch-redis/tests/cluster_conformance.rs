//! The store conformance suite against a 3-node Redis Cluster
//! (`LATCH_REDIS_CLUSTER_URLS`; `scripts/cluster.sh start` makes one locally).
//! Sessions, user indexes and the expiry index land in different hash slots,
//! so this proves every script is single-key and the index upkeep works across
//! nodes.

mod common;

use std::sync::Arc;

use latch::SessionStore;

async fn make() -> Option<Arc<dyn SessionStore>> {
    let store = common::cluster_store(&common::unique_prefix("cluster")).await?;
    Some(Arc::new(store))
}

latch_conformance::store_conformance!(make);
