//! Device-bound sessions (DBSC), played with software device keys against the
//! core: the protocol (register, use, expire, refresh), and rows D1-D4 of
//! docs/security.md, one named test per attack.

use std::sync::Arc;
use std::time::Duration;

use latch::dbsc::{DeviceBinding, DeviceStatus, Endpoint};
use latch::{Keyring, ManualClock, MemoryStore, SecretKey, SessionManager, SessionStore};
use latch_conformance::device::{DeviceClient, SoftwareDevice, challenge_of, header};
use serde_json::{Value, json};

const T0: i64 = 1_800_000_000;
/// The bound cookie's lifetime in these tests.
const BOUND: i64 = 600;

fn manager_on(store: Arc<dyn SessionStore>, clock: &ManualClock) -> SessionManager {
    SessionManager::builder()
        .shared_store(store)
        .clock(clock.clone())
        .device_bound(
            DeviceBinding::default().bound_cookie_lifetime(Duration::from_secs(BOUND as u64)),
        )
        .build()
        .expect("manager")
}

fn setup() -> (SessionManager, ManualClock) {
    let clock = ManualClock::new(T0);
    (manager_on(Arc::new(MemoryStore::new()), &clock), clock)
}

/// A client of `manager` with a new P-256 key, signed in as `user` and registered.
async fn bound_client(manager: &SessionManager, user: &str) -> DeviceClient {
    let mut client = DeviceClient::new(manager.clone(), SoftwareDevice::es256());
    let answer = client.sign_in_and_register(user).await;
    assert_eq!(answer.status, 200, "registration accepted");
    client
}

/// A copy of `client`'s cookies in the hands of someone with another key.
fn thief_of(client: &DeviceClient) -> DeviceClient {
    let mut thief = DeviceClient::new(client.manager.clone(), SoftwareDevice::es256());
    thief.session.clone_from(&client.session);
    thief.bound.clone_from(&client.bound);
    thief.dbsc_id.clone_from(&client.dbsc_id);
    thief
}

#[tokio::test]
async fn software_devices_register_use_expire_and_refresh() {
    for device in [SoftwareDevice::es256(), SoftwareDevice::rs256()] {
        let (manager, clock) = setup();
        let alg = device.alg();
        let mut client = DeviceClient::new(manager.clone(), device);
        let header = client.sign_in("ada").await.expect("registration header");
        assert!(
            header.starts_with("(ES256 RS256);path=\"/.latch/dbsc/register\";challenge=\""),
            "{header}"
        );
        let challenge = challenge_of(&header).expect("challenge");
        let proof = client.device.registration_proof(&challenge);
        let answer = client.post(Endpoint::Register, Some(proof), None).await;
        assert_eq!(answer.status, 200, "{alg}");
        let config: Value = serde_json::from_str(answer.body.as_deref().unwrap()).unwrap();
        assert_eq!(config["refresh_url"], "/.latch/dbsc/refresh");
        assert_eq!(config["scope"]["origin"], "https://example.test");
        assert_eq!(config["credentials"][0]["type"], "cookie");
        assert_eq!(config["credentials"][0]["name"], "__Host-session-bound");
        assert_eq!(
            config["credentials"][0]["attributes"],
            "HttpOnly; SameSite=Lax; Secure; Path=/"
        );
        let set = &answer.set_cookies[0];
        assert!(set.starts_with("__Host-session-bound="), "{set}");
        assert!(set.contains(&format!("Max-Age={BOUND}")), "{set}");
        assert!(header.len() < 200 && client.bound.is_some());

        // In use: signed in, and proven.
        assert_eq!(client.user().await.as_deref(), Some("ada"));
        let status = Arc::new(std::sync::Mutex::new(DeviceStatus::Unbound));
        let seen = Arc::clone(&status);
        client
            .request(|s| async move { *seen.lock().unwrap() = s.device_status().await.unwrap() })
            .await;
        assert_eq!(
            *status.lock().unwrap(),
            DeviceStatus::Proven { proved_at: T0 }
        );

        // The bound cookie runs out: no longer signed in, but the session is
        // kept (no removal cookie) for the device's refresh.
        clock.advance(BOUND);
        assert_eq!(client.user().await, None, "{alg}: stale bound cookie");
        assert!(client.session.is_some(), "the session cookie is kept");
        let refreshed = client.refresh().await;
        assert_eq!(refreshed.status, 200, "{alg}");
        assert_eq!(client.user().await.as_deref(), Some("ada"), "{alg}");
        // The 200 hands over the next challenge: a proof over it (while it is
        // fresh) works without the 403 round trip.
        clock.advance(200);
        let next = client.challenge.clone().expect("next challenge");
        let id = client.dbsc_id.clone();
        let proof = client.device.refresh_proof(&next);
        let answer = client.post(Endpoint::Refresh, Some(proof), id).await;
        assert_eq!(answer.status, 200, "{alg}: {answer:?}");
        assert_eq!(client.user().await.as_deref(), Some("ada"));
    }
}

