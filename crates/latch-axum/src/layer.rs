//! The tower layer that wraps a service with sessions.

use std::sync::Arc;

use latch::SessionManager;
use tower_layer::Layer;

use crate::client::TrustedProxies;
use crate::service::SessionService;

/// Adds latch sessions to every request of the wrapped service.
///
/// A request costs nothing until a handler (or the CSRF layer) asks for its
/// session: no header is read and nothing is allocated before. The session is
/// handed to extractors through the task that runs the request, so keep
/// middleware that `tokio::spawn`s the inner future outside this layer.
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
    // Shared: axum calls `layer` for every request that reaches a handler
    // route, so this must cost no allocation.
    proxies: Arc<TrustedProxies>,
}

impl SessionLayer {
    /// A layer running sessions with `manager`.
    pub fn new(manager: SessionManager) -> Self {
        Self {
            manager,
            proxies: Arc::new(TrustedProxies::default()),
        }
    }

    /// Behind a reverse proxy: believe these proxies about the client's
    /// address (see [`TrustedProxies`]). The address is recorded on the
    /// session at creation and sign-in (the devices list) and given to
    /// handlers by [`ClientIp`](crate::ClientIp). Without this, the client is
    /// the connection's peer and forwarded headers are ignored.
    #[must_use]
    pub fn trusted_proxies(mut self, proxies: TrustedProxies) -> Self {
        self.proxies = Arc::new(proxies);
        self
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService::new(inner, self.manager.clone(), Arc::clone(&self.proxies))
    }
}
