//! The browser's proof of possession: a compact JWS in the
//! `Secure-Session-Response` header, checked strictly before anything else is
//! looked at.
//!
//! The JOSE header must say `"typ":"dbsc+jwt"` and `"alg"` `ES256` or
//! `RS256`; nothing else is accepted (`none`, `HS256`, `ES384`, ...). The
//! signature is checked with RustCrypto's `p256`/`ecdsa` and `rsa` crates; no
//! curve or RSA arithmetic is written here. Every size is bounded before any
//! decoding, so a hostile header costs at most a few kilobytes of work.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Verifier as _;
use serde::{Deserialize, Serialize};

/// The longest `Secure-Session-Response` accepted, in bytes. An RS256 proof
/// with a 4096-bit key in its `jwk` is about 1.6 KiB.
pub const MAX_PROOF_BYTES: usize = 4096;

/// The largest RSA modulus accepted, in bits (larger keys only cost the server).
const MAX_RSA_BITS: usize = 4096;

/// The smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;

/// The longest `jti` (challenge) accepted, in bytes.
const MAX_JTI_BYTES: usize = 128;

/// The signature algorithms latch accepts, as the registration header lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Alg {
    /// ECDSA with P-256 and SHA-256 (the signature is `r‖s`, 64 bytes).
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
}

impl Alg {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(Self::ES256),
            "RS256" => Some(Self::RS256),
            _ => None,
        }
    }

    /// The name in JOSE headers.
    pub fn name(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::RS256 => "RS256",
        }
    }
}

/// Why a proof was refused. The variants are for logs and tests; clients only
/// ever see a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// Over [`MAX_PROOF_BYTES`], not three base64url parts, or not JSON.
    #[error("malformed proof")]
    Malformed,
    /// `typ` is not `dbsc+jwt`.
    #[error("proof is not of type dbsc+jwt")]
    WrongType,
    /// `alg` is not ES256 or RS256.
    #[error("proof algorithm not accepted")]
    Algorithm,
    /// The `jwk` is missing where required, unusable, or not a key of the
    /// header's `alg`.
    #[error("proof key unusable or not matching its algorithm")]
    Key,
    /// The signature does not verify.
    #[error("proof signature does not verify")]
    Signature,
}

/// A device's public key, as its `jwk` gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kty")]
pub enum PublicJwk {
    /// A P-256 key: the affine coordinates, base64url.
    EC {
        /// Always `P-256`.
        crv: String,
        /// The x coordinate.
        x: String,
        /// The y coordinate.
        y: String,
    },
    /// An RSA key: modulus and exponent, base64url big-endian.
    RSA {
        /// The modulus.
        n: String,
        /// The public exponent.
        e: String,
    },
}

/// A key ready to verify, with the algorithm it is for.
pub(crate) enum Verifying {
    Es256(p256::ecdsa::VerifyingKey),
    Rs256(Box<rsa::pkcs1v15::VerifyingKey<sha2::Sha256>>),
}

impl PublicJwk {
    /// The key, checked against `alg`: P-256 for ES256, an RSA key of 2048 to
    /// 4096 bits for RS256.
    pub(crate) fn verifying(&self, alg: Alg) -> Result<Verifying, ProofError> {
        match (self, alg) {
            (Self::EC { crv, x, y }, Alg::ES256) => {
                if crv != "P-256" {
                    return Err(ProofError::Key);
                }
                let x = decode_exact::<32>(x)?;
                let y = decode_exact::<32>(y)?;
                let point =
                    p256::EncodedPoint::from_affine_coordinates(&x.into(), &y.into(), false);
                p256::ecdsa::VerifyingKey::from_encoded_point(&point)
                    .map(Verifying::Es256)
                    .map_err(|_| ProofError::Key)
            }
            (Self::RSA { n, e }, Alg::RS256) => {
                let n = decode(n, MAX_RSA_BITS / 8 + 1)?;
                let e = decode(e, 8)?;
                let n = rsa::BigUint::from_bytes_be(&n);
                let e = rsa::BigUint::from_bytes_be(&e);
                if n.bits() < MIN_RSA_BITS {
                    return Err(ProofError::Key);
                }
                // `new_with_max_size` checks the exponent and the size bound.
                let key = rsa::RsaPublicKey::new_with_max_size(n, e, MAX_RSA_BITS)
                    .map_err(|_| ProofError::Key)?;
                Ok(Verifying::Rs256(Box::new(
                    rsa::pkcs1v15::VerifyingKey::new(key),
                )))
            }
            _ => Err(ProofError::Key),
        }
    }
}

impl Verifying {
    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), ProofError> {
        match self {
            Self::Es256(key) => {
                // JWS carries ECDSA signatures as raw r‖s (RFC 7518 3.4), not DER.
                let signature = p256::ecdsa::Signature::from_slice(signature)
                    .map_err(|_| ProofError::Signature)?;
                key.verify(message, &signature)
                    .map_err(|_| ProofError::Signature)
            }
            Self::Rs256(key) => {
                let signature = rsa::pkcs1v15::Signature::try_from(signature)
                    .map_err(|_| ProofError::Signature)?;
                key.verify(message, &signature)
                    .map_err(|_| ProofError::Signature)
            }
        }
    }
}

#[derive(Deserialize)]
struct Header {
    typ: Option<String>,
    alg: String,
    jwk: Option<PublicJwk>,
}

#[derive(Deserialize)]
struct Payload {
    jti: String,
    #[serde(default)]
    authorization: Option<String>,
}

