//! Encrypted cookies: an AEAD seals issue time and payload; the cookie name,
//! purpose and format version are the associated data. Nothing is compressed
//! before encryption, so the ciphertext length leaks no more than the data's length.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use aes_gcm::Aes256Gcm;
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{AeadInPlace as _, KeyInit};

use sha2::{Digest as _, Sha256};

use super::{
    CookieCodec, Opened, Rejected, decode_value, encode_value, read_time, with_context,
    write_context,
};
use crate::error::{Error, ErrorKind};
use crate::key::{Keyring, Purpose};
use crate::rand::NonceSource;
use crate::time::UnixTime;

/// Random 96-bit nonces stay collision-safe for about 2^32 messages per key (NIST
/// SP 800-38D); a process refuses to go past a quarter of that under one key.
const GCM_NONCE_BUDGET: u64 = 1 << 30;

/// Which AEAD seals the cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Aead {
    /// XChaCha20-Poly1305 with random 192-bit nonces: no limit on messages per key
    /// in practice. The default.
    #[default]
    XChaCha20Poly1305,
    /// AES-256-GCM with random 96-bit nonces. Choose it only where AES is a
    /// requirement, and mind its budget: random 96-bit nonces are safe for
    /// about 2^32 seals under one key (NIST SP 800-38D; past that, two cookies
    /// sharing a nonce would let an attacker forge cookies), counted over
    /// *every* process and restart that shares the key. latch can only count
    /// per process: each seals at most 2^30 cookies per key, then refuses
    /// until the key is rotated, but replicas and restarts each count from
    /// zero. So rotate the key before the whole deployment has sealed 2^32
    /// cookies (at 1,000 new or refreshed cookies a second, within about four
    /// months). XChaCha20-Poly1305, the default, has no such limit. Building
    /// a manager with it logs this bound as a warning.
    Aes256Gcm,
}

impl Aead {
    /// The current layout's version byte: the associated data is a 16-byte
    /// digest of the context ([`ContextDigest`]).
    fn version(self) -> u8 {
        match self {
            Aead::XChaCha20Poly1305 => 5,
            Aead::Aes256Gcm => 6,
        }
    }

    /// The first layout's version byte: the whole context (57 bytes for the
    /// default cookie name) as associated data, four blocks of Poly1305 or
    /// GHASH per seal and open where the digest takes one. Still opened, and
    /// re-issued in the current layout ([`Opened::outdated`]).
    fn first_version(self) -> u8 {
        match self {
            Aead::XChaCha20Poly1305 => 2,
            Aead::Aes256Gcm => 3,
        }
    }

    fn nonce_len(self) -> usize {
        match self {
            Aead::XChaCha20Poly1305 => 24,
            Aead::Aes256Gcm => 12,
        }
    }
}

#[derive(Clone)]
enum Cipher {
    XChaCha(XChaCha20Poly1305),
    Gcm(Box<Aes256Gcm>),
}

impl Cipher {
    /// Encrypt `buffer` in place; the tag, or `None` if the AEAD refuses
    /// (a message beyond its length limit, which cookies never reach).
    fn seal(&self, nonce: &[u8], aad: &[u8], buffer: &mut [u8]) -> Option<[u8; TAG_LEN]> {
        let tag = match self {
            Cipher::XChaCha(c) => c.encrypt_in_place_detached(nonce.into(), aad, buffer),
            Cipher::Gcm(c) => c.encrypt_in_place_detached(nonce.into(), aad, buffer),
        };
        tag.ok().map(Into::into)
    }

    /// Check the tag and decrypt `buffer` in place. Both AEADs check the tag
    /// before they decrypt, so a refused `buffer` is left as it was and the
    /// next key can try it (see `rotation_opens_with_previous_keys` in
    /// `tests/codec_props.rs`).
    fn open(&self, nonce: &[u8], aad: &[u8], buffer: &mut [u8], tag: &[u8]) -> bool {
        match self {
            Cipher::XChaCha(c) => {
                c.decrypt_in_place_detached(nonce.into(), aad, buffer, tag.into())
            }
            Cipher::Gcm(c) => c.decrypt_in_place_detached(nonce.into(), aad, buffer, tag.into()),
        }
        .is_ok()
    }
}

/// Both AEADs' tag length.
const TAG_LEN: usize = 16;

/// The current layout's associated data: the first 16 bytes of SHA-256 over
/// the context (length-prefixed purpose label and cookie name, and the
/// version byte; see `write_context`), one block of the AEAD's
/// authenticator. The digest binds the same things the whole context did;
/// the context is the server's own configuration, so no client chooses what
/// is hashed, and finding another context with the same 128-bit digest is a
/// second preimage of SHA-256.
type ContextDigest = [u8; 16];

