//! Which cookie formats to try, built from the keys.
//!
//! This is the one place a cookie kind is turned into formats: latch's own
//! kinds, and Flask's cookies from the `latch-flask` crate.

use latch::Keyring;
use latch::codec::{Aead, CookieFormat, LatchFormat, SealedCodec, SignedCodec};

use anyhow::Context as _;

use super::keys::{self, KeySource};

/// The kinds of cookie `latch inspect` understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Try every latch kind: signed, then encrypted with either AEAD.
    Auto,
    /// latch's signed cookies (HMAC-SHA256).
    Signed,
    /// latch's encrypted cookies (XChaCha20-Poly1305 or AES-256-GCM).
    Encrypted,
    /// Flask's signed session cookies (itsdangerous, as Flask 3.1 writes them).
    Flask,
}

impl Kind {
    /// The cookie name assumed for a bare value.
    pub fn default_cookie_name(self) -> &'static str {
        match self {
            Kind::Flask => "session",
            Kind::Auto | Kind::Signed | Kind::Encrypted => "__Host-session",
        }
    }
}

/// One format to try, and how to name it in the report.
#[derive(Debug)]
pub struct Candidate {
    /// Shown as the cookie's kind, e.g. `signed (HMAC-SHA256)`.
    pub label: &'static str,
    /// The format, holding its keys.
    pub format: Box<dyn CookieFormat>,
}

/// The formats to try for `kind`, keyed with `sources` (current key first).
///
/// # Errors
/// A key that cannot be read or is too weak.
pub fn candidates(kind: Kind, sources: &[KeySource]) -> anyhow::Result<Vec<Candidate>> {
    match kind {
        Kind::Auto => {
            let ring = keys::keyring(sources)?;
            let mut all = vec![signed(&ring)];
            all.extend(encrypted(&ring));
            Ok(all)
        }
        Kind::Signed => Ok(vec![signed(&keys::keyring(sources)?)]),
        Kind::Encrypted => Ok(encrypted(&keys::keyring(sources)?)),
        Kind::Flask => flask(sources),
    }
}

fn signed(ring: &Keyring) -> Candidate {
    Candidate {
        label: "signed (HMAC-SHA256)",
        format: Box::new(LatchFormat::new(SignedCodec::new(ring))),
    }
}

fn encrypted(ring: &Keyring) -> Vec<Candidate> {
    let sealed = |label, aead| Candidate {
        label,
        format: Box::new(LatchFormat::new(SealedCodec::new(ring, aead))),
    };
    vec![
        sealed("encrypted (XChaCha20-Poly1305)", Aead::XChaCha20Poly1305),
        sealed("encrypted (AES-256-GCM)", Aead::Aes256Gcm),
    ]
}

/// Flask's cookies: `SECRET_KEY` first, then `SECRET_KEY_FALLBACKS`.
///
/// Flask keys are used as they are (Flask applications often have keys latch
/// would refuse as weak; inspecting is how one finds out), so each source's
/// raw bytes are read rather than going through [`keys::keyring`], into a
/// format that only verifies. It accepts any age here, however old; the
/// report judges expiry by `--max-age` and shows an expired cookie's data
/// marked as such.
fn flask(sources: &[KeySource]) -> anyhow::Result<Vec<Candidate>> {
    let mut raw = sources.iter().map(KeySource::raw_bytes);
    let current = raw
        .next()
        .context("--kind flask needs the Flask app's SECRET_KEY")??;
    let fallbacks = raw.collect::<anyhow::Result<Vec<_>>>()?;
    let format = latch_flask::FlaskCookieFormat::verify_only(current, fallbacks)
        .max_age(std::time::Duration::MAX);
    Ok(vec![Candidate {
        label: "flask (itsdangerous, HMAC-SHA1)",
        format: Box::new(format),
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flask_needs_a_key_and_defaults_to_the_session_name() {
        let err = candidates(Kind::Flask, &[]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("--kind flask needs the Flask app's SECRET_KEY")
        );
        assert_eq!(Kind::Flask.default_cookie_name(), "session");
    }
}
