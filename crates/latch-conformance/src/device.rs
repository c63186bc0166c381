//! A DBSC browser played in software: a device key (P-256 or RSA-2048) that
//! signs `dbsc+jwt` proofs as Chromium does, and a client that keeps the
//! session and bound cookies and runs sign-in, registration, refresh and
//! ordinary requests against a [`SessionManager`] directly (no HTTP). The
//! HTTP tests use [`SoftwareDevice`] alone.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latch::dbsc::{BindingAnswer, BindingRequest, Endpoint};
use latch::{RawRequest, SessionManager};
use p256::ecdsa::signature::{SignatureEncoding as _, Signer as _};
use rand_core::OsRng;
use serde_json::{Value, json};

/// A device's private key, held in software.
pub enum SoftwareDevice {
    /// ES256.
    P256(p256::ecdsa::SigningKey),
    /// RS256.
    Rsa(Box<rsa::pkcs1v15::SigningKey<sha2::Sha256>>),
}

impl std::fmt::Debug for SoftwareDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.alg())
    }
}

impl SoftwareDevice {
    /// A new P-256 device key (ES256).
    pub fn es256() -> Self {
        Self::P256(p256::ecdsa::SigningKey::random(&mut OsRng))
    }

    /// A new RSA-2048 device key (RS256).
    ///
    /// # Panics
    /// When key generation fails (it does not with the OS random source).
    pub fn rs256() -> Self {
        let key = rsa::RsaPrivateKey::new(&mut OsRng, 2048).expect("RSA-2048 key generation");
        Self::Rsa(Box::new(rsa::pkcs1v15::SigningKey::new(key)))
    }

    /// The JOSE `alg`.
    pub fn alg(&self) -> &'static str {
        match self {
            Self::P256(_) => "ES256",
            Self::Rsa(_) => "RS256",
        }
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Value {
        match self {
            Self::P256(key) => {
                let point = key.verifying_key().to_encoded_point(false);
                json!({
                    "kty": "EC",
                    "crv": "P-256",
                    "x": URL_SAFE_NO_PAD.encode(point.x().map(|x| x.to_vec()).unwrap_or_default()),
                    "y": URL_SAFE_NO_PAD.encode(point.y().map(|y| y.to_vec()).unwrap_or_default()),
                })
            }
            Self::Rsa(key) => {
                use rsa::traits::PublicKeyParts as _;
                let public = key.as_ref().as_ref().to_public_key();
                json!({
                    "kty": "RSA",
                    "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
                    "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
                })
            }
        }
    }

    /// A registration proof of `challenge`: header with `jwk`, as Chromium sends it.
    pub fn registration_proof(&self, challenge: &str) -> String {
        let header = json!({"alg": self.alg(), "typ": "dbsc+jwt", "jwk": self.jwk()});
        self.sign(&header, &json!({ "jti": challenge }))
    }

    /// A refresh proof of `challenge`: no `jwk`.
    pub fn refresh_proof(&self, challenge: &str) -> String {
        let header = json!({"alg": self.alg(), "typ": "dbsc+jwt"});
        self.sign(&header, &json!({ "jti": challenge }))
    }

    /// A compact JWS of `header` and `payload` signed with this key (for
    /// crafted proofs: any header, any claims).
    pub fn sign(&self, header: &Value, payload: &Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload.to_string())
        );
        let signature = match self {
            Self::P256(key) => {
                let sig: p256::ecdsa::Signature = key.sign(input.as_bytes());
                sig.to_bytes().to_vec()
            }
            Self::Rsa(key) => key.sign(input.as_bytes()).to_vec(),
        };
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

/// The `challenge` parameter of a `Secure-Session-Registration` or the
/// string of a `Secure-Session-Challenge` header.
pub fn challenge_of(header: &str) -> Option<String> {
    if let Some(rest) = header.split("challenge=\"").nth(1) {
        return rest.split('"').next().map(str::to_owned);
    }
    header
        .strip_prefix('"')
        .and_then(|rest| rest.split('"').next())
        .map(str::to_owned)
}

/// The value of the header `name` in `answer`.
pub fn header<'a>(answer: &'a BindingAnswer, name: &str) -> Option<&'a str> {
    answer
        .headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

/// A browser with a device key, talking to a manager directly: its cookie jar
/// (session and bound cookie), the DBSC session it registered, and the last
/// challenge it was given.
#[derive(Debug)]
pub struct DeviceClient {
    /// The manager it talks to.
    pub manager: SessionManager,
    /// Its key.
    pub device: SoftwareDevice,
    /// The session cookie's value.
    pub session: Option<String>,
    /// The bound cookie's value.
    pub bound: Option<String>,
    /// The DBSC session id from the registration's config.
    pub dbsc_id: Option<String>,
    /// The challenge the server last handed over, for the next proof.
    pub challenge: Option<String>,
}

