//! What crosses the boundary between latch and a web framework's adapter: the
//! request's `Cookie` headers and client facts going in ([`RawRequest`],
//! [`RequestMeta`]), and what to do to the response coming out ([`Finished`]).

use std::net::IpAddr;

use http::HeaderValue;

use crate::cookie::{IncomingCookie, find_session_cookie_bytes};

/// Longest user agent kept for the devices list, in bytes.
pub(crate) const MAX_USER_AGENT: usize = 256;

/// What the client sent about itself, recorded on new sessions for the devices
/// list. Adapters fill it from the request; applications may override it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMeta {
    /// The `User-Agent` header, truncated to 256 bytes.
    pub user_agent: Option<String>,
    /// The client address as the application sees it.
    pub ip: Option<String>,
}

/// A request's session-relevant headers, kept as they arrived (an
/// [`http::HeaderValue`] clone is a reference-count increment: no copy, no
/// parsing) and read only when a handler first uses the
/// session, so a request that never touches its session pays next to nothing.
///
/// Adapters build one per request and hand it to
/// [`SessionManager::start_raw`](crate::SessionManager::start_raw).
///
/// # Example
/// ```
/// use http::HeaderValue;
/// use latch::{Keyring, RawRequest, SecretKey, SessionManager};
///
/// let manager = SessionManager::builder()
///     .signed_cookies(Keyring::new(SecretKey::generate()))
///     .build()?;
/// let mut raw = RawRequest::new();
/// raw.cookie_header(HeaderValue::from_static("theme=dark; lang=en"));
/// raw.user_agent(HeaderValue::from_static("curl/8.0"));
/// raw.ip([127, 0, 0, 1].into());
/// let session = manager.start_raw(raw);
/// # drop(session);
/// # Ok::<(), latch::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct RawRequest {
    cookie: Option<HeaderValue>,
    more_cookies: Vec<HeaderValue>,
    user_agent: Option<HeaderValue>,
    ip: Option<IpAddr>,
}

impl std::fmt::Debug for RawRequest {
    // The `Cookie` lines hold the session ID: count them, never print them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines = usize::from(self.cookie.is_some()) + self.more_cookies.len();
        f.debug_struct("RawRequest")
            .field("cookie_lines", &lines)
            .field("user_agent", &self.user_agent)
            .field("ip", &self.ip)
            .finish()
    }
}

impl RawRequest {
    /// An empty request: no cookies, no client facts.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add the value of one `Cookie` header (call once per header line).
    pub fn cookie_header(&mut self, value: HeaderValue) -> &mut Self {
        if self.cookie.is_none() {
            self.cookie = Some(value);
        } else {
            self.more_cookies.push(value);
        }
        self
    }

    /// Set the `User-Agent` header's value.
    pub fn user_agent(&mut self, value: HeaderValue) -> &mut Self {
        self.user_agent = Some(value);
        self
    }

    /// Set the client address as the application sees it.
    pub fn ip(&mut self, ip: IpAddr) -> &mut Self {
        self.ip = Some(ip);
        self
    }

    /// Find the session cookie `name` (see [`find_session_cookie_bytes`]).
    ///
    /// Browsers send every cookie of the site in one `Cookie` line, including
    /// ones set by sibling subdomains or scripts, and those may hold bytes
    /// outside ASCII. Such bytes must not hide the session cookie (which would
    /// sign the user out for as long as the other cookie lives), so the line is
    /// read as bytes: names are compared byte for byte and the session cookie's
    /// own value is then checked strictly as usual.
    pub(crate) fn incoming(&self, name: &str) -> IncomingCookie {
        let headers = self.cookie.iter().chain(&self.more_cookies);
        find_session_cookie_bytes(headers.map(HeaderValue::as_bytes), name)
    }