#[tokio::test]
async fn d1_stolen_cookies_work_until_the_bound_cookie_expires_then_never_again() {
    let (manager, clock) = setup();
    let mut device = bound_client(&manager, "ada").await;
    let mut thief = thief_of(&device);
    assert_eq!(
        thief.user().await.as_deref(),
        Some("ada"),
        "a fresh copy works"
    );
    clock.advance(BOUND - 1);
    assert_eq!(
        thief.user().await.as_deref(),
        Some("ada"),
        "until it expires"
    );
    clock.advance(1);
    assert_eq!(thief.user().await, None, "signed out once it expired");

    // The thief cannot refresh: a challenge, yes; a proof with its key, no.
    let first = thief
        .post(Endpoint::Refresh, None, thief.dbsc_id.clone())
        .await;
    assert_eq!(first.status, 403);
    let challenge = thief.challenge.clone().unwrap();
    let forged = thief.device.refresh_proof(&challenge);
    let answer = thief
        .post(Endpoint::Refresh, Some(forged), thief.dbsc_id.clone())
        .await;
    assert_eq!(answer.status, 401);
    assert!(answer.set_cookies.is_empty());
    // Presenting its own key in the header does not help either.
    let with_jwk = thief.device.registration_proof(&challenge);
    let answer = thief
        .post(Endpoint::Refresh, Some(with_jwk), thief.dbsc_id.clone())
        .await;
    assert_eq!(answer.status, 401);
    assert_eq!(thief.user().await, None);

    // The device refreshes and goes on; the thief's copy stays dead.
    assert_eq!(device.refresh().await.status, 200);
    assert_eq!(device.user().await.as_deref(), Some("ada"));
    assert_eq!(thief.user().await, None);
    // Copying the cookies again after the refresh works only until *that*
    // bound cookie expires: the window is the bound cookie's lifetime.
    let mut second = thief_of(&device);
    assert_eq!(second.user().await.as_deref(), Some("ada"));
    clock.advance(BOUND);
    assert_eq!(second.user().await, None);
}

#[tokio::test]
async fn d2_a_replayed_registration_proof_is_refused() {
    let (manager, _clock) = setup();
    let mut client = DeviceClient::new(manager.clone(), SoftwareDevice::es256());
    let header = client.sign_in("ada").await.unwrap();
    let proof = client
        .device
        .registration_proof(&challenge_of(&header).unwrap());
    let first = client
        .post(Endpoint::Register, Some(proof.clone()), None)
        .await;
    assert_eq!(first.status, 200);
    let again = client.post(Endpoint::Register, Some(proof), None).await;
    assert_eq!(again.status, 404, "no registration pending any more");
    assert!(again.set_cookies.is_empty());
}

