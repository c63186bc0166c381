//! Signed cookies: HMAC-SHA256 over purpose, cookie name, version, issue time and
//! payload. The data is readable by the client but cannot be changed.

use std::sync::OnceLock;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{CookieCodec, Opened, Rejected, decode_value, encode_value, read_time, write_context};
use crate::key::{Keyring, Purpose};
use crate::time::UnixTime;

type HmacSha256 = Hmac<Sha256>;

/// The current layout: the context (purpose label, cookie name, version) is
/// zero-padded to whole SHA-256 blocks before the body, so the MAC state after
/// it is computed once per key and cookie name and each cookie costs only the
/// blocks of its own body (one block fewer for a typical session cookie).
const VERSION: u8 = 4;
/// The first layout: context and body in one stream. Still opened, and
/// re-issued in the current layout ([`Opened::outdated`]).
const VERSION_STREAM: u8 = 1;
const TAG_LEN: usize = 32;
/// version (1) + issued_at (8)
const HEADER_LEN: usize = 9;
/// SHA-256's block size, to which the context is padded.
const BLOCK: usize = 64;

/// The signed-cookie codec.
///
/// Layout (then base64url): `version(1) | issued_at(8, big-endian) | payload |
/// tag(32)`, where the tag is HMAC-SHA256 under the [`Purpose::COOKIE_SIGNING`]
/// subkey of `context | version | issued_at | payload`, and the context is the
/// length-prefixed label and cookie name and the version, zero-padded to a
/// multiple of 64 bytes (the length prefixes keep the encoding unambiguous).
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
    /// The MACs with the current layout's context for the first cookie name
    /// this codec served already absorbed (a codec nearly always serves one
    /// name; others are bound on each use).
    bound: OnceLock<Bound>,
}

/// Keyed MAC states that have absorbed the padded context of one cookie name.
#[derive(Clone)]
struct Bound {
    name: Box<str>,
    macs: Vec<HmacSha256>,
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
        Self {
            macs,
            purpose,
            bound: OnceLock::new(),
        }
    }

    /// Key `index`'s MAC over `body` of a value in layout `version` for the
    /// cookie `name`.
    fn mac(&self, index: usize, name: &str, version: u8, body: &[u8]) -> HmacSha256 {
        let mut mac = if version == VERSION_STREAM {
            let mut mac = self.macs[index].clone();
            write_context(self.purpose.label(), name, VERSION_STREAM, |b| {
                mac.update(b);
            });
            mac
        } else {
            let bound = self.bound.get_or_init(|| self.bind(name));
            if &*bound.name == name {
                bound.macs[index].clone()
            } else {
                self.bind_one(index, name)
            }
        };
        mac.update(body);
        mac
    }

    /// Every key's MAC with `name`'s padded context absorbed.
    fn bind(&self, name: &str) -> Bound {
        Bound {
            name: name.into(),
            macs: (0..self.macs.len())
                .map(|i| self.bind_one(i, name))
                .collect(),
        }
    }

    fn bind_one(&self, index: usize, name: &str) -> HmacSha256 {
        let mut context = Vec::with_capacity(BLOCK);
        write_context(self.purpose.label(), name, VERSION, |b| {
            context.extend_from_slice(b);
        });
        context.resize(context.len().next_multiple_of(BLOCK), 0);
        let mut mac = self.macs[index].clone();
        mac.update(&context);
        mac
    }

    /// A value in the first layout, as latch wrote them before version 4, to
    /// prove they still open.
    #[cfg(test)]
    fn seal_stream(&self, name: &str, issued_at: UnixTime, payload: &[u8]) -> String {
        let mut out = vec![VERSION_STREAM];
        out.extend_from_slice(&issued_at.to_be_bytes());
        out.extend_from_slice(payload);
        let tag = self
            .mac(0, name, VERSION_STREAM, &out)
            .finalize()
            .into_bytes();
        out.extend_from_slice(&tag);
        encode_value(&out)
    }
}

