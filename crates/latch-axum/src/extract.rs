//! The `Session` extractor.

use std::ops::Deref;

use axum::extract::FromRequestParts;
use http::request::Parts;

use crate::rejection::{MissingSessionLayer, NotSignedIn, SignInRequired};

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

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = MissingSessionLayer;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        crate::service::request_session(&parts.headers, &parts.extensions)
            .map(Session)
            .ok_or(MissingSessionLayer)
    }
}

/// The signed-in user's id, for handlers only signed-in users may reach:
/// extracting it loads the session, and a request with nobody signed in is
/// refused with [`NotSignedIn`] (401). Take `Result<SignedIn, SignInRequired>`
/// to answer otherwise (see [`SignInRequired`]).
///
/// # Example
/// ```
/// use axum::{Router, routing::get};
/// use latch::{MemoryStore, SessionManager};
/// use latch_axum::{SessionLayer, SignedIn};
///
/// async fn account(SignedIn(user): SignedIn) -> String {
///     format!("your account, {user}")
/// }
///
/// let manager = SessionManager::builder().store(MemoryStore::new()).build()?;
/// let app: Router = Router::new()
///     .route("/account", get(account))
///     .layer(SessionLayer::new(manager));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn(pub String);

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = SignInRequired;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(SignInRequired::MissingSessionLayer)?;
        match session.user_id().await {
            Ok(Some(user)) => Ok(SignedIn(user)),
            Ok(None) => Err(SignInRequired::NotSignedIn(NotSignedIn)),
            Err(err) => Err(SignInRequired::Session(err.into())),
        }
    }
}