#[tokio::test]
async fn d2_a_replayed_refresh_proof_buys_nothing() {
    let (manager, clock) = setup();
    let mut client = bound_client(&manager, "ada").await;
    clock.advance(BOUND);
    let id = client.dbsc_id.clone();
    client.post(Endpoint::Refresh, None, id.clone()).await;
    let proof = client
        .device
        .refresh_proof(client.challenge.as_deref().unwrap());
    assert_eq!(
        client
            .post(Endpoint::Refresh, Some(proof.clone()), id.clone())
            .await
            .status,
        200
    );
    // Someone who captured that proof replays it: a new challenge, no cookie.
    let mut eavesdropper = thief_of(&client);
    eavesdropper.bound = None;
    let replay = eavesdropper.post(Endpoint::Refresh, Some(proof), id).await;
    assert_eq!(replay.status, 403);
    assert!(replay.set_cookies.is_empty());
}

#[tokio::test]
async fn d2_stale_and_foreign_challenges_are_refused() {
    let (manager, clock) = setup();
    // Stale: the registration proof comes after the challenge's lifetime.
    let mut late = DeviceClient::new(manager.clone(), SoftwareDevice::es256());
    let header = late.sign_in("ada").await.unwrap();
    clock.advance(300);
    let proof = late
        .device
        .registration_proof(&challenge_of(&header).unwrap());
    let answer = late.post(Endpoint::Register, Some(proof), None).await;
    assert_eq!(answer.status, 401);
    assert_eq!(
        late.user().await.as_deref(),
        Some("ada"),
        "still an ordinary session"
    );

    // Foreign: Mallory signs Ada's challenge (seen on the wire) and posts it
    // with her own session; then Ada's own registration still works.
    let mut ada = DeviceClient::new(manager.clone(), SoftwareDevice::es256());
    let ada_header = ada.sign_in("ada").await.unwrap();
    let ada_challenge = challenge_of(&ada_header).unwrap();
    let mut mallory = DeviceClient::new(manager.clone(), SoftwareDevice::es256());
    mallory.sign_in("mallory").await.unwrap();
    let stolen = mallory.device.registration_proof(&ada_challenge);
    let answer = mallory.post(Endpoint::Register, Some(stolen), None).await;
    assert_eq!(answer.status, 401);
    // Registration for someone else's session: Mallory's key, Ada's cookie.
    let mut hijack = DeviceClient::new(manager.clone(), SoftwareDevice::es256());
    hijack.session.clone_from(&ada.session);
    let theirs = hijack.device.registration_proof("made-up-challenge");
    assert_eq!(
        hijack
            .post(Endpoint::Register, Some(theirs), None)
            .await
            .status,
        401
    );
    let proof = ada.device.registration_proof(&ada_challenge);
    assert_eq!(
        ada.post(Endpoint::Register, Some(proof), None).await.status,
        200
    );

    // A refresh challenge of one session is useless for another.
    let mut bob = bound_client(&manager, "bob").await;
    clock.advance(BOUND);
    bob.post(Endpoint::Refresh, None, bob.dbsc_id.clone()).await;
    ada.post(Endpoint::Refresh, None, ada.dbsc_id.clone()).await;
    let bobs = bob.challenge.clone().unwrap();
    let cross = ada.device.refresh_proof(&bobs);
    let answer = ada
        .post(Endpoint::Refresh, Some(cross), ada.dbsc_id.clone())
        .await;
    assert_eq!(answer.status, 403, "a challenge of another session");
    assert!(answer.set_cookies.is_empty());
    // Naming another session's DBSC id with one's own cookie: no such session.
    let answer = ada.post(Endpoint::Refresh, None, bob.dbsc_id.clone()).await;
    assert_eq!(answer.status, 404);
    // A refresh challenge older than its lifetime is not accepted.
    let old = bob.challenge.clone().unwrap();
    clock.advance(300);
    let proof = bob.device.refresh_proof(&old);
    let answer = bob
        .post(Endpoint::Refresh, Some(proof), bob.dbsc_id.clone())
        .await;
    assert_eq!(answer.status, 403);
    assert!(answer.set_cookies.is_empty());
}

