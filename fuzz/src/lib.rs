//! The fuzz harnesses: one function per decoder of attacker input.
//!
//! Each harness takes the fuzzer's raw bytes, feeds them to one latch decoder
//! and panics only when an invariant breaks (or the decoder itself panics).
//! The `fuzz_targets/*.rs` binaries are one-line wrappers around these, and
//! `crates/latch-chaos/tests/fuzz_regressions.rs` includes this very file (with
//! `#[path]`) to replay every file of `fuzz/regressions/<target>/` through the
//! same functions in a normal `cargo test`. Keep it dependent on `latch`,
//! `base64`, `serde_json` and `tokio` only, so both builds can compile it.
//!
//! Several harnesses read their first input byte as a *mode*: either the rest
//! is an attacker's raw cookie value, or it is data that the harness first
//! turns into an authentic token (so the fuzzer works on the far side of the
//! MAC/AEAD check too, where random bytes never get).
//!
//! ## Adding a target
//! Write the harness here and list it in [`TARGETS`]; add
//! `fuzz_targets/<name>.rs` (the one-line wrapper) and its `[[bin]]` in
//! `fuzz/Cargo.toml`; add a `seed-*` file or two to `fuzz/corpus/<name>/` and
//! at least one input to `fuzz/regressions/<name>/` (the replay test insists).
//! A decoder in another crate (the Set-Cookie audit parser of `latch-cli`, the
//! Flask cookie decoder of `latch-flask`) needs that crate as a dependency
//! here and in `crates/latch-chaos`.

#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a harness fails loudly on purpose

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latch::codec::{
    Aead, CookieCodec, CookieFormat, HashedIds, IdFormat, LatchFormat, MAX_COOKIE_BYTES,
    SealedCodec, SignedCodec,
};
use latch::cookie::{IncomingCookie, find_session_cookie, find_session_cookie_bytes};
use latch::{Expiry, Keyring, ManualClock, SecretKey, SessionId, SessionManager};
use serde_json::Value;

/// A harness: takes the fuzzer's bytes, panics when an invariant breaks.
pub type Harness = fn(&[u8]);

/// Every harness by target name, as `scripts/fuzz.sh` and the replay test know them.
pub const TARGETS: &[(&str, Harness)] = &[
    ("cookie_header", cookie_header),
    ("session_id", session_id),
    ("signed_open", signed_open),
    ("sealed_open", sealed_open),
    ("latch_format", latch_format),
    ("flask_cookie", flask_cookie),
    ("dbsc_proof", dbsc_proof),
];

/// The cookie name the codecs bind into their MAC/AEAD data.
pub const NAME: &str = "__Host-session";

/// A fixed, public key for fuzzing only (stable across runs, so corpus entries
/// that carry authentic tokens stay authentic). Never a key for anything else.
const FUZZ_KEY: &[u8] = b"bvrxZF9lxFE7fQA5fHv9jcYLYX36/b3zj4PtqO1pC0jdVa9QY0mQwQuHcA5YMKeb";
/// A second public key playing the rotated-out previous key.
const FUZZ_OLD_KEY: &[u8] = b"H4YygPap7BPaHSUUd69fJjNL9HgCZO6OjA6Y2ZJq68rLloMRlP+vGhAui0JyY/uy";

/// The "now" of the manager harness.
pub const NOW: i64 = 1_800_000_000;

/// The current key with the previous one, as a server mid-rotation holds them.
pub fn keyring() -> Keyring {
    let current = SecretKey::from_bytes(FUZZ_KEY).expect("the fuzz key is strong");
    let old = SecretKey::from_bytes(FUZZ_OLD_KEY).expect("the old fuzz key is strong");
    Keyring::new(current).with_previous(old)
}

/// The previous key alone, to mint tokens a rotated server must still accept.
pub fn old_keyring() -> Keyring {
    Keyring::new(SecretKey::from_bytes(FUZZ_OLD_KEY).expect("the old fuzz key is strong"))
}

