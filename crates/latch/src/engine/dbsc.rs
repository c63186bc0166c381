//! Device-bound sessions in the request cycle (see [`crate::dbsc`]): the
//! registration started at sign-in, the bound-cookie check when a session is
//! loaded, and the answers on the registration and refresh paths.
//!
//! ```text
//! log_in ─▶ finish: new ID + binding secret ─▶ Secure-Session-Registration (a challenge)
//! POST register (proof) ─▶ verify ─▶ Op::Update(_latch.dbsc) ─▶ save (CAS) ─▶ 200 config + bound cookie
//! any request ─▶ load ─▶ bound? live bound cookie? ─ no ─▶ served as a fresh visitor
//! POST refresh ─▶ 403 + challenge ─▶ POST refresh (proof) ─▶ verify ─▶ save ─▶ 200 + new bound cookie
//! ```

use std::sync::Arc;

use serde_json::Value;

use super::Engine;
use super::state::{Loaded, Op, Origin, State};
use crate::cookie::IncomingCookie;
use crate::dbsc::{
    self, BINDING_KEY, Binder, Binding, BindingAnswer, BindingRequest, BoundCookie, DeviceStatus,
    Endpoint, ProofError, Proven,
};
use crate::error::{ErrorKind, Result};
use crate::time::UnixTime;

impl Engine {
    /// Whether a loaded session may be honoured for this request: a
    /// device-bound session only with a live bound cookie. Sets the request's
    /// [`DeviceStatus`].
    pub(crate) fn check_binding(&self, state: &mut State, loaded: &Loaded, now: UnixTime) -> bool {
        let Some(binder) = &self.binder else {
            return true;
        };
        let binding = Binding::read(loaded.record.get().data.get(BINDING_KEY));
        let Some(device) = binding.as_ref().and_then(|b| b.device.as_ref()) else {
            return true;
        };
        if !state.checks_binding() {
            return true;
        }
        let cookie = state
            .input()
            .map_or(IncomingCookie::Absent, |i| i.incoming(binder.cookie.name()));
        let proven = match cookie {
            IncomingCookie::One(value) => binding.as_ref().is_some_and(|b| b.honours(&value, now)),
            IncomingCookie::Absent | IncomingCookie::Duplicate => false,
        };
        if proven {
            state.set_device(DeviceStatus::Proven {
                proved_at: device.proved,
            });
        } else {
            tracing::debug!(
                "device-bound session without a live bound cookie; served as a fresh visitor"
            );
        }
        proven
    }

    /// At sign-in (a new ID for a signed-in session): whatever binding the
    /// old ID had ends with it, and a registration starts.
    pub(crate) fn begin_binding(&self, state: &mut State, now: UnixTime) {
        let Some(binder) = &self.binder else {
            return;
        };
        state.record_mut().data.remove(BINDING_KEY);
        if state.record().user_id.is_none() {
            return;
        }
        let binding = Binding::new();
        let header = binder.registration_header(&binding.challenge(now));
        state.set_internal(BINDING_KEY, binding.to_value());
        state.add_header(dbsc::REGISTRATION_HEADER, header);
    }

    /// The bound cookie's removal, when a request that carried one ends its
    /// session.
    pub(crate) fn bound_cookie_removal(&self, state: &State) -> Option<String> {
        let binder = self.binder.as_ref()?;
        let input = state.input()?;
        match input.incoming(binder.cookie.name()) {
            IncomingCookie::Absent => None,
            _ => Some(binder.cookie.removal_cookie()),
        }
    }

    /// Answer a request to the registration or refresh path.
    pub(crate) async fn answer_binding(
        self: &Arc<Self>,
        state: &mut State,
        endpoint: Endpoint,
        request: &BindingRequest,
    ) -> Result<BindingAnswer> {
        let Some(binder) = &self.binder else {
            return Ok(BindingAnswer::status(404));
        };
        state.skip_binding_check();
        self.load(state).await?;
        let now = self.now();
        let Origin::Stored { .. } = state.origin() else {
            return Ok(refuse(404, "no session"));
        };
        let binding = Binding::read(state.get(BINDING_KEY));
        let answer = match endpoint {
            Endpoint::Register => self.register(binder, state, binding, request, now).await?,
            Endpoint::Refresh => self.refresh(binder, state, binding, request, now).await?,
        };
        Ok(answer)
    }

