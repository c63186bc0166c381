//! `latch_axum::testing::TestClient`: cookies kept across calls, expired
//! ones dropped, and same-site form posts that pass a `CsrfLayer`.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use http::{Request, StatusCode};
use latch::{MemoryStore, SessionManager};
use latch_axum::csrf::CsrfLayer;
use latch_axum::testing::TestClient;
use latch_axum::{Session, SessionLayer, SignedIn};

fn app() -> (Router, String) {
    let manager = SessionManager::builder()
        .store(MemoryStore::new())
        .build()
        .unwrap();
    let name = manager.cookie_config().name().to_owned();
    let app = Router::new()
        .route(
            "/form",
            get(|session: Session| async move { session.csrf_token().await.unwrap() }),
        )
        .route(
            "/login",
            post(|session: Session| async move {
                session.log_in("alice").await.unwrap();
                "in"
            }),
        )
        .route(
            "/logout",
            post(|session: Session| async move {
                session.destroy().await.unwrap();
                "out"
            }),
        )
        .route("/me", get(|SignedIn(user): SignedIn| async move { user }))
        .layer(CsrfLayer::new())
        .layer(SessionLayer::new(manager));
    (app, name)
}

#[tokio::test]
async fn a_visit_signs_in_and_out_with_csrf_tokens() {
    let (app, name) = app();
    let mut browser = TestClient::new(app);

    let token = browser.get("/form").await.body;
    let res = browser.post_form("/login", &[("csrf_token", &token)]).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let signed_in = browser.cookie(&name).unwrap().to_owned();
    assert_eq!(browser.get("/me").await.body, "alice");

    // Sign-in started a new CSRF secret: the old token is refused.
    let stale = browser
        .post_form("/logout", &[("csrf_token", &token)])
        .await;
    assert_eq!(stale.status, StatusCode::FORBIDDEN);

    let token = browser.get("/form").await.body;
    let res = browser
        .post_form("/logout", &[("csrf_token", &token)])
        .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(browser.cookie(&name), None, "the expired cookie is dropped");
    assert_eq!(browser.get("/me").await.status, StatusCode::UNAUTHORIZED);

    // A thief replaying the old cookie gets nowhere either.
    let mut thief = TestClient::new(browser_app(&browser));
    let res = thief
        .send(
            Request::get("/me")
                .header("cookie", format!("{name}={signed_in}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
}

/// The same app (and store) as `browser` visits.
fn browser_app(browser: &TestClient) -> Router {
    browser.app().clone()
}

#[tokio::test]
async fn a_cross_site_post_can_be_simulated_and_is_refused() {
    let (app, _) = app();
    let mut browser = TestClient::new(app);
    let token = browser.get("/form").await.body;
    let res = browser
        .send(
            Request::post("/login")
                .header("origin", "https://evil.example")
                .header("sec-fetch-site", "cross-site")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(format!("csrf_token={token}")))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert!(res.set_cookies().is_empty());
}

#[tokio::test]
async fn a_peer_address_reaches_client_ip_and_the_devices_list() {
    use latch_axum::ClientIp;
    let manager = SessionManager::builder()
        .store(MemoryStore::new())
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/login",
            post(|session: Session| async move {
                session.log_in("ada").await.unwrap();
                "in"
            }),
        )
        .route(
            "/devices",
            get(|ClientIp(ip): ClientIp, session: Session| async move {
                let devices = session.devices().await.unwrap();
                format!("{ip:?} {:?}", devices[0].ip)
            }),
        )
        .layer(SessionLayer::new(manager));
    let mut browser = TestClient::new(app).peer("192.0.2.44:5000".parse().unwrap());
    browser.post_form("/login", &[]).await;
    assert_eq!(
        browser.get("/devices").await.body,
        r#"Some(192.0.2.44) Some("192.0.2.44")"#
    );
}