#[tokio::test]
async fn d2_forbidden_algorithms_and_mismatched_keys_are_refused() {
    let (manager, _clock) = setup();
    let mut client = DeviceClient::new(manager.clone(), SoftwareDevice::es256());
    let header = client.sign_in("ada").await.unwrap();
    let challenge = challenge_of(&header).unwrap();
    let jwk = client.device.jwk();
    let rsa = SoftwareDevice::rs256();
    let claims = json!({ "jti": challenge });
    let b64 = |v: &Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let crafted = [
        // alg none, no signature.
        format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "typ": "dbsc+jwt", "jwk": jwk})),
            b64(&claims)
        ),
        // HS256 "signed" with the public key as the secret (the classic confusion).
        client.device.sign(
            &json!({"alg": "HS256", "typ": "dbsc+jwt", "jwk": jwk}),
            &claims,
        ),
        // Wrong typ, and no typ.
        client
            .device
            .sign(&json!({"alg": "ES256", "typ": "JWT", "jwk": jwk}), &claims),
        client
            .device
            .sign(&json!({"alg": "ES256", "jwk": jwk}), &claims),
        // ES256 header carrying an RSA key, and RS256 carrying a P-256 key.
        client.device.sign(
            &json!({"alg": "ES256", "typ": "dbsc+jwt", "jwk": rsa.jwk()}),
            &claims,
        ),
        rsa.sign(
            &json!({"alg": "RS256", "typ": "dbsc+jwt", "jwk": jwk}),
            &claims,
        ),
        // Signed by one key, presenting another.
        rsa.sign(
            &json!({"alg": "ES256", "typ": "dbsc+jwt", "jwk": jwk}),
            &claims,
        ),
        SoftwareDevice::es256().sign(
            &json!({"alg": "ES256", "typ": "dbsc+jwt", "jwk": jwk}),
            &claims,
        ),
        // No key at all.
        client
            .device
            .sign(&json!({"alg": "ES256", "typ": "dbsc+jwt"}), &claims),
        // ES384 (not offered).
        client.device.sign(
            &json!({"alg": "ES384", "typ": "dbsc+jwt", "jwk": jwk}),
            &claims,
        ),
    ];
    for proof in crafted {
        let answer = client
            .post(Endpoint::Register, Some(proof.clone()), None)
            .await;
        assert!(
            (400..500).contains(&answer.status) && answer.set_cookies.is_empty(),
            "{proof}: {answer:?}"
        );
    }
    // The honest proof still works after all that.
    let proof = client.device.registration_proof(&challenge);
    assert_eq!(
        client
            .post(Endpoint::Register, Some(proof), None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn d2_oversized_and_malformed_input_is_refused_without_a_5xx() {
    let (manager, _clock) = setup();
    let mut client = bound_client(&manager, "ada").await;
    let id = client.dbsc_id.clone();
    let mut inputs: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"...".to_vec(),
        b"a.b.c.d".to_vec(),
        vec![b'A'; 100_000],
        vec![0xff, 0xfe, b'.', b'.'],
        format!("{}.{}.", "e".repeat(5000), "f").into_bytes(),
        b"eyJ9.eyJ9.AA".to_vec(),
    ];
    // Valid base64 JSON of the wrong shapes.
    for header in [
        json!([]),
        json!({"alg": 5, "typ": "dbsc+jwt"}),
        json!({"alg": "ES256", "typ": "dbsc+jwt", "jwk": {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}}),
        json!({"alg": "RS256", "typ": "dbsc+jwt", "jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}}),
    ] {
        inputs.push(
            client
                .device
                .sign(&header, &json!({"jti": "x"}))
                .into_bytes(),
        );
    }
    for payload in [
        json!({}),
        json!({"jti": ""}),
        json!({"jti": "x".repeat(500)}),
        json!("jti"),
    ] {
        inputs.push(
            client
                .device
                .sign(&json!({"alg": "ES256", "typ": "dbsc+jwt"}), &payload)
                .into_bytes(),
        );
    }
    for proof in &inputs {
        for endpoint in [Endpoint::Register, Endpoint::Refresh] {
            let request = latch::dbsc::BindingRequest {
                session_id: id.clone().map(String::into_bytes),
                proof: Some(proof.clone()),
                origin: None,
            };
            let mut raw = latch::RawRequest::new();
            raw.cookie_header(client.cookie_header().unwrap().parse().unwrap());
            let answer = manager.answer_device_binding(raw, endpoint, &request).await;
            assert!(
                (400..500).contains(&answer.status) && answer.set_cookies.is_empty(),
                "{endpoint:?} {:?}: {answer:?}",
                String::from_utf8_lossy(&proof[..proof.len().min(40)])
            );
        }
    }
    // Malformed session ids.
    for bad in [&b""[..], b"\"\"", b"a b", &[b'a'; 200], b"\xff"] {
        let request = latch::dbsc::BindingRequest {
            session_id: Some(bad.to_vec()),
            ..Default::default()
        };
        let mut raw = latch::RawRequest::new();
        raw.cookie_header(client.cookie_header().unwrap().parse().unwrap());
        let answer = manager
            .answer_device_binding(raw, Endpoint::Refresh, &request)
            .await;
        assert_eq!(answer.status, 400);
    }
    // Without any session cookie.
    let answer = manager
        .answer_device_binding(
            latch::RawRequest::new(),
            Endpoint::Refresh,
            &Default::default(),
        )
        .await;
    assert_eq!(answer.status, 404);
    assert_eq!(client.user().await.as_deref(), Some("ada"), "nothing broke");
}

#[tokio::test]
async fn d3_logout_regenerate_revoke_and_expiry_end_the_binding() {
    let (manager, clock) = setup();

    // Logout: the refresh finds nothing; the bound cookie is removed too.
    let mut client = bound_client(&manager, "ada").await;
    client
        .request(|s| async move { s.destroy().await.unwrap() })
        .await;
    assert!(client.session.is_none() && client.bound.is_none());
    let mut replay = thief_of(&client);
    replay.dbsc_id.clone_from(&client.dbsc_id);
    assert_eq!(replay.refresh().await.status, 404);

    // Regenerate: the new ID is not bound to the old key; sign-in starts a new registration.
    let mut client = bound_client(&manager, "ada").await;
    let old_id = client.dbsc_id.clone();
    client
        .request(|s| async move { s.regenerate().await.unwrap() })
        .await;
    assert_eq!(
        client.post(Endpoint::Refresh, None, old_id).await.status,
        404
    );
    let header = client.sign_in("ada").await;
    assert!(
        header.is_some(),
        "a new sign-in asks for a new registration"
    );

    // Revocation and sign-out-everywhere.
    let mut phone = bound_client(&manager, "bob").await;
    let mut laptop = bound_client(&manager, "bob").await;
    laptop
        .request(|s| async move {
            assert_eq!(s.sign_out_everywhere_else().await.unwrap(), 1);
        })
        .await;
    assert_eq!(phone.refresh().await.status, 404);
    manager.revoke_user("bob").await.unwrap();
    assert_eq!(laptop.refresh().await.status, 404);
    assert_eq!(laptop.user().await, None);

    // Expiry: the idle timeout ends the session and its binding.
    let mut client = bound_client(&manager, "carol").await;
    clock.advance((31 * 60) as i64);
    assert_eq!(client.refresh().await.status, 404);
}

#[tokio::test]
async fn d3_a_registration_racing_a_save_loses_neither() {
    // Two app instances on one store. An ordinary request on B loads the
    // session, the registration on A is saved meanwhile, then B saves: its
    // compare-and-swap fails and its change is replayed on the bound record.
    let clock = ManualClock::new(T0);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let a = manager_on(Arc::clone(&store), &clock);
    let b = manager_on(Arc::clone(&store), &clock);
    let mut client = DeviceClient::new(a.clone(), SoftwareDevice::es256());
    let header = client.sign_in("ada").await.unwrap();
    let proof = client
        .device
        .registration_proof(&challenge_of(&header).unwrap());
    let cookie = client.cookie_header().unwrap();
    let on_b = b.start([cookie.as_str()], Default::default());
    assert_eq!(
        on_b.get::<i32>("cart").await.unwrap(),
        None,
        "loaded before"
    );
    let answer = client.post(Endpoint::Register, Some(proof), None).await;
    assert_eq!(answer.status, 200);
    on_b.insert("cart", 7).await.unwrap();
    let finished = b.finish(&on_b).await.unwrap();
    assert_eq!(finished.set_cookie, None, "saved into the same session");

    let cart = Arc::new(std::sync::Mutex::new(None));
    let seen = Arc::clone(&cart);
    client
        .request(|s| async move {
            assert!(s.is_device_bound().await.unwrap(), "binding kept");
            *seen.lock().unwrap() = s.get::<i32>("cart").await.unwrap();
        })
        .await;
    assert_eq!(*cart.lock().unwrap(), Some(7), "save kept");

    // And the other way round: a refresh racing a save on the other instance.
    let cookie = client.cookie_header().unwrap();
    let on_b = b.start([cookie.as_str()], Default::default());
    assert_eq!(on_b.get::<i32>("cart").await.unwrap(), Some(7));
    clock.advance(BOUND);
    assert_eq!(client.refresh().await.status, 200);
    on_b.insert("late", true).await.unwrap();
    b.finish(&on_b).await.unwrap();
    let late = Arc::new(std::sync::Mutex::new(None));
    let seen = Arc::clone(&late);
    client
        .request(|s| async move {
            assert!(s.is_device_bound().await.unwrap(), "refresh kept");
            *seen.lock().unwrap() = s.get::<bool>("late").await.unwrap();
        })
        .await;
    assert_eq!(*late.lock().unwrap(), Some(true), "save kept");
}

#[tokio::test]
async fn d4_a_browser_without_dbsc_keeps_working() {
    let (manager, clock) = setup();
    let mut plain = DeviceClient::new(manager.clone(), SoftwareDevice::es256());
    // It ignores the registration header and never posts a proof.
    assert!(plain.sign_in("ada").await.is_some());
    for _ in 0..10 {
        clock.advance(BOUND + 60);
        assert_eq!(plain.user().await.as_deref(), Some("ada"));
    }
    let status = Arc::new(std::sync::Mutex::new(None));
    let seen = Arc::clone(&status);
    plain
        .request(
            |s| async move { *seen.lock().unwrap() = Some(s.is_device_bound().await.unwrap()) },
        )
        .await;
    assert_eq!(*status.lock().unwrap(), Some(false));
    // An anonymous session asks for no registration at all.
    let mut anon = DeviceClient::new(manager.clone(), SoftwareDevice::es256());
    let header = anon
        .request(|s| async move { s.insert("theme", "dark").await.unwrap() })
        .await;
    assert_eq!(header, None);
}

#[tokio::test]
async fn the_devices_list_says_which_sessions_are_bound() {
    let (manager, clock) = setup();
    let mut bound = bound_client(&manager, "ada").await;
    let mut plain = DeviceClient::new(manager.clone(), SoftwareDevice::es256());
    plain.sign_in("ada").await;
    clock.advance(BOUND);
    assert_eq!(bound.refresh().await.status, 200);
    let listed = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&listed);
    bound
        .request(|s| async move { *seen.lock().unwrap() = s.devices().await.unwrap() })
        .await;
    let mut proved: Vec<_> = listed
        .lock()
        .unwrap()
        .iter()
        .map(|d| d.device_proved_at)
        .collect();
    proved.sort();
    assert_eq!(proved, vec![None, Some(T0 + BOUND)]);
}

#[test]
fn cookie_only_sessions_and_bad_settings_are_refused_at_build() {
    let err = SessionManager::builder()
        .signed_cookies(Keyring::new(SecretKey::generate()))
        .device_bound(DeviceBinding::default())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("server-side sessions"), "{err}");
    for bad in [
        DeviceBinding::default().registration_path("relative"),
        DeviceBinding::default().refresh_path("/a\"b"),
        DeviceBinding::default().refresh_path("/.latch/dbsc/register"),
        DeviceBinding::default().bound_cookie_lifetime(Duration::ZERO),
        DeviceBinding::default().challenge_lifetime(Duration::from_secs(7200)),
        DeviceBinding::default().authorization("no spaces"),
    ] {
        let err = SessionManager::builder()
            .store(MemoryStore::new())
            .device_bound(bad)
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("DeviceBinding"), "{err}");
    }
}

