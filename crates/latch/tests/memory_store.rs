//! The store conformance suite against the in-memory store.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::sync::Arc;

use latch::{MemoryStore, SessionStore};

async fn make() -> Option<Arc<dyn SessionStore>> {
    Some(Arc::new(MemoryStore::new()))
}

latch_conformance::store_conformance!(make);
