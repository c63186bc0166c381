//! The router, its shared state, and the one error type handlers return.

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use http::StatusCode;
use http::header::{self, HeaderValue};
use latch::SessionManager;
use latch_axum::{SessionError, SessionLayer};

use crate::limits::{self, SignInLimits};
use crate::routes::{api, auth, pages};
use crate::users::Users;

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The demo's users.
    pub users: Users,
    /// The session manager (for facts such as the timeouts in force).
    pub manager: SessionManager,
    /// Sign-in throttling.
    pub sign_in: SignInLimits,
    /// The scheme browsers reach the demo by (`http`, or `https` behind a TLS
    /// proxy or when it serves TLS itself): cross-site checks require it.
    pub scheme: &'static str,
}

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
    let sign_in = SignInLimits::new(store, limits::PER_ACCOUNT, limits::PER_CLIENT)
        .expect("valid default limits");
    router_with(AppState {
        users,
        manager,
        sign_in,
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

/// Everything a handler can fail with.
#[derive(Debug)]
pub enum AppError {
    /// The session store failed (503) or another session error (500).
    Session(SessionError),
    /// A form without a valid CSRF token, or a cross-site request.
    Forbidden,
    /// Every password hasher is busy: 503, try again shortly.
    Busy,
    /// Anything else: logged, answered 500 without detail.
    Internal(anyhow::Error),
}

impl From<latch::Error> for AppError {
    fn from(err: latch::Error) -> Self {
        AppError::Session(err.into())
    }
}

impl From<anyhow::Error> for AppError {
    fn from(err: anyhow::Error) -> Self {
        if err.downcast_ref::<crate::hashing::Busy>().is_some() {
            return AppError::Busy;
        }
        AppError::Internal(err)
    }
}

impl From<latch_axum::csrf::CrossSiteRequest> for AppError {
    fn from(_: latch_axum::csrf::CrossSiteRequest) -> Self {
        AppError::Forbidden
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::Session(e) => e.into_response(),
            AppError::Forbidden => (
                StatusCode::FORBIDDEN,
                "Forbidden: this form has expired or came from another site. Go back, reload the page and try again.\n",
            )
                .into_response(),
            AppError::Busy => {
                tracing::warn!("every password hasher is busy; answering 503");
                let mut res = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Service busy: too many sign-ins at once. Try again in a moment.\n",
                )
                    .into_response();
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                res
            }
            AppError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n").into_response()
            }
        }
    }
}