#[tokio::test]
async fn an_authorization_code_is_required_when_configured() {
    let manager = SessionManager::builder()
        .store(MemoryStore::new())
        .device_bound(DeviceBinding::default().authorization("code-123"))
        .build()
        .unwrap();
    let mut client = DeviceClient::new(manager.clone(), SoftwareDevice::es256());
    let header = client.sign_in("ada").await.unwrap();
    assert!(header.ends_with(";authorization=\"code-123\""), "{header}");
    let challenge = challenge_of(&header).unwrap();
    let without = client.device.registration_proof(&challenge);
    assert_eq!(
        client
            .post(Endpoint::Register, Some(without), None)
            .await
            .status,
        401
    );
    let jwk = client.device.jwk();
    let with = client.device.sign(
        &json!({"alg": "ES256", "typ": "dbsc+jwt", "jwk": jwk}),
        &json!({"jti": challenge, "authorization": "code-123"}),
    );
    let answer = client.post(Endpoint::Register, Some(with), None).await;
    assert_eq!(answer.status, 200);
    assert!(header_present(&answer));
}

fn header_present(answer: &latch::dbsc::BindingAnswer) -> bool {
    header(answer, latch::dbsc::CHALLENGE_HEADER).is_some()
}

/// Attack round 5 (F1): whoever holds only the session cookie may ask for
/// challenges as often as they like: nothing is written, the challenge the
/// device is signing stays good, and the session is not kept alive by it.
#[tokio::test]
async fn d2_asking_for_challenges_writes_nothing_and_starves_no_one() {
    let clock = ManualClock::new(T0);
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let manager = manager_on(Arc::clone(&store), &clock);
    let mut device = bound_client(&manager, "ada").await;
    clock.advance(BOUND);
    let id = device.dbsc_id.clone();
    assert_eq!(
        device
            .post(Endpoint::Refresh, None, id.clone())
            .await
            .status,
        403
    );
    let signing = device.challenge.clone().unwrap();
    let key = latch::SessionId::parse(device.session.as_deref().unwrap())
        .unwrap()
        .store_key();
    let before = store.load(&key).await.unwrap().unwrap();
    let mut thief = thief_of(&device);
    thief.bound = None;
    for _ in 0..200 {
        assert_eq!(
            thief.post(Endpoint::Refresh, None, id.clone()).await.status,
            403
        );
        let wrong = thief
            .device
            .refresh_proof(thief.challenge.as_deref().unwrap());
        assert_eq!(
            thief
                .post(Endpoint::Refresh, Some(wrong), id.clone())
                .await
                .status,
            401
        );
    }
    assert_eq!(
        store.load(&key).await.unwrap().unwrap(),
        before,
        "nothing written"
    );
    let proof = device.device.refresh_proof(&signing);
    assert_eq!(
        device.post(Endpoint::Refresh, Some(proof), id).await.status,
        200
    );

    // Challenges alone do not keep an idle session alive.
    let mut idle = bound_client(&manager, "bob").await;
    let mut asker = thief_of(&idle);
    for _ in 0..40 {
        clock.advance(60);
        asker
            .post(Endpoint::Refresh, None, idle.dbsc_id.clone())
            .await;
    }
    assert_eq!(
        idle.refresh().await.status,
        404,
        "idle timeout (30 min) still ends it"
    );
}

