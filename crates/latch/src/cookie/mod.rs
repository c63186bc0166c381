//! The session cookie's attributes, with secure defaults and refusal of unsafe ones.

mod header;

pub use header::{
    IncomingCookie, cookie_pairs, find_session_cookie, find_session_cookie_bytes, trim_ows,
};

use crate::error::{Error, ErrorKind, Result};

/// The `SameSite` attribute; always written explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SameSite {
    /// Sent on same-site requests only.
    Strict,
    /// Sent on same-site requests and top-level cross-site navigations. The default.
    #[default]
    Lax,
    /// Sent on every request; requires `Secure`.
    None,
}

/// How the session cookie is written: name, scope and security attributes.
///
/// The defaults are the safest that work for a normal site: `__Host-session`,
/// `Secure`, `HttpOnly`, `SameSite=Lax`, `Path=/`, no `Domain`. Anything browsers
/// would silently reject, or that is unsafe, is refused by
/// [`CookieConfigBuilder::build`]. Plain http (no `Secure`) exists only as
/// [`CookieConfig::insecure_dev_mode`].
///
/// # Example
/// ```
/// use latch::{CookieConfig, SameSite};
///
/// let cookie = CookieConfig::builder().same_site(SameSite::Strict).build()?;
/// assert_eq!(cookie.name(), "__Host-session");
///
/// let err = CookieConfig::builder().domain("example.com").build().unwrap_err();
/// assert!(err.to_string().contains("__Host-"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieConfig {
    pub(crate) name: String,
    pub(crate) path: String,
    pub(crate) domain: Option<String>,
    pub(crate) same_site: SameSite,
    pub(crate) secure: bool,
    pub(crate) http_only: bool,
    pub(crate) partitioned: bool,
    /// Everything `Set-Cookie` carries after the value (`; HttpOnly; ...;
    /// Path=/`), rendered once by the `cookie` crate when the configuration
    /// is made instead of on every response.
    tail: String,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self {
            name: "__Host-session".to_owned(),
            path: "/".to_owned(),
            domain: None,
            same_site: SameSite::Lax,
            secure: true,
            http_only: true,
            partitioned: false,
            tail: String::new(),
        }
        .rendered()
    }
}

impl CookieConfig {
    /// Start from the secure defaults.
    pub fn builder() -> CookieConfigBuilder {
        CookieConfigBuilder(Self::default())
    }

    /// Plain-http development mode: no `Secure` flag and no `__Host-` prefix (the
    /// cookie is named `latch-session`), everything else as the defaults.
    ///
    /// Only for a developer's machine without TLS: the cookie can be read and
    /// replaced by anybody on the network path. The session layer logs a warning
    /// at start-up when it is used. Note that browsers treat `http://localhost` as
    /// secure, so the defaults already work there.
    ///
    /// # Example
    /// ```
    /// let dev = latch::CookieConfig::insecure_dev_mode();
    /// assert!(!dev.is_secure());
    /// assert_eq!(dev.name(), "latch-session");
    /// ```
    pub fn insecure_dev_mode() -> Self {
        Self {
            name: "latch-session".to_owned(),
            secure: false,
            ..Self::default()
        }
        .rendered()
    }

