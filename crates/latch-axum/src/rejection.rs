//! Why latch-axum refused a request: one type per reason, each with a status,
//! a plain-text body that tells the client what to do, `Display` and `Error`.
//!
//! A handler can take `Result<T, Rejection>` for any extractor here to answer
//! its own way (a redirect to the sign-in page, say); otherwise the rejection
//! answers as below.
//!
//! | rejection | status | when |
//! |---|---|---|
//! | [`MissingSessionLayer`] | 500 | a handler asks for a session on a route without [`SessionLayer`](crate::SessionLayer) |
//! | [`CrossSiteRequest`] | 403 | a state-changing request from another site (origin check) |
//! | [`CsrfTokenMismatch`] | 403 | a state-changing request without this session's CSRF token |
//! | [`NotSignedIn`] | 401 | [`SignedIn`](crate::SignedIn) on a request with nobody signed in |

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};

/// Define a rejection: a unit struct with its status and body (after axum's
/// own `__define_rejection!`).
macro_rules! define_rejection {
    (
        #[status = $status:ident]
        #[body = $body:expr]
        #[log = $log:expr]
        $(#[$meta:meta])*
        pub struct $name:ident;
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name;

        impl $name {
            /// The status this rejection answers with.
            pub fn status(&self) -> StatusCode {
                StatusCode::$status
            }

            /// The plain-text body this rejection answers with.
            pub fn body_text(&self) -> &'static str {
                $body
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.body_text().trim_end())
            }
        }

        impl std::error::Error for $name {}

        impl IntoResponse for $name {
            fn into_response(self) -> Response {
                tracing::info!(rejection = stringify!($name), $log);
                plain(self.status(), self.body_text())
            }
        }
    };
}

/// A plain-text answer that no cache keeps.
fn plain(status: StatusCode, body: &'static str) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

define_rejection! {
    #[status = INTERNAL_SERVER_ERROR]
    #[body = "Internal Server Error\n"]
    #[log = "a handler asked for a session but no SessionLayer wraps the route (or a middleware between them moved the handler to another task)"]
    /// A handler asked for a session on a route that no
    /// [`SessionLayer`](crate::SessionLayer) wraps: a programming error. The
    /// layer hands the session to the task that runs the request, so a
    /// middleware between the layer and the handler that `tokio::spawn`s the
    /// handler's future loses it too (put such a middleware outside the
    /// layer; tower's `Buffer`, timeouts and limits are fine anywhere).
    ///
    /// # Example
    /// ```
    /// use latch_axum::rejection::MissingSessionLayer;
    ///
    /// assert_eq!(MissingSessionLayer.status(), 500);
    /// ```
    pub struct MissingSessionLayer;
}

define_rejection! {
    #[status = FORBIDDEN]
    #[body = "Forbidden: cross-site request refused.\n"]
    #[log = "cross-site state-changing request refused"]
    /// A state-changing request from another site, refused by its
    /// `Sec-Fetch-Site` or `Origin` (see [`csrf`](crate::csrf)).
    ///
    /// # Example
    /// ```
    /// use latch_axum::rejection::CrossSiteRequest;
    ///
    /// assert_eq!(CrossSiteRequest.status(), 403);
    /// assert_eq!(CrossSiteRequest.to_string(), "Forbidden: cross-site request refused.");
    /// ```
    pub struct CrossSiteRequest;
}

define_rejection! {
    #[status = FORBIDDEN]
    #[body = "Forbidden: this form's security token is missing or out of date. Signing in or \
out starts a new one, so a form loaded before that no longer works: reload the page and \
try again.\n"]
    #[log = "state-changing request without this session's CSRF token refused"]
    /// A state-changing request without a CSRF token this session issued (see
    /// [`csrf::CsrfLayer`](crate::csrf::CsrfLayer)). The body names the usual
    /// cause: a form fetched before signing in or out, which starts a new
    /// token.
    ///
    /// # Example
    /// ```
    /// use latch_axum::rejection::CsrfTokenMismatch;
    ///
    /// assert_eq!(CsrfTokenMismatch.status(), 403);
    /// assert!(CsrfTokenMismatch.to_string().contains("reload the page"));
    /// ```
    pub struct CsrfTokenMismatch;
}

define_rejection! {
    #[status = UNAUTHORIZED]
    #[body = "Unauthorized: sign in first.\n"]
    #[log = "request for signed-in users only, without a signed-in user"]
    /// [`SignedIn`](crate::SignedIn) on a request with nobody signed in.
    ///
    /// # Example
    /// ```
    /// use latch_axum::rejection::NotSignedIn;
    ///
    /// assert_eq!(NotSignedIn.status(), 401);
    /// ```
    pub struct NotSignedIn;
}

/// Why [`SignedIn`](crate::SignedIn) refused a request: nobody is signed in
/// (401), the session could not be loaded (503 on a store outage), or no
/// [`SessionLayer`](crate::SessionLayer) wraps the route (500).
///
/// # Example
/// ```
/// use axum::response::{IntoResponse, Redirect, Response};
/// use latch_axum::SignedIn;
/// use latch_axum::rejection::SignInRequired;
///
/// // Send people who are not signed in to the sign-in page instead of a 401.
/// async fn account(user: Result<SignedIn, SignInRequired>) -> Response {
///     match user {
///         Ok(SignedIn(user)) => format!("hello, {user}").into_response(),
///         Err(SignInRequired::NotSignedIn(_)) => Redirect::to("/login").into_response(),
///         Err(other) => other.into_response(),
///     }
/// }
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum SignInRequired {
    /// Nobody is signed in.
    NotSignedIn(NotSignedIn),
    /// The session could not be loaded.
    Session(crate::SessionError),
    /// No session layer wraps the route.
    MissingSessionLayer(MissingSessionLayer),
}

impl std::fmt::Display for SignInRequired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignInRequired::NotSignedIn(r) => r.fmt(f),
            SignInRequired::Session(e) => e.fmt(f),
            SignInRequired::MissingSessionLayer(r) => r.fmt(f),
        }
    }
}

impl std::error::Error for SignInRequired {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SignInRequired::Session(e) => Some(e),
            _ => None,
        }
    }
}

impl IntoResponse for SignInRequired {
    fn into_response(self) -> Response {
        match self {
            SignInRequired::NotSignedIn(r) => r.into_response(),
            SignInRequired::Session(e) => e.into_response(),
            SignInRequired::MissingSessionLayer(r) => r.into_response(),
        }
    }
}
