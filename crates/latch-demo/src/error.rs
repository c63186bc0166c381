//! The one error type handlers return, and how each becomes a response.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{self, HeaderValue};
use latch_axum::SessionError;

/// Everything a handler can fail with.
#[derive(Debug)]
pub enum AppError {
    /// The session store failed (503) or another session error (500).
    Session(SessionError),
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

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::Session(e) => e.into_response(),
            AppError::Busy => {
                // Once a second at most: a flood makes one per request.
                static BUSY: latch_axum::OncePerSecond = latch_axum::OncePerSecond::new();
                if let Some(left_out) = BUSY.admit() {
                    tracing::warn!(
                        left_out,
                        "every password hasher is busy; answering 503 (left_out: as many more \
                         since the last line)"
                    );
                }
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
