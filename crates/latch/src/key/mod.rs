//! Secret keys: loading, strength checks, per-purpose derivation and rotation.
//!
//! A [`SecretKey`] is the master secret an operator configures. latch never uses it
//! directly: every job (signing cookies, encrypting cookies, CSRF tokens, ...) gets
//! its own [`Subkey`] derived with HKDF-SHA256, so a weakness in one use cannot
//! spill into another. A [`Keyring`] holds the current key plus any number of
//! previous keys that still verify, which is how keys rotate without logging
//! anybody out.

mod strength;

use std::fmt;
use std::path::Path;

use hkdf::Hkdf;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, ErrorKind, Result};

pub use strength::MIN_BITS;

/// How to make a good key, appended to every weak-key error.
const HOW_TO_GENERATE: &str = "generate one with `latch keygen` or `openssl rand -base64 64` \
     and pass it through an environment variable or a file with mode 0600";

/// Domain-separation salt for HKDF: changing it would re-key every deployment.
const HKDF_SALT: &[u8] = b"latch/v1 key derivation";

/// A master secret, checked for strength when it is loaded.
///
/// Its bytes are wiped from memory on drop and never printed: `Debug` shows
/// `SecretKey(..)` only.
///
/// # Example
/// ```
/// use latch::SecretKey;
///
/// let key = SecretKey::generate();
/// assert_eq!(format!("{key:?}"), "SecretKey(..)");
/// assert!(SecretKey::from_bytes(b"your-very-secure-secret-key").is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey {
    bytes: Vec<u8>,
}

impl SecretKey {
    /// Use `bytes` as the secret, after checking that it has at least 256 bits of
    /// strength.
    ///
    /// # Errors
    /// [`ErrorKind::WeakKey`] when the secret is too short, uses too few distinct
    /// bytes, repeats a short pattern, or is a well-known placeholder. The message
    /// says why and how to generate a good key; it never contains the secret.
    ///
    /// # Example
    /// ```
    /// let err = latch::SecretKey::from_bytes(b"changeme").unwrap_err();
    /// assert!(err.to_string().contains("latch keygen"));
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if let Err(weakness) = strength::check(bytes) {
            return Err(Error::new(
                ErrorKind::WeakKey,
                format!(
                    "secret key refused: {}; {HOW_TO_GENERATE}",
                    weakness.describe()
                ),
            ));
        }
        Ok(Self {
            bytes: bytes.to_vec(),
        })
    }

    /// Read the secret from the environment variable `var`.
    ///
    /// Leading and trailing whitespace is removed. The value is used as given (a
    /// base64 or hex string is fine as it is: HKDF does not need raw bytes).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidConfig`] when the variable is unset or not UTF-8, and the
    /// errors of [`SecretKey::from_bytes`].
    ///
    /// # Example
    /// ```
    /// let err = latch::SecretKey::from_env("LATCH_DOC_SURELY_UNSET").unwrap_err();
    /// assert!(err.to_string().contains("LATCH_DOC_SURELY_UNSET"));
    /// ```
    pub fn from_env(var: &str) -> Result<Self> {
        let value = Zeroizing::new(std::env::var(var).map_err(|e| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!("secret key variable {var} cannot be read ({e}); {HOW_TO_GENERATE}"),
            )
        })?);
        Self::from_bytes(value.trim().as_bytes())
            .map_err(|e| e.context(format!("reading the secret key from {var}")))
    }

    /// Read the secret from the file at `path` (trailing whitespace is removed).
    ///
    /// As `ssh` does with private keys, a key file that other users may read
    /// or change (any group or other permission, such as the 0644 a plain
    /// `latch keygen > file` leaves under the usual umask) is refused: anyone
    /// who can read the key can sign in as any user.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidConfig`] when the file cannot be read or is open to
    /// other users (the message says which `chmod` fixes it), and the errors
    /// of [`SecretKey::from_bytes`].
    ///
    /// # Example
    /// ```
    /// let err = latch::SecretKey::from_file("/nonexistent/latch.key").unwrap_err();
    /// assert_eq!(err.kind(), &latch::ErrorKind::InvalidConfig);
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        check_owner_only(path)?;
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|e| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!("secret key file {} cannot be read", path.display()),
            )
            .with_source(e)
        })?);
        let end = bytes
            .iter()
            .rposition(|b| !b.is_ascii_whitespace())
            .map_or(0, |i| i + 1);
        Self::from_bytes(&bytes[..end])
            .map_err(|e| e.context(format!("reading the secret key from {}", path.display())))
    }

    /// A new random 64-byte key from the operating system's CSPRNG.
    ///
    /// # Panics
    /// When the operating system has no random source, which no supported platform
    /// lacks.
    ///
    /// # Example
    /// ```
    /// let a = latch::SecretKey::generate();
    /// let b = latch::SecretKey::generate();
    /// assert_ne!(a.expose_bytes(), b.expose_bytes());
    /// ```
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; 64];
        crate::rand::fill(&mut bytes);
        Self { bytes }
    }

    /// The raw secret, for writing it to a key file or printing it in `latch keygen`.
    ///
    /// # Example
    /// ```
    /// assert_eq!(latch::SecretKey::generate().expose_bytes().len(), 64);
    /// ```
    pub fn expose_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Derive the 256-bit subkey for `purpose` with HKDF-SHA256.
    ///
    /// # Example
    /// ```
    /// use latch::{Purpose, SecretKey};
    ///
    /// let key = SecretKey::generate();
    /// assert_ne!(key.derive(Purpose::COOKIE_SIGNING), key.derive(Purpose::CSRF));
    /// assert_eq!(key.derive(Purpose::CSRF), key.derive(Purpose::CSRF));
    /// ```
    pub fn derive(&self, purpose: Purpose) -> Subkey {
        let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT), &self.bytes);
        let mut out = [0u8; 32];
        // OK because 32 bytes is far below HKDF-SHA256's 8160-byte output limit.
        hk.expand(purpose.0.as_bytes(), &mut out)
            .expect("32-byte HKDF output is always valid");
        Subkey(out)
    }
}

