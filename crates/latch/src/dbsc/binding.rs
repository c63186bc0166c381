//! What a session record keeps about its device binding, under the reserved
//! data key `_latch.dbsc`, and the changes to it.
//!
//! **Challenges are stateless.** A challenge is its issue time and a random
//! nonce, authenticated with HMAC-SHA256 under a secret kept in the record
//! (made at sign-in, so a new ID has a new secret). Handing one out writes
//! nothing: whoever holds only the session cookie can ask for as many as
//! they like without pushing out the one the real device is signing, without
//! a store write, and without keeping the session alive (attack round 5).
//! A challenge is good for the challenge lifetime and **once**: the record
//! lists the challenges spent within that window.
//!
//! Each change is a pure function of the stored value, run as an update
//! operation: when two requests race on one session the compare-and-swap
//! replays it on the newer record, so a challenge is spent exactly once and
//! an ordinary save racing a registration loses neither.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::proof::{Alg, PublicJwk};
use crate::error::{Error, ErrorKind, Result};
use crate::time::UnixTime;

/// The record's data key for the binding.
pub(crate) const BINDING_KEY: &str = "_latch.dbsc";

/// The most spent challenges a record lists. An honest device spends one
/// per bound-cookie lifetime; one that refreshes in a loop would otherwise
/// grow its record to the size limit (attack round 6): past this, the oldest
/// are dropped and every challenge issued up to their time is refused.
const MAX_SPENT: usize = 16;

/// Bytes of a challenge: issue time (8), nonce (16), MAC (16).
const CHALLENGE_BYTES: usize = 40;

/// Characters of a challenge: its bytes in unpadded base64url.
const CHALLENGE_CHARS: usize = 54;

/// What the challenge MAC covers before the time and nonce.
const CHALLENGE_LABEL: &[u8] = b"latch dbsc challenge v1";

/// The binding state of one session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Binding {
    /// The secret challenges are authenticated with (base64url, 256 bits).
    #[serde(rename = "k")]
    secret: String,
    /// Challenges used within their lifetime: `(issue time, nonce)`.
    #[serde(default, rename = "s", skip_serializing_if = "Vec::is_empty")]
    spent: Vec<(UnixTime, String)>,
    /// Challenges issued before this time are refused (raised when spent
    /// entries had to be dropped, see [`MAX_SPENT`]).
    #[serde(default, rename = "n", skip_serializing_if = "is_zero")]
    not_before: UnixTime,
    /// The registered device, once registration succeeded.
    #[serde(default, rename = "d", skip_serializing_if = "Option::is_none")]
    pub(crate) device: Option<Device>,
}

/// A registered device: its DBSC session id, its public key, and the bound
/// cookies that prove a recent refresh.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Device {
    pub(crate) id: String,
    pub(crate) alg: Alg,
    pub(crate) jwk: PublicJwk,
    /// When the key was registered.
    pub(crate) registered: UnixTime,
    /// When the device last proved possession of its key.
    pub(crate) proved: UnixTime,
    /// The live bound cookies (the newest and the one before, which requests
    /// already in flight during a refresh may still carry).
    pub(crate) cookies: Vec<BoundCookie>,
}

/// A bound cookie as the record knows it: the SHA-256 of its value (a copy of
/// the record reveals no usable cookie) and its expiry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct BoundCookie {
    #[serde(rename = "h")]
    pub(crate) hash: String,
    #[serde(rename = "u")]
    pub(crate) until: UnixTime,
}

impl BoundCookie {
    /// The record's entry for the cookie `value`, good until `until`.
    pub(crate) fn new(value: &str, until: UnixTime) -> Self {
        Self {
            hash: hash(value),
            until,
        }
    }
}

fn is_zero(t: &UnixTime) -> bool {
    *t == 0
}

fn hash(value: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(value.as_bytes()))
}

/// A challenge as read back: when it was issued and its nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Issued {
    at: UnixTime,
    nonce: String,
}

impl Binding {
    /// A new binding (at sign-in) with a fresh secret, waiting for its
    /// registration.
    pub(crate) fn new() -> Self {
        // A key: straight from the OS, never from the identifier pool.
        let mut secret = [0u8; 32];
        crate::rand::fill(&mut secret);
        Self {
            secret: URL_SAFE_NO_PAD.encode(secret),
            spent: Vec::new(),
            not_before: 0,
            device: None,
        }
    }

