//! Request handlers, by area.

pub mod api;
pub mod auth;
pub mod pages;

use http::{HeaderMap, Method};
use latch_axum::Session;

use crate::error::AppError;
use crate::state::AppState;

/// Refuse a state-changing request unless it comes from this site (its
/// origin, scheme included) and carries this session's CSRF token (X1: two
/// layers).
pub async fn check_csrf(
    app: &AppState,
    session: &Session,
    method: &Method,
    headers: &HeaderMap,
    token: &str,
) -> Result<(), AppError> {
    latch_axum::csrf::check_origin_with_scheme(method, None, headers, app.scheme)?;
    if session.verify_csrf(token).await? {
        Ok(())
    } else {
        Err(AppError::Forbidden)
    }
}
