//! The store conformance suite against a real PostgreSQL server.
//!
//! Cases share the default schema's table; each uses fresh random keys and user
//! names, so they do not see each other.

mod common;

use std::sync::Arc;

use latch::SessionStore;

async fn make() -> Option<Arc<dyn SessionStore>> {
    let store = common::store().await?;
    Some(Arc::new(store))
}

latch_conformance::store_conformance!(make);