    /// The cookie name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `Path` attribute.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The `Domain` attribute, if any.
    pub fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// Whether the cookie carries `Secure` (false only in dev mode).
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// Render a `Set-Cookie` value carrying `value`, persistent for `max_age`
    /// seconds when given, a browser-session cookie otherwise.
    ///
    /// # Example
    /// ```
    /// let cookie = latch::CookieConfig::default();
    /// assert_eq!(
    ///     cookie.set_cookie("abc", None),
    ///     "__Host-session=abc; HttpOnly; SameSite=Lax; Secure; Path=/"
    /// );
    /// ```
    pub fn set_cookie(&self, value: &str, max_age: Option<i64>) -> String {
        // Byte for byte what the `cookie` crate writes (Max-Age comes after
        // every attribute here; see the test `cached_rendering_matches_the_cookie_crate`).
        // Sized exactly, so a framework can turn it into a header value
        // without copying or reallocating it.
        const MAX_AGE: &str = "; Max-Age=";
        let mut buffer = itoa::Buffer::new();
        let digits = match max_age {
            Some(secs) => buffer.format(secs.max(0)),
            None => "",
        };
        let max_age_len = if max_age.is_some() {
            MAX_AGE.len() + digits.len()
        } else {
            0
        };
        let mut out = String::with_capacity(
            self.name.len() + 1 + value.len() + self.tail.len() + max_age_len,
        );
        out.push_str(&self.name);
        out.push('=');
        out.push_str(value);
        out.push_str(&self.tail);
        if max_age.is_some() {
            out.push_str(MAX_AGE);
            out.push_str(digits);
        }
        out
    }

    /// This configuration with its `Set-Cookie` tail rendered.
    fn rendered(mut self) -> Self {
        let full = self.base("").to_string();
        self.tail = full
            .get(self.name.len() + 1..)
            .unwrap_or_default()
            .to_owned();
        self
    }

    /// Render a `Set-Cookie` value that deletes the cookie: empty value,
    /// `Max-Age=0`, an `Expires` in the past, and the same `Path`/`Domain` so the
    /// browser matches it to the cookie it holds.
    ///
    /// # Example
    /// ```
    /// let removal = latch::CookieConfig::default().removal_cookie();
    /// assert!(removal.starts_with("__Host-session=; "));
    /// assert!(removal.contains("Max-Age=0"));
    /// ```
    pub fn removal_cookie(&self) -> String {
        let mut c = self.base("");
        c.make_removal();
        // A fixed date keeps the header identical whenever it is sent.
        c.set_expires(cookie::time::OffsetDateTime::UNIX_EPOCH);
        c.to_string()
    }

    /// The same attributes under the name plus `suffix`, for latch's other
    /// cookies (`__Host-session-csrf`): as strict as the session cookie.
    pub(crate) fn sibling(&self, suffix: &str) -> CookieConfig {
        CookieConfig {
            name: format!("{}{suffix}", self.name),
            ..self.clone()
        }
    }

    fn base<'a>(&'a self, value: &'a str) -> cookie::Cookie<'a> {
        let mut c = cookie::Cookie::new(self.name.as_str(), value);
        c.set_http_only(self.http_only);
        c.set_same_site(match self.same_site {
            SameSite::Strict => cookie::SameSite::Strict,
            SameSite::Lax => cookie::SameSite::Lax,
            SameSite::None => cookie::SameSite::None,
        });
        c.set_secure(self.secure);
        c.set_path(self.path.as_str());
        if let Some(domain) = &self.domain {
            c.set_domain(domain.as_str());
        }
        if self.partitioned {
            c.set_partitioned(true);
        }
        c
    }
}

/// Builder for [`CookieConfig`]; [`build`](Self::build) refuses unsafe settings.
#[derive(Debug, Clone)]
pub struct CookieConfigBuilder(CookieConfig);

