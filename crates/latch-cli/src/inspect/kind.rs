//! Which cookie formats to try, built from the keys.
//!
//! This is the one place a cookie kind is turned into formats. latch's own
//! kinds are here; Flask's cookies come from the `latch-flask` crate, which is
//! not part of this build yet: [`flask`] is where it gets wired in.

use latch::Keyring;
use latch::codec::{Aead, CookieFormat, LatchFormat, SealedCodec, SignedCodec};

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
    /// Flask's signed session cookies (needs the latch-flask crate; not in this build).
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
/// A key that cannot be read or is too weak, or a kind this build lacks.
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

/// Flask's cookies, once `latch-flask` is merged.
///
/// To wire it in: add `latch-flask` to this crate's dependencies and return
/// `latch_flask::FlaskCookieFormat::new(first key).fallbacks(other keys)` here.
/// Flask keys are used as they are (Flask applications often have keys latch
/// would refuse as weak), so read each [`KeySource`]'s raw bytes rather than
/// going through [`keys::keyring`]. Nothing else in `latch inspect` changes.
fn flask(_sources: &[KeySource]) -> anyhow::Result<Vec<Candidate>> {
    anyhow::bail!(
        "--kind flask is not available in this build: it needs the latch-flask crate, \
         which this latch binary was built without"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flask_is_parsed_but_unavailable() {
        let err = candidates(Kind::Flask, &[]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("--kind flask is not available in this build")
        );
        assert_eq!(Kind::Flask.default_cookie_name(), "session");
    }
}
