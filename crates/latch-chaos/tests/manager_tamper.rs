//! The tamper matrix through the whole `SessionManager`, not the codec alone:
//! for signed, XChaCha20-Poly1305 and AES-256-GCM cookie sessions and for
//! server-side sessions, every single-bit flip of a valid cookie (of its
//! decoded bytes, and of its characters as sent) yields a fresh, empty
//! session, is counted in `rejected_cookies`, and the response removes the
//! cookie. Counts are printed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latch::codec::Aead;
use latch::cookie::{IncomingCookie, find_session_cookie};
use latch::{Keyring, MemoryStore, SecretKey, SessionManager};

const NAME: &str = "__Host-session";

fn managers() -> Vec<(&'static str, SessionManager)> {
    let keys = || Keyring::new(SecretKey::generate());
    let b = SessionManager::builder;
    vec![
        ("signed", b().signed_cookies(keys()).build().unwrap()),
        (
            "xchacha20poly1305",
            b().encrypted_cookies(keys(), Aead::XChaCha20Poly1305)
                .build()
                .unwrap(),
        ),
        (
            "aes256gcm",
            b().encrypted_cookies(keys(), Aead::Aes256Gcm)
                .build()
                .unwrap(),
        ),
        ("store", b().store(MemoryStore::new()).build().unwrap()),
    ]
}

/// A valid cookie value carrying `user = alice`.
async fn valid_cookie(manager: &SessionManager) -> String {
    let session = manager.start(std::iter::empty(), Default::default());
    session.insert("user", "alice").await.unwrap();
    let set = manager.finish(&session).await.unwrap().set_cookie.unwrap();
    let pair = set.split(';').next().unwrap();
    pair.strip_prefix(&format!("{NAME}=")).unwrap().to_owned()
}

/// What one tampered cookie did.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Refused, counted, removal cookie sent.
    Refused,
    /// The header no longer carried a cookie of that name at all (the flip made
    /// it unparseable), so there was nothing to refuse: a fresh session.
    NotPresent,
}

/// Send `value` through the manager; panics unless it ends in a fresh,
/// empty session that was refused and counted (or carried no cookie at all).
async fn send(kind: &str, manager: &SessionManager, value: &str) -> Outcome {
    let header = format!("{NAME}={value}");
    let before = manager.rejected_cookies();
    let session = manager.start([header.as_str()], Default::default());
    let user: Option<String> = session.get("user").await.unwrap();
    assert_eq!(user, None, "{kind}: tampered {value:?} was honoured");
    let finished = manager.finish(&session).await.unwrap();
    let counted = manager.rejected_cookies() - before;
    if counted == 0 {
        assert!(
            matches!(
                find_session_cookie([header.as_str()], NAME),
                IncomingCookie::Absent
            ),
            "{kind}: {value:?} was present but not counted"
        );
        assert_eq!(finished.set_cookie, None);
        return Outcome::NotPresent;
    }
    assert_eq!(counted, 1, "{kind}: one cookie counted once");
    let removal = finished.set_cookie.unwrap_or_default();
    assert!(
        removal.starts_with(&format!("{NAME}=;")) && removal.contains("Max-Age=0"),
        "{kind}: no removal cookie for {value:?}: {removal:?}"
    );
    Outcome::Refused
}

#[tokio::test]
async fn every_bit_flip_through_the_manager_gives_a_fresh_counted_session() {
    for (kind, manager) in managers() {
        let value = valid_cookie(&manager).await;
        let raw = URL_SAFE_NO_PAD.decode(&value).unwrap();

        let mut byte_flips = 0;
        for bit in 0..raw.len() * 8 {
            let mut flipped = raw.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let outcome = send(kind, &manager, &URL_SAFE_NO_PAD.encode(&flipped)).await;
            assert_eq!(outcome, Outcome::Refused, "{kind}: bit {bit}");
            byte_flips += 1;
        }

        // The text as sent: flip each of the 7 bits of each ASCII character.
        let (mut refused, mut absent) = (0, 0);
        for (i, c) in value.bytes().enumerate() {
            for bit in 0..7 {
                let mut text = value.clone().into_bytes();
                text[i] = c ^ (1 << bit);
                let text = String::from_utf8(text).unwrap();
                match send(kind, &manager, &text).await {
                    Outcome::Refused => refused += 1,
                    Outcome::NotPresent => absent += 1,
                }
            }
        }
        assert_eq!(refused + absent, value.len() * 7);
        assert_eq!(
            manager.rejected_cookies(),
            (byte_flips + refused) as u64,
            "{kind}: every refusal counted"
        );
        // The untouched cookie still works: the refusals changed nothing.
        let session = manager.start([format!("{NAME}={value}").as_str()], Default::default());
        assert_eq!(
            session.get::<String>("user").await.unwrap().as_deref(),
            Some("alice")
        );
        eprintln!(
            "manager tamper {kind}: {} decoded bytes: {byte_flips} bit flips refused and counted; \
             {} characters: {refused} character bit flips refused and counted, {absent} made \
             the cookie unreadable (fresh session, nothing to count)",
            raw.len(),
            value.len()
        );
    }
}