/// The codec selected by `selector`: signed, XChaCha20-Poly1305 or AES-256-GCM.
pub fn codec(selector: u8, keys: &Keyring) -> Box<dyn CookieCodec> {
    match selector % 3 {
        0 => Box::new(SignedCodec::new(keys)),
        1 => Box::new(SealedCodec::new(keys, Aead::XChaCha20Poly1305)),
        _ => Box::new(SealedCodec::new(keys, Aead::Aes256Gcm)),
    }
}

/// latch's cookie format over the codec selected by `selector`.
pub fn format(selector: u8, keys: &Keyring) -> Box<dyn CookieFormat> {
    match selector % 3 {
        0 => Box::new(LatchFormat::new(SignedCodec::new(keys))),
        1 => Box::new(LatchFormat::new(SealedCodec::new(
            keys,
            Aead::XChaCha20Poly1305,
        ))),
        _ => Box::new(LatchFormat::new(SealedCodec::new(keys, Aead::Aes256Gcm))),
    }
}

/// Built once per process: key derivation on every input would cost more
/// than the decoding under test.
struct Fixtures {
    current: [Box<dyn CookieCodec>; 3],
    old: [Box<dyn CookieCodec>; 3],
    formats: [Box<dyn CookieFormat>; 3],
    managers: [SessionManager; 3],
}

fn fixtures() -> &'static Fixtures {
    static FIXTURES: std::sync::OnceLock<Fixtures> = std::sync::OnceLock::new();
    FIXTURES.get_or_init(|| {
        let (keys, old) = (keyring(), old_keyring());
        Fixtures {
            current: [0, 1, 2].map(|i| codec(i, &keys)),
            old: [0, 1, 2].map(|i| codec(i, &old)),
            formats: [0, 1, 2].map(|i| format(i, &keys)),
            managers: [0, 1, 2].map(manager),
        }
    })
}

/// The codec `selector` (as [`codec`]) under the current keys, or under the
/// previous key alone.
fn cached_codec(selector: u8, previous: bool) -> &'static dyn CookieCodec {
    let f = fixtures();
    let set = if previous { &f.old } else { &f.current };
    set[usize::from(selector % 3)].as_ref()
}

fn cached_format(selector: u8) -> &'static dyn CookieFormat {
    fixtures().formats[usize::from(selector % 3)].as_ref()
}

/// The expiry policy of the manager harness.
fn policy() -> Expiry {
    Expiry::default()
        .idle(Duration::from_secs(1800))
        .absolute(Duration::from_secs(12 * 3600))
}

/// A cookie-session manager at the fixed time [`NOW`] for codec `selector`.
fn manager(selector: u8) -> SessionManager {
    let builder = SessionManager::builder()
        .clock(ManualClock::new(NOW))
        .expiry(policy());
    match selector % 3 {
        0 => builder.signed_cookies(keyring()),
        1 => builder.encrypted_cookies(keyring(), Aead::XChaCha20Poly1305),
        _ => builder.encrypted_cookies(keyring(), Aead::Aes256Gcm),
    }
    .build()
    .expect("a valid manager configuration")
}

/// Cookie names a real configuration may use (the default first).
const NAMES: [&str; 4] = [NAME, "session", "s", "__Secure-id"];

/// `find_session_cookie_bytes` over arbitrary `Cookie` header lines.
///
/// Input: first byte picks the cookie name, the rest is split on `\n` into
/// header values (raw bytes, not necessarily UTF-8). Invariants: the result
/// agrees with a reference that counts the `;`-separated pieces whose text
/// before the first `=`, with only SP and HTAB removed at its ends, is the
/// name byte for byte (C6: no Unicode whitespace, case or encoding variant is
/// ever taken); the `&str` entry point agrees on UTF-8 input; the result does
/// not depend on header order; and one more header carrying the name turns
/// "absent" into exactly that value and anything else into "duplicate" (the
/// cookie-tossing defence cannot be sidestepped).
pub fn cookie_header(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let name = NAMES[usize::from(pick) % NAMES.len()];
    let mut headers: Vec<&[u8]> = rest.split(|b| *b == b'\n').collect();
    let found = find_session_cookie_bytes(headers.iter().copied(), name);
    assert_eq!(
        found,
        reference_find(&headers, name),
        "differs from the reference"
    );
    if let Ok(text) = std::str::from_utf8(rest) {
        let as_str = find_session_cookie(text.split('\n'), name);
        assert_eq!(found, as_str, "the &str and byte entry points disagree");
    }
    let reversed = find_session_cookie_bytes(headers.iter().rev().copied(), name);
    assert_eq!(found, reversed, "header order changed the result");

    let tossed = format!("{name}=tossed");
    headers.push(tossed.as_bytes());
    let after = find_session_cookie_bytes(headers.iter().copied(), name);
    let expected = match found {
        IncomingCookie::Absent => IncomingCookie::One("tossed".to_owned()),
        IncomingCookie::One(_) | IncomingCookie::Duplicate => IncomingCookie::Duplicate,
    };
    assert_eq!(after, expected, "one more {name} cookie");
}

