//! Device-bound sessions over HTTP: the session layer answers the DBSC paths
//! itself (ahead of CSRF protection and routing), puts the registration
//! header on the sign-in response, and honours a bound session only with its
//! bound cookie. A software device key plays the browser.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use http::{Request, StatusCode};
use latch::dbsc::DeviceBinding;
use latch::{ManualClock, MemoryStore, SessionManager};
use latch_axum::csrf::CsrfLayer;
use latch_axum::testing::{TestClient, TestResponse};
use latch_axum::{Session, SessionLayer};
use latch_conformance::device::{SoftwareDevice, challenge_of};

const T0: i64 = 1_800_000_000;

fn app(clock: &ManualClock) -> Router {
    let manager = SessionManager::builder()
        .store(MemoryStore::new())
        .clock(clock.clone())
        .device_bound(DeviceBinding::default().bound_cookie_lifetime(Duration::from_secs(60)))
        .build()
        .unwrap();
    Router::new()
        .route(
            "/login",
            post(|session: Session| async move {
                session.log_in("ada").await.unwrap();
                "in"
            }),
        )
        .route(
            "/form",
            get(|session: Session| async move { session.csrf_token().await.unwrap() }),
        )
        .route(
            "/me",
            get(|session: Session| async move {
                let user = session.user_id().await.unwrap();
                let bound = session.is_device_bound().await.unwrap();
                format!("{user:?} bound={bound}")
            }),
        )
        .layer(CsrfLayer::new())
        .layer(SessionLayer::new(manager))
}

fn header(response: &TestResponse, name: &str) -> String {
    response
        .headers
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn dbsc_post(
    client: &mut TestClient,
    path: &str,
    proof: Option<&str>,
    id: Option<&str>,
) -> TestResponse {
    let mut request = Request::post(path);
    if let Some(proof) = proof {
        request = request.header("Secure-Session-Response", proof);
    }
    if let Some(id) = id {
        request = request.header("Sec-Secure-Session-Id", format!("\"{id}\""));
    }
    // As Chromium sends it: no Origin, no CSRF token, no body.
    client
        .send(
            request
                .header("sec-fetch-site", "same-origin")
                .body(Body::empty())
                .unwrap(),
        )
        .await
}

#[tokio::test]
async fn a_device_registers_and_refreshes_over_http() {
    let clock = ManualClock::new(T0);
    let mut browser = TestClient::new(app(&clock));
    let device = SoftwareDevice::es256();

    // Signing in (a same-site form post through the CSRF layer) asks for a registration.
    let token = browser.get("/form").await.body;
    let login = browser.post_form("/login", &[("csrf_token", &token)]).await;
    assert_eq!(login.status, StatusCode::OK);
    let registration = header(&login, "secure-session-registration");
    let challenge = challenge_of(&registration).expect(&registration);

    let proof = device.registration_proof(&challenge);
    let registered = dbsc_post(&mut browser, "/.latch/dbsc/register", Some(&proof), None).await;
    assert_eq!(registered.status, StatusCode::OK, "{}", registered.body);
    assert_eq!(header(&registered, "content-type"), "application/json");
    assert_eq!(header(&registered, "cache-control"), "no-store");
    let config: serde_json::Value = serde_json::from_str(&registered.body).unwrap();
    assert_eq!(config["scope"]["origin"], "https://localhost");
    let id = config["session_identifier"].as_str().unwrap().to_owned();
    assert!(browser.cookie("__Host-session-bound").is_some());
    assert_eq!(browser.get("/me").await.body, "Some(\"ada\") bound=true");

    // A copy of the cookies, replayed by someone else, works for now...
    let stolen = browser.cookie_header();
    let replay = |app: Router, cookies: String| async move {
        let mut thief = TestClient::new(app);
        thief
            .send(
                Request::get("/me")
                    .header("cookie", cookies)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .body
    };
    assert_eq!(
        replay(browser.app().clone(), stolen.clone()).await,
        "Some(\"ada\") bound=true"
    );

    // ... until the bound cookie expires; the device then refreshes.
    clock.advance(60);
    assert_eq!(browser.get("/me").await.body, "None bound=false");
    let denied = dbsc_post(&mut browser, "/.latch/dbsc/refresh", None, Some(&id)).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let challenge = challenge_of(&header(&denied, "secure-session-challenge")).unwrap();
    let proof = device.refresh_proof(&challenge);
    let refreshed = dbsc_post(
        &mut browser,
        "/.latch/dbsc/refresh",
        Some(&proof),
        Some(&id),
    )
    .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    assert_eq!(browser.get("/me").await.body, "Some(\"ada\") bound=true");
    assert_eq!(
        replay(browser.app().clone(), stolen).await,
        "None bound=false",
        "the copy is dead"
    );

    // A proof from another key: refused (401), never a 5xx.
    let other = SoftwareDevice::es256();
    let denied = dbsc_post(&mut browser, "/.latch/dbsc/refresh", None, Some(&id)).await;
    let challenge = challenge_of(&header(&denied, "secure-session-challenge")).unwrap();
    let forged = other.refresh_proof(&challenge);
    let refused = dbsc_post(
        &mut browser,
        "/.latch/dbsc/refresh",
        Some(&forged),
        Some(&id),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.headers.get("set-cookie").is_none());
}

#[tokio::test]
async fn only_posts_to_the_two_paths_are_taken_over() {
    let clock = ManualClock::new(T0);
    let mut browser = TestClient::new(app(&clock));
    assert_eq!(
        browser.get("/.latch/dbsc/register").await.status,
        StatusCode::NOT_FOUND,
        "a GET goes to the app's router"
    );
    let anonymous = dbsc_post(&mut browser, "/.latch/dbsc/refresh", None, Some("abc")).await;
    assert_eq!(anonymous.status, StatusCode::NOT_FOUND);
    let no_proof = dbsc_post(&mut browser, "/.latch/dbsc/register", None, None).await;
    assert_eq!(
        no_proof.status,
        StatusCode::NOT_FOUND,
        "no session, nothing pending"
    );
}

/// Attack round 5 (F4): a repeated `Secure-Session-Response` or
/// `Sec-Secure-Session-Id` is refused whichever copy is good.
#[tokio::test]
async fn repeated_dbsc_headers_are_refused() {
    let clock = ManualClock::new(T0);
    let mut browser = TestClient::new(app(&clock));
    let device = SoftwareDevice::es256();
    let token = browser.get("/form").await.body;
    let login = browser.post_form("/login", &[("csrf_token", &token)]).await;
    let challenge = challenge_of(&header(&login, "secure-session-registration")).unwrap();
    let good = device.registration_proof(&challenge);
    for pair in [[good.as_str(), "junk"], ["junk", good.as_str()]] {
        let request = Request::post("/.latch/dbsc/register")
            .header("Secure-Session-Response", pair[0])
            .header("Secure-Session-Response", pair[1])
            .header("sec-fetch-site", "same-origin")
            .body(Body::empty())
            .unwrap();
        assert_eq!(browser.send(request).await.status, StatusCode::BAD_REQUEST);
    }
    let registered = dbsc_post(&mut browser, "/.latch/dbsc/register", Some(&good), None).await;
    assert_eq!(registered.status, StatusCode::OK);
    let request = Request::post("/.latch/dbsc/refresh")
        .header("Sec-Secure-Session-Id", "a")
        .header("Sec-Secure-Session-Id", "b")
        .body(Body::empty())
        .unwrap();
    assert_eq!(browser.send(request).await.status, StatusCode::BAD_REQUEST);
}