    /// The client facts, for a new session.
    pub(crate) fn meta(&self) -> RequestMeta {
        RequestMeta {
            user_agent: self
                .user_agent
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .map(|ua| truncate(ua, MAX_USER_AGENT).to_owned()),
            ip: self.ip.map(|ip| ip.to_string()),
        }
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character
/// boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// What the adapter must do to the response. Its `Debug` output shows the
/// cookie's attributes, never its value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Finished {
    /// A `Set-Cookie` value to send, if any. When present the response must not be
    /// stored by shared caches (`Cache-Control: no-store`).
    pub set_cookie: Option<String>,
    /// `Set-Cookie` values for latch's other cookies (the pre-session CSRF
    /// cookie), each of its own name: send each as a header of its own.
    pub other_cookies: Vec<String>,
    /// Whether the handler read the session, so the response depends on the
    /// `Cookie` header (`Vary: Cookie`).
    pub vary_cookie: bool,
    /// Whether the handler read a signed-in session, so the response may show
    /// that user's data: adapters keep it out of every cache
    /// (`Cache-Control: no-store`) unless the handler chose its own
    /// `Cache-Control`.
    pub signed_in: bool,
    /// Response headers of latch's own, each to be appended (lower-case
    /// names): `Secure-Session-Registration` when a device-bound session
    /// signs in.
    pub headers: Vec<(&'static str, String)>,
}

impl std::fmt::Debug for Finished {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `name=value; attributes`: keep the name and the attributes.
        let redacted = self.set_cookie.as_deref().map(|c| {
            let (pair, attributes) = c.split_once(';').unwrap_or((c, ""));
            let name = pair.split_once('=').map_or(pair, |(name, _)| name);
            format!("{name}=<redacted>;{attributes}")
        });
        f.debug_struct("Finished")
            .field("set_cookie", &redacted)
            .field("other_cookies", &self.other_cookies.len())
            .field("vary_cookie", &self.vary_cookie)
            .field("signed_in", &self.signed_in)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &'static [u8]) -> HeaderValue {
        HeaderValue::from_bytes(s).expect("header value")
    }

    #[test]
    fn resolves_cookies_across_header_lines() {
        let mut raw = RawRequest::new();
        raw.cookie_header(v(b"a=1"))
            .cookie_header(v(b"sid=xyz; b=2"));
        assert_eq!(raw.incoming("sid"), IncomingCookie::One("xyz".into()));
    }

    #[test]
    fn duplicate_across_header_lines_is_refused() {
        let mut raw = RawRequest::new();
        raw.cookie_header(v(b"sid=1")).cookie_header(v(b"sid=2"));
        assert_eq!(raw.incoming("sid"), IncomingCookie::Duplicate);
    }

    #[test]
    fn other_cookies_with_non_ascii_bytes_do_not_hide_the_session() {
        let mut raw = RawRequest::new();
        raw.cookie_header(v(b"theme=caf\xc3\xa9; sid=ok; x=\xff"));
        assert_eq!(raw.incoming("sid"), IncomingCookie::One("ok".into()));
        // A session cookie of bytes that are not UTF-8 is still one cookie
        // (refused later as a malformed value), so a second one is a duplicate.
        let mut raw = RawRequest::new();
        raw.cookie_header(v(b"sid=\xff"))
            .cookie_header(v(b"sid=ok"));
        assert_eq!(raw.incoming("sid"), IncomingCookie::Duplicate);
        let mut raw = RawRequest::new();
        raw.user_agent(v(b"bad\xffagent"));
        assert_eq!(raw.meta().user_agent, None);
    }

    #[test]
    fn user_agent_is_truncated_and_ip_formatted() {
        let mut raw = RawRequest::new();
        raw.user_agent(HeaderValue::from_str(&"x".repeat(1000)).expect("ua"))
            .ip("::1".parse().expect("ip"));
        let meta = raw.meta();
        assert_eq!(raw.incoming("sid"), IncomingCookie::Absent);
        assert_eq!(meta.user_agent.map(|ua| ua.len()), Some(MAX_USER_AGENT));
        assert_eq!(meta.ip.as_deref(), Some("::1"));
    }

    #[test]
    fn debug_never_shows_cookies() {
        let mut raw = RawRequest::new();
        raw.cookie_header(v(b"sid=s3cr3t-session-id"));
        let shown = format!("{raw:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("cookie_lines: 1"), "{shown}");
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("aé", 2), "a");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
