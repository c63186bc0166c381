//! What every handler shares.

use latch::SessionManager;

use crate::known_browsers::KnownBrowsers;
use crate::limits::Limits;
use crate::users::Users;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The demo's users.
    pub users: Users,
    /// The session manager (for facts such as the timeouts in force).
    pub manager: SessionManager,
    /// Throttling (sign-in, sign-up, new sessions).
    pub limits: Limits,
    /// Browsers accounts signed in from, whose sign-in attempts are counted
    /// apart from strangers' (A7).
    pub known_browsers: KnownBrowsers,
    /// The scheme browsers reach the demo by (`http`, or `https` behind a TLS
    /// proxy or when it serves TLS itself): cross-site checks require it.
    pub scheme: &'static str,
    /// The reverse proxies believed about the client's address.
    pub proxies: latch_axum::TrustedProxies,
}
