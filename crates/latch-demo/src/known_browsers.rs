//! Browsers an account has signed in from, so that strangers guessing its
//! password cannot lock its owner out (A7).
//!
//! A per-account limit on sign-in attempts stops guessing, but anyone who
//! knows a username can spend the account's attempts and the owner's right
//! password is refused too (attack round ten did it from a script). This is
//! OWASP's "device cookie": a signed cookie given to a browser at sign-in,
//! naming the account. An attempt that carries a good one for the account
//! it is made for is counted against that browser alone (as strictly: five
//! per window), not against the account, so the owner's browsers keep
//! signing in while strangers stay capped together.
//!
//! The cookie grants nothing but that separate count: it is not a session,
//! outlives sign-out on purpose, and a copy of it gives a thief the same
//! five guesses per window the owner's browser has.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderMap;
use latch::codec::{CookieCodec as _, SignedCodec};
use latch::cookie::{IncomingCookie, find_session_cookie};
use latch::{CookieConfig, Keyring, Purpose, SameSite, UnixTime};

/// How long a browser stays known after its last sign-in.
pub const LIFETIME: Duration = Duration::from_secs(180 * 24 * 3600);

/// The cookie's name when it is sent over TLS only (the usual case).
pub const COOKIE_NAME: &str = "__Host-known-browser";

/// Its name in plain-http development mode (no `__Host-` without `Secure`).
pub const DEV_COOKIE_NAME: &str = "known-browser";

/// Random bytes that tell one browser's cookie from another's.
const NONCE_BYTES: usize = 16;

/// Issues and recognises known-browser cookies.
#[derive(Clone)]
pub struct KnownBrowsers {
    codec: SignedCodec,
    cookie: CookieConfig,
}

impl std::fmt::Debug for KnownBrowsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KnownBrowsers {{ cookie: {} }}", self.cookie.name())
    }
}

/// A browser that presented a good cookie for the account it tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownBrowser {
    /// What its attempts are counted under (the cookie's random part).
    pub subject: String,
}

impl KnownBrowsers {
    /// Cookies signed with their own subkey of `keys` (they can never pass
    /// for session or CSRF cookies), `Secure` and `__Host-` unless
    /// `secure` is false (plain-http development mode).
    ///
    /// # Errors
    /// Never with these names; kept for the builder's checks.
    pub fn new(keys: &Keyring, secure: bool) -> latch::Result<Self> {
        let builder = CookieConfig::builder().same_site(SameSite::Strict);
        let cookie = if secure {
            builder.name(COOKIE_NAME)
        } else {
            builder.insecure_dev_mode().name(DEV_COOKIE_NAME)
        }
        .build()?;
        Ok(Self {
            codec: SignedCodec::with_purpose(keys, Purpose::custom("latch-demo/v1/known-browser")),
            cookie,
        })
    }

    /// The `Set-Cookie` value that makes this browser known for `account`
    /// (normalized), from `now` for [`LIFETIME`].
    ///
    /// # Errors
    /// Only when the system's random source or the codec cannot run.
    pub fn cookie_for(&self, account: &str, now: UnixTime) -> anyhow::Result<String> {
        let mut payload = vec![0u8; NONCE_BYTES];
        getrandom::fill(&mut payload)
            .map_err(|e| anyhow::anyhow!("the system's random source failed: {e}"))?;
        payload.extend_from_slice(account.as_bytes());
        let value = self.codec.seal(self.cookie.name(), now, &payload)?;
        Ok(self
            .cookie
            .set_cookie(&value, i64::try_from(LIFETIME.as_secs()).ok()))
    }

