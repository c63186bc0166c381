//! Turning latch errors into HTTP responses that tell the client nothing internal.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use latch::ErrorKind;

/// A session failure as an HTTP answer.
///
/// Store outages and timeouts become `503 Service Unavailable` with
/// `Retry-After: 1`; everything else `500`. The body is plain text without
/// internal detail; the full error chain goes to the log.
///
/// # Example
/// ```
/// use axum::response::IntoResponse;
/// use latch_axum::SessionError;
///
/// let response = SessionError::from(latch::Error::store_msg("connection refused")).into_response();
/// assert_eq!(response.status(), 503);
/// ```
#[derive(Debug)]
pub struct SessionError(latch::Error);

impl SessionError {
    /// The latch error inside.
    pub fn inner(&self) -> &latch::Error {
        &self.0
    }
}

impl From<latch::Error> for SessionError {
    fn from(err: latch::Error) -> Self {
        Self(err)
    }
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SessionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// The error and its causes on one line, for the log.
fn chain(err: &latch::Error) -> String {
    let mut out = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

impl IntoResponse for SessionError {
    fn into_response(self) -> Response {
        let (status, body) = if self.0.is_unavailable() {
            tracing::warn!(error = %chain(&self.0), "session store unavailable; answering 503");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "Service temporarily unavailable; please try again shortly.\n".to_owned(),
            )
        } else if let ErrorKind::CookieTooLarge { size, limit } = self.0.kind() {
            tracing::error!(error = %chain(&self.0), "session too large for a cookie");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "Internal Server Error: session cookie of {size} bytes exceeds the {limit}-byte limit\n"
                ),
            )
        } else if self.0.kind() == &ErrorKind::UpdateRefused {
            tracing::info!(error = %chain(&self.0), "a session change no longer applies");
            (
                StatusCode::CONFLICT,
                "Conflict: this change does not apply to the session as it is now (a limit was \
                 reached, perhaps by another request at the same time). Nothing was saved.\n"
                    .to_owned(),
            )
        } else if let ErrorKind::RecordTooLarge { size, limit } = self.0.kind() {
            tracing::error!(error = %chain(&self.0), "session record over its size limit");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "Internal Server Error: session of {size} bytes exceeds the {limit}-byte limit\n"
                ),
            )
        } else {
            tracing::error!(error = %chain(&self.0), "session error");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error\n".to_owned(),
            )
        };
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(RETRY_AFTER, http::HeaderValue::from_static("1"));
        }
        response
    }
}