    async fn register(
        self: &Arc<Self>,
        binder: &Binder,
        state: &mut State,
        binding: Option<Binding>,
        request: &BindingRequest,
        now: UnixTime,
    ) -> Result<BindingAnswer> {
        // A registration is for a signed-in session whose sign-in asked for
        // it, exactly once.
        let Some(binding) = binding.filter(|b| b.device.is_none()) else {
            return Ok(refuse(404, "no registration pending"));
        };
        let proof = match request.proof.as_deref().map(parse) {
            Some(Ok(proof)) => proof,
            Some(Err(err)) => return Ok(refuse(400, err)),
            None => return Ok(refuse(400, "no proof")),
        };
        let jwk = match proof.verify_own_key() {
            Ok(jwk) => jwk,
            Err(err) => return Ok(refuse(400, err)),
        };
        if binding
            .check(&proof.jti, now, binder.challenge_lifetime())
            .is_none()
        {
            return Ok(refuse(401, "registration challenge unknown, used or stale"));
        }
        if let Some(wanted) = &binder.settings.authorization {
            if proof.authorization.as_deref() != Some(wanted.as_str()) {
                return Ok(refuse(
                    401,
                    "registration without the authorization asked for",
                ));
            }
        }
        let id = dbsc::random_token();
        let (proven, cookie) = proven(binder, proof.jti, now);
        let op = dbsc::register(proven.clone(), id.clone(), proof.alg, jwk);
        self.apply_binding(binder, state, op, &id, proven, cookie, request)
            .await
    }

    async fn refresh(
        self: &Arc<Self>,
        binder: &Binder,
        state: &mut State,
        binding: Option<Binding>,
        request: &BindingRequest,
        now: UnixTime,
    ) -> Result<BindingAnswer> {
        let Some(named) = request
            .session_id
            .as_deref()
            .and_then(dbsc::session_id_header)
        else {
            return Ok(refuse(400, "no or malformed Sec-Secure-Session-Id"));
        };
        // Another session's id, or a session no longer bound (logged out,
        // regenerated, expired): the browser's DBSC session is over.
        let device = binding.as_ref().and_then(|b| b.device.as_ref());
        let Some(device) = device.filter(|d| d.id == named) else {
            return Ok(refuse(404, "no such device-bound session"));
        };
        let id = device.id.clone();
        let Some(binding) = binding.as_ref() else {
            return Ok(refuse(404, "no such device-bound session"));
        };
        let Some(raw) = request.proof.as_deref() else {
            return Ok(challenge(binding, &id, now));
        };
        let proof = match parse(raw) {
            Ok(proof) => proof,
            Err(err) => return Ok(refuse(400, err)),
        };
        if let Err(err) = proof.verify_with(&device.jwk, device.alg) {
            // Not the registered device: its DBSC session (if it is one) ends.
            return Ok(refuse(401, err));
        }
        if binding
            .check(&proof.jti, now, binder.challenge_lifetime())
            .is_none()
        {
            // A used or stale challenge: possibly an honest race, so the
            // device gets a fresh one to sign.
            tracing::debug!("refresh with a used or stale challenge; issuing a new one");
            return Ok(challenge(binding, &id, now));
        }
        let (proven, cookie) = proven(binder, proof.jti, now);
        let op = dbsc::refresh(proven.clone(), id.clone());
        self.apply_binding(binder, state, op, &id, proven, cookie, request)
            .await
    }

