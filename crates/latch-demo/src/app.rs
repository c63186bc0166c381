//! The router, its shared state, and the one error type handlers return.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse as _, Response};
use axum::routing::{get, post, put};
use http::header::{self, HeaderValue};
use latch::SessionManager;
use latch_axum::SessionLayer;
use latch_axum::csrf::CsrfLayer;

pub use crate::error::AppError;
pub use crate::state::AppState;

use crate::known_browsers::KnownBrowsers;
use crate::limits::{self, Limits};
use crate::routes::{api, auth, pages};
use crate::users::Users;

/// The demo's routes with sessions and security headers, counting sign-in
/// attempts in the session store (or, for cookie sessions, in memory: use
/// [`router_with`] to share them between instances), and signing
/// known-browser cookies with a key of its own, made here (use
/// [`router_with`] to keep them valid across restarts).
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
    let keys = latch::Keyring::new(latch::SecretKey::generate());
    let secure = manager.cookie_config().is_secure();
    // OK because the fixed cookie names are valid.
    let known_browsers = KnownBrowsers::new(&keys, secure).expect("valid cookie names");
    router_with(AppState {
        users,
        manager,
        limits,
        known_browsers,
        scheme: "http",
        proxies: latch_axum::TrustedProxies::default(),
    })
}

/// The demo's routes for `state`.
pub fn router_with(state: AppState) -> Router {
    let session_layer =
        SessionLayer::new(state.manager.clone()).trusted_proxies(state.proxies.clone());
    let state = Arc::new(state);
    // Forms: this site's origin and this session's CSRF token (X1).
    let pages = Router::new()
        .route("/", get(pages::home))
        .route("/profile", get(pages::profile))
        .route("/devices", get(pages::devices))
        .route("/devices/revoke", post(pages::revoke_device))
        .route("/devices/revoke-others", post(pages::revoke_others))
        .route("/signup", get(auth::signup_form).post(auth::signup))
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/logout", post(auth::logout))
        .layer(CsrfLayer::new().scheme(state.scheme));
    // The JSON API: this site's origin; its JSON content type cannot come
    // cross-site without a CORS preflight this server never grants.
    let api = Router::new()
        .route("/api/me", get(api::me))
        .route("/api/scratch", get(api::scratch))
        .route(
            "/api/scratch/{key}",
            // A value is at most 1 KiB: no reason to buffer a megabyte of JSON.
            put(api::put_scratch).layer(DefaultBodyLimit::max(api::MAX_PUT_BODY_BYTES)),
        )
        .layer(CsrfLayer::new().origin_only().scheme(state.scheme));
    let with_sessions = pages.merge(api).layer(session_layer).with_state(state);
    Router::new()
        // Outside the session layer: a health check never touches the session.
        .route("/healthz", get(|| async { "ok" }))
        .merge(with_sessions)
        .layer(middleware::from_fn(form_type_in_lower_case))
        .layer(middleware::from_fn(security_headers))
}

/// The form media type this site takes, as axum's `Form` expects it.
const FORM_TYPE: &[u8] = b"application/x-www-form-urlencoded";

/// Media types are case-insensitive (RFC 9110, section 8.3.1), but axum's
/// `Form` compares `Content-Type` byte for byte, so a form posted as
/// `Application/X-WWW-Form-Urlencoded` got `415 Unsupported Media Type`.
/// The form type is spelled in lower case here, before any handler; its
/// parameters (a `charset`) are left as they came.
async fn form_type_in_lower_case(mut req: Request, next: Next) -> Response {
    let lowered = req
        .headers()
        .get(header::CONTENT_TYPE)
        .map(HeaderValue::as_bytes)
        .filter(|value| {
            value
                .get(..FORM_TYPE.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(FORM_TYPE) && start != FORM_TYPE)
        })
        .map(|value| {
            let mut value = value.to_vec();
            value[..FORM_TYPE.len()].make_ascii_lowercase();
            value
        });
    if let Some(value) = lowered.and_then(|v| HeaderValue::from_bytes(&v).ok()) {
        req.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    next.run(req).await
}

/// `router` answering only requests whose `Host` is one of `hosts` (names,
/// without port; an empty list allows every host): a page on another name
/// that resolves to this server (DNS rebinding) cannot use it from a
/// victim's browser. Requests for another host get `421 Misdirected Request`.
pub fn only_for_hosts(router: Router, hosts: Vec<String>) -> Router {
    if hosts.is_empty() {
        return router;
    }
    let hosts = Arc::new(hosts);
    router.layer(middleware::from_fn(move |req: Request, next: Next| {
        let hosts = Arc::clone(&hosts);
        async move {
            let mut values = req.headers().get_all(header::HOST).iter();
            let (first, second) = (values.next(), values.next());
            let host = match (first, second) {
                // Two Host headers: which one a proxy or the app believes is
                // anyone's guess (RFC 9112 section 3.2 says 400).
                (Some(_), Some(_)) => return bad_host("more than one Host header"),
                (Some(value), None) => match value.to_str().ok().and_then(host_name) {
                    Some(name) => Some(name),
                    None => return bad_host("a Host header that is not a host[:port]"),
                },
                (None, _) => req.uri().authority().and_then(|a| host_name(a.as_str())),
            };
            // No host at all (HTTP/1.0, in-process calls) is no browser's
            // request for another name.
            let allowed =
                host.is_none_or(|name| hosts.iter().any(|a| a.eq_ignore_ascii_case(name)));
            if allowed {
                next.run(req).await
            } else {
                (
                    http::StatusCode::MISDIRECTED_REQUEST,
                    "Misdirected Request: this server does not serve that host name.\n",
                )
                    .into_response()
            }
        }
    }))
}

fn bad_host(why: &str) -> Response {
    (
        http::StatusCode::BAD_REQUEST,
        format!("Bad Request: {why}.\n"),
    )
        .into_response()
}

/// The name part of a `Host` value (`[::1]:8080` is `[::1]`, `a:80` is `a`),
/// or `None` when it is not `name[:port]`: a name of letters, digits, `-`,
/// `.` and `_`, or a bracketed IPv6 address, and a port of digits. Anything
/// else (`a@b`, `a:b`, spaces) no browser sends.
fn host_name(host: &str) -> Option<&str> {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        let ipv6 = |c: char| c.is_ascii_hexdigit() || c == ':' || c == '.';
        if inner.is_empty() || !inner.chars().all(ipv6) {
            return None;
        }
        let port = match after {
            "" => None,
            more => Some(more.strip_prefix(':')?),
        };
        (&host[..inner.len() + 2], port)
    } else {
        match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    let name_ok = name.starts_with('[')
        || (!name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')));
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()));
    (name_ok && port_ok).then_some(name)
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

#[cfg(test)]
mod tests {
    use super::host_name;

    #[test]
    fn host_names_drop_the_port() {
        assert_eq!(host_name("localhost:8080"), Some("localhost"));
        assert_eq!(host_name("[::1]:8080"), Some("[::1]"));
        assert_eq!(host_name("[::1]"), Some("[::1]"));
        assert_eq!(host_name("example.com"), Some("example.com"));
    }

    #[test]
    fn what_no_browser_sends_is_not_a_host() {
        for bad in [
            "",
            "localhost:8080@evil.example",
            "evil.example@localhost",
            "localhost:x",
            "localhost:",
            "local host",
            "[::1",
            "[zz]:80",
            "[::1]x",
            "a:1:2",
            "localhost:123456",
        ] {
            assert_eq!(host_name(bad), None, "{bad:?}");
        }
    }
}