/// The obvious, slow reading of RFC 6265's cookie-string, written apart from
/// the one under test.
fn reference_find(headers: &[&[u8]], name: &str) -> IncomingCookie {
    let ows = |b: &u8| *b == b' ' || *b == b'\t';
    let mut values = Vec::new();
    for header in headers {
        for piece in header.split(|b| *b == b';') {
            let Some(eq) = piece.iter().position(|b| *b == b'=') else {
                continue;
            };
            let mut n: Vec<u8> = piece[..eq].to_vec();
            while n.first().is_some_and(ows) {
                n.remove(0);
            }
            while n.last().is_some_and(ows) {
                n.pop();
            }
            if n == name.as_bytes() {
                let mut v: Vec<u8> = piece[eq + 1..].to_vec();
                while v.first().is_some_and(ows) {
                    v.remove(0);
                }
                while v.last().is_some_and(ows) {
                    v.pop();
                }
                values.push(String::from_utf8_lossy(&v).into_owned());
            }
        }
    }
    match values.len() {
        0 => IncomingCookie::Absent,
        1 => IncomingCookie::One(values.remove(0)),
        _ => IncomingCookie::Duplicate,
    }
}

/// `SessionId::parse` (and the `HashedIds` format over it) against a
/// reference: exactly 43 characters that decode as canonical unpadded
/// base64url into 32 bytes. An accepted ID encodes back to the same text.
pub fn session_id(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let parsed = SessionId::parse(&text);
    let reference = (text.len() == 43)
        .then(|| URL_SAFE_NO_PAD.decode(text.as_bytes()).ok())
        .flatten()
        .filter(|bytes| bytes.len() == 32);
    assert_eq!(
        parsed.as_ref().map(|id| id.expose_bytes().to_vec()),
        reference,
        "SessionId::parse disagrees with the reference for {text:?}"
    );
    assert_eq!(HashedIds.parse(&text), parsed, "HashedIds::parse");
    if let Some(id) = parsed {
        assert_eq!(id.encode(), text, "an accepted ID is canonical");
        assert_eq!(HashedIds.store_key(&id), id.store_key());
    }
}

/// `SignedCodec::open`: see [`codec_open`].
pub fn signed_open(data: &[u8]) {
    codec_open(0, data);
}

/// `SealedCodec::open` for both AEADs (the second input byte picks one): see
/// [`codec_open`].
pub fn sealed_open(data: &[u8]) {
    let Some((&aead, rest)) = data.split_first() else {
        return;
    };
    codec_open(1 + aead % 2, rest);
}

