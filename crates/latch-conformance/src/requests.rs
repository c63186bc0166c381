//! One request's session cycle without HTTP: start, let the test use the
//! session, finish; and reading cookie values back out of `Set-Cookie`.

use latch::{RequestMeta, SessionManager};

/// The value of a `Set-Cookie` header value (empty for a removal cookie).
pub fn cookie_value(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().unwrap_or_default();
    pair.split_once('=')
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default()
}

/// Run one request through `manager` carrying the session cookie value
/// `cookie`, letting `f` use the session; returns the `Set-Cookie`, if any.
///
/// # Panics
/// When `finish` fails (tests want that loud).
pub async fn request<F, Fut>(manager: &SessionManager, cookie: Option<&str>, f: F) -> Option<String>
where
    F: FnOnce(latch::Session) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    request_as(manager, cookie, RequestMeta::default(), f).await
}

/// [`request`] from a client that says `meta` about itself.
///
/// # Panics
/// When `finish` fails.
pub async fn request_as<F, Fut>(
    manager: &SessionManager,
    cookie: Option<&str>,
    meta: RequestMeta,
    f: F,
) -> Option<String>
where
    F: FnOnce(latch::Session) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let header = cookie.map(|c| format!("{}={c}", manager.cookie_config().name()));
    let session = manager.start(header.as_deref(), meta);
    f(session.clone()).await;
    // OK because a failing finish is a failing test.
    manager.finish(&session).await.expect("finish").set_cookie
}