/// Refuse a key file with any group or other permission bits.
#[cfg(unix)]
fn check_owner_only(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = match std::fs::metadata(path) {
        Ok(meta) => meta.permissions().mode(),
        // Reading it below reports the problem with its cause.
        Err(_) => return Ok(()),
    };
    if mode & 0o077 == 0 {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::InvalidConfig,
        format!(
            "secret key file {} is open to other users (mode {:04o}): anyone who can read it \
             can forge sessions; make it readable by its owner only with `chmod 600 {}`",
            path.display(),
            mode & 0o7777,
            path.display()
        ),
    ))
}

#[cfg(not(unix))]
fn check_owner_only(_path: &Path) -> Result<()> {
    Ok(())
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// What a derived key is for; the label goes into the HKDF `info` input.
///
/// # Example
/// ```
/// let audit = latch::Purpose::custom("myapp/audit-log-mac");
/// assert_eq!(audit.label(), "myapp/audit-log-mac");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Purpose(&'static str);

impl Purpose {
    /// Signing session cookies (HMAC-SHA256).
    pub const COOKIE_SIGNING: Purpose = Purpose("latch/v1/cookie-signing");
    /// Encrypting session cookies (AEAD).
    pub const COOKIE_ENCRYPTION: Purpose = Purpose("latch/v1/cookie-encryption");
    /// Session-bound CSRF tokens.
    pub const CSRF: Purpose = Purpose("latch/v1/csrf");
    /// The PRF that makes encrypted cookies' nonces (see `rand::NonceSource`).
    pub(crate) const COOKIE_NONCE: Purpose = Purpose("latch/v1/cookie-nonce");

    /// A purpose of the application's own; use a label unique to that job.
    pub const fn custom(label: &'static str) -> Self {
        Purpose(label)
    }

    /// The label bound into derivation and MAC inputs.
    pub fn label(&self) -> &'static str {
        self.0
    }
}

/// A 256-bit key derived for one [`Purpose`].
///
/// Compared in constant time, wiped on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Subkey([u8; 32]);

impl Subkey {
    /// The key bytes, for feeding a MAC or cipher.
    ///
    /// # Example
    /// ```
    /// let sub = latch::SecretKey::generate().derive(latch::Purpose::CSRF);
    /// assert_eq!(sub.as_bytes().len(), 32);
    /// ```
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for Subkey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for Subkey {}

impl fmt::Debug for Subkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Subkey(..)")
    }
}

