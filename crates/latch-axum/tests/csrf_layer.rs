//! X1: `CsrfLayer` and `SignedIn`, in-process with `oneshot`.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use axum::Form;
use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use latch::{MemoryStore, SessionManager};
use latch_axum::csrf::CsrfLayer;
use latch_axum::{Session, SessionLayer, SignedIn};
use serde::Deserialize;
use tower::ServiceExt;

#[derive(Deserialize)]
struct Note {
    note: String,
}

fn app(layer: CsrfLayer) -> Router {
    let manager = SessionManager::builder()
        .store(MemoryStore::new())
        .build()
        .unwrap();
    Router::new()
        .route(
            "/form",
            get(|session: Session| async move { session.csrf_token().await.unwrap() })
                .post(|Form(note): Form<Note>| async move { format!("saved {}", note.note) }),
        )
        .route(
            "/login",
            axum::routing::post(|session: Session| async move {
                session.log_in("alice").await.unwrap();
                "in"
            }),
        )
        .route(
            "/account",
            get(|SignedIn(user): SignedIn| async move { user }),
        )
        .route("/json", axum::routing::put(|| async { "put" }))
        .layer(layer)
        .layer(SessionLayer::new(manager))
}

async fn send(
    app: &Router,
    req: http::request::Builder,
    body: &str,
) -> (StatusCode, HeaderMap, String) {
    let res = app
        .clone()
        .oneshot(req.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let (parts, body) = res.into_parts();
    let body = String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap();
    (parts.status, parts.headers, body)
}

/// A session cookie and a CSRF token for it.
async fn token(app: &Router) -> (String, String) {
    let (_, headers, token) = send(app, Request::get("/form"), "").await;
    let cookie = headers[header::SET_COOKIE].to_str().unwrap();
    (cookie.split(';').next().unwrap().to_owned(), token)
}

fn form_post(cookie: &str) -> http::request::Builder {
    Request::post("/form")
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
}

#[tokio::test]
async fn x1_a_form_with_the_sessions_token_passes_with_its_body_intact() {
    let app = app(CsrfLayer::new());
    let (cookie, token) = token(&app).await;
    let body = format!("note=hello+there&csrf_token={token}");
    let (status, _, text) = send(&app, form_post(&cookie), &body).await;
    assert_eq!(
        (status, text.as_str()),
        (StatusCode::OK, "saved hello there")
    );
    // In the header instead of the body.
    let req = form_post(&cookie).header("x-csrf-token", &token);
    let (status, _, _) = send(&app, req, "note=x").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn x1_a_missing_or_foreign_token_is_refused_with_the_cause() {
    let app = app(CsrfLayer::new());
    let (cookie, token) = token(&app).await;
    let (other_cookie, _) = token_for_another_session(&app).await;
    for (cookie, body) in [
        (cookie.as_str(), "note=x".to_owned()),
        (cookie.as_str(), "note=x&csrf_token=forged".to_owned()),
        (other_cookie.as_str(), format!("note=x&csrf_token={token}")),
    ] {
        let (status, headers, text) = send(&app, form_post(cookie), &body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert!(text.contains("reload the page"), "{text}");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    }
}

async fn token_for_another_session(app: &Router) -> (String, String) {
    token(app).await
}

#[tokio::test]
async fn x1_signing_in_starts_a_new_token_and_the_refusal_says_so() {
    let app = app(CsrfLayer::new());
    let (cookie, token) = token(&app).await;
    let req = Request::post("/login")
        .header(header::COOKIE, &cookie)
        .header("x-csrf-token", &token)
        .header("sec-fetch-site", "same-origin");
    let (status, headers, _) = send(&app, req, "").await;
    assert_eq!(status, StatusCode::OK);
    let signed_in = headers[header::SET_COOKIE].to_str().unwrap();
    let signed_in = signed_in.split(';').next().unwrap();
    // The form fetched before signing in no longer works.
    let (status, _, text) = send(
        &app,
        form_post(signed_in),
        &format!("note=x&csrf_token={token}"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        text.contains("Signing in or out starts a new one"),
        "{text}"
    );
}

#[tokio::test]
async fn x1_cross_site_requests_and_other_schemes_are_refused() {
    let app = app(CsrfLayer::new().scheme("https"));
    let (cookie, token) = token(&app).await;
    let body = format!("note=x&csrf_token={token}");
    let cross = Request::post("/form")
        .header(header::COOKIE, &cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "cross-site");
    let req = Request::post("/form")
        .header(header::COOKIE, &cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::HOST, "app.example")
        .header(header::ORIGIN, "http://app.example");
    for req in [cross, req] {
        let (status, _, text) = send(&app, req, &body).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(text.contains("cross-site"), "{text}");
    }
}

#[tokio::test]
async fn oversized_forms_are_refused_before_the_handler() {
    let app = app(CsrfLayer::new().max_form_bytes(1024));
    let (cookie, token) = token(&app).await;
    let body = format!("note={}&csrf_token={token}", "x".repeat(2000));
    let (status, _, _) = send(&app, form_post(&cookie), &body).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn origin_only_checks_no_token_and_safe_methods_pass() {
    let app = app(CsrfLayer::new().origin_only());
    let req = Request::put("/json").header("sec-fetch-site", "same-origin");
    assert_eq!(send(&app, req, "{}").await.0, StatusCode::OK);
    let req = Request::put("/json").header("sec-fetch-site", "cross-site");
    assert_eq!(send(&app, req, "{}").await.0, StatusCode::FORBIDDEN);
    let strict = self::app(CsrfLayer::new());
    assert_eq!(
        send(&strict, Request::get("/form"), "").await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn without_a_session_layer_the_layer_fails_loudly() {
    let app: Router = Router::new()
        .route("/x", axum::routing::post(|| async { "x" }))
        .layer(CsrfLayer::new());
    let (status, _, _) = send(&app, Request::post("/x"), "").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn signed_in_answers_401_without_a_user() {
    let app = app(CsrfLayer::new());
    let (status, _, text) = send(&app, Request::get("/account"), "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(text, "Unauthorized: sign in first.\n");
    let (cookie, token) = token(&app).await;
    let req = Request::post("/login")
        .header(header::COOKIE, &cookie)
        .header("x-csrf-token", &token);
    let (_, headers, _) = send(&app, req, "").await;
    let signed_in = headers[header::SET_COOKIE].to_str().unwrap();
    let req = Request::get("/account").header(header::COOKIE, signed_in.split(';').next().unwrap());
    assert_eq!(send(&app, req, "").await.2, "alice");
}
