//! # latch-flask: share sessions with a Flask app
//!
//! A Rust service and a Flask app behind the same domain can share their users'
//! sessions, so an application can move from Flask to Rust route by route
//! without signing anybody out. latch handlers keep using [`latch::Session`];
//! this crate plugs Flask's formats into latch's core:
//!
//! | Flask setup | latch setup |
//! |---|---|
//! | Flask's default signed cookie (`SecureCookieSessionInterface`) | [`FlaskCookieFormat`] as the manager's cookie format |
//! | Flask-Session 0.8 with `SESSION_TYPE = "redis"` | [`FlaskSessionStore`] as the store and [`FlaskSessionIds`] as the ID format |
//!
//! Session data stays in Flask's tagged JSON form, so Python tuples, bytes,
//! `Markup`, UUIDs and datetimes survive a round trip through Rust: see
//! [`tagged`]. Flask's `session.permanent` is latch's "remember me", and
//! Flask-Login's `_user_id` is latch's signed-in user.
//!
//! ## Example: Flask's cookie
//! ```
//! use latch::{CookieConfig, SessionManager};
//! use latch_flask::FlaskCookieFormat;
//!
//! // SECRET_KEY, SECRET_KEY_FALLBACKS and PERMANENT_SESSION_LIFETIME as in Flask.
//! // Both must be strong: a weak key (Flask's tutorial `dev`) is refused,
//! // see FlaskCookieFormat::insecure_weak_fallbacks for a migration.
//! let manager = FlaskCookieFormat::new("q4Sv0tLc2bX7nE9rWm1kYpJd8hGz3aFu6oTiQeRs5xVyNj0B")?
//!     .fallbacks(["B7tWq2Lr9XcN4vKe1HsZ8mPa0yFj6GdU3oRiTb5EwQnYx2Ck"])?
//!     .max_age(std::time::Duration::from_secs(31 * 24 * 3600))
//!     .configure(SessionManager::builder())?
//!     .cookie(CookieConfig::builder().name("session").build()?)
//!     .build()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Expiry
//! The cookie format enforces Flask's own rule when it reads a cookie (refused
//! when older than `PERMANENT_SESSION_LIFETIME` or from the future), and
//! [`flask_expiry`] gives latch a policy that never cuts in earlier.
//!
//! ## Not supported
//! Flask's JSON provider with `sort_keys` or `ensure_ascii` turned off (latch
//! writes Flask's defaults), tags registered by the app beyond Flask's six,
//! Flask-Session's session ids of other than 32 bytes (`SESSION_ID_LENGTH`),
//! and its pickle format from before 0.7 (refused, never unpickled).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod cookie;
mod flask_session;
mod mapping;
mod pyjson;
mod signing;
pub mod tagged;

use std::time::Duration;

use latch::{Expiry, MAX_COOKIE_LIFETIME};

pub use cookie::{DEFAULT_MAX_AGE, FlaskCookieFormat};
pub use flask_session::{
    FlaskSessionIds, FlaskSessionStore, FlaskSessionStoreBuilder, SerializationFormat,
};
pub use mapping::{FLASK_KEYS, PERMANENT_KEY, USER_ID_KEY};

/// A latch [`Expiry`] for sessions shared with Flask whose lifetime is
/// `max_age` (`PERMANENT_SESSION_LIFETIME`).
///
/// Flask refuses a session once `age > max_age`, where age counts from the last
/// time the cookie (or Flask-Session's Redis entry) was written. latch refuses
/// once `now >= last_seen + idle`, so the idle timeouts are `max_age + 1` second:
/// the two rules then agree to the second, and the format or store decides. The
/// absolute timeouts are 400 days (the browser limit) because Flask has none; the
/// touch interval is zero, so every request that reads the session writes it
/// back, as Flask's `SESSION_REFRESH_EACH_REQUEST` does.
///
/// # Errors
/// [`latch::ErrorKind::InvalidConfig`] when `max_age` is 400 days or more (latch
/// refuses cookie lifetimes beyond what browsers keep).
///
/// # Example
/// ```
/// use std::time::Duration;
///
/// let expiry = latch_flask::flask_expiry(Duration::from_secs(3600))?;
/// assert_eq!(expiry.idle_timeout(false), Duration::from_secs(3601));
/// assert_eq!(expiry.idle_timeout(true), Duration::from_secs(3601));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn flask_expiry(max_age: Duration) -> latch::Result<Expiry> {
    let idle = Duration::from_secs(max_age.as_secs()) + Duration::from_secs(1);
    if idle > MAX_COOKIE_LIFETIME {
        return Err(latch::Error::invalid_config(
            "a Flask PERMANENT_SESSION_LIFETIME of 400 days or more cannot be kept by \
             browsers; shorten it",
        ));
    }
    Ok(Expiry::default()
        .absolute(MAX_COOKIE_LIFETIME)
        .remember_absolute(MAX_COOKIE_LIFETIME)
        .idle(idle)
        .remember_idle(idle)
        .touch_interval(Duration::ZERO))
}