/// The current key, which signs, and previous keys, which only verify.
///
/// To rotate: make the new key current and move the old one to `previous`. Cookies
/// verified with a previous key are re-issued under the current key in the same
/// response, so after one idle timeout the old key can be dropped.
///
/// # Example
/// ```
/// use latch::{Keyring, SecretKey};
///
/// let old = SecretKey::generate();
/// let ring = Keyring::new(SecretKey::generate()).with_previous(old);
/// assert_eq!(ring.len(), 2);
/// ```
#[derive(Clone, Debug)]
pub struct Keyring {
    keys: Vec<SecretKey>,
}

impl Keyring {
    /// A keyring with `current` as the signing key and no previous keys.
    pub fn new(current: SecretKey) -> Self {
        Self {
            keys: vec![current],
        }
    }

    /// Add a previous key that still verifies (oldest last).
    #[must_use]
    pub fn with_previous(mut self, previous: SecretKey) -> Self {
        self.keys.push(previous);
        self
    }

    /// Number of keys, the current one included.
    #[allow(clippy::len_without_is_empty)] // a keyring always holds its current key
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The current key.
    pub fn current(&self) -> &SecretKey {
        &self.keys[0]
    }

    /// Subkeys for `purpose`, current first: index 0 signs, the rest verify.
    ///
    /// # Example
    /// ```
    /// use latch::{Keyring, Purpose, SecretKey};
    ///
    /// let ring = Keyring::new(SecretKey::generate()).with_previous(SecretKey::generate());
    /// assert_eq!(ring.derive_all(Purpose::CSRF).len(), 2);
    /// ```
    pub fn derive_all(&self, purpose: Purpose) -> Vec<Subkey> {
        self.keys.iter().map(|k| k.derive(purpose)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_key_message_says_how_to_fix_and_hides_secret() {
        let err = SecretKey::from_bytes(b"your-very-secure-secret-key").unwrap_err();
        let msg = err.to_string();
        assert_eq!(
            msg,
            format!("secret key refused: it is a well-known placeholder value; {HOW_TO_GENERATE}")
        );
        assert!(!msg.contains("your-very-secure"));
    }

    #[test]
    fn k7_a_key_file_other_users_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!(
            "latch-keyfile-{}-{}",
            std::process::id(),
            &crate::SessionId::generate().encode()[..8]
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("latch.key");
        let key = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=\n";
        std::fs::write(&path, key).expect("write");
        for (mode, ok) in [
            (0o644, false),
            (0o640, false),
            (0o604, false),
            (0o600, true),
            (0o400, true),
        ] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
            let result = SecretKey::from_file(&path);
            assert_eq!(result.is_ok(), ok, "mode {mode:o}");
            if let Err(err) = result {
                assert_eq!(err.kind(), &ErrorKind::InvalidConfig);
                let msg = err.to_string();
                assert!(msg.contains(&format!("mode {mode:04o}")), "{msg}");
                assert!(msg.contains("chmod 600"), "{msg}");
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn debug_output_redacts_keys() {
        let key = SecretKey::generate();
        let sub = key.derive(Purpose::CSRF);
        let ring = Keyring::new(key.clone());
        for text in [format!("{key:?}"), format!("{sub:?}"), format!("{ring:?}")] {
            assert!(
                !text.contains(&format!("{:?}", &key.expose_bytes()[..4])),
                "{text}"
            );
            assert!(text.contains("(..)"), "{text}");
        }
    }

    #[test]
    fn purposes_derive_distinct_keys_and_keys_differ() {
        let a = SecretKey::generate();
        let b = SecretKey::generate();
        assert_ne!(
            a.derive(Purpose::COOKIE_SIGNING),
            a.derive(Purpose::COOKIE_ENCRYPTION)
        );
        assert_ne!(
            a.derive(Purpose::COOKIE_SIGNING),
            b.derive(Purpose::COOKIE_SIGNING)
        );
    }

    #[test]
    fn from_file_trims_newline() {
        let dir = std::env::temp_dir().join(format!("latch-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("k");
        let secret = "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=";
        std::fs::write(&path, format!("{secret}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let key = SecretKey::from_file(&path).unwrap();
        assert_eq!(key.expose_bytes(), secret.as_bytes());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
