//! The `Session` extractor.

use std::ops::Deref;

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

/// The request's session, for handlers; dereferences to [`latch::Session`].
///
/// Extracting it is free: nothing is loaded until a method is called.
///
/// # Example
/// ```
/// use latch_axum::{Session, SessionError};
///
/// async fn logout(session: Session) -> Result<&'static str, SessionError> {
///     session.destroy().await?;
///     Ok("signed out")
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Session(latch::Session);

impl Deref for Session {
    type Target = latch::Session;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Session {
    /// The core session handle.
    pub fn into_inner(self) -> latch::Session {
        self.0
    }
}

/// The rejection when a handler asks for a [`Session`] on a route without a
/// [`SessionLayer`](crate::SessionLayer): a programming error, answered with 500.
#[derive(Debug)]
pub struct MissingSessionLayer;

impl IntoResponse for MissingSessionLayer {
    fn into_response(self) -> Response {
        tracing::error!("a handler asked for a Session but no SessionLayer wraps the route");
        (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n").into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = MissingSessionLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<latch::Session>()
            .cloned()
            .map(Session)
            .ok_or(MissingSessionLayer)
    }
}
