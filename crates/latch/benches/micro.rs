//! Micro-benchmarks of latch's per-request work, each next to the bare
//! primitive it is built on, measured in the same run so the overhead of
//! latch's own code is a ratio. `cargo run --release -p latch-bench --
//! micro-report` prints the ratios from criterion's output.
//!
//! Every group has a `latch` and a `bare` function at the same parameter
//! (and `floor` where a second baseline helps):
//! - `sign_verify`: `SignedCodec::seal` + `open` vs one HMAC-SHA256 tag and one
//!   HMAC-SHA256 verification of the same payload (`hmac` + `sha2`);
//! - `seal_open_xchacha` / `seal_open_aesgcm`: `SealedCodec::seal` + `open` vs
//!   one AEAD encryption and one decryption of the same payload;
//! - `id_generate`: `SessionId::generate` vs 32 bytes of `getrandom`;
//! - `id_store_key`: parsing a cookie's ID and hashing it to the store key vs
//!   one SHA-256 of 32 bytes;
//! - `format_encode` / `format_decode`: `LatchFormat<SignedCodec>` encode/decode of
//!   a `Record` vs plain `serde_json` of the same data map (`bare`) and
//!   `serde_json` plus one HMAC (`floor`);
//! - `data_decode` / `data_clone` / `data_insert`: the session data map
//!   (`latch::Data`, one sorted vector) vs the standard `BTreeMap` it replaced,
//!   on the same entries: decoding its JSON, copying it, and one insert and
//!   remove of a new key.
//!
//! Payloads: 100 B, 1 KiB and 2600 B; the last makes a cookie value of about
//! 3.5 KiB (3468 characters for signed cookies), the largest size class that fits
//! under the 4096-byte cookie limit once base64url-encoded.

// criterion's macros define public functions without docs.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use aes_gcm::Aes256Gcm;
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{AeadCore, KeyInit, Nonce, Payload};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use hmac::{Hmac, Mac};
use latch::codec::{Aead, CookieCodec, CookieFormat, LatchFormat, SealedCodec, SignedCodec};
use latch::{Keyring, Record, SecretKey, SessionId};
use sha2::{Digest, Sha256};

const NAME: &str = "__Host-session";

/// Encrypt `data` and decrypt it again with `cipher`: the bare AEAD cost.
fn seal_open_bare<C: AeadCore + chacha20poly1305::aead::Aead>(
    cipher: &C,
    nonce: &Nonce<C>,
    data: &[u8],
) -> Vec<u8> {
    let msg = Payload {
        msg: black_box(data),
        aad: b"ad",
    };
    let ct = cipher.encrypt(nonce, msg).expect("encrypt");
    let ct = Payload {
        msg: &ct,
        aad: b"ad",
    };
    cipher.decrypt(nonce, ct).expect("decrypt")
}
const SIZES: [(usize, &str); 3] = [(100, "100B"), (1024, "1KiB"), (2600, "2600B")];

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| b'a' + (i % 26) as u8).collect()
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

fn sign_verify(c: &mut Criterion) {
    let codec = SignedCodec::new(&Keyring::new(SecretKey::generate()));
    let mac = <Hmac<Sha256> as Mac>::new_from_slice(&[7u8; 32]).expect("HMAC takes any key size");
    let mut g = c.benchmark_group("sign_verify");
    for (n, label) in SIZES {
        let data = payload(n);
        g.bench_with_input(BenchmarkId::new("latch", label), &data, |b, data| {
            b.iter(|| {
                let value = codec
                    .seal(NAME, 1_700_000_000, black_box(data))
                    .expect("seal");
                codec.open(NAME, black_box(&value)).expect("open")
            });
        });
        g.bench_with_input(BenchmarkId::new("bare", label), &data, |b, data| {
            b.iter(|| {
                let mut m = mac.clone();
                m.update(black_box(data));
                let tag = m.finalize().into_bytes();
                let mut m = mac.clone();
                m.update(black_box(data));
                m.verify_slice(&tag).expect("verify")
            });
        });
    }
    g.finish();
}

fn seal_open(c: &mut Criterion, group: &str, aead: Aead) {
    let codec = SealedCodec::new(&Keyring::new(SecretKey::generate()), aead);
    let key = [9u8; 32];
    let mut g = c.benchmark_group(group);
    for (n, label) in SIZES {
        let data = payload(n);
        g.bench_with_input(BenchmarkId::new("latch", label), &data, |b, data| {
            b.iter(|| {
                let value = codec
                    .seal(NAME, 1_700_000_000, black_box(data))
                    .expect("seal");
                codec.open(NAME, black_box(&value)).expect("open")
            });
        });
        // The bare primitive: one encryption and one decryption with a fixed nonce.
        g.bench_with_input(
            BenchmarkId::new("bare", label),
            &data,
            |b, data| match aead {
                Aead::XChaCha20Poly1305 => {
                    let (cipher, nonce) = (XChaCha20Poly1305::new(&key.into()), [1u8; 24].into());
                    b.iter(|| seal_open_bare(&cipher, &nonce, data));
                }
                Aead::Aes256Gcm => {
                    let (cipher, nonce) = (Aes256Gcm::new(&key.into()), [1u8; 12].into());
                    b.iter(|| seal_open_bare(&cipher, &nonce, data));
                }
            },
        );
    }
    g.finish();
}

fn seal_open_xchacha(c: &mut Criterion) {
    seal_open(c, "seal_open_xchacha", Aead::XChaCha20Poly1305);
}

fn seal_open_aesgcm(c: &mut Criterion) {
    seal_open(c, "seal_open_aesgcm", Aead::Aes256Gcm);
}