    /// The browser behind `headers`, if it carries one good, unexpired
    /// cookie naming `account` (normalized). Anything else (no cookie, two,
    /// forged, expired, another account's) is a stranger.
    pub fn recognise(
        &self,
        headers: &HeaderMap,
        account: &str,
        now: UnixTime,
    ) -> Option<KnownBrowser> {
        let values = headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok());
        let IncomingCookie::One(value) = find_session_cookie(values, self.cookie.name()) else {
            return None;
        };
        let opened = self.codec.open(self.cookie.name(), &value).ok()?;
        let age = now.checked_sub(opened.issued_at)?;
        let lifetime = i64::try_from(LIFETIME.as_secs()).ok()?;
        if !(0..=lifetime).contains(&age) || opened.payload.len() < NONCE_BYTES {
            return None;
        }
        let (nonce, named) = opened.payload.split_at(NONCE_BYTES);
        (named == account.as_bytes()).then(|| KnownBrowser {
            subject: URL_SAFE_NO_PAD.encode(nonce),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use latch::SecretKey;

    fn presenting(set_cookie: &str) -> HeaderMap {
        let pair = set_cookie.split(';').next().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(http::header::COOKIE, HeaderValue::from_str(pair).unwrap());
        headers
    }

    #[test]
    fn a_browser_is_known_for_its_account_only_and_only_for_a_while() {
        let keys = Keyring::new(SecretKey::generate());
        let known = KnownBrowsers::new(&keys, true).unwrap();
        let now: UnixTime = 1_800_000_000;
        let set = known.cookie_for("dana", now).unwrap();
        assert!(set.starts_with("__Host-known-browser="), "{set}");
        for attribute in [
            "HttpOnly",
            "SameSite=Strict",
            "Secure",
            "Path=/",
            "Max-Age=",
        ] {
            assert!(set.contains(attribute), "{set} lacks {attribute}");
        }
        let headers = presenting(&set);
        let browser = known.recognise(&headers, "dana", now + 5).unwrap();
        assert_eq!(
            known.recognise(&headers, "dana", now),
            Some(browser.clone())
        );
        assert_eq!(known.recognise(&headers, "erin", now), None);
        assert_eq!(known.recognise(&headers, "dan", now), None);
        let last = now + i64::try_from(LIFETIME.as_secs()).unwrap();
        assert!(known.recognise(&headers, "dana", last).is_some());
        assert_eq!(known.recognise(&headers, "dana", last + 1), None);
        // Issued in the future (a forged clock): not accepted.
        assert_eq!(known.recognise(&headers, "dana", now - 1), None);
        // Each browser has a subject of its own.
        let other = known.cookie_for("dana", now).unwrap();
        let other = known.recognise(&presenting(&other), "dana", now).unwrap();
        assert_ne!(other, browser);
    }

    #[test]
    fn forged_moved_and_doubled_cookies_are_strangers() {
        let keys = Keyring::new(SecretKey::generate());
        let known = KnownBrowsers::new(&keys, true).unwrap();
        let now: UnixTime = 1_800_000_000;
        let set = known.cookie_for("dana", now).unwrap();
        let pair = set.split(';').next().unwrap();
        let (name, value) = pair.split_once('=').unwrap();
        // Another key's cookie.
        let stranger = KnownBrowsers::new(&Keyring::new(SecretKey::generate()), true).unwrap();
        let forged = stranger.cookie_for("dana", now).unwrap();
        assert_eq!(known.recognise(&presenting(&forged), "dana", now), None);
        // Every character of the value changed in turn.
        for i in 0..value.len() {
            let mut bytes = value.as_bytes().to_vec();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = format!("{name}={}", String::from_utf8(bytes).unwrap());
            assert_eq!(known.recognise(&presenting(&tampered), "dana", now), None);
        }
        // A session cookie's signature under the same key does not pass.
        let session = SignedCodec::new(&keys).seal(name, now, b"dana").unwrap();
        let moved = format!("{name}={session}");
        assert_eq!(known.recognise(&presenting(&moved), "dana", now), None);
        // Two of them: neither is believed.
        let mut twice = presenting(pair);
        let again = HeaderValue::from_str(pair).unwrap();
        twice.append(http::header::COOKIE, again);
        assert_eq!(known.recognise(&twice, "dana", now), None);
        assert!(known.recognise(&presenting(pair), "dana", now).is_some());
        // The plain-http name is another cookie.
        let dev = KnownBrowsers::new(&keys, false).unwrap();
        let dev_set = dev.cookie_for("dana", now).unwrap();
        assert!(dev_set.starts_with("known-browser=") && !dev_set.contains("Secure"));
        assert_eq!(known.recognise(&presenting(&dev_set), "dana", now), None);
    }
}
