//! itsdangerous' `Signer` with `key_derivation="hmac"` and SHA-1, as Flask and
//! Flask-Session configure it.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use latch::codec::Rejected;
use sha1::Sha1;
use zeroize::Zeroizing;

type HmacSha1 = Hmac<Sha1>;

/// Characters of an unpadded base64url SHA-1 MAC (20 bytes).
const SIG_CHARS: usize = 27;

/// A signing key derived from a Flask secret key and a salt:
/// `HMAC-SHA1(secret_key, salt)`, itsdangerous' `derive_key` for `"hmac"`.
pub(crate) struct DerivedKey(Zeroizing<[u8; 20]>);

impl fmt::Debug for DerivedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DerivedKey(..)")
    }
}

fn hmac(key: &[u8]) -> HmacSha1 {
    // OK because HMAC accepts keys of any length.
    HmacSha1::new_from_slice(key).expect("HMAC takes any key length")
}

/// Why a Flask key is too weak to sign with, if it is: latch's own
/// strength rules (see [`latch::SecretKey::from_bytes`]).
pub(crate) fn weakness(secret_key: &[u8]) -> Option<latch::Error> {
    latch::SecretKey::from_bytes(secret_key).err()
}

/// Refuse `secret_key` (named `which`, such as `SECRET_KEY`) when it is weak,
/// with how to rotate it.
pub(crate) fn require_strong(secret_key: &[u8], which: &str) -> latch::Result<()> {
    let Some(weak) = weakness(secret_key) else {
        return Ok(());
    };
    Err(latch::Error::invalid_config(format!(
        "the Flask {which} is too weak to sign sessions with ({weak}). Anyone who guesses \
         it can forge a session as any user, in Flask and in latch. Give both apps a new \
         random SECRET_KEY (`latch keygen`); to keep accepting cookies signed with the old \
         key until they expire, move it to SECRET_KEY_FALLBACKS in Flask and pass it to \
         FlaskCookieFormat::insecure_weak_fallbacks"
    )))
}

impl DerivedKey {
    /// Derive the key for `salt` from a Flask `secret_key`, warning (without the
    /// key) when the key is weaker than latch would accept for its own
    /// cookies; `which` names it in the warning.
    pub(crate) fn new(secret_key: &[u8], salt: &[u8], which: &str) -> Self {
        if weakness(secret_key).is_some() {
            tracing::warn!(
                key = which,
                "the Flask secret key is weak (latch refuses such keys for signing its own \
                 and Flask's cookies); rotate it to a random key of at least 32 bytes"
            );
        }
        Self::quiet(secret_key, salt)
    }

    /// [`new`](Self::new) without the warning, where the caller has said
    /// what it accepts.
    pub(crate) fn quiet(secret_key: &[u8], salt: &[u8]) -> Self {
        let mut mac = hmac(secret_key);
        mac.update(salt);
        Self(Zeroizing::new(mac.finalize().into_bytes().into()))
    }

    fn mac(&self, message: &[u8]) -> HmacSha1 {
        let mut mac = hmac(self.0.as_slice());
        mac.update(message);
        mac
    }

    /// `value.<signature>`.
    pub(crate) fn sign(&self, value: &str) -> String {
        let sig = self.mac(value.as_bytes()).finalize().into_bytes();
        format!("{value}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    /// Constant-time check of `sig` over `value`.
    fn verifies(&self, value: &str, sig: &[u8]) -> bool {
        self.mac(value.as_bytes()).verify_slice(sig).is_ok()
    }
}

/// Split `value.<signature>` and find the key that signed it; returns the value
/// and the key's index. The signature must be canonical unpadded base64url
/// (itsdangerous reads sloppier forms, but never writes them).
pub(crate) fn unsign<'a>(
    keys: &[DerivedKey],
    signed: &'a str,
) -> Result<(&'a str, usize), Rejected> {
    let (value, sig) = signed
        .rsplit_once('.')
        .ok_or(Rejected::new("no signature separator"))?;
    if sig.len() != SIG_CHARS {
        return Err(Rejected::new("signature of the wrong length"));
    }
    let sig = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| Rejected::new("signature not base64url"))?;
    keys.iter()
        .position(|key| key.verifies(value, &sig))
        .map(|index| (value, index))
        .ok_or(Rejected::new("bad signature"))
}

/// itsdangerous' timestamp: the big-endian integer without leading zero bytes,
/// in unpadded base64url.
pub(crate) fn encode_timestamp(now: u64) -> String {
    let bytes = now.to_be_bytes();
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    URL_SAFE_NO_PAD.encode(&bytes[first..])
}

/// Read a timestamp written by [`encode_timestamp`]; non-canonical forms are
/// refused.
pub(crate) fn decode_timestamp(text: &str) -> Result<i64, Rejected> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| Rejected::new("timestamp not base64url"))?;
    if bytes.is_empty() || bytes.len() > 8 || bytes[0] == 0 {
        return Err(Rejected::new("malformed timestamp"));
    }
    let mut be = [0u8; 8];
    be[8 - bytes.len()..].copy_from_slice(&bytes);
    i64::try_from(u64::from_be_bytes(be)).map_err(|_| Rejected::new("malformed timestamp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_itsdangerous() {
        // Python: itsdangerous.Signer("secret", salt="flask-session",
        //   key_derivation="hmac").sign("abc")  (itsdangerous 2.2.0)
        let key = DerivedKey::new(b"secret", b"flask-session", "test");
        assert_eq!(key.sign("abc"), "abc.UOOlglGtLOKQM3OFkrI8bWIohNg");
    }

    #[test]
    fn unsign_finds_the_key_and_refuses_tampering() {
        let keys = [
            DerivedKey::new(b"new", b"s", "test"),
            DerivedKey::new(b"old", b"s", "test"),
        ];
        let signed = keys[1].sign("v.x");
        assert_eq!(unsign(&keys, &signed), Ok(("v.x", 1)));
        let mut tampered = signed.clone().into_bytes();
        tampered[0] ^= 1;
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(unsign(&keys, &tampered).is_err());
        assert!(unsign(&keys, &signed[..signed.len() - 1]).is_err());
        assert!(unsign(&keys, "nodot").is_err());
    }

    #[test]
    fn timestamps_round_trip_canonically() {
        for t in [1u64, 255, 256, 1_700_000_000, i64::MAX as u64] {
            assert_eq!(decode_timestamp(&encode_timestamp(t)), Ok(t as i64));
        }
        // itsdangerous: base64_encode(int_to_bytes(1700000000)) == b"ZVPxAA"
        assert_eq!(encode_timestamp(1_700_000_000), "ZVPxAA");
        assert!(decode_timestamp("AGVT8QA").is_err()); // leading zero byte
        assert!(decode_timestamp("").is_err());
        assert!(decode_timestamp(&URL_SAFE_NO_PAD.encode([1u8; 9])).is_err());
    }
}