fn context_digest(name: &str, version: u8) -> ContextDigest {
    let mut hash = Sha256::new();
    write_context(Purpose::COOKIE_ENCRYPTION.label(), name, version, |b| {
        hash.update(b);
    });
    let mut digest = [0; 16];
    digest.copy_from_slice(&hash.finalize()[..16]);
    digest
}

/// The encrypted-cookie codec.
///
/// Layout (then base64url): `version(1) | nonce | ciphertext-with-tag`, where the
/// plaintext is `issued_at(8) | payload` and the associated data is the first
/// 16 bytes of SHA-256 over `label | cookie name | version` (each name
/// length-prefixed). Values of the first layout, whose associated data was
/// that context itself, still open and are re-issued in this one.
///
/// # Example
/// ```
/// use latch::codec::{Aead, CookieCodec, SealedCodec};
/// use latch::{Keyring, SecretKey};
///
/// let codec = SealedCodec::new(&Keyring::new(SecretKey::generate()), Aead::default());
/// let value = codec.seal("__Host-session", 1_700_000_000, b"secret data")?;
/// assert!(!value.contains("secret"));
/// assert_eq!(codec.open("__Host-session", &value).unwrap().payload, b"secret data");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SealedCodec {
    aead: Aead,
    ciphers: Vec<Cipher>,
    /// Nonces for the current key: pooled randomness hedged with the message.
    nonces: NonceSource,
    sealed: AtomicU64,
    /// The associated data for the first cookie name this codec saw (nearly
    /// always the only one), computed once.
    digest: OnceLock<(Box<str>, ContextDigest)>,
}

impl std::fmt::Debug for SealedCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SealedCodec {{ aead: {:?}, keys: {} }}",
            self.aead,
            self.ciphers.len()
        )
    }
}

impl SealedCodec {
    /// A codec using the encryption subkeys of `keys` with `aead`.
    pub fn new(keys: &Keyring, aead: Aead) -> Self {
        let ciphers = keys
            .derive_all(Purpose::COOKIE_ENCRYPTION)
            .iter()
            .map(|k| match aead {
                Aead::XChaCha20Poly1305 => {
                    Cipher::XChaCha(XChaCha20Poly1305::new(k.as_bytes().into()))
                }
                Aead::Aes256Gcm => Cipher::Gcm(Box::new(Aes256Gcm::new(k.as_bytes().into()))),
            })
            .collect();
        let nonces = NonceSource::new(keys.current().derive(Purpose::COOKIE_NONCE).as_bytes());
        Self {
            aead,
            ciphers,
            nonces,
            sealed: AtomicU64::new(0),
            digest: OnceLock::new(),
        }
    }

    /// The current layout's associated data for cookie `name`.
    fn digest(&self, name: &str) -> ContextDigest {
        let version = self.aead.version();
        let (first, digest) = self
            .digest
            .get_or_init(|| (name.into(), context_digest(name, version)));
        if **first == *name {
            *digest
        } else {
            context_digest(name, version)
        }
    }

    fn check_budget(&self) -> crate::Result<()> {
        let n = self.sealed.fetch_add(1, Ordering::Relaxed);
        if self.aead == Aead::Aes256Gcm && n >= GCM_NONCE_BUDGET {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "AES-256-GCM key has sealed 2^30 cookies in this process; rotate the key \
                 or use XChaCha20-Poly1305",
            ));
        }
        Ok(())
    }
}

impl CookieCodec for SealedCodec {
    fn seal(&self, name: &str, issued_at: UnixTime, payload: &[u8]) -> crate::Result<String> {
        self.check_budget()?;
        let version = self.aead.version();
        // One buffer, encrypted in place: version | nonce | issued_at | payload | tag.
        let start = 1 + self.aead.nonce_len();
        let mut out = Vec::with_capacity(start + 8 + payload.len() + TAG_LEN);
        out.push(version);
        out.resize(start, 0);
        out.extend_from_slice(&issued_at.to_be_bytes());
        out.extend_from_slice(payload);
        let (head, plain) = out.split_at_mut(start);
        let nonce = &mut head[1..];
        let aad = self.digest(name);
        self.nonces.fill(nonce, &aad, plain);
        let tag = self.ciphers[0]
            .seal(nonce, &aad, plain)
            .ok_or_else(|| Error::new(ErrorKind::InvalidConfig, "AEAD encryption failed"))?;
        out.extend_from_slice(&tag);
        Ok(encode_value(&out))
    }

