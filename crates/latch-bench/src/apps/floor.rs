//! The floor of a cookie session: hand-written handlers that do only what
//! latch must do for the counter, with the same primitives and the same
//! bytes on the wire, and nothing a library adds (no layer, no session
//! object, no lock, no error types).
//!
//! On a request with the cookie: find `__Host-session` in the `Cookie`
//! header, decode base64url, check the version byte, verify (HMAC-SHA256
//! under a key prepared once, bound to the cookie name) or open
//! (XChaCha20-Poly1305 or AES-256-GCM), check the issue time, parse the JSON payload into a
//! map of values. Then add one to `n`, serialize, sign or seal (a 24-byte or,
//! for AES-GCM, 12-byte nonce from a per-thread pool of OS randomness: the
//! cheapest source, without the fork-proof hedge latch adds to it), encode, and answer with the same
//! `Set-Cookie` attributes, `Vary: Cookie` and `Cache-Control: no-store`
//! that latch sends (a read sends `Vary: Cookie`, as latch does). Not secure code: a yardstick only.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aes_gcm::Aes256Gcm;
use axum::Router;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, COOKIE, SET_COOKIE, VARY};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Nonce as AeadNonce, Payload as AeadPayload};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

pub(super) const NAME: &str = "__Host-session";
pub(super) const TAIL: &str = "; HttpOnly; SameSite=Lax; Secure; Path=/";
const VERSION: u8 = 1;
const HEADER: usize = 1 + 8;
const TAG: usize = 32;
const NONCE: usize = 24;
/// AES-GCM's nonce: the first 12 bytes of a pooled 24.
const GCM_NONCE: usize = 12;

/// What latch's cookie carries: creation time and the data map (latch's own
/// map type, as the store floors use latch's `Record`: the cheapest map that
/// writes its keys in order, so the floor pays no more for it than latch).
#[derive(Serialize, Deserialize)]
struct Payload {
    c: i64,
    d: latch::Data,
}

/// Sign or seal, and the reverse.
enum Codec {
    Signed(Hmac<Sha256>),
    Sealed(XChaCha20Poly1305),
    SealedGcm(Box<Aes256Gcm>),
}

impl Codec {
    fn signed() -> Self {
        let mut key = [0u8; 32];
        fill(&mut key);
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("any key length");
        // Bound to the cookie name, as latch binds it.
        mac.update(NAME.as_bytes());
        Codec::Signed(mac)
    }

    fn sealed() -> Self {
        let mut key = [0u8; 32];
        fill(&mut key);
        Codec::Sealed(XChaCha20Poly1305::new((&key).into()))
    }

    fn sealed_gcm() -> Self {
        let mut key = [0u8; 32];
        fill(&mut key);
        Codec::SealedGcm(Box::new(Aes256Gcm::new((&key).into())))
    }

    fn seal(&self, payload: &[u8], now: i64) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + NONCE + payload.len() + TAG);
        out.push(VERSION);
        out.extend_from_slice(&now.to_be_bytes());
        match self {
            Codec::Signed(mac) => {
                out.extend_from_slice(payload);
                let mut mac = mac.clone();
                mac.update(&out);
                out.extend_from_slice(&mac.finalize().into_bytes());
            }
            Codec::Sealed(aead) => seal_with(aead, NONCE, payload, &mut out),
            Codec::SealedGcm(aead) => seal_with(aead.as_ref(), GCM_NONCE, payload, &mut out),
        }
        out
    }

    fn open(&self, bytes: &[u8], now: i64) -> Option<Vec<u8>> {
        if bytes.len() < HEADER + TAG || bytes[0] != VERSION {
            return None;
        }
        let issued = i64::from_be_bytes(bytes[1..HEADER].try_into().ok()?);
        if issued > now + 60 {
            return None;
        }
        match self {
            Codec::Signed(mac) => {
                let (body, tag) = bytes.split_at(bytes.len() - TAG);
                let mut mac = mac.clone();
                mac.update(body);
                mac.verify_slice(tag).ok()?;
                Some(body[HEADER..].to_vec())
            }
            Codec::Sealed(aead) => open_with(aead, NONCE, bytes),
            Codec::SealedGcm(aead) => open_with(aead.as_ref(), GCM_NONCE, bytes),
        }
    }
}

/// Seal `payload` under `aead` with a pooled nonce of `nonce_len` bytes,
/// the header already in `out` as associated data; append nonce and
/// ciphertext.
fn seal_with<A: Aead>(aead: &A, nonce_len: usize, payload: &[u8], out: &mut Vec<u8>) {
    let nonce = pooled_nonce();
    let nonce = &nonce[..nonce_len];
    let header: [u8; HEADER] = out[..HEADER].try_into().expect("header length");
    let sealed = aead
        .encrypt(
            AeadNonce::<A>::from_slice(nonce),
            AeadPayload {
                msg: payload,
                aad: &header,
            },
        )
        .expect("sealing cannot fail");
    out.extend_from_slice(nonce);
    out.extend_from_slice(&sealed);
}