/// A codec's `open` on attacker input, in one of two modes (first byte, low bit):
///
/// - raw: the rest is a cookie value. Whatever opens must be canonical
///   base64url, re-seal to itself (signed: deterministic), and be refused under
///   any other cookie name.
/// - tamper: the rest is `position(2) | payload`; the payload is sealed under
///   the current or the previous key (bit 1), must open to itself with the
///   right key index, and the token changed at `position` (one bit of the
///   decoded bytes, one character, or cut there) must be refused.
fn codec_open(selector: u8, data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let opener = cached_codec(selector, false);
    if mode & 1 == 0 {
        let value = String::from_utf8_lossy(rest);
        if let Ok(opened) = opener.open(NAME, &value) {
            let bytes = URL_SAFE_NO_PAD.decode(value.as_bytes()).unwrap();
            assert_eq!(
                URL_SAFE_NO_PAD.encode(bytes),
                value,
                "non-canonical accepted"
            );
            if selector == 0 {
                let resealed = opener
                    .seal(NAME, opened.issued_at, &opened.payload)
                    .unwrap();
                // A current value under the current key has one spelling; an
                // older key's or an older layout's is re-issued differently.
                assert!(
                    opened.key_index > 0 || opened.outdated || resealed == value,
                    "signed value not unique"
                );
            }
            assert!(
                opener.open("__Host-other", &value).is_err(),
                "name not bound"
            );
        }
        return;
    }
    let (pos, payload) = match rest {
        [a, b, payload @ ..] => (usize::from(u16::from_le_bytes([*a, *b])), payload),
        _ => return,
    };
    let from_old = mode & 2 != 0;
    let minted = cached_codec(selector, from_old);
    let issued_at = i64::from(u16::from_le_bytes([mode, selector])) - 30_000;
    let value = minted.seal(NAME, issued_at, payload).unwrap();
    if NAME.len() + value.len() > MAX_COOKIE_BYTES {
        // Sealing does not limit the size (the manager refuses to send such a
        // cookie); opening refuses it before any other check.
        let refused = opener
            .open(NAME, &value)
            .expect_err("an oversized token is refused");
        assert_eq!(refused.reason(), "oversized");
        return;
    }
    let opened = opener.open(NAME, &value).expect("an authentic token opens");
    assert_eq!(opened.payload, payload);
    assert_eq!(opened.issued_at, issued_at);
    assert_eq!(opened.key_index, usize::from(from_old));

    let mut raw = URL_SAFE_NO_PAD.decode(&value).unwrap();
    let bit = pos % (raw.len() * 8);
    raw[bit / 8] ^= 1 << (bit % 8);
    let flipped = URL_SAFE_NO_PAD.encode(&raw);
    assert!(
        opener.open(NAME, &flipped).is_err(),
        "bit {bit} flipped was accepted"
    );

    let i = pos % value.len();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut changed = value.clone().into_bytes();
    changed[i] = alphabet[(usize::from(changed[i]) + 1 + pos / 7 % 63) % 64];
    let changed = String::from_utf8(changed).unwrap();
    if changed != value {
        assert!(
            opener.open(NAME, &changed).is_err(),
            "char {i} changed was accepted"
        );
    }
    assert!(
        opener.open(NAME, &value[..i]).is_err(),
        "cut at {i} was accepted"
    );
}

/// The whole cookie-session decode, `LatchFormat::decode`, and the manager on
/// top of it. First byte: bits 0-1 pick the codec (signed, XChaCha20-Poly1305,
/// AES-256-GCM); bits 2-3 the mode:
///
/// - 0: the rest is a raw cookie value for `decode`;
/// - 1: the rest is a payload sealed as an authentic token, so the JSON parser
///   behind the MAC sees arbitrary bytes; what decodes must re-encode and
///   decode to the same record;
/// - 2, 3: `issued_at(8) | payload` sealed as an authentic token and sent
///   through a `SessionManager` at a fixed time: a cookie outside the expiry
///   window (or from the future) must be refused and counted, and finishing the
///   request must never panic.
pub fn latch_format(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let codec_pick = mode & 3;
    match (mode >> 2) & 3 {
        0 => {
            let latch = cached_format(codec_pick);
            let value = String::from_utf8_lossy(rest);
            if let Ok(decoded) = latch.decode(NAME, &value) {
                round_trips(latch, &decoded.record, decoded.record.last_seen);
            }
        }
        1 => {
            let value = cached_codec(codec_pick, false)
                .seal(NAME, NOW, rest)
                .unwrap();
            let latch = cached_format(codec_pick);
            if let Ok(decoded) = latch.decode(NAME, &value) {
                assert_eq!(decoded.record.last_seen, NOW);
                round_trips(latch, &decoded.record, NOW);
            }
        }
        _ => through_manager(codec_pick, rest),
    }
}

