//! Session identifiers and the hashed keys stores index them by.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Bytes of entropy in a session ID (256 bits).
const ID_BYTES: usize = 32;
/// Length of an encoded ID: 32 bytes in unpadded base64url.
const ID_CHARS: usize = 43;

/// An opaque session identifier: 256 bits from the OS CSPRNG, carrying no data.
///
/// It is the bearer secret in the cookie of a server-side session, so it is never
/// printed (`Debug` is redacted) and never handed to a store: stores see only its
/// SHA-256, the [`StoreKey`].
///
/// # Example
/// ```
/// use latch::SessionId;
///
/// let id = SessionId::generate();
/// let text = id.encode();
/// assert_eq!(text.len(), 43);
/// assert_eq!(SessionId::parse(&text), Some(id));
/// assert_eq!(SessionId::parse("not-an-id"), None);
/// ```
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SessionId([u8; ID_BYTES]);

impl SessionId {
    /// A new random ID.
    pub fn generate() -> Self {
        let mut bytes = [0u8; ID_BYTES];
        crate::rand::fill_pooled(&mut bytes);
        Self(bytes)
    }

    /// Wrap 32 bytes as an ID, for ID formats of other frameworks whose IDs are
    /// also 32 random bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 raw bytes (a bearer secret: never log them).
    pub fn expose_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parse an ID strictly: exactly 43 characters of unpadded base64url that decode
    /// canonically. Anything else is `None`, before it reaches a store or a log.
    pub fn parse(text: &str) -> Option<Self> {
        // The decoder refuses every byte outside the base64url alphabet
        // (padding included) and non-canonical trailing bits, so the length
        // is all there is to check first.
        if text.len() != ID_CHARS {
            return None;
        }
        let mut bytes = [0u8; ID_BYTES];
        let n = URL_SAFE_NO_PAD.decode_slice(text, &mut bytes).ok()?;
        (n == ID_BYTES).then_some(Self(bytes))
    }

    /// The cookie form of the ID.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// The key a store files this session under: SHA-256 of the ID.
    ///
    /// # Example
    /// ```
    /// let id = latch::SessionId::generate();
    /// assert_eq!(id.store_key(), id.store_key());
    /// assert_eq!(id.store_key().to_hex().len(), 64);
    /// ```
    pub fn store_key(&self) -> StoreKey {
        StoreKey(Sha256::digest(self.0).into())
    }
}

impl PartialEq for SessionId {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for SessionId {}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(..)")
    }
}

/// The SHA-256 of a [`SessionId`]: what stores use as the primary key.
///
/// A leaked table of store keys gives no usable session, because the cookie must
/// carry the preimage. Store keys are safe to log and to show to administrators,
/// and are how a user's sessions are listed and revoked one by one.
///
/// # Example
/// ```
/// let key = latch::SessionId::generate().store_key();
/// assert_eq!(latch::StoreKey::from_hex(&key.to_hex()), Some(key));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct StoreKey([u8; 32]);

/// Hashes the first 8 of the 32 bytes. Every store key is a SHA-256 digest
/// (of a session ID, or of a throttle subject or revocation ID under a
/// domain tag), so those 64 bits are already uniform, and making many keys
/// share them takes a multi-collision search on SHA-256; the maps in this
/// process still run them through their seeded hasher, so bucket positions
/// stay unpredictable from outside. Hashing all 32 bytes cost ~70 instructions a lookup, and a saved
/// session takes about ten.
impl std::hash::Hash for StoreKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let mut head = [0u8; 8];
        head.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(head));
    }
}

impl StoreKey {
    /// Wrap raw hash bytes read back from a store.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        // By table rather than `format!` per byte: this runs on every store
        // call (Redis keys), where formatting cost ~600 instructions a key.
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (pair, b) in out.chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 0x0f)];
        }
        // OK because every byte is an ASCII hex digit.
        std::str::from_utf8(&out).expect("ASCII").to_owned()
    }

    /// Parse 64 hex digits (either case); anything else is `None`.
    pub fn from_hex(text: &str) -> Option<Self> {
        if text.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, chunk) in text.as_bytes().chunks(2).enumerate() {
            let pair = std::str::from_utf8(chunk).ok()?;
            out[i] = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(Self(out))
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreKey({})", self.to_hex())
    }
}

impl fmt::Display for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_256_bits() {
        let ids: std::collections::HashSet<String> =
            (0..1000).map(|_| SessionId::generate().encode()).collect();
        assert_eq!(ids.len(), 1000);
        assert_eq!(ID_BYTES * 8, 256);
    }

    #[test]
    fn parse_is_strict() {
        let good = SessionId::generate().encode();
        assert!(SessionId::parse(&good).is_some());
        assert!(SessionId::parse(&good[..42]).is_none());
        assert!(SessionId::parse(&format!("{good}A")).is_none());
        assert!(
            SessionId::parse(&good.replace(|c: char| c.is_ascii_alphanumeric(), "+")).is_none()
        );
        // Any one byte outside the alphabet, anywhere, is refused.
        for foreign in ["+", "/", "=", " ", ".", "\u{e9}"] {
            for at in [0, 21, 42] {
                let mut bad = good.clone();
                bad.replace_range(at..=at, foreign);
                if bad.len() == ID_CHARS {
                    assert!(SessionId::parse(&bad).is_none(), "{foreign:?} at {at}");
                }
            }
        }
        // 32 bytes leave 2 bits unused in the last character: they must be 0,
        // so one ID has exactly one spelling.
        let mut last = good.clone();
        let c = last.pop().unwrap();
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let index = alphabet.find(c).unwrap();
        let other = alphabet.as_bytes()[index ^ 1] as char;
        assert!(SessionId::parse(&format!("{last}{other}")).is_none());
    }

    #[test]
    fn debug_is_redacted() {
        let id = SessionId::generate();
        assert_eq!(format!("{id:?}"), "SessionId(..)");
    }

    #[test]
    fn store_key_is_sha256_of_id_bytes() {
        let id = SessionId([7u8; 32]);
        assert_eq!(
            id.store_key().to_hex(),
            "4bb06f8e4e3a7715d201d573d0aa423762e55dabd61a2c02278fa56cc6d294e0"
        );
    }

    #[test]
    fn parse_rejects_canonically_invalid_tail() {
        // The 43rd character carries 4 padding bits; a non-zero one is not canonical.
        let text = format!("{}B", "A".repeat(42));
        assert!(SessionId::parse(&text).is_none());
    }
}
