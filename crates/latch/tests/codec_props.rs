//! Property tests of the cookie codecs: every codec round-trips, and every
//! single-byte change, truncation or extension of a valid token is rejected.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use latch::codec::{Aead, CookieCodec, SealedCodec, SignedCodec};
use latch::{Keyring, SecretKey};
use proptest::prelude::*;

const NAME: &str = "__Host-session";

fn codecs() -> Vec<(&'static str, Box<dyn CookieCodec>)> {
    let ring = Keyring::new(SecretKey::generate());
    vec![
        ("signed", Box::new(SignedCodec::new(&ring))),
        (
            "xchacha",
            Box::new(SealedCodec::new(&ring, Aead::XChaCha20Poly1305)),
        ),
        (
            "aes-gcm",
            Box::new(SealedCodec::new(&ring, Aead::Aes256Gcm)),
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trip(payload in proptest::collection::vec(any::<u8>(), 0..3000), t in any::<i64>()) {
        for (kind, codec) in codecs() {
            let value = codec.seal(NAME, t, &payload).unwrap();
            let opened = codec.open(NAME, &value).unwrap();
            prop_assert_eq!(&opened.payload, &payload, "{}", kind);
            prop_assert_eq!(opened.issued_at, t, "{}", kind);
            prop_assert_eq!(opened.key_index, 0);
        }
    }

    #[test]
    fn any_single_char_change_is_rejected(
        payload in proptest::collection::vec(any::<u8>(), 0..200),
        pos in any::<prop::sample::Index>(),
        replacement in prop::sample::select(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=.+/ %".to_vec()
        ),
    ) {
        for (kind, codec) in codecs() {
            let value = codec.seal(NAME, 1_700_000_000, &payload).unwrap();
            let mut bytes = value.clone().into_bytes();
            let i = pos.index(bytes.len());
            prop_assume!(bytes[i] != replacement);
            bytes[i] = replacement;
            let tampered = String::from_utf8(bytes).unwrap();
            prop_assert!(codec.open(NAME, &tampered).is_err(), "{} accepted a changed token", kind);
        }
    }

    #[test]
    fn truncation_and_extension_are_rejected(
        payload in proptest::collection::vec(any::<u8>(), 0..200),
        cut in any::<prop::sample::Index>(),
        extra in "[A-Za-z0-9_-]{1,8}",
    ) {
        for (kind, codec) in codecs() {
            let value = codec.seal(NAME, 1_700_000_000, &payload).unwrap();
            let n = cut.index(value.len());
            prop_assert!(codec.open(NAME, &value[..n]).is_err(), "{} accepted a truncation", kind);
            let longer = format!("{value}{extra}");
            prop_assert!(codec.open(NAME, &longer).is_err(), "{} accepted an extension", kind);
        }
    }

    #[test]
    fn arbitrary_input_never_panics_and_is_rejected(junk in ".{0,5000}") {
        for (_, codec) in codecs() {
            prop_assert!(codec.open(NAME, &junk).is_err());
        }
    }
}

/// The tamper matrix: every bit flip of the decoded token, every truncation, and
/// swaps between cookie names and keys, for every codec. Counts are printed.
#[test]
fn tamper_matrix_rejects_every_variant() {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    let other_ring = Keyring::new(SecretKey::generate());
    let others: Vec<Box<dyn CookieCodec>> = vec![
        Box::new(SignedCodec::new(&other_ring)),
        Box::new(SealedCodec::new(&other_ring, Aead::XChaCha20Poly1305)),
        Box::new(SealedCodec::new(&other_ring, Aead::Aes256Gcm)),
    ];
    for ((kind, codec), other) in codecs().into_iter().zip(others) {
        let value = codec
            .seal(NAME, 1_700_000_000, br#"{"user":"alice"}"#)
            .unwrap();
        let raw = URL_SAFE_NO_PAD.decode(&value).unwrap();
        let mut rejected = 0;
        for bit in 0..raw.len() * 8 {
            let mut flipped = raw.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(
                codec.open(NAME, &URL_SAFE_NO_PAD.encode(&flipped)).is_err(),
                "{kind} bit {bit}"
            );
            rejected += 1;
        }
        for n in 0..raw.len() {
            assert!(
                codec
                    .open(NAME, &URL_SAFE_NO_PAD.encode(&raw[..n]))
                    .is_err(),
                "{kind} cut {n}"
            );
            rejected += 1;
        }
        // Moved to another cookie name, or checked under another key.
        assert!(
            codec.open("__Host-other", &value).is_err(),
            "{kind} name swap"
        );
        assert!(other.open(NAME, &value).is_err(), "{kind} key swap");
        let foreign = other.seal(NAME, 1_700_000_000, b"{}").unwrap();
        assert!(codec.open(NAME, &foreign).is_err(), "{kind} foreign token");
        rejected += 3;
        println!("tamper matrix {kind}: {rejected} variants rejected");
        assert_eq!(rejected, raw.len() * 9 + 3);
    }
}

/// Signed and sealed tokens are not interchangeable, even under the same key.
#[test]
fn kinds_do_not_accept_each_other() {
    let ring = Keyring::new(SecretKey::generate());
    let signed = SignedCodec::new(&ring);
    let sealed = SealedCodec::new(&ring, Aead::XChaCha20Poly1305);
    let gcm = SealedCodec::new(&ring, Aead::Aes256Gcm);
    let s = signed.seal(NAME, 1, b"{}").unwrap();
    let x = sealed.seal(NAME, 1, b"{}").unwrap();
    assert!(sealed.open(NAME, &s).is_err());
    assert!(gcm.open(NAME, &x).is_err());
    assert!(signed.open(NAME, &x).is_err());
}

/// K3: a previous key verifies and says so; a dropped key no longer does.
#[test]
fn rotation_verifies_with_previous_keys() {
    let old = SecretKey::generate();
    let before = SignedCodec::new(&Keyring::new(old.clone()));
    let value = before.seal(NAME, 5, b"x").unwrap();
    let rotated = SignedCodec::new(&Keyring::new(SecretKey::generate()).with_previous(old));
    assert_eq!(rotated.open(NAME, &value).unwrap().key_index, 1);
    let fresh = rotated.seal(NAME, 5, b"x").unwrap();
    assert_eq!(rotated.open(NAME, &fresh).unwrap().key_index, 0);
    let dropped = SignedCodec::new(&Keyring::new(SecretKey::generate()));
    assert!(dropped.open(NAME, &value).is_err());
}

/// K3 for sealed cookies: a cookie sealed under a previous key opens (after
/// the current key has refused it, which must leave the bytes untouched for
/// the next try), and one under a dropped key does not.
#[test]
fn rotation_opens_with_previous_keys() {
    for aead in [Aead::XChaCha20Poly1305, Aead::Aes256Gcm] {
        let old = SecretKey::generate();
        let before = SealedCodec::new(&Keyring::new(old.clone()), aead);
        let value = before.seal(NAME, 5, b"secret payload").unwrap();
        let ring = Keyring::new(SecretKey::generate())
            .with_previous(SecretKey::generate())
            .with_previous(old);
        let rotated = SealedCodec::new(&ring, aead);
        let opened = rotated.open(NAME, &value).unwrap();
        assert_eq!((opened.key_index, opened.issued_at), (2, 5), "{aead:?}");
        assert_eq!(opened.payload, b"secret payload", "{aead:?}");
        let fresh = rotated.seal(NAME, 6, b"x").unwrap();
        assert_eq!(rotated.open(NAME, &fresh).unwrap().key_index, 0);
        let dropped = SealedCodec::new(&Keyring::new(SecretKey::generate()), aead);
        assert!(dropped.open(NAME, &value).is_err(), "{aead:?}");
    }
}

/// The cookie name is bound whole whatever its length: short names build the
/// associated data on the stack, long ones (over 85 bytes) on the heap, and
/// a name differing in its last byte, or cut short, does not open the value.
#[test]
fn sealed_values_are_bound_to_names_of_any_length() {
    let ring = Keyring::new(SecretKey::generate());
    for aead in [Aead::XChaCha20Poly1305, Aead::Aes256Gcm] {
        let codec = SealedCodec::new(&ring, aead);
        for len in [1, 60, 84, 85, 86, 87, 200, 1000] {
            let name = "n".repeat(len);
            let value = codec.seal(&name, 1, b"payload").unwrap();
            assert_eq!(codec.open(&name, &value).unwrap().payload, b"payload");
            let other = format!("{}x", &name[..len - 1]);
            assert!(codec.open(&other, &value).is_err(), "{aead:?} {len}");
            assert!(
                codec.open(&name[..len - 1], &value).is_err(),
                "{aead:?} {len}"
            );
        }
    }
}

/// K4: two seals of the same data never share a nonce (so never share bytes).
#[test]
fn sealing_twice_gives_different_tokens() {
    let ring = Keyring::new(SecretKey::generate());
    for aead in [Aead::XChaCha20Poly1305, Aead::Aes256Gcm] {
        let codec = SealedCodec::new(&ring, aead);
        let a = codec.seal(NAME, 1, b"same").unwrap();
        let b = codec.seal(NAME, 1, b"same").unwrap();
        assert_ne!(a, b);
    }
}

/// K5/C3: a value over 4096 bytes is refused before it is decoded.
#[test]
fn oversized_value_rejected() {
    for (kind, codec) in codecs() {
        let big = "A".repeat(4097 - NAME.len());
        let err = codec.open(NAME, &big).unwrap_err();
        assert_eq!(err.reason(), "oversized", "{kind}");
    }
}

/// K4: nothing is compressed before encryption: the sealed size is the payload
/// size plus a fixed overhead, however repetitive the payload.
#[test]
fn sealed_length_is_payload_plus_fixed_overhead() {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    let codec = SealedCodec::new(
        &Keyring::new(SecretKey::generate()),
        Aead::XChaCha20Poly1305,
    );
    for n in [0usize, 100, 1000, 3000] {
        let repetitive = vec![b'a'; n];
        let sealed = codec.seal(NAME, 1, &repetitive).unwrap();
        // version 1 + nonce 24 + issued_at 8 + tag 16
        assert_eq!(URL_SAFE_NO_PAD.decode(sealed).unwrap().len(), n + 49);
    }
}
