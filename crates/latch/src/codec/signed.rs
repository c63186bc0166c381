//! Signed cookies: HMAC-SHA256 over purpose, cookie name, version, issue time and
//! payload. The data is readable by the client but cannot be changed.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{CookieCodec, Opened, Rejected, decode_value, encode_value, read_time, write_context};
use crate::key::{Keyring, Purpose};
use crate::time::UnixTime;

type HmacSha256 = Hmac<Sha256>;

const VERSION: u8 = 1;
const TAG_LEN: usize = 32;
/// version (1) + issued_at (8)
const HEADER_LEN: usize = 9;

/// The signed-cookie codec.
///
/// Layout (then base64url): `version(1) | issued_at(8, big-endian) | payload |
/// tag(32)`, where the tag is HMAC-SHA256 under the [`Purpose::COOKIE_SIGNING`]
/// subkey of `label | cookie name | version | issued_at | payload`.
///
/// # Example
/// ```
/// use latch::codec::{CookieCodec, SignedCodec};
/// use latch::{Keyring, SecretKey};
///
/// let codec = SignedCodec::new(&Keyring::new(SecretKey::generate()));
/// let value = codec.seal("__Host-session", 1_700_000_000, b"{}")?;
/// let opened = codec.open("__Host-session", &value).unwrap();
/// assert_eq!(opened.payload, b"{}");
/// assert!(codec.open("other-cookie", &value).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SignedCodec {
    /// One keyed MAC per key, current first; cloned per use to skip re-keying.
    macs: Vec<HmacSha256>,
    /// What the values are for: its subkey, and its label in every MAC.
    purpose: Purpose,
}

impl std::fmt::Debug for SignedCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignedCodec {{ keys: {} }}", self.macs.len())
    }
}

impl SignedCodec {
    /// A codec using the signing subkeys of `keys`.
    pub fn new(keys: &Keyring) -> Self {
        Self::with_purpose(keys, Purpose::COOKIE_SIGNING)
    }

    /// A codec for values of another `purpose` (its own subkey, and its label
    /// in every MAC), so they can never pass for session cookies.
    ///
    /// # Example
    /// ```
    /// use latch::codec::{CookieCodec, SignedCodec};
    /// use latch::{Keyring, Purpose, SecretKey};
    ///
    /// let keys = Keyring::new(SecretKey::generate());
    /// let csrf = SignedCodec::with_purpose(&keys, Purpose::CSRF);
    /// let value = csrf.seal("c", 0, b"x")?;
    /// assert!(SignedCodec::new(&keys).open("c", &value).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_purpose(keys: &Keyring, purpose: Purpose) -> Self {
        let macs = keys
            .derive_all(purpose)
            .iter()
            // OK because HMAC accepts keys of any length.
            .map(|k| HmacSha256::new_from_slice(k.as_bytes()).expect("HMAC takes any key size"))
            .collect();
        Self { macs, purpose }
    }

    fn mac(&self, index: usize, name: &str, body: &[u8]) -> HmacSha256 {
        let mut mac = self.macs[index].clone();
        write_context(self.purpose.label(), name, VERSION, |b| {
            mac.update(b);
        });
        mac.update(body);
        mac
    }
}

impl CookieCodec for SignedCodec {
    fn seal(&self, name: &str, issued_at: UnixTime, payload: &[u8]) -> crate::Result<String> {
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len() + TAG_LEN);
        out.push(VERSION);
        out.extend_from_slice(&issued_at.to_be_bytes());
        out.extend_from_slice(payload);
        let tag = self.mac(0, name, &out).finalize().into_bytes();
        out.extend_from_slice(&tag);
        Ok(encode_value(&out))
    }

    fn open(&self, name: &str, value: &str) -> Result<Opened, Rejected> {
        let mut bytes = decode_value(name, value)?;
        if bytes.len() < HEADER_LEN + TAG_LEN {
            return Err(Rejected("truncated"));
        }
        let (body, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        if body[0] != VERSION {
            return Err(Rejected("unknown version"));
        }
        // verify_slice compares in constant time.
        let key_index = (0..self.macs.len())
            .find(|&i| self.mac(i, name, body).verify_slice(tag).is_ok())
            .ok_or(Rejected("bad signature"))?;
        let issued_at = read_time(&body[1..HEADER_LEN])?;
        // The payload is what lies between header and tag: cut the buffer down
        // to it in place rather than copying it out.
        bytes.truncate(bytes.len() - TAG_LEN);
        bytes.drain(..HEADER_LEN);
        Ok(Opened {
            issued_at,
            payload: bytes,
            key_index,
        })
    }
}
