//! Cookie codecs: how session data travels inside a cookie, signed or sealed.
//!
//! Both codecs bind the cookie name and the key's purpose into what they
//! authenticate, so a value cannot be moved to another cookie or reused for another
//! job. Both check the size first and the MAC/tag second, and only then hand bytes
//! to a parser. Every defect, whatever it is, yields the same [`Rejected`].

mod format;
mod sealed;
mod signed;

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub use format::{CookieFormat, DecodedCookie, HashedIds, IdFormat, LatchFormat};
pub use sealed::{Aead, SealedCodec};
pub use signed::SignedCodec;

use crate::time::UnixTime;

/// The most bytes a cookie's name plus value may take (RFC 6265bis, browsers).
pub const MAX_COOKIE_BYTES: usize = 4096;

/// A cookie value that was authentic under one of the keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// When the value was issued (authenticated).
    pub issued_at: UnixTime,
    /// The payload bytes (authenticated, and decrypted for sealed cookies).
    pub payload: Vec<u8>,
    /// Which key verified it: 0 is the current key, higher are previous keys.
    pub key_index: usize,
    /// Written in an older layout of this codec: still good, but re-issue it
    /// in the current one.
    pub outdated: bool,
}

/// A cookie value that was not accepted.
///
/// Deliberately carries no detail a client could learn from: callers treat every
/// rejection as "no session". The [`reason`](Rejected::reason) is for server logs
/// and operator tools only.
///
/// # Example
/// ```
/// use latch::{Keyring, SecretKey, codec::{CookieCodec, SignedCodec}};
///
/// let codec = SignedCodec::new(&Keyring::new(SecretKey::generate()));
/// let err = codec.open("session", "garbage").unwrap_err();
/// assert_eq!(err.to_string(), "invalid session cookie");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected(pub(crate) &'static str);

impl Rejected {
    /// A rejection with a reason for the server log (never shown to clients).
    pub fn new(reason: &'static str) -> Self {
        Self(reason)
    }

    /// Why the value was rejected, for logs: never send it to the client.
    pub fn reason(&self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid session cookie")
    }
}

impl std::error::Error for Rejected {}

/// A codec that turns a payload into a cookie value and back.
pub trait CookieCodec: Send + Sync + fmt::Debug + 'static {
    /// Authenticate (and, for sealed codecs, encrypt) `payload` for the cookie
    /// `name`, stamped with `issued_at`, under the current key.
    ///
    /// # Errors
    /// Only when the codec cannot run at all (an AES-GCM key past its message
    /// budget).
    fn seal(&self, name: &str, issued_at: UnixTime, payload: &[u8]) -> crate::Result<String>;

    /// Check and open a cookie value for the cookie `name`.
    ///
    /// # Errors
    /// [`Rejected`] for any defect: too long, not base64url, truncated, wrong
    /// version, failed MAC/tag under every key.
    fn open(&self, name: &str, value: &str) -> Result<Opened, Rejected>;
}

/// The bytes every MAC/AEAD binds besides the payload: purpose label and cookie
/// name, each length-prefixed so no two (label, name) pairs share an encoding.
///
/// Written piece by piece into `sink`, so a MAC can absorb it without a
/// temporary buffer.
fn write_context(label: &str, name: &str, version: u8, mut sink: impl FnMut(&[u8])) {
    sink(&(label.len() as u64).to_be_bytes());
    sink(label.as_bytes());
    sink(&(name.len() as u64).to_be_bytes());
    sink(name.as_bytes());
    sink(&[version]);
}

/// Run `f` on [`write_context`] as one buffer, for an AEAD's associated
/// data: on the stack for the usual cookie names, so sealing and opening
/// allocate nothing for it.
fn with_context<R>(label: &str, name: &str, version: u8, f: impl FnOnce(&[u8]) -> R) -> R {
    const ON_STACK: usize = 128;
    let len = label.len() + name.len() + 17;
    if len > ON_STACK {
        let mut out = Vec::with_capacity(len);
        write_context(label, name, version, |b| out.extend_from_slice(b));
        return f(&out);
    }
    let mut buf = [0u8; ON_STACK];
    let mut at = 0;
    write_context(label, name, version, |b| {
        buf[at..at + b.len()].copy_from_slice(b);
        at += b.len();
    });
    f(&buf[..at])
}

fn decode_value(name: &str, value: &str) -> Result<Vec<u8>, Rejected> {
    if name.len() + value.len() > MAX_COOKIE_BYTES {
        return Err(Rejected("oversized"));
    }
    URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| Rejected("not base64url"))
}

fn encode_value(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn read_time(bytes: &[u8]) -> Result<UnixTime, Rejected> {
    let array: [u8; 8] = bytes.try_into().map_err(|_| Rejected("truncated"))?;
    Ok(i64::from_be_bytes(array))
}
