//! The second CSRF layer: refuse cross-site state-changing requests by their
//! `Sec-Fetch-Site` and `Origin` headers.
//!
//! The first layer is the session-bound token ([`latch::Session::csrf_token`] /
//! [`latch::Session::verify_csrf`]); this check catches cross-site requests even
//! where a token leaked, and costs nothing.

use axum::response::{IntoResponse, Response};
use http::header::{HOST, ORIGIN};
use http::{HeaderMap, Method, StatusCode, Uri};

/// Whether a request may change state, judged by its method and origin headers.
///
/// Safe methods (`GET`, `HEAD`, `OPTIONS`, `TRACE`) always pass: they must not
/// change state. Otherwise:
/// - `Sec-Fetch-Site` (sent by current browsers) must be `same-origin` or
///   `none` (typed by the user);
/// - without it, an `Origin` header must name the request's own `Host`;
/// - with neither (non-browser clients, very old browsers) the request passes
///   and the token check alone decides.
///
/// # Errors
/// [`CrossSiteRequest`], a `403 Forbidden`.
///
/// # Example
/// ```
/// use http::{HeaderMap, HeaderValue, Method};
/// use latch_axum::csrf::check_origin;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("host", HeaderValue::from_static("app.example"));
/// headers.insert("origin", HeaderValue::from_static("https://evil.example"));
/// assert!(check_origin(&Method::POST, &headers).is_err());
/// assert!(check_origin(&Method::GET, &headers).is_ok());
/// ```
pub fn check_origin(method: &Method, headers: &HeaderMap) -> Result<(), CrossSiteRequest> {
    check_origin_at(method, None, headers)
}

/// [`check_origin`] for a request that may have no `Host` header: over HTTP/2
/// and HTTP/3 the host travels in the request URI's authority instead, which
/// is used when `Host` is missing. Prefer this where the URI is at hand.
///
/// # Errors
/// [`CrossSiteRequest`], a `403 Forbidden`.
///
/// # Example
/// ```
/// use http::{HeaderMap, HeaderValue, Method, Uri};
/// use latch_axum::csrf::check_origin_at;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("origin", HeaderValue::from_static("https://app.example"));
/// let uri: Uri = "https://app.example/settings".parse().unwrap();
/// assert!(check_origin_at(&Method::POST, Some(&uri), &headers).is_ok());
/// ```
pub fn check_origin_at(
    method: &Method,
    uri: Option<&Uri>,
    headers: &HeaderMap,
) -> Result<(), CrossSiteRequest> {
    if method.is_safe() {
        return Ok(());
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        return match site.to_str() {
            Ok("same-origin" | "none") => Ok(()),
            _ => Err(CrossSiteRequest),
        };
    }
    let Some(origin) = headers.get(ORIGIN) else {
        return Ok(());
    };
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, host)| host);
    let host = match headers.get(HOST) {
        Some(h) => h.to_str().ok(),
        None => uri.and_then(Uri::authority).map(|a| a.as_str()),
    };
    match (origin_host, host) {
        (Some(o), Some(h)) if o.eq_ignore_ascii_case(h) => Ok(()),
        _ => Err(CrossSiteRequest),
    }
}

/// A state-changing request from another site: answered `403 Forbidden`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrossSiteRequest;

impl IntoResponse for CrossSiteRequest {
    fn into_response(self) -> Response {
        tracing::info!("cross-site state-changing request refused");
        (
            StatusCode::FORBIDDEN,
            "Forbidden: cross-site request refused.\n",
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::HeaderName::from_static(k),
                    HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    #[test]
    fn fetch_metadata_decides_when_present() {
        for (site, ok) in [
            ("same-origin", true),
            ("none", true),
            ("same-site", false),
            ("cross-site", false),
        ] {
            let h = headers(&[
                ("sec-fetch-site", site),
                ("origin", "https://a.example"),
                ("host", "a.example"),
            ]);
            assert_eq!(check_origin(&Method::POST, &h).is_ok(), ok, "{site}");
        }
    }

    #[test]
    fn origin_must_match_host() {
        let same = headers(&[
            ("origin", "http://localhost:8080"),
            ("host", "localhost:8080"),
        ]);
        assert!(check_origin(&Method::PUT, &same).is_ok());
        let other = headers(&[
            ("origin", "http://localhost:9999"),
            ("host", "localhost:8080"),
        ]);
        assert!(check_origin(&Method::DELETE, &other).is_err());
        let null = headers(&[("origin", "null"), ("host", "localhost:8080")]);
        assert!(check_origin(&Method::POST, &null).is_err());
    }

    #[test]
    fn without_host_the_uri_authority_is_the_host() {
        let h = headers(&[("origin", "https://a.example")]);
        let same: Uri = "https://a.example/x".parse().unwrap();
        let other: Uri = "https://b.example/x".parse().unwrap();
        assert!(check_origin_at(&Method::POST, Some(&same), &h).is_ok());
        assert!(check_origin_at(&Method::POST, Some(&other), &h).is_err());
        assert!(check_origin(&Method::POST, &h).is_err(), "no host at all");
        // A Host header, when present, is what the request names.
        let h = headers(&[("origin", "https://a.example"), ("host", "b.example")]);
        assert!(check_origin_at(&Method::POST, Some(&same), &h).is_err());
    }

    #[test]
    fn no_browser_headers_defers_to_the_token() {
        assert!(check_origin(&Method::POST, &HeaderMap::new()).is_ok());
    }
}
