//! Session-bound CSRF tokens, masked per response against BREACH.
//!
//! The session keeps one random 256-bit secret. Each form gets
//! `mask || (secret XOR mask)` with a fresh random mask, so the token bytes differ
//! on every response (a compression side channel such as BREACH cannot recover
//! the secret from repeated responses) while any of them verifies.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

/// The reserved data key that holds the session's CSRF secret.
pub(crate) const CSRF_KEY: &str = "_latch.csrf";

const SECRET_LEN: usize = 32;

/// A new random secret, base64url-encoded for storage in the session.
pub(crate) fn new_secret() -> String {
    let mut secret = [0u8; SECRET_LEN];
    crate::rand::fill_pooled(&mut secret);
    URL_SAFE_NO_PAD.encode(secret)
}

fn decode_secret(stored: &str) -> Option<[u8; SECRET_LEN]> {
    URL_SAFE_NO_PAD.decode(stored).ok()?.try_into().ok()
}

/// A masked token for `stored` (the session's secret).
pub(crate) fn mask(stored: &str) -> Option<String> {
    let secret = decode_secret(stored)?;
    let mut out = [0u8; 2 * SECRET_LEN];
    crate::rand::fill_pooled(&mut out[..SECRET_LEN]);
    for i in 0..SECRET_LEN {
        out[SECRET_LEN + i] = secret[i] ^ out[i];
    }
    Some(URL_SAFE_NO_PAD.encode(out))
}

/// Whether `submitted` is a masking of `stored`, compared in constant time.
pub(crate) fn verify(stored: &str, submitted: &str) -> bool {
    let Some(secret) = decode_secret(stored) else {
        return false;
    };
    if submitted.len() > 100 {
        return false;
    }
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(submitted) else {
        return false;
    };
    if bytes.len() != 2 * SECRET_LEN {
        return false;
    }
    let (mask, masked) = bytes.split_at(SECRET_LEN);
    let unmasked: Vec<u8> = mask.iter().zip(masked).map(|(m, x)| m ^ x).collect();
    unmasked.ct_eq(&secret).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_masking_verifies_and_differs() {
        let secret = new_secret();
        let a = mask(&secret).unwrap();
        let b = mask(&secret).unwrap();
        assert_ne!(a, b);
        assert!(verify(&secret, &a) && verify(&secret, &b));
    }

    #[test]
    fn other_sessions_tokens_and_garbage_fail() {
        let secret = new_secret();
        let other = mask(&new_secret()).unwrap();
        assert!(!verify(&secret, &other));
        for junk in ["", "abc", &"A".repeat(86), &"A".repeat(5000), "%%%"] {
            assert!(!verify(&secret, junk), "{junk}");
        }
        // The unmasked secret itself is not a valid token.
        assert!(!verify(&secret, &secret));
    }
}
