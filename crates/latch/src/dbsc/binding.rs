//! What a session record keeps about its device binding, under the reserved
//! data key `_latch.dbsc`, and the changes to it. Each change is a pure
//! function of the stored value, run as an update operation: when two requests
//! race on one session the compare-and-swap replays it on the newer record, so
//! a challenge is consumed exactly once and an ordinary save racing a
//! registration loses neither.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::proof::{Alg, PublicJwk};
use crate::error::{Error, ErrorKind, Result};
use crate::time::UnixTime;

/// The record's data key for the binding.
pub(crate) const BINDING_KEY: &str = "_latch.dbsc";

/// How many challenges may wait for a proof at once: the newest two, so a
/// refresh racing another tab's refresh still finds its own.
const MAX_PENDING: usize = 2;

/// The binding state of one session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Binding {
    /// Challenges issued and not yet used, newest last.
    #[serde(default, rename = "c", skip_serializing_if = "Vec::is_empty")]
    pub(crate) pending: Vec<Challenge>,
    /// The registered device, once registration succeeded.
    #[serde(default, rename = "d", skip_serializing_if = "Option::is_none")]
    pub(crate) device: Option<Device>,
}

/// A challenge: its value and when it was issued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Challenge {
    #[serde(rename = "v")]
    pub(crate) value: String,
    #[serde(rename = "t")]
    pub(crate) issued: UnixTime,
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

fn hash(value: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(value.as_bytes()))
}