/// A gate that lets every store call through after a yield, so that
/// concurrent requests interleave at each store call as they do over a network.
#[derive(Debug)]
struct Yield;

#[async_trait::async_trait]
impl latch_conformance::faults::Gate for Yield {
    async fn before(&self, _: latch_conformance::faults::Call) -> latch::Result<()> {
        tokio::task::yield_now().await;
        Ok(())
    }
}

/// Attack rounds 5 and 6 (F2): one proof sent many times at once buys one
/// cookie; every other copy gets 403 and a new challenge (never a 401, which
/// would end an honest browser's DBSC session), also when it loses the race
/// at the compare-and-swap rather than at the first look.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d2_concurrent_copies_of_one_proof_buy_one_cookie() {
    for round in 0..10 {
        let clock = ManualClock::new(T0);
        let store: Arc<dyn SessionStore> = Arc::new(latch_conformance::faults::Gated::new(
            Arc::new(MemoryStore::new()),
            Yield,
        ));
        let manager = manager_on(store, &clock);
        let mut device = bound_client(&manager, "ada").await;
        clock.advance(BOUND);
        let id = device.dbsc_id.clone();
        device.post(Endpoint::Refresh, None, id.clone()).await;
        let proof = device
            .device
            .refresh_proof(device.challenge.as_deref().unwrap());
        let mut copies = Vec::new();
        for _ in 0..16 {
            let mut copy = thief_of(&device);
            copy.bound = None;
            let (proof, id) = (proof.clone(), id.clone());
            copies.push(tokio::spawn(async move {
                copy.post(Endpoint::Refresh, Some(proof), id).await
            }));
        }
        let mut statuses = Vec::new();
        for copy in copies {
            let answer = copy.await.unwrap();
            if answer.status == 403 {
                assert!(header(&answer, latch::dbsc::CHALLENGE_HEADER).is_some());
            }
            statuses.push(answer.status);
        }
        statuses.sort_unstable();
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "round {round}: {statuses:?}"
        );
        assert!(
            statuses.iter().all(|s| [200, 403].contains(s)),
            "round {round}: {statuses:?}"
        );
    }
}

