//! The pre-session CSRF cookie: a form for a visitor without a stored
//! session gets its CSRF secret in a signed cookie of its own, so rendering a
//! sign-in form stores nothing (A3; a crawler used to fill the store, and an
//! anonymous `GET /login` answered 503 during a store outage). When the
//! session is stored for real, the secret moves into it (or, at sign-in, is
//! replaced) and the cookie is removed.
//!
//! Only for server-side sessions with keys
//! ([`SessionManagerBuilder::keys`](crate::SessionManagerBuilder::keys)):
//! cookie-only sessions keep the secret in their own cookie anyway.

use crate::codec::{CookieCodec, SignedCodec};
use crate::cookie::{CookieConfig, IncomingCookie};
use crate::error::Result;
use crate::key::{Keyring, Purpose};
use crate::time::UnixTime;

use super::state::Input;

/// The cookie's name after the session cookie's: `__Host-session-csrf`.
const SUFFIX: &str = "-csrf";

/// How the pre-session CSRF cookie is named, sealed and read.
#[derive(Debug)]
pub(crate) struct CsrfCookie {
    cookie: CookieConfig,
    codec: SignedCodec,
    /// How long a secret stays good: the idle timeout of sessions.
    max_age: i64,
}

impl CsrfCookie {
    pub(crate) fn new(session_cookie: &CookieConfig, keys: &Keyring, max_age: i64) -> Self {
        Self {
            cookie: session_cookie.sibling(SUFFIX),
            codec: SignedCodec::with_purpose(keys, Purpose::CSRF),
            max_age,
        }
    }

    /// The secret of the request's pre-session CSRF cookie, if it carries one
    /// that is authentic and not older than the idle timeout.
    pub(crate) fn incoming(&self, input: &Input, now: UnixTime) -> Option<String> {
        let IncomingCookie::One(value) = input.incoming(self.cookie.name()) else {
            return None;
        };
        let opened = self.codec.open(self.cookie.name(), &value).ok()?;
        let age = now.saturating_sub(opened.issued_at);
        if !(0..self.max_age).contains(&age) {
            return None;
        }
        String::from_utf8(opened.payload).ok()
    }

    /// The `Set-Cookie` carrying `secret` (a browser-session cookie).
    pub(crate) fn set_cookie(&self, secret: &str, now: UnixTime) -> Result<String> {
        let value = self
            .codec
            .seal(self.cookie.name(), now, secret.as_bytes())?;
        Ok(self.cookie.set_cookie(&value, None))
    }

    /// The `Set-Cookie` that removes it.
    pub(crate) fn removal(&self) -> String {
        self.cookie.removal_cookie()
    }
}
