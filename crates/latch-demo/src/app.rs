//! The router, its shared state, and the one error type handlers return.

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post, put};
use http::header::{self, HeaderValue};
use latch::SessionManager;
use latch_axum::SessionLayer;

pub use crate::error::AppError;
pub use crate::state::AppState;

use crate::limits::{self, Limits};
use crate::routes::{api, auth, pages};
use crate::users::Users;

/// The demo's routes with sessions and security headers, counting sign-in
/// attempts in the session store (or, for cookie sessions, in memory: use
/// [`router_with`] to share them between instances).
///
/// # Panics
/// Never: the default limits are valid.
pub fn router(users: Users, manager: SessionManager) -> Router {
    let store = manager
        .store()
        .cloned()
        .unwrap_or_else(|| Arc::new(latch::MemoryStore::new()));
    // OK because the default limits are above zero.
    let limits = Limits::new(store, limits::NEW_SESSIONS_PER_CLIENT).expect("valid default limits");
    router_with(AppState {
        users,
        manager,
        limits,
        scheme: "http",
    })
}

/// The demo's routes for `state`.
pub fn router_with(state: AppState) -> Router {
    let manager = state.manager.clone();
    let state = Arc::new(state);
    let with_sessions = Router::new()
        .route("/", get(pages::home))
        .route("/profile", get(pages::profile))
        .route("/devices", get(pages::devices))
        .route("/devices/revoke", post(pages::revoke_device))
        .route("/devices/revoke-others", post(pages::revoke_others))
        .route("/signup", get(auth::signup_form).post(auth::signup))
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/api/me", get(api::me))
        .route("/api/scratch", get(api::scratch))
        .route("/api/scratch/{key}", put(api::put_scratch))
        .layer(SessionLayer::new(manager))
        .with_state(state);
    Router::new()
        // Outside the session layer: a health check never touches the session.
        .route("/healthz", get(|| async { "ok" }))
        .merge(with_sessions)
        .layer(middleware::from_fn(security_headers))
}

/// Headers every response gets: no framing, no sniffing, no external
/// resources, and HTML never cached (so "back" after sign-out shows nothing
/// private).
async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    let is_html = h
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if is_html && !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}
