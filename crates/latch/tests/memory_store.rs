//! The store conformance suite against the in-memory store.

use std::sync::Arc;

use latch::{MemoryStore, SessionStore};

async fn make() -> Option<Arc<dyn SessionStore>> {
    Some(Arc::new(MemoryStore::new()))
}

latch_conformance::store_conformance!(make);