/// Attack round 5 (F3): JWS features this verifier does not implement, and
/// shapes that only look like a proof, are refused.
#[tokio::test]
async fn d2_unsupported_jws_features_and_odd_shapes_are_refused() {
    let (manager, _clock) = setup();
    let mut client = DeviceClient::new(manager.clone(), SoftwareDevice::es256());
    let header = client.sign_in("ada").await.unwrap();
    let challenge = challenge_of(&header).unwrap();
    let jwk = client.device.jwk();
    let mut private = jwk.clone();
    private["d"] = json!("AAAA");
    let base = json!({"alg": "ES256", "typ": "dbsc+jwt", "jwk": jwk});
    let with = |extra: (&str, Value)| {
        let mut h = base.clone();
        h[extra.0] = extra.1;
        h
    };
    let crafted = [
        client
            .device
            .sign(&with(("crit", json!(["exp"]))), &json!({"jti": challenge})),
        client
            .device
            .sign(&with(("b64", json!(false))), &json!({"jti": challenge})),
        client.device.sign(
            &json!({"alg": "ES256", "typ": "dbsc+jwt", "jwk": private}),
            &json!({"jti": challenge}),
        ),
        client.device.sign(&base, &json!([challenge])),
        client.device.sign(
            &json!(["ES256", "dbsc+jwt", jwk]),
            &json!({"jti": challenge}),
        ),
    ];
    for proof in crafted {
        let answer = client.post(Endpoint::Register, Some(proof), None).await;
        assert_eq!(answer.status, 400, "{answer:?}");
    }
    let proof = client.device.registration_proof(&challenge);
    assert_eq!(
        client
            .post(Endpoint::Register, Some(proof), None)
            .await
            .status,
        200
    );
}
