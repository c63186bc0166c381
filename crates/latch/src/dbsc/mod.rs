//! Device-bound sessions (DBSC): a stolen session cookie stops working off the
//! device that signed in.
//!
//! [Device Bound Session Credentials] let a browser keep a private key it
//! cannot export (TPM, Secure Enclave, or software where neither exists) and
//! prove possession of it to renew a short-lived *bound cookie*. latch speaks
//! the server side:
//!
//! 1. **Registration.** When a session signs in
//!    ([`Session::log_in`](crate::Session::log_in)), the response carries
//!    `Secure-Session-Registration` with a single-use challenge. A browser with
//!    DBSC posts a proof (a `dbsc+jwt` signed with its new key, ES256 or RS256)
//!    to the registration path; latch verifies it, keeps the public key in the
//!    session record and sets the bound cookie.
//! 2. **Every request.** A bound session is honoured only with a live bound
//!    cookie (10 minutes by default). Without one the request is served as a
//!    visitor without a session: the application sees no user, and the record
//!    is kept for the real device.
//! 3. **Refresh.** Before the bound cookie runs out, the browser posts to the
//!    refresh path, gets `403` and a fresh challenge, signs it with its key and
//!    receives a new bound cookie. A thief holding copies of both cookies but
//!    not the key is signed out when the copied bound cookie expires, and can
//!    never refresh it.
//!
//! Turn it on with one builder call,
//! [`SessionManagerBuilder::device_bound`](crate::SessionManagerBuilder::device_bound);
//! the adapter (`latch-axum`) answers the two paths. Browsers without DBSC
//! ignore the registration header and keep working exactly as without it:
//! their sessions are never bound, so enabling it locks nobody out.
//!
//! **What it does not protect against:** malware that runs *on* the device (it
//! can ask the browser to refresh, or act through it), and sessions of
//! browsers without DBSC, which stay ordinary bearer cookies. Server-side
//! sessions only: challenges are single-use and the device's key lives in the
//! record, which cookie-only sessions do not have (the builder refuses the
//! combination).
//!
//! [Device Bound Session Credentials]: https://w3c.github.io/webappsec-dbsc/

mod binding;
mod proof;

use std::time::Duration;

pub(crate) use binding::{BINDING_KEY, Binding, BoundCookie, Proven};
pub(crate) use binding::{refresh, register};
pub use proof::{Alg, MAX_PROOF_BYTES, Proof, ProofError, PublicJwk, parse_proof};

use crate::cookie::CookieConfig;
use crate::error::{Error, ErrorKind, Result};
use crate::time::{UnixTime, secs};

/// The request header carrying the browser's proof.
pub const RESPONSE_HEADER: &str = "secure-session-response";
/// The request header naming the DBSC session on a refresh.
pub const SESSION_ID_HEADER: &str = "sec-secure-session-id";
/// The response header that starts a registration.
pub const REGISTRATION_HEADER: &str = "secure-session-registration";
/// The response header that carries a challenge.
pub const CHALLENGE_HEADER: &str = "secure-session-challenge";

/// The longest `Sec-Secure-Session-Id` accepted, in bytes.
const MAX_SESSION_ID_BYTES: usize = 64;

/// The bound cookie's name after the session cookie's: `__Host-session-bound`.
const BOUND_SUFFIX: &str = "-bound";

/// How device-bound sessions are set up: the two paths latch answers, the
/// bound cookie's lifetime and how long a challenge stays good.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use latch::{MemoryStore, SessionManager, dbsc::DeviceBinding};
///
/// let manager = SessionManager::builder()
///     .store(MemoryStore::new())
///     .device_bound(DeviceBinding::default().bound_cookie_lifetime(Duration::from_secs(300)))
///     .build()?;
/// assert_eq!(manager.device_binding().map(|b| b.registration()), Some("/.latch/dbsc/register"));
/// # Ok::<(), latch::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct DeviceBinding {
    registration_path: String,
    refresh_path: String,
    bound_lifetime: Duration,
    challenge_lifetime: Duration,
    pub(crate) authorization: Option<String>,
}

impl Default for DeviceBinding {
    fn default() -> Self {
        Self {
            registration_path: "/.latch/dbsc/register".into(),
            refresh_path: "/.latch/dbsc/refresh".into(),
            bound_lifetime: Duration::from_secs(600),
            challenge_lifetime: Duration::from_secs(300),
            authorization: None,
        }
    }
}