/// The plaintext of `bytes` (header, nonce of `nonce_len` bytes,
/// ciphertext) under `aead`, if authentic.
fn open_with<A: Aead>(aead: &A, nonce_len: usize, bytes: &[u8]) -> Option<Vec<u8>> {
    let nonce = bytes.get(HEADER..HEADER + nonce_len)?;
    aead.decrypt(
        AeadNonce::<A>::from_slice(nonce),
        AeadPayload {
            msg: &bytes[HEADER + nonce_len..],
            aad: &bytes[..HEADER],
        },
    )
    .ok()
}

/// 24 bytes from this thread's pool of OS randomness, refilled 4 KiB at a time.
fn pooled_nonce() -> [u8; NONCE] {
    thread_local! {
        static POOL: std::cell::RefCell<(Vec<u8>, usize)> = const {
            std::cell::RefCell::new((Vec::new(), 0))
        };
    }
    POOL.with_borrow_mut(|(bytes, used)| {
        if bytes.len() < *used + NONCE {
            bytes.resize(4096, 0);
            fill(bytes);
            *used = 0;
        }
        let nonce = bytes[*used..*used + NONCE]
            .try_into()
            .expect("nonce length");
        *used += NONCE;
        nonce
    })
}

fn fill(bytes: &mut [u8]) {
    getrandom::fill(bytes).expect("the OS has randomness");
}

/// Unix seconds now (the floors of `store_floor.rs` use it too).
pub(super) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The value of the session cookie in `headers`, if one was sent.
pub(super) fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(NAME)?.strip_prefix('='))
}

/// The payload of a valid cookie in `headers`.
fn read(codec: &Codec, headers: &HeaderMap, now: i64) -> Option<Payload> {
    let value = session_cookie(headers)?;
    let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
    let json = codec.open(&bytes, now)?;
    serde_json::from_slice(&json).ok()
}

fn respond(codec: &Codec, payload: &Payload, now: i64, body: String) -> Response {
    let json = serde_json::to_vec(payload).expect("plain data serializes");
    let value = URL_SAFE_NO_PAD.encode(codec.seal(&json, now));
    let cookie = format!("{NAME}={value}{TAIL}");
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(VARY, HeaderValue::from_static("Cookie"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("base64url and fixed attributes"),
    );
    response
}

fn counter(payload: &Payload) -> u64 {
    payload
        .d
        .get("n")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0)
}

async fn read_write(State(codec): State<Arc<Codec>>, headers: HeaderMap) -> Response {
    let now = now();
    let mut payload = read(&codec, &headers, now).unwrap_or_else(|| Payload {
        c: now,
        d: latch::Data::new(),
    });
    let n = counter(&payload) + 1;
    payload.d.insert("n".to_owned(), n.into());
    respond(&codec, &payload, now, n.to_string())
}

/// A read sends `Vary: Cookie` too: a shared cache must not hand one
/// visitor's answer to another.
async fn read_only(State(codec): State<Arc<Codec>>, headers: HeaderMap) -> Response {
    let body = read(&codec, &headers, now())
        .map_or(0, |p| counter(&p))
        .to_string();
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(VARY, HeaderValue::from_static("Cookie"));
    response
}

async fn untouched() -> &'static str {
    "ok"
}

fn routes(codec: Codec) -> Router {
    Router::new()
        .route("/rw", get(read_write))
        .route("/ro", get(read_only))
        .route("/none", get(untouched))
        .with_state(Arc::new(codec))
}

/// The floor of `latch-signed`.
pub fn signed() -> Router {
    routes(Codec::signed())
}

/// The floor of `latch-encrypted` (XChaCha20-Poly1305).
pub fn sealed() -> Router {
    routes(Codec::sealed())
}

/// The floor of `latch-encrypted-gcm` (AES-256-GCM).
pub fn sealed_gcm() -> Router {
    routes(Codec::sealed_gcm())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_codecs_round_trip_and_refuse_tampering() {
        for codec in [Codec::signed(), Codec::sealed(), Codec::sealed_gcm()] {
            let mut sealed = codec.seal(br#"{"c":1,"d":{"n":1}}"#, 100);
            assert_eq!(
                codec.open(&sealed, 100).as_deref(),
                Some(&br#"{"c":1,"d":{"n":1}}"#[..])
            );
            let last = sealed.len() - 1;
            sealed[last] ^= 1;
            assert_eq!(codec.open(&sealed, 100), None);
        }
    }
}
