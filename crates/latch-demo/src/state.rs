//! What every handler shares.

use latch::SessionManager;

use crate::limits::SignInLimits;
use crate::users::Users;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The demo's users.
    pub users: Users,
    /// The session manager (for facts such as the timeouts in force).
    pub manager: SessionManager,
    /// Sign-in throttling.
    pub sign_in: SignInLimits,
    /// The scheme browsers reach the demo by (`http`, or `https` behind a TLS
    /// proxy or when it serves TLS itself): cross-site checks require it.
    pub scheme: &'static str,
}