/// Re-encode `record` at `now` and decode it again: the same record comes back.
fn round_trips(format: &dyn CookieFormat, record: &latch::Record, now: i64) {
    let again = format.encode(NAME, record, now).unwrap();
    let back = format
        .decode(NAME, &again)
        .expect("re-encoded record decodes");
    assert!(
        same_json(&as_json(&back.record.data), &as_json(&record.data)),
        "data changed in a round trip"
    );
    assert_eq!(back.record.created_at, record.created_at);
    assert_eq!(back.record.remember, record.remember);
    assert_eq!(back.record.user_id, record.user_id);
    assert_eq!(back.record.last_seen, now);
}

fn as_json(data: &latch::Data) -> Value {
    Value::Object(data.clone().into_iter().collect())
}

/// JSON equality where floats may differ in the last bits: serde_json's
/// default float parser is not exact for every input, which is serde_json's
/// trade-off and not a latch defect.
fn same_json(a: &Value, b: &Value) -> bool {
    use Value as V;
    match (a, b) {
        (V::Number(x), V::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (
                x.as_f64().unwrap_or(f64::NAN),
                y.as_f64().unwrap_or(f64::NAN),
            );
            x == y || (x - y).abs() <= f64::EPSILON * 4.0 * x.abs().max(y.abs())
        }
        (V::Array(x), V::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (V::Object(x), V::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((kx, vx), (ky, vy))| kx == ky && same_json(vx, vy))
        }
        _ => a == b,
    }
}

fn through_manager(codec_pick: u8, data: &[u8]) {
    let (issued_at, payload) = match data {
        [a, b, c, d, e, f, g, h, payload @ ..] => (
            i64::from_le_bytes([*a, *b, *c, *d, *e, *f, *g, *h]),
            payload,
        ),
        _ => return,
    };
    // Around NOW most of the time, so the expiry boundaries get explored;
    // anywhere in i64 when the high byte says so.
    let issued_at = if issued_at >> 56 == 0x7f {
        issued_at
    } else {
        NOW - issued_at % 100_000
    };
    let value = cached_codec(codec_pick, false)
        .seal(NAME, issued_at, payload)
        .unwrap();
    let manager = &fixtures().managers[usize::from(codec_pick % 3)];
    let rejected_before = manager.rejected_cookies();
    let header = format!("{NAME}={value}");
    let session = manager.start([header.as_str()], Default::default());
    runtime().block_on(async {
        let facts = session
            .facts()
            .await
            .expect("cookie sessions never fail to load");
        let accepted = manager.rejected_cookies() == rejected_before;
        let expiry = policy();
        let longest_idle = expiry.idle_timeout(true).max(expiry.idle_timeout(false));
        if issued_at > NOW + 60 || NOW.saturating_sub(issued_at) >= secs(longest_idle) {
            assert!(
                !accepted,
                "issued at {issued_at} accepted at {NOW}: {facts:?}"
            );
        }
        // Writing forces a re-seal; an oversized session is a clean error.
        session.insert("fuzz", 1).await.unwrap();
        match manager.finish(&session).await {
            Ok(finished) => assert!(finished.set_cookie.is_some()),
            Err(e) => assert!(
                matches!(e.kind(), latch::ErrorKind::CookieTooLarge { .. }),
                "{e:?}"
            ),
        }
    });
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime")
    })
}

/// Whether the cookie value inside a raw-mode input of `target` is authentic
/// under the fuzz keys; `None` when the input is not a raw-mode token input.
/// (The replay test uses it to notice seed tokens that went stale, for
/// instance after a change of token layout.)
pub fn raw_token_opens(target: &str, data: &[u8]) -> Option<bool> {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    match (target, data) {
        ("signed_open", [mode, value @ ..]) if mode & 1 == 0 => {
            Some(cached_codec(0, false).open(NAME, &text(value)).is_ok())
        }
        ("sealed_open", [aead, mode, value @ ..]) if mode & 1 == 0 => Some(
            cached_codec(1 + aead % 2, false)
                .open(NAME, &text(value))
                .is_ok(),
        ),
        ("latch_format", [mode, value @ ..]) if (mode >> 2) & 3 == 0 => {
            Some(cached_format(mode & 3).decode(NAME, &text(value)).is_ok())
        }
        _ => None,
    }
}

