//! The tower layer that wraps a service with sessions.

use latch::SessionManager;
use tower_layer::Layer;

use crate::service::SessionService;

/// Adds latch sessions to every request of the wrapped service.
///
/// # Example
/// ```
/// use latch::{Keyring, SecretKey, SessionManager};
/// use latch_axum::SessionLayer;
///
/// let manager = SessionManager::builder()
///     .signed_cookies(Keyring::new(SecretKey::generate()))
///     .build()?;
/// let layer = SessionLayer::new(manager);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct SessionLayer {
    manager: SessionManager,
}

impl SessionLayer {
    /// A layer running sessions with `manager`.
    pub fn new(manager: SessionManager) -> Self {
        Self { manager }
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService::new(inner, self.manager.clone())
    }
}