impl CookieConfigBuilder {
    /// Set the cookie name (default `__Host-session`).
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.0.name = name.into();
        self
    }

    /// Set the `Path` attribute (default `/`).
    #[must_use]
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.0.path = path.into();
        self
    }

    /// Set the `Domain` attribute (default: none, so only the exact host gets it).
    #[must_use]
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.0.domain = Some(domain.into());
        self
    }

    /// Set `SameSite` (default `Lax`).
    #[must_use]
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.0.same_site = same_site;
        self
    }

    /// Make the cookie `HttpOnly` (default) or readable by page scripts.
    #[must_use]
    pub fn http_only(mut self, http_only: bool) -> Self {
        self.0.http_only = http_only;
        self
    }

    /// Add the `Partitioned` attribute (CHIPS), for sessions in cross-site iframes.
    #[must_use]
    pub fn partitioned(mut self, partitioned: bool) -> Self {
        self.0.partitioned = partitioned;
        self
    }

    /// Turn plain-http development mode on: no `Secure`. Prefer
    /// [`CookieConfig::insecure_dev_mode`]; a `__Host-`/`__Secure-` name is then
    /// refused, since browsers drop such cookies without `Secure`.
    #[must_use]
    pub fn insecure_dev_mode(mut self) -> Self {
        self.0.secure = false;
        self
    }

    /// Check the settings and build the configuration.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidConfig`], naming the fix, for: an empty or invalid name;
    /// `SameSite=None` or `Partitioned` without `Secure`; a `__Host-` name with a
    /// `Domain` or a `Path` other than `/`; a `__Secure-` or `__Host-` name without
    /// `Secure`; a `Path` not starting with `/`; a `Domain` with characters that do
    /// not belong in a host name.
    pub fn build(self) -> Result<CookieConfig> {
        let c = self.0.rendered();
        let fail = |msg: String| Err(Error::new(ErrorKind::InvalidConfig, msg));
        if c.name.is_empty() || !c.name.bytes().all(is_token_byte) {
            return fail(format!(
                "cookie name {:?} is not a valid cookie name: use letters, digits and - _ . only",
                c.name
            ));
        }
        if c.same_site == SameSite::None && !c.secure {
            return fail(
                "SameSite=None without Secure is rejected by browsers; \
                         use SameSite=Lax or serve over https"
                    .to_owned(),
            );
        }
        if c.partitioned && !c.secure {
            return fail("Partitioned cookies must be Secure; serve over https".to_owned());
        }
        if !c.path.starts_with('/') || c.path.bytes().any(|b| b == b';' || b.is_ascii_control()) {
            return fail(format!(
                "cookie path {:?} must start with / and contain no ';'",
                c.path
            ));
        }
        if let Some(d) = &c.domain {
            if d.is_empty()
                || !d
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b))
            {
                return fail(format!("cookie domain {d:?} is not a valid host name"));
            }
        }
        let lower = c.name.to_ascii_lowercase();
        if lower.starts_with("__host-") {
            if !c.secure {
                return fail(
                    "a __Host- cookie must be Secure; in plain-http dev mode use a name \
                             without the prefix"
                        .to_owned(),
                );
            }
            if c.domain.is_some() {
                return fail(
                    "a __Host- cookie cannot have a Domain; remove the domain or \
                             rename the cookie to __Secure-..."
                        .to_owned(),
                );
            }
            if c.path != "/" {
                return fail(
                    "a __Host- cookie must have Path=/; remove the path or rename \
                             the cookie to __Secure-..."
                        .to_owned(),
                );
            }
        }
        if lower.starts_with("__secure-") && !c.secure {
            return fail(
                "a __Secure- cookie must be Secure; in plain-http dev mode use a name \
                         without the prefix"
                    .to_owned(),
            );
        }
        Ok(c)
    }
}