/// A fixed, public Flask `SECRET_KEY` for fuzzing only.
/// A fixed, public Flask key for fuzzing only (strong enough for latch-flask
/// to sign with; the authentic seeds are signed with it).
const FLASK_KEY: &str = "Fz9LqV2nT7cXw4RkM1pHs8JdB3eGa6UyQ0oNi5KtWr2ZbC7v";

/// Flask's cookie decoder (`latch_flask::FlaskCookieFormat::decode`).
///
/// Input: first byte is the mode. Even: the rest is an attacker's raw cookie
/// value, which must never panic and never decode unless authentic (the
/// fuzzer cannot forge HMAC-SHA1, so anything it makes must be refused unless
/// it copied a seed verbatim). Odd: the rest is JSON that, when it is an object
/// latch can carry, is written as Flask would and must read back to the same
/// data — and every single-byte change of that cookie must be refused.
pub fn flask_cookie(data: &[u8]) {
    use latch::Record;
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let format = latch_flask::FlaskCookieFormat::new(FLASK_KEY)
        .expect("a strong key")
        .max_age(latch::MAX_COOKIE_LIFETIME)
        .clock(ManualClock::new(NOW));
    if mode % 2 == 0 {
        let _ = format.decode("session", &String::from_utf8_lossy(rest));
        return;
    }
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(rest) else {
        return;
    };
    let mut record = Record::new(NOW);
    record.data = map
        .into_iter()
        .filter(|(k, _)| !k.starts_with('_'))
        .collect();
    let Ok(value) = format.encode("session", &record, NOW) else {
        return; // data Flask's format cannot carry (for example huge numbers)
    };
    let Ok(decoded) = format.decode("session", &value) else {
        panic!("a cookie latch-flask wrote was refused: {value}");
    };
    assert_eq!(
        decoded.record.data, record.data,
        "round trip changed the data"
    );
    let bytes = value.as_bytes();
    let i = usize::from(mode) % bytes.len().max(1);
    let mut tampered = bytes.to_vec();
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8_lossy(&tampered).into_owned();
    if tampered != value {
        assert!(
            format.decode("session", &tampered).is_err(),
            "a changed Flask cookie was accepted"
        );
    }
}

/// A DBSC proof (`Secure-Session-Response`) as a browser or an attacker
/// sends it. Mode 0: the bytes are the header value. Mode 1: the bytes are a
/// JOSE header and a payload (split at the first NUL), wrapped into a compact
/// JWS with a garbage signature, so the fuzzer reaches the JSON, `alg`, `jwk`
/// and key-construction checks behind the base64 layer.
///
/// Invariants: nothing panics; nothing over the size limit parses; a proof
/// with a garbage signature never verifies, with its own key or another.
pub fn dbsc_proof(data: &[u8]) {
    use latch::dbsc::{Alg, MAX_PROOF_BYTES, PublicJwk, parse_proof};
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (text, forged) = match mode % 2 {
        0 => (String::from_utf8_lossy(rest).into_owned(), false),
        _ => {
            let at = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            let (header, payload) = rest.split_at(at);
            let payload = payload.get(1..).unwrap_or_default();
            let jws = format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode(header),
                URL_SAFE_NO_PAD.encode(payload),
                URL_SAFE_NO_PAD.encode([7u8; 64])
            );
            (jws, true)
        }
    };
    let Ok(proof) = parse_proof(&text) else {
        return;
    };
    assert!(text.len() <= MAX_PROOF_BYTES, "an oversized proof parsed");
    let own = proof.verify_own_key();
    let other = PublicJwk::EC {
        crv: "P-256".into(),
        // The P-256 generator: a valid point nobody signs with here.
        x: "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY".into(),
        y: "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU".into(),
    };
    let with = proof.verify_with(&other, Alg::ES256);
    if forged {
        assert!(
            own.is_err() && with.is_err(),
            "a garbage signature verified"
        );
    }
}