    /// The binding in `data`'s value, if any; a value latch cannot read is no
    /// binding at all (a store does not forge its own records).
    pub(crate) fn read(value: Option<&Value>) -> Option<Self> {
        value.and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    /// As a data value.
    pub(crate) fn to_value(&self) -> Value {
        // A struct of strings and integers always serializes.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    fn mac(&self, at: UnixTime, nonce: &[u8]) -> [u8; 16] {
        let key = URL_SAFE_NO_PAD.decode(&self.secret).unwrap_or_default();
        // HMAC takes keys of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        mac.update(CHALLENGE_LABEL);
        mac.update(&at.to_be_bytes());
        mac.update(nonce);
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }

    /// A challenge issued at `now` (writes nothing).
    pub(crate) fn challenge(&self, now: UnixTime) -> String {
        let mut nonce = [0u8; 16];
        crate::rand::fill_pooled(&mut nonce);
        let mut bytes = Vec::with_capacity(CHALLENGE_BYTES);
        bytes.extend_from_slice(&now.to_be_bytes());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&self.mac(now, &nonce));
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The challenge `jti` if this binding issued it, it is fresh at `now`
    /// (issued less than `lifetime` seconds ago, not in the future) and not
    /// spent.
    pub(crate) fn check(&self, jti: &str, now: UnixTime, lifetime: i64) -> Option<Issued> {
        if jti.len() != CHALLENGE_CHARS {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(jti).ok()?;
        let (at, rest) = bytes.split_first_chunk::<8>()?;
        let (nonce, mac) = rest.split_at_checked(16)?;
        let at = i64::from_be_bytes(*at);
        if !bool::from(self.mac(at, nonce).ct_eq(mac)) {
            return None;
        }
        if !(0..lifetime).contains(&now.saturating_sub(at)) || at < self.not_before {
            return None;
        }
        let nonce = URL_SAFE_NO_PAD.encode(nonce);
        let spent = self.spent.iter().any(|(t, n)| *t == at && *n == nonce);
        (!spent).then_some(Issued { at, nonce })
    }

    /// Spend the challenge `jti`; refused when it is not this binding's, not
    /// fresh, or already spent (by another request, say).
    fn spend(&mut self, jti: &str, now: UnixTime, lifetime: i64) -> Result<()> {
        let issued = self
            .check(jti, now, lifetime)
            .ok_or_else(|| refused("the challenge is not this session's, too old, or used"))?;
        // Spent entries older than the lifetime can never be presented
        // fresh again: forget them.
        self.spent
            .retain(|(t, _)| (0..lifetime).contains(&now.saturating_sub(*t)));
        self.spent.push((issued.at, issued.nonce));
        if self.spent.len() > MAX_SPENT {
            self.spent.sort_by_key(|(t, _)| *t);
            let dropped = self.spent.len() - MAX_SPENT;
            let newest_dropped = self.spent[dropped - 1].0;
            self.spent.drain(..dropped);
            // Whatever was issued up to the dropped entries' time can no
            // longer be told spent or not: refuse it all.
            self.not_before = self.not_before.max(newest_dropped + 1);
        }
        Ok(())
    }

    /// Whether `value` is a live bound cookie of this binding at `now`.
    pub(crate) fn honours(&self, value: &str, now: UnixTime) -> bool {
        let Some(device) = &self.device else {
            return false;
        };
        let presented = hash(value);
        device
            .cookies
            .iter()
            .any(|c| c.until > now && bool::from(c.hash.as_bytes().ct_eq(presented.as_bytes())))
    }
}

fn refused(why: &str) -> Error {
    Error::new(
        ErrorKind::UpdateRefused,
        format!("device binding refused: {why}"),
    )
}

/// The binding in `current`, or a refusal when there is none.
fn current(value: Option<&Value>) -> Result<Binding> {
    Binding::read(value).ok_or_else(|| refused("the session has no device binding"))
}

/// What a verified proof changes: the challenge it used and the cookie it buys.
#[derive(Debug, Clone)]
pub(crate) struct Proven {
    pub(crate) jti: String,
    pub(crate) now: UnixTime,
    pub(crate) challenge_lifetime: i64,
    pub(crate) cookie: BoundCookie,
}

/// Register `jwk` as the session's device under the DBSC session `id`.
pub(crate) fn register(
    proven: Proven,
    id: String,
    alg: Alg,
    jwk: PublicJwk,
) -> impl Fn(Option<&Value>) -> Result<Value> {
    move |value| {
        let mut binding = current(value)?;
        if binding.device.is_some() {
            return Err(refused("the session is already bound"));
        }
        binding.spend(&proven.jti, proven.now, proven.challenge_lifetime)?;
        binding.device = Some(Device {
            id: id.clone(),
            alg,
            jwk: jwk.clone(),
            registered: proven.now,
            proved: proven.now,
            cookies: vec![proven.cookie.clone()],
        });
        Ok(binding.to_value())
    }
}

/// Renew the bound cookie of the registered device `id`.
pub(crate) fn refresh(proven: Proven, id: String) -> impl Fn(Option<&Value>) -> Result<Value> {
    move |value| {
        let mut binding = current(value)?;
        binding.spend(&proven.jti, proven.now, proven.challenge_lifetime)?;
        let device = binding
            .device
            .as_mut()
            .filter(|d| d.id == id)
            .ok_or_else(|| refused("the session is bound to another device session"))?;
        device.proved = proven.now;
        device.cookies.retain(|c| c.until > proven.now);
        device.cookies.insert(0, proven.cookie.clone());
        device.cookies.truncate(2);
        Ok(binding.to_value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwk() -> PublicJwk {
        PublicJwk::EC {
            crv: "P-256".into(),
            x: "x".into(),
            y: "y".into(),
        }
    }

    fn proven(jti: &str, now: UnixTime) -> Proven {
        Proven {
            jti: jti.into(),
            now,
            challenge_lifetime: 300,
            cookie: BoundCookie::new("cookie", now + 600),
        }
    }

    #[test]
    fn a_challenge_is_spent_once() {
        let start = Binding::new();
        let c1 = start.challenge(100);
        let register = register(proven(&c1, 110), "id".into(), Alg::ES256, jwk());
        let bound = register(Some(&start.to_value())).expect("first use");
        let binding = Binding::read(Some(&bound)).expect("binding");
        assert!(binding.honours("cookie", 111));
        assert!(!binding.honours("other", 111));
        assert!(!binding.honours("cookie", 710), "expired");
        // The same proof again, on the record it produced: refused.
        assert!(register(Some(&bound)).is_err());
        // A refresh with the spent challenge: refused; with a new one: fine.
        assert!(refresh(proven(&c1, 120), "id".into())(Some(&bound)).is_err());
        let c2 = binding.challenge(115);
        let refreshed = refresh(proven(&c2, 120), "id".into())(Some(&bound)).expect("refresh");
        assert!(refresh(proven(&c2, 121), "id".into())(Some(&refreshed)).is_err());
    }

    #[test]
    fn stale_foreign_and_forged_challenges_are_refused() {
        let binding = Binding::new();
        let c = binding.challenge(100);
        assert!(binding.check(&c, 399, 300).is_some());
        assert!(binding.check(&c, 400, 300).is_none(), "stale");
        assert!(binding.check(&c, 99, 300).is_none(), "issued after 'now'");
        let other = Binding::new();
        assert!(other.check(&c, 100, 300).is_none(), "another session's");
        // Flip each byte of the challenge: none is accepted.
        let bytes = URL_SAFE_NO_PAD.decode(&c).unwrap();
        for i in 0..bytes.len() {
            let mut forged = bytes.clone();
            forged[i] ^= 1;
            let forged = URL_SAFE_NO_PAD.encode(forged);
            assert!(binding.check(&forged, 100, 300).is_none(), "byte {i}");
        }
        assert!(binding.check("", 100, 300).is_none());
        assert!(binding.check(&"A".repeat(54), 100, 300).is_none());
    }

    #[test]
    fn handing_out_challenges_changes_nothing_and_spent_ones_are_forgotten_when_stale() {
        let start = Binding::new();
        let before = start.to_value();
        for t in 0..1000 {
            let _ = start.challenge(t);
        }
        assert_eq!(start.to_value(), before, "issuing writes nothing");
        let mut value = register(
            proven(&start.challenge(0), 0),
            "id".into(),
            Alg::ES256,
            jwk(),
        )(Some(&before))
        .expect("register");
        for t in 1..50 {
            let binding = Binding::read(Some(&value)).unwrap();
            let mut p = proven(&binding.challenge(t * 100), t * 100);
            p.cookie = BoundCookie::new(&format!("cookie{t}"), t * 100 + 600);
            value = refresh(p, "id".into())(Some(&value)).expect("refresh");
        }
        let binding = Binding::read(Some(&value)).unwrap();
        assert!(binding.spent.len() <= 3, "{:?}", binding.spent);
        assert_eq!(binding.device.as_ref().unwrap().cookies.len(), 2);
    }

    /// Attack round 6 (N1): a device refreshing in a loop, all within one
    /// challenge lifetime, keeps its record small, and no spent challenge
    /// becomes usable again when old entries are dropped.
    #[test]
    fn a_refresh_loop_keeps_the_record_small_and_spent_challenges_spent() {
        let start = Binding::new();
        let mut value = register(
            proven(&start.challenge(0), 0),
            "id".into(),
            Alg::ES256,
            jwk(),
        )(Some(&start.to_value()))
        .expect("register");
        let mut used = Vec::new();
        for i in 0..2000 {
            let t = i / 10; // ten refreshes a second
            let binding = Binding::read(Some(&value)).unwrap();
            let c = binding.challenge(t);
            value = refresh(proven(&c, t), "id".into())(Some(&value)).expect("refresh");
            used.push((c, t));
        }
        let binding = Binding::read(Some(&value)).unwrap();
        assert!(binding.spent.len() <= MAX_SPENT);
        assert!(
            value.to_string().len() < 2048,
            "{}",
            value.to_string().len()
        );
        for (c, t) in used.iter().rev().take(300) {
            assert!(
                binding.check(c, *t, 300).is_none(),
                "a spent challenge came back"
            );
        }
        // The loop can go on: a new challenge still works.
        let c = binding.challenge(200);
        assert!(refresh(proven(&c, 200), "id".into())(Some(&value)).is_ok());
    }
}
