//! Request handlers, by area.

pub mod api;
pub mod auth;
pub mod pages;

use http::{HeaderMap, Method};
use latch_axum::Session;

use crate::app::AppError;

/// Refuse a state-changing request unless it comes from this site and carries
/// this session's CSRF token (X1: two layers).
pub async fn check_csrf(
    session: &Session,
    method: &Method,
    headers: &HeaderMap,
    token: &str,
) -> Result<(), AppError> {
    latch_axum::csrf::check_origin(method, headers)?;
    if session.verify_csrf(token).await? {
        Ok(())
    } else {
        Err(AppError::Forbidden)
    }
}