impl DeviceBinding {
    /// Where browsers post registrations (default `/.latch/dbsc/register`).
    #[must_use]
    pub fn registration_path(mut self, path: impl Into<String>) -> Self {
        self.registration_path = path.into();
        self
    }

    /// Where browsers post refreshes (default `/.latch/dbsc/refresh`).
    #[must_use]
    pub fn refresh_path(mut self, path: impl Into<String>) -> Self {
        self.refresh_path = path.into();
        self
    }

    /// How long a bound cookie proves a recent refresh (default 10 minutes,
    /// at least 1 second, at most 1 day): how long a copied cookie keeps
    /// working after theft, and how often a device signs a challenge.
    #[must_use]
    pub fn bound_cookie_lifetime(mut self, lifetime: Duration) -> Self {
        self.bound_lifetime = lifetime;
        self
    }

    /// How long a challenge may wait for its proof (default 5 minutes, at
    /// least 1 second, at most 1 hour).
    #[must_use]
    pub fn challenge_lifetime(mut self, lifetime: Duration) -> Self {
        self.challenge_lifetime = lifetime;
        self
    }

    /// Ask browsers to include `value` as the `authorization` claim of their
    /// registration proof (a value the application issued, such as an
    /// account-bound code); latch refuses registrations that do not carry it.
    #[must_use]
    pub fn authorization(mut self, value: impl Into<String>) -> Self {
        self.authorization = Some(value.into());
        self
    }

    /// The path browsers post registrations to.
    pub fn registration(&self) -> &str {
        &self.registration_path
    }

    /// The path browsers post refreshes to.
    pub fn refresh(&self) -> &str {
        &self.refresh_path
    }

    /// The bound cookie's lifetime.
    pub fn bound_lifetime(&self) -> Duration {
        self.bound_lifetime
    }

    /// Refuse settings that browsers or the protocol cannot work with.
    pub(crate) fn validate(&self) -> Result<()> {
        for (what, path) in [
            ("registration_path", &self.registration_path),
            ("refresh_path", &self.refresh_path),
        ] {
            let ok = path.starts_with('/')
                && path.len() <= 256
                && path
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\\' | b'?' | b'#'));
            if !ok {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    format!(
                        "DeviceBinding::{what}({path:?}) must be an absolute path such as \
                         \"/.latch/dbsc/register\": starting with '/', printable ASCII without \
                         quotes, backslashes, '?' or '#'"
                    ),
                ));
            }
        }
        if self.registration_path == self.refresh_path {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "DeviceBinding: the registration and refresh paths must differ",
            ));
        }
        let bounds = [
            ("bound_cookie_lifetime", self.bound_lifetime, 86_400),
            ("challenge_lifetime", self.challenge_lifetime, 3_600),
        ];
        for (what, value, max) in bounds {
            if value.as_secs() < 1 || value.as_secs() > max {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    format!(
                        "DeviceBinding::{what}({value:?}) is out of range: use between 1 second \
                         and {max} seconds"
                    ),
                ));
            }
        }
        if let Some(a) = &self.authorization {
            if a.is_empty()
                || a.len() > 128
                || !a
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
            {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    "DeviceBinding::authorization must be 1 to 128 characters of A-Z a-z 0-9 - _ . ~",
                ));
            }
        }
        Ok(())
    }
}

/// A device binding as the engine runs it: the settings plus the bound
/// cookie's attributes, derived from the session cookie's.
#[derive(Debug)]
pub(crate) struct Binder {
    pub(crate) settings: DeviceBinding,
    pub(crate) cookie: CookieConfig,
}

impl Binder {
    pub(crate) fn new(settings: DeviceBinding, session_cookie: &CookieConfig) -> Self {
        Self {
            settings,
            cookie: session_cookie.sibling(BOUND_SUFFIX),
        }
    }

    /// How long a challenge stays good, in seconds.
    pub(crate) fn challenge_lifetime(&self) -> i64 {
        secs(self.settings.challenge_lifetime)
    }

    /// The bound cookie's lifetime, in seconds.
    pub(crate) fn bound_lifetime(&self) -> i64 {
        secs(self.settings.bound_lifetime)
    }