impl CookieCodec for SignedCodec {
    fn seal(&self, name: &str, issued_at: UnixTime, payload: &[u8]) -> crate::Result<String> {
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len() + TAG_LEN);
        out.push(VERSION);
        out.extend_from_slice(&issued_at.to_be_bytes());
        out.extend_from_slice(payload);
        let tag = self.mac(0, name, VERSION, &out).finalize().into_bytes();
        out.extend_from_slice(&tag);
        Ok(encode_value(&out))
    }

    fn open(&self, name: &str, value: &str) -> Result<Opened, Rejected> {
        let mut bytes = decode_value(name, value)?;
        if bytes.len() < HEADER_LEN + TAG_LEN {
            return Err(Rejected("truncated"));
        }
        let (body, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        let version = body[0];
        if version != VERSION && version != VERSION_STREAM {
            return Err(Rejected("unknown version"));
        }
        // verify_slice compares in constant time.
        let key_index = (0..self.macs.len())
            .find(|&i| self.mac(i, name, version, body).verify_slice(tag).is_ok())
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
            outdated: version != VERSION,
        })
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;
    use crate::key::SecretKey;

    const NAME: &str = "__Host-session";

    fn codec() -> SignedCodec {
        SignedCodec::new(&Keyring::new(SecretKey::generate()))
    }

    #[test]
    fn values_in_the_first_layout_still_open_and_are_marked_for_reissue() {
        let codec = codec();
        let old = codec.seal_stream(NAME, 1_700_000_000, b"{\"d\":{}}");
        let opened = codec.open(NAME, &old).expect("a first-layout value opens");
        assert_eq!(opened.payload, b"{\"d\":{}}");
        assert_eq!(opened.issued_at, 1_700_000_000);
        assert!(opened.outdated);
        let new = codec.seal(NAME, 1_700_000_000, b"{\"d\":{}}").unwrap();
        assert_ne!(new, old);
        assert!(!codec.open(NAME, &new).unwrap().outdated);
    }

    #[test]
    fn the_layout_byte_cannot_be_swapped() {
        let codec = codec();
        for (value, other) in [
            (codec.seal(NAME, 5, b"x").unwrap(), VERSION_STREAM),
            (codec.seal_stream(NAME, 5, b"x"), VERSION),
        ] {
            let mut bytes = URL_SAFE_NO_PAD.decode(&value).unwrap();
            bytes[0] = other;
            let swapped = URL_SAFE_NO_PAD.encode(&bytes);
            assert_eq!(
                codec.open(NAME, &swapped).unwrap_err().reason(),
                "bad signature"
            );
        }
    }

    #[test]
    fn a_codec_serving_several_names_keeps_them_apart() {
        let codec = codec();
        // The first name used is the one prepared once; the others are bound
        // on each use and must give the same answers.
        let first = codec.seal(NAME, 5, b"x").unwrap();
        let second = codec.seal("other", 5, b"x").unwrap();
        assert!(codec.open(NAME, &first).is_ok());
        assert!(codec.open("other", &second).is_ok());
        assert!(codec.open("other", &first).is_err());
        assert!(codec.open(NAME, &second).is_err());
        // A fresh codec under the same key, first used for "other", agrees.
        let keys = Keyring::new(SecretKey::generate());
        let (a, b) = (SignedCodec::new(&keys), SignedCodec::new(&keys));
        assert!(
            b.open("other", &a.seal("warm-up", 0, b"").unwrap())
                .is_err()
        );
        assert!(b.open("other", &a.seal("other", 9, b"y").unwrap()).is_ok());
    }

    #[test]
    fn names_longer_than_a_block_are_bound_whole() {
        let codec = codec();
        let long = "n".repeat(150);
        let longer = format!("{long}x");
        let value = codec.seal(&long, 1, b"p").unwrap();
        assert!(codec.open(&long, &value).is_ok());
        assert!(codec.open(&longer, &value).is_err());
    }

    #[test]
    fn older_keys_still_verify_through_the_prepared_state() {
        let old = SecretKey::generate();
        let before = SignedCodec::new(&Keyring::new(old.clone()));
        let value = before.seal(NAME, 3, b"p").unwrap();
        let after = SignedCodec::new(&Keyring::new(SecretKey::generate()).with_previous(old));
        assert_eq!(after.open(NAME, &value).unwrap().key_index, 1);
    }
}