impl Binding {
    /// The binding in `data`'s value, if any; a value latch cannot read is no
    /// binding at all (a store does not forge its own records).
    pub(crate) fn read(value: Option<&Value>) -> Option<Self> {
        value.and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    /// A binding waiting for its registration proof.
    pub(crate) fn pending(challenge: Challenge) -> Self {
        Self {
            pending: vec![challenge],
            device: None,
        }
    }

    /// As a data value.
    pub(crate) fn to_value(&self) -> Value {
        // A struct of strings and integers always serializes.
        serde_json::to_value(self).unwrap_or(Value::Null)
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

    /// Whether `jti` is a pending challenge still fresh at `now`.
    pub(crate) fn is_pending(&self, jti: &str, now: UnixTime, lifetime: i64) -> bool {
        self.pending
            .iter()
            .any(|c| fresh(c, now, lifetime) && c.value.as_bytes().ct_eq(jti.as_bytes()).into())
    }

    /// Consume the pending challenge `jti`; refused when it is not pending
    /// and fresh (already used by another request, or too old).
    fn consume(&mut self, jti: &str, now: UnixTime, lifetime: i64) -> Result<()> {
        if !self.is_pending(jti, now, lifetime) {
            return Err(refused("the challenge was already used or is too old"));
        }
        self.pending
            .retain(|c| c.value != jti && fresh(c, now, lifetime));
        Ok(())
    }

    /// Add `challenge`, keeping the newest few.
    fn push(&mut self, challenge: Challenge) {
        self.pending.push(challenge);
        let excess = self.pending.len().saturating_sub(MAX_PENDING);
        self.pending.drain(..excess);
    }
}

fn fresh(challenge: &Challenge, now: UnixTime, lifetime: i64) -> bool {
    (0..lifetime).contains(&now.saturating_sub(challenge.issued))
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

/// Issue `challenge` for the next refresh of a registered device `id`.
pub(crate) fn issue(id: String, challenge: Challenge) -> impl Fn(Option<&Value>) -> Result<Value> {
    move |value| {
        let mut binding = current(value)?;
        if binding.device.as_ref().map(|d| d.id.as_str()) != Some(id.as_str()) {
            return Err(refused("the session is bound to another device session"));
        }
        binding.push(challenge.clone());
        Ok(binding.to_value())
    }
}

/// What a verified proof changes: the challenge it used, the cookie it buys,
/// and the challenge for the next refresh.
#[derive(Debug, Clone)]
pub(crate) struct Proven {
    pub(crate) jti: String,
    pub(crate) now: UnixTime,
    pub(crate) challenge_lifetime: i64,
    pub(crate) cookie: BoundCookie,
    pub(crate) next: Challenge,
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
        binding.consume(&proven.jti, proven.now, proven.challenge_lifetime)?;
        binding.device = Some(Device {
            id: id.clone(),
            alg,
            jwk: jwk.clone(),
            registered: proven.now,
            proved: proven.now,
            cookies: vec![proven.cookie.clone()],
        });
        binding.pending = vec![proven.next.clone()];
        Ok(binding.to_value())
    }
}

/// Renew the bound cookie of the registered device `id`.
pub(crate) fn refresh(proven: Proven, id: String) -> impl Fn(Option<&Value>) -> Result<Value> {
    move |value| {
        let mut binding = current(value)?;
        binding.consume(&proven.jti, proven.now, proven.challenge_lifetime)?;
        let device = binding
            .device
            .as_mut()
            .filter(|d| d.id == id)
            .ok_or_else(|| refused("the session is bound to another device session"))?;
        device.proved = proven.now;
        device.cookies.retain(|c| c.until > proven.now);
        device.cookies.insert(0, proven.cookie.clone());
        device.cookies.truncate(2);
        binding.push(proven.next.clone());
        Ok(binding.to_value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge(v: &str, t: UnixTime) -> Challenge {
        Challenge {
            value: v.into(),
            issued: t,
        }
    }

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
            next: challenge("next", now),
        }
    }

    #[test]
    fn a_challenge_is_consumed_once() {
        let start = Binding::pending(challenge("c1", 100)).to_value();
        let register = register(proven("c1", 110), "id".into(), Alg::ES256, jwk());
        let bound = register(Some(&start)).expect("first use");
        let binding = Binding::read(Some(&bound)).expect("binding");
        assert!(binding.honours("cookie", 111));
        assert!(!binding.honours("other", 111));
        assert!(!binding.honours("cookie", 710), "expired");
        // The same proof again, on the record it produced: refused.
        assert!(register(Some(&bound)).is_err());
        // A refresh with the used challenge: refused; with the next one: fine.
        assert!(refresh(proven("c1", 120), "id".into())(Some(&bound)).is_err());
        assert!(refresh(proven("next", 120), "id".into())(Some(&bound)).is_ok());
    }

    #[test]
    fn a_stale_challenge_is_refused() {
        let start = Binding::pending(challenge("c1", 100)).to_value();
        let late = register(proven("c1", 400), "id".into(), Alg::ES256, jwk());
        assert!(late(Some(&start)).is_err());
        let future = register(proven("c1", 99), "id".into(), Alg::ES256, jwk());
        assert!(future(Some(&start)).is_err(), "issued after 'now'");
    }

    #[test]
    fn refresh_keeps_the_newest_two_cookies_and_challenges() {
        let start = Binding::pending(challenge("c1", 100)).to_value();
        let mut value = register(proven("c1", 100), "id".into(), Alg::ES256, jwk())(Some(&start))
            .expect("register");
        for (i, jti) in ["a", "b", "c"].into_iter().enumerate() {
            value = issue("id".into(), challenge(jti, 100))(Some(&value)).expect("issue");
            let mut p = proven(jti, 101);
            p.cookie = BoundCookie::new(&format!("cookie{i}"), 700);
            value = refresh(p, "id".into())(Some(&value)).expect("refresh");
        }
        let binding = Binding::read(Some(&value)).expect("binding");
        let device = binding.device.as_ref().expect("device");
        assert_eq!(device.cookies.len(), 2);
        assert!(binding.honours("cookie2", 101) && binding.honours("cookie1", 101));
        assert!(!binding.honours("cookie0", 101));
        assert!(binding.pending.len() <= MAX_PENDING);
        assert!(issue("other".into(), challenge("x", 1))(Some(&value)).is_err());
    }
}