    fn open(&self, name: &str, value: &str) -> Result<Opened, Rejected> {
        let mut bytes = decode_value(name, value)?;
        let start = 1 + self.aead.nonce_len();
        // version + nonce + issued_at + tag
        if bytes.len() < start + 8 + TAG_LEN {
            return Err(Rejected("truncated"));
        }
        let version = bytes[0];
        let current = version == self.aead.version();
        if !current && version != self.aead.first_version() {
            return Err(Rejected("unknown version"));
        }
        let (head, rest) = bytes.split_at_mut(start);
        let nonce = &head[1..];
        let (sealed, tag) = rest.split_at_mut(rest.len() - TAG_LEN);
        let mut open_with = |aad: &[u8]| {
            self.ciphers
                .iter()
                .position(|c| c.open(nonce, aad, sealed, tag))
        };
        let key_index = if current {
            open_with(&self.digest(name))
        } else {
            with_context(Purpose::COOKIE_ENCRYPTION.label(), name, version, open_with)
        }
        .ok_or(Rejected("bad tag"))?;
        let issued_at = read_time(&bytes[start..start + 8])?;
        // The payload is what lies between issue time and tag: cut the
        // buffer down to it in place rather than copying it out.
        bytes.truncate(bytes.len() - TAG_LEN);
        bytes.drain(..start + 8);
        Ok(Opened {
            issued_at,
            payload: bytes,
            key_index,
            outdated: !current,
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
    const AEADS: [Aead; 2] = [Aead::XChaCha20Poly1305, Aead::Aes256Gcm];

    fn codec(aead: Aead) -> SealedCodec {
        SealedCodec::new(&Keyring::new(SecretKey::generate()), aead)
    }

    /// A value as the first layout sealed it: the whole context as the
    /// associated data.
    fn seal_first_layout(codec: &SealedCodec, issued_at: UnixTime, payload: &[u8]) -> String {
        let version = codec.aead.first_version();
        let start = 1 + codec.aead.nonce_len();
        let mut out = vec![version];
        out.resize(start, 0);
        crate::rand::fill(&mut out[1..start]);
        out.extend_from_slice(&issued_at.to_be_bytes());
        out.extend_from_slice(payload);
        let (head, plain) = out.split_at_mut(start);
        let label = Purpose::COOKIE_ENCRYPTION.label();
        let tag = with_context(label, NAME, version, |aad| {
            codec.ciphers[0].seal(&head[1..], aad, plain)
        })
        .expect("sealing");
        out.extend_from_slice(&tag);
        encode_value(&out)
    }

    #[test]
    fn values_in_the_first_layout_still_open_and_are_marked_for_reissue() {
        for aead in AEADS {
            let codec = codec(aead);
            let old = seal_first_layout(&codec, 1_700_000_000, b"{\"d\":{}}");
            let opened = codec.open(NAME, &old).expect("a first-layout value opens");
            assert_eq!(opened.payload, b"{\"d\":{}}", "{aead:?}");
            assert_eq!(opened.issued_at, 1_700_000_000);
            assert!(opened.outdated, "{aead:?}: not marked for re-issue");
            let new = codec.seal(NAME, 1_700_000_000, b"{\"d\":{}}").unwrap();
            let opened = codec.open(NAME, &new).unwrap();
            assert!(!opened.outdated, "{aead:?}");
            assert_eq!(opened.payload, b"{\"d\":{}}");
        }
    }

    #[test]
    fn the_layout_byte_cannot_be_swapped() {
        for aead in AEADS {
            let codec = codec(aead);
            for (value, other) in [
                (codec.seal(NAME, 5, b"x").unwrap(), aead.first_version()),
                (seal_first_layout(&codec, 5, b"x"), aead.version()),
            ] {
                assert!(codec.open(NAME, &value).is_ok());
                let mut bytes = URL_SAFE_NO_PAD.decode(&value).unwrap();
                bytes[0] = other;
                let swapped = URL_SAFE_NO_PAD.encode(&bytes);
                assert_eq!(
                    codec.open(NAME, &swapped).unwrap_err().reason(),
                    "bad tag",
                    "{aead:?}: version {other} opened another layout's value"
                );
            }
        }
    }

    #[test]
    fn both_layouts_bind_the_cookie_name() {
        for aead in AEADS {
            let codec = codec(aead);
            // The first name seen has its digest kept; others are computed
            // each time, and must bind just as well.
            let main = codec.seal(NAME, 5, b"x").unwrap();
            let other = codec.seal("other", 5, b"x").unwrap();
            assert_eq!(codec.open("other", &other).unwrap().payload, b"x");
            assert!(codec.open("other", &main).is_err(), "{aead:?}");
            assert!(codec.open(NAME, &other).is_err(), "{aead:?}");
            let old = seal_first_layout(&codec, 5, b"x");
            assert!(codec.open("other", &old).is_err(), "{aead:?}");
        }
    }
}