fn ids(c: &mut Criterion) {
    let mut g = c.benchmark_group("id_generate");
    g.bench_function(BenchmarkId::new("latch", "32B"), |b| {
        b.iter(SessionId::generate)
    });
    g.bench_function(BenchmarkId::new("bare", "32B"), |b| {
        b.iter(|| {
            let mut buf = [0u8; 32];
            getrandom::fill(&mut buf).expect("getrandom");
            buf
        });
    });
    g.finish();
    let cookie = SessionId::generate().encode();
    let bytes = [5u8; 32];
    let mut g = c.benchmark_group("id_store_key");
    g.bench_function(BenchmarkId::new("latch", "43chars"), |b| {
        b.iter(|| {
            SessionId::parse(black_box(&cookie))
                .expect("parse")
                .store_key()
        });
    });
    g.bench_function(BenchmarkId::new("bare", "43chars"), |b| {
        b.iter(|| Sha256::digest(black_box(bytes)));
    });
    g.finish();
}

/// A typical signed-in session: counter, user, CSRF secret, preferences, a cart.
fn record() -> Record {
    let mut r = Record::new(1_700_000_000);
    r.user_id = Some("user-1234567".into());
    let d = &mut r.data;
    d.insert("n".into(), 41.into());
    d.insert("theme".into(), "dark".into());
    d.insert("lang".into(), "en-GB".into());
    d.insert("cart".into(), serde_json::json!([101, 202, 303]));
    d.insert(
        "_latch.csrf".into(),
        "Qm9vdHN0cmFwLXRva2VuLWZvci10aGUtYmVuY2gtMTIzNDU2".into(),
    );
    d.insert("last_page".into(), "/account/settings".into());
    r
}

fn format(c: &mut Criterion) {
    let format = LatchFormat::new(SignedCodec::new(&Keyring::new(SecretKey::generate())));
    let mac = <Hmac<Sha256> as Mac>::new_from_slice(&[7u8; 32]).expect("HMAC takes any key size");
    let rec = record();
    let value = format.encode(NAME, &rec, 1_700_000_100).expect("encode");
    let json = serde_json::to_vec(&rec.data).expect("json");
    let mut g = c.benchmark_group("format_encode");
    g.bench_function(BenchmarkId::new("latch", "record"), |b| {
        b.iter(|| {
            format
                .encode(NAME, black_box(&rec), 1_700_000_100)
                .expect("encode")
        });
    });
    g.bench_function(BenchmarkId::new("bare", "record"), |b| {
        b.iter(|| serde_json::to_vec(black_box(&rec.data)).expect("json"));
    });
    g.bench_function(BenchmarkId::new("floor", "record"), |b| {
        b.iter(|| {
            let bytes = serde_json::to_vec(black_box(&rec.data)).expect("json");
            let mut m = mac.clone();
            m.update(&bytes);
            (bytes, m.finalize().into_bytes())
        });
    });
    g.finish();
    let mut g = c.benchmark_group("format_decode");
    g.bench_function(BenchmarkId::new("latch", "record"), |b| {
        b.iter(|| format.decode(NAME, black_box(&value)).expect("decode"));
    });
    g.bench_function(BenchmarkId::new("bare", "record"), |b| {
        b.iter(|| serde_json::from_slice::<latch::Data>(black_box(&json)).expect("json"));
    });
    let mut m = mac.clone();
    m.update(&json);
    let tag = m.finalize().into_bytes();
    g.bench_function(BenchmarkId::new("floor", "record"), |b| {
        b.iter(|| {
            let mut m = mac.clone();
            m.update(black_box(&json));
            m.verify_slice(&tag).expect("verify");
            serde_json::from_slice::<latch::Data>(&json).expect("json")
        });
    });
    g.finish();
}

/// The session data map against the standard map it replaced, for the
/// benchmark's small session (the counter alone) and the signed-in one of
/// `record()` (seven keys).
fn data(c: &mut Criterion) {
    type Tree = std::collections::BTreeMap<String, serde_json::Value>;
    let mut small = Record::new(0);
    small.data.insert("n".into(), 41.into());
    for (name, rec) in [("1key", small), ("7keys", record())] {
        let json = serde_json::to_vec(&rec.data).expect("json");
        let tree: Tree = serde_json::from_slice(&json).expect("json");
        let mut g = c.benchmark_group("data_decode");
        g.bench_function(BenchmarkId::new("latch", name), |b| {
            b.iter(|| serde_json::from_slice::<latch::Data>(black_box(&json)).expect("json"));
        });
        g.bench_function(BenchmarkId::new("bare", name), |b| {
            b.iter(|| serde_json::from_slice::<Tree>(black_box(&json)).expect("json"));
        });
        g.finish();
        let mut g = c.benchmark_group("data_clone");
        g.bench_function(BenchmarkId::new("latch", name), |b| {
            b.iter(|| black_box(&rec.data).clone());
        });
        g.bench_function(BenchmarkId::new("bare", name), |b| {
            b.iter(|| black_box(&tree).clone());
        });
        g.finish();
        let mut g = c.benchmark_group("data_insert");
        let (mut ours, mut theirs) = (rec.data.clone(), tree.clone());
        g.bench_function(BenchmarkId::new("latch", name), |b| {
            b.iter(|| {
                ours.insert(black_box("m").to_owned(), 1.into());
                ours.remove(black_box("m"))
            });
        });
        g.bench_function(BenchmarkId::new("bare", name), |b| {
            b.iter(|| {
                theirs.insert(black_box("m").to_owned(), 1.into());
                theirs.remove(black_box("m"))
            });
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = sign_verify, seal_open_xchacha, seal_open_aesgcm, ids, format, data
}
criterion_main!(benches);