    /// Save a registration or refresh; on success the session config, the
    /// new bound cookie and the next challenge.
    #[allow(clippy::too_many_arguments)]
    async fn apply_binding(
        self: &Arc<Self>,
        binder: &Binder,
        state: &mut State,
        op: impl Fn(Option<&Value>) -> Result<Value> + Send + Sync + 'static,
        id: &str,
        proven: Proven,
        cookie: String,
        request: &BindingRequest,
    ) -> Result<BindingAnswer> {
        // As loaded: a failed save leaves the request's record taken.
        let before = Binding::read(state.get(BINDING_KEY));
        match self.save_binding(state, op).await? {
            Saved::Yes => {}
            // Another request spent the challenge first: concurrent refreshes
            // of one device get a new challenge; a registration that lost to
            // another (the device registered meanwhile) gets nothing.
            Saved::Refused => {
                return Ok(match before {
                    Some(b) if b.device.as_ref().is_some_and(|d| d.id == id) => {
                        challenge(&b, id, self.now())
                    }
                    _ => refuse(401, "challenge spent by another request"),
                });
            }
            Saved::Gone => return Ok(refuse(404, "session ended meanwhile")),
        }
        // The next challenge comes with the cookie, so the next refresh
        // needs no 403 round trip.
        let next = Binding::read(state.get(BINDING_KEY))
            .map(|b| b.challenge(proven.now))
            .unwrap_or_default();
        let mut answer = BindingAnswer::status(200);
        answer
            .headers
            .push(("content-type", "application/json".into()));
        answer
            .headers
            .push((dbsc::CHALLENGE_HEADER, Binder::challenge_header(&next, id)));
        answer.set_cookies.push(
            binder
                .cookie
                .set_cookie(&cookie, Some(binder.bound_lifetime())),
        );
        answer.body = Some(binder.config(id, request.origin.as_deref()));
        Ok(answer)
    }

    /// Apply `op` to the binding and save it now (compare-and-swap, replayed
    /// on conflict: the op itself refuses a challenge another request used).
    async fn save_binding(
        self: &Arc<Self>,
        state: &mut State,
        op: impl Fn(Option<&Value>) -> Result<Value> + Send + Sync + 'static,
    ) -> Result<Saved> {
        let op = Op::Update(BINDING_KEY.to_owned(), Arc::new(op));
        if let Err(err) = state.push(op) {
            return refused_or(err);
        }
        if let Err(err) = self.save_now(state).await {
            return refused_or(err);
        }
        Ok(if state.early().gone {
            Saved::Gone
        } else {
            Saved::Yes
        })
    }
}

/// How a binding save ended.
enum Saved {
    Yes,
    /// The op refused the record it met (challenge used meanwhile).
    Refused,
    /// The session was deleted meanwhile.
    Gone,
}

fn refused_or(err: crate::Error) -> Result<Saved> {
    if *err.kind() == ErrorKind::UpdateRefused {
        Ok(Saved::Refused)
    } else {
        Err(err)
    }
}

/// Parse a proof header value (bytes, size-checked first).
fn parse(raw: &[u8]) -> std::result::Result<dbsc::Proof, ProofError> {
    if raw.len() > dbsc::MAX_PROOF_BYTES {
        return Err(ProofError::Malformed);
    }
    let text = std::str::from_utf8(raw)
        .map_err(|_| ProofError::Malformed)?
        .trim();
    // Chromium sends the JWT bare; a structured-field string is accepted too.
    let bare = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    dbsc::parse_proof(bare)
}

/// What a verified proof of `jti` buys at `now`: a new bound cookie (its
/// value returned apart).
fn proven(binder: &Binder, jti: String, now: UnixTime) -> (Proven, String) {
    let value = dbsc::random_token();
    let until = now + binder.bound_lifetime();
    let proven = Proven {
        jti,
        now,
        challenge_lifetime: binder.challenge_lifetime(),
        cookie: BoundCookie::new(&value, until),
    };
    (proven, value)
}

/// `403` with a fresh challenge: computed, never stored, so asking for one
/// (which takes only the session cookie) changes nothing.
fn challenge(binding: &Binding, id: &str, now: UnixTime) -> BindingAnswer {
    let mut answer = BindingAnswer::status(403);
    answer.headers.push((
        dbsc::CHALLENGE_HEADER,
        Binder::challenge_header(&binding.challenge(now), id),
    ));
    answer
}

/// A refusal, logged with its reason (never the proof itself).
fn refuse(status: u16, why: impl std::fmt::Display) -> BindingAnswer {
    tracing::debug!(status, reason = %why, "device binding request refused");
    BindingAnswer::status(status)
}