/// RFC 6265 cookie-name token characters, narrowed to a conservative set.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.!#$%&'*+^`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(b: CookieConfigBuilder) -> String {
        b.build().unwrap_err().to_string()
    }

    #[test]
    fn defaults_render_every_secure_attribute() {
        let c = CookieConfig::builder().build().unwrap();
        assert_eq!(
            c.set_cookie("v", None),
            "__Host-session=v; HttpOnly; SameSite=Lax; Secure; Path=/"
        );
    }

    #[test]
    fn samesite_none_without_secure_refused() {
        let msg = refused(
            CookieConfig::builder()
                .name("sid")
                .insecure_dev_mode()
                .same_site(SameSite::None),
        );
        assert_eq!(
            msg,
            "SameSite=None without Secure is rejected by browsers; use SameSite=Lax or serve over https"
        );
    }

    #[test]
    fn host_prefix_rules() {
        assert!(
            refused(CookieConfig::builder().domain("example.com")).contains("cannot have a Domain")
        );
        assert!(refused(CookieConfig::builder().path("/app")).contains("must have Path=/"));
        assert!(refused(CookieConfig::builder().insecure_dev_mode()).contains("must be Secure"));
        // Case-insensitive prefix match, as browsers do.
        assert!(refused(CookieConfig::builder().name("__HOST-x").path("/a")).contains("Path=/"));
    }

    #[test]
    fn secure_prefix_requires_secure() {
        let b = CookieConfig::builder()
            .name("__Secure-s")
            .insecure_dev_mode();
        assert!(refused(b).contains("__Secure- cookie must be Secure"));
        let ok = CookieConfig::builder()
            .name("__Secure-s")
            .domain("example.com")
            .path("/app");
        assert!(ok.build().is_ok());
    }

    #[test]
    fn partitioned_is_opt_in_and_rendered() {
        let c = CookieConfig::builder().partitioned(true).build().unwrap();
        assert!(c.set_cookie("v", None).contains("Partitioned"));
        assert!(
            !CookieConfig::default()
                .set_cookie("v", None)
                .contains("Partitioned")
        );
    }

    #[test]
    fn removal_cookie_keeps_path_and_domain() {
        let c = CookieConfig::builder()
            .name("__Secure-s")
            .domain("example.com")
            .path("/app")
            .build()
            .unwrap();
        let r = c.removal_cookie();
        assert!(r.starts_with("__Secure-s=;"), "{r}");
        for part in [
            "Path=/app",
            "Domain=example.com",
            "Max-Age=0",
            "Secure",
            "Expires=",
        ] {
            assert!(r.contains(part), "{r} lacks {part}");
        }
    }

    #[test]
    fn dev_mode_has_no_secure_and_no_prefix() {
        let d = CookieConfig::insecure_dev_mode();
        assert_eq!(
            d.set_cookie("v", None),
            "latch-session=v; HttpOnly; SameSite=Lax; Path=/"
        );
    }

    #[test]
    fn bad_names_refused() {
        assert!(refused(CookieConfig::builder().name("a b")).contains("not a valid cookie name"));
        assert!(refused(CookieConfig::builder().name("")).contains("not a valid cookie name"));
    }
}

#[cfg(test)]
mod rendering_tests {
    use super::*;

    /// What the `cookie` crate itself writes for `config`, `value` and `max_age`.
    fn reference(config: &CookieConfig, value: &str, max_age: Option<i64>) -> String {
        let mut c = config.base(value);
        if let Some(secs) = max_age {
            c.set_max_age(cookie::time::Duration::seconds(secs.max(0)));
        }
        c.to_string()
    }

    #[test]
    fn cached_rendering_matches_the_cookie_crate() {
        let configs = [
            CookieConfig::default(),
            CookieConfig::insecure_dev_mode(),
            CookieConfig::builder()
                .same_site(SameSite::Strict)
                .build()
                .unwrap(),
            CookieConfig::builder()
                .same_site(SameSite::None)
                .partitioned(true)
                .build()
                .unwrap(),
            CookieConfig::builder()
                .name("__Secure-s")
                .domain("example.com")
                .path("/app")
                .http_only(false)
                .build()
                .unwrap(),
            CookieConfig::builder()
                .name("plain")
                .insecure_dev_mode()
                .build()
                .unwrap(),
            CookieConfig::default().sibling("-bound"),
        ];
        for config in &configs {
            for value in ["", "abc", "a-b_c.d~e"] {
                for max_age in [None, Some(0), Some(-5), Some(3600), Some(34_560_000)] {
                    let rendered = config.set_cookie(value, max_age);
                    assert_eq!(rendered, reference(config, value, max_age), "{config:?}");
                    // Exactly sized: frameworks hand the bytes over uncopied.
                    assert_eq!(rendered.capacity(), rendered.len(), "{rendered}");
                }
            }
        }
    }
}