/// A proof whose form is checked but whose signature is not yet: what
/// [`parse_proof`] gives. [`Proof::verify_with`] or [`Proof::verify_own_key`] checks
/// the signature.
#[derive(Debug, Clone)]
pub struct Proof {
    /// The algorithm the header names.
    pub alg: Alg,
    /// The key the header carries (required at registration).
    pub jwk: Option<PublicJwk>,
    /// The challenge the device signed.
    pub jti: String,
    /// The `authorization` value, when the registration header asked for one.
    pub authorization: Option<String>,
    signing_input: String,
    signature: Vec<u8>,
}

/// Parse a `Secure-Session-Response` value: size, shape, `typ`, `alg`, claims.
///
/// # Errors
/// [`ProofError`] for anything but a well-formed ES256 or RS256 `dbsc+jwt`.
///
/// # Example
/// ```
/// use latch::dbsc::{ProofError, parse_proof};
///
/// assert_eq!(parse_proof("not a jwt").unwrap_err(), ProofError::Malformed);
/// // {"alg":"none","typ":"dbsc+jwt"} . {"jti":"c"} . (no signature)
/// let none = "eyJhbGciOiJub25lIiwidHlwIjoiZGJzYytqd3QifQ.eyJqdGkiOiJjIn0.";
/// assert_eq!(parse_proof(none).unwrap_err(), ProofError::Algorithm);
/// ```
pub fn parse_proof(value: &str) -> Result<Proof, ProofError> {
    if value.len() > MAX_PROOF_BYTES {
        return Err(ProofError::Malformed);
    }
    let mut parts = value.split('.');
    let (Some(header64), Some(payload64), Some(signature64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ProofError::Malformed);
    };
    let header: Header = json(header64, |header| {
        // Extensions this verifier does not implement must be refused
        // (RFC 7515 4.1.11), and a public key carries no private parts.
        let private = header
            .get("jwk")
            .and_then(serde_json::Value::as_object)
            .is_some_and(|jwk| PRIVATE_JWK_MEMBERS.iter().any(|m| jwk.contains_key(*m)));
        !(header.contains_key("crit") || header.contains_key("b64") || private)
    })?;
    if header.typ.as_deref() != Some("dbsc+jwt") {
        return Err(ProofError::WrongType);
    }
    let alg = Alg::parse(&header.alg).ok_or(ProofError::Algorithm)?;
    let payload: Payload = json(payload64, |_| true)?;
    if payload.jti.is_empty() || payload.jti.len() > MAX_JTI_BYTES {
        return Err(ProofError::Malformed);
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature64)
        .map_err(|_| ProofError::Malformed)?;
    Ok(Proof {
        alg,
        jwk: header.jwk,
        jti: payload.jti,
        authorization: payload.authorization,
        signing_input: format!("{header64}.{payload64}"),
        signature,
    })
}

impl Proof {
    /// Check the signature with the key the proof carries (registration); the
    /// key, when it verifies.
    ///
    /// # Errors
    /// [`ProofError::Key`] without a usable `jwk` of the header's `alg`,
    /// [`ProofError::Signature`] when it does not verify.
    pub fn verify_own_key(&self) -> Result<PublicJwk, ProofError> {
        let jwk = self.jwk.clone().ok_or(ProofError::Key)?;
        self.verify_with(&jwk, self.alg)?;
        Ok(jwk)
    }

    /// Check the signature with the registered `jwk` for `alg` (refresh). A
    /// proof naming another algorithm, or carrying another key, is refused.
    ///
    /// # Errors
    /// [`ProofError::Algorithm`], [`ProofError::Key`] or
    /// [`ProofError::Signature`].
    pub fn verify_with(&self, jwk: &PublicJwk, alg: Alg) -> Result<(), ProofError> {
        if self.alg != alg {
            return Err(ProofError::Algorithm);
        }
        if self.jwk.as_ref().is_some_and(|own| own != jwk) {
            return Err(ProofError::Key);
        }
        jwk.verifying(alg)?
            .verify(self.signing_input.as_bytes(), &self.signature)
    }
}

/// Members of a JWK that only a private key has.
const PRIVATE_JWK_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A base64url JSON part, bounded by the overall size check: a JSON object
/// (not an array, which serde would map onto a struct too) that `accept`
/// allows.
fn json<T: for<'de> Deserialize<'de>>(
    part: &str,
    accept: impl Fn(&serde_json::Map<String, serde_json::Value>) -> bool,
) -> Result<T, ProofError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| ProofError::Malformed)?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| ProofError::Malformed)?;
    match &value {
        serde_json::Value::Object(map) if accept(map) => {}
        _ => return Err(ProofError::Malformed),
    }
    serde_json::from_value(value).map_err(|_| ProofError::Malformed)
}

/// A base64url field of at most `max` bytes.
fn decode(field: &str, max: usize) -> Result<Vec<u8>, ProofError> {
    if field.len() > max.div_ceil(3) * 4 {
        return Err(ProofError::Key);
    }
    let bytes = URL_SAFE_NO_PAD.decode(field).map_err(|_| ProofError::Key)?;
    if bytes.is_empty() || bytes.len() > max {
        return Err(ProofError::Key);
    }
    Ok(bytes)
}

/// A base64url field of exactly `N` bytes (a curve coordinate).
fn decode_exact<const N: usize>(field: &str) -> Result<[u8; N], ProofError> {
    decode(field, N)?.try_into().map_err(|_| ProofError::Key)
}
