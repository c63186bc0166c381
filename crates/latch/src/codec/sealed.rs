//! Encrypted cookies: an AEAD seals issue time and payload; the cookie name,
//! purpose and format version are the associated data. Nothing is compressed
//! before encryption, so the ciphertext length leaks no more than the data's length.

use std::sync::atomic::{AtomicU64, Ordering};

use aes_gcm::Aes256Gcm;
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead as _, KeyInit, Payload};

use super::{CookieCodec, Opened, Rejected, context, decode_value, encode_value, read_time};
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
    fn version(self) -> u8 {
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
    fn seal(&self, nonce: &[u8], msg: Payload<'_, '_>) -> Option<Vec<u8>> {
        match self {
            Cipher::XChaCha(c) => c.encrypt(nonce.into(), msg).ok(),
            Cipher::Gcm(c) => c.encrypt(nonce.into(), msg).ok(),
        }
    }

    fn open(&self, nonce: &[u8], msg: Payload<'_, '_>) -> Option<Vec<u8>> {
        match self {
            Cipher::XChaCha(c) => c.decrypt(nonce.into(), msg).ok(),
            Cipher::Gcm(c) => c.decrypt(nonce.into(), msg).ok(),
        }
    }
}

/// The encrypted-cookie codec.
///
/// Layout (then base64url): `version(1) | nonce | ciphertext-with-tag`, where the
/// plaintext is `issued_at(8) | payload` and the associated data is
/// `label | cookie name | version`.
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
        let mut plain = Vec::with_capacity(8 + payload.len());
        plain.extend_from_slice(&issued_at.to_be_bytes());
        plain.extend_from_slice(payload);
        let aad = context(Purpose::COOKIE_ENCRYPTION.label(), name, version);
        let mut nonce = [0u8; 24];
        let nonce = &mut nonce[..self.aead.nonce_len()];
        self.nonces.fill(nonce, &aad, &plain);
        let sealed = self.ciphers[0]
            .seal(
                nonce,
                Payload {
                    msg: &plain,
                    aad: &aad,
                },
            )
            .ok_or_else(|| Error::new(ErrorKind::InvalidConfig, "AEAD encryption failed"))?;
        let mut out = Vec::with_capacity(1 + nonce.len() + sealed.len());
        out.push(version);
        out.extend_from_slice(nonce);
        out.extend_from_slice(&sealed);
        Ok(encode_value(&out))
    }

    fn open(&self, name: &str, value: &str) -> Result<Opened, Rejected> {
        let bytes = decode_value(name, value)?;
        let version = self.aead.version();
        let nonce_len = self.aead.nonce_len();
        // version + nonce + issued_at + 16-byte tag
        if bytes.len() < 1 + nonce_len + 8 + 16 {
            return Err(Rejected("truncated"));
        }
        if bytes[0] != version {
            return Err(Rejected("unknown version"));
        }
        let (nonce, sealed) = bytes[1..].split_at(nonce_len);
        let aad = context(Purpose::COOKIE_ENCRYPTION.label(), name, version);
        let (key_index, mut plain) = self
            .ciphers
            .iter()
            .enumerate()
            .find_map(|(i, c)| {
                c.open(
                    nonce,
                    Payload {
                        msg: sealed,
                        aad: &aad,
                    },
                )
                .map(|p| (i, p))
            })
            .ok_or(Rejected("bad tag"))?;
        let issued_at = read_time(plain.get(..8).ok_or(Rejected("truncated"))?)?;
        plain.drain(..8);
        Ok(Opened {
            issued_at,
            payload: plain,
            key_index,
            outdated: false,
        })
    }
}