    /// `Secure-Session-Registration` for `challenge`.
    pub(crate) fn registration_header(&self, challenge: &str) -> String {
        let mut header = format!(
            "(ES256 RS256);path=\"{}\";challenge=\"{challenge}\"",
            self.settings.registration_path
        );
        if let Some(a) = &self.settings.authorization {
            header.push_str(&format!(";authorization=\"{a}\""));
        }
        header
    }

    /// `Secure-Session-Challenge` for `challenge` and the DBSC session `id`.
    pub(crate) fn challenge_header(challenge: &str, id: &str) -> String {
        format!("\"{challenge}\";id=\"{id}\"")
    }

    /// The session config answered to a registration or refresh.
    pub(crate) fn config(&self, id: &str, origin: Option<&str>) -> String {
        let attributes = self.cookie_attributes();
        let mut scope = serde_json::json!({
            "include_site": false,
            "scope_specification": [],
        });
        if let Some(origin) = origin {
            scope["origin"] = origin.into();
        }
        serde_json::json!({
            "session_identifier": id,
            "refresh_url": self.settings.refresh_path,
            "scope": scope,
            "credentials": [{
                "type": "cookie",
                "name": self.cookie.name(),
                "attributes": attributes,
            }],
        })
        .to_string()
    }

    /// The bound cookie's attributes as `Set-Cookie` writes them, without
    /// name, value and lifetime.
    fn cookie_attributes(&self) -> String {
        let rendered = self.cookie.set_cookie("", None);
        rendered
            .split_once(';')
            .map_or("", |(_, attributes)| attributes)
            .trim()
            .to_owned()
    }
}

/// When `record`'s device last proved its key, if the session is device-bound.
pub(crate) fn proved_at(record: &crate::Record) -> Option<UnixTime> {
    Binding::read(record.data.get(BINDING_KEY))?
        .device
        .map(|d| d.proved)
}

/// A random URL-safe token: 256 bits, base64url (challenges, bound cookies,
/// DBSC session identifiers).
pub(crate) fn random_token() -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    crate::rand::fill_pooled(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The DBSC session id a refresh names, read strictly: the
/// `Sec-Secure-Session-Id` value, bare or as a structured-field string.
pub(crate) fn session_id_header(value: &[u8]) -> Option<&str> {
    if value.len() > MAX_SESSION_ID_BYTES + 2 {
        return None;
    }
    let text = std::str::from_utf8(value).ok()?.trim();
    let bare = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    let ok = !bare.is_empty()
        && bare.len() <= MAX_SESSION_ID_BYTES
        && bare
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(bare)
}

/// Which of the two paths a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// The registration path.
    Register,
    /// The refresh path.
    Refresh,
}

/// What a request to one of the two paths carried, besides its cookies.
#[derive(Debug, Clone, Default)]
pub struct BindingRequest {
    /// The `Sec-Secure-Session-Id` header's value.
    pub session_id: Option<Vec<u8>>,
    /// The `Secure-Session-Response` header's value (the proof).
    pub proof: Option<Vec<u8>>,
    /// The site's origin (`https://host[:port]`), for the session config's
    /// scope; omitted from the config when unknown (browsers then take the
    /// registration's own origin).
    pub origin: Option<String>,
}

/// What to answer a request to one of the two paths with. Never a 5xx, except
/// `503` when the store is unavailable (the browser tries again later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingAnswer {
    /// The status code: 200, 400, 401, 403, 404, or 503.
    pub status: u16,
    /// Response headers (lower-case names): challenges, `Cache-Control`.
    pub headers: Vec<(&'static str, String)>,
    /// `Set-Cookie` values.
    pub set_cookies: Vec<String>,
    /// A JSON body (the session config), if any.
    pub body: Option<String>,
}

impl BindingAnswer {
    pub(crate) fn status(status: u16) -> Self {
        Self {
            status,
            headers: vec![("cache-control", "no-store".into())],
            set_cookies: Vec::new(),
            body: None,
        }
    }
}

/// What the current request proves about its session's device binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceStatus {
    /// The session is not device-bound (DBSC off, a browser without it, or
    /// registration not done yet).
    #[default]
    Unbound,
    /// The session is device-bound and this request carried a live bound
    /// cookie: the device proved its key at `proved_at`.
    Proven {
        /// When the device last signed a challenge.
        proved_at: UnixTime,
    },
}