impl DeviceClient {
    /// A client with no cookies.
    pub fn new(manager: SessionManager, device: SoftwareDevice) -> Self {
        Self {
            manager,
            device,
            session: None,
            bound: None,
            dbsc_id: None,
            challenge: None,
        }
    }

    fn bound_name(&self) -> String {
        format!("{}-bound", self.manager.cookie_config().name())
    }

    /// The `Cookie` header this client sends.
    pub fn cookie_header(&self) -> Option<String> {
        let mut pairs = Vec::new();
        if let Some(s) = &self.session {
            pairs.push(format!("{}={s}", self.manager.cookie_config().name()));
        }
        if let Some(b) = &self.bound {
            pairs.push(format!("{}={b}", self.bound_name()));
        }
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }

    fn raw(&self) -> RawRequest {
        let mut raw = RawRequest::new();
        if let Some(c) = self.cookie_header() {
            raw.cookie_header(c.parse().expect("cookie header"));
        }
        raw
    }

    /// Keep what `set_cookie` sets (or removes).
    pub fn take_cookie(&mut self, set_cookie: &str) {
        let pair = set_cookie.split(';').next().unwrap_or_default();
        let Some((name, value)) = pair.split_once('=') else {
            return;
        };
        let value = (!value.is_empty()).then(|| value.to_owned());
        if name == self.manager.cookie_config().name() {
            self.session = value;
        } else if name == self.bound_name() {
            self.bound = value;
        }
    }

    /// One ordinary request letting `f` use the session; returns the
    /// `Secure-Session-Registration` header if the response carried one.
    ///
    /// # Panics
    /// When `finish` fails.
    pub async fn request<F, Fut>(&mut self, f: F) -> Option<String>
    where
        F: FnOnce(latch::Session) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let session = self.manager.start_raw(self.raw());
        f(session.clone()).await;
        let finished = self.manager.finish(&session).await.expect("finish");
        for c in finished.set_cookie.iter().chain(&finished.other_cookies) {
            self.take_cookie(c);
        }
        finished
            .headers
            .into_iter()
            .find(|(n, _)| *n == latch::dbsc::REGISTRATION_HEADER)
            .map(|(_, v)| v)
    }

    /// The signed-in user as one ordinary request sees it.
    pub async fn user(&mut self) -> Option<String> {
        let user = std::sync::Arc::new(std::sync::Mutex::new(None));
        let seen = std::sync::Arc::clone(&user);
        self.request(|s| async move {
            *seen.lock().expect("lock") = s.user_id().await.expect("user_id");
        })
        .await;
        user.lock().expect("lock").clone()
    }

    /// Sign in as `user`; returns the registration header, if any.
    pub async fn sign_in(&mut self, user: &str) -> Option<String> {
        let user = user.to_owned();
        self.request(|s| async move { s.log_in(user).await.expect("log_in") })
            .await
    }

    /// Post `proof` (or none) to `endpoint`, naming `id` on refresh; keeps
    /// the cookies and challenge the answer gives.
    pub async fn post(
        &mut self,
        endpoint: Endpoint,
        proof: Option<String>,
        id: Option<String>,
    ) -> BindingAnswer {
        let request = BindingRequest {
            session_id: id.map(|id| format!("\"{id}\"").into_bytes()),
            proof: proof.map(String::into_bytes),
            origin: Some("https://example.test".into()),
        };
        let answer = self
            .manager
            .answer_device_binding(self.raw(), endpoint, &request)
            .await;
        for c in &answer.set_cookies {
            self.take_cookie(c);
        }
        if let Some(c) = header(&answer, latch::dbsc::CHALLENGE_HEADER).and_then(challenge_of) {
            self.challenge = Some(c);
        }
        if let Some(body) = &answer.body {
            let config: Value = serde_json::from_str(body).expect("config is JSON");
            self.dbsc_id = config["session_identifier"].as_str().map(str::to_owned);
        }
        answer
    }

    /// Sign in as `user` and register this device; returns the registration's
    /// answer.
    ///
    /// # Panics
    /// When the sign-in asks for no registration.
    pub async fn sign_in_and_register(&mut self, user: &str) -> BindingAnswer {
        let header = self
            .sign_in(user)
            .await
            .expect("sign-in asks for a registration");
        let challenge = challenge_of(&header).expect("registration challenge");
        let proof = self.device.registration_proof(&challenge);
        self.post(Endpoint::Register, Some(proof), None).await
    }

    /// Refresh as a browser does: post without proof, get `403` and a
    /// challenge, sign it, post again. Returns the final answer.
    pub async fn refresh(&mut self) -> BindingAnswer {
        let id = self.dbsc_id.clone();
        let first = self.post(Endpoint::Refresh, None, id.clone()).await;
        if first.status != 403 {
            return first;
        }
        let challenge = self.challenge.clone().expect("403 carries a challenge");
        let proof = self.device.refresh_proof(&challenge);
        self.post(Endpoint::Refresh, Some(proof), id).await
    }
}
