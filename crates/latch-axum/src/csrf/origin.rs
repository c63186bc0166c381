//! The origin check: refuse cross-site state-changing requests by their
//! `Sec-Fetch-Site` and `Origin` headers.

use http::header::{HOST, ORIGIN};
use http::{HeaderMap, Method, Uri};

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
/// An HTTP/1.1 request does not say which scheme the browser used, so this
/// check cannot tell `http://host` from `https://host`: a page injected into
/// the plain-http site (by anyone on the network) would pass it in browsers
/// that send no `Sec-Fetch-Site`. Where the app knows the scheme its users
/// reach it by, use [`check_origin_with_scheme`].
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
    check(method, uri, headers, None)
}

fn check(
    method: &Method,
    uri: Option<&Uri>,
    headers: &HeaderMap,
    scheme: Option<&str>,
) -> Result<(), CrossSiteRequest> {
    if method.is_safe() {
        return Ok(());
    }
    // Browsers send each of these once; several of one (a client or proxy
    // adding its own) is no browser's request to trust.
    if headers.get_all("sec-fetch-site").iter().count() > 1
        || headers.get_all(ORIGIN).iter().count() > 1
        || headers.get_all(HOST).iter().count() > 1
    {
        return Err(CrossSiteRequest);
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
    let Some((origin_scheme, origin_host)) = origin.to_str().ok().and_then(|o| o.split_once("://"))
    else {
        return Err(CrossSiteRequest);
    };
    let host = match headers.get(HOST) {
        Some(h) => h.to_str().ok(),
        None => uri.and_then(Uri::authority).map(|a| a.as_str()),
    };
    let schemes_agree = [scheme, uri.and_then(Uri::scheme_str)]
        .into_iter()
        .flatten()
        .all(|s| s.eq_ignore_ascii_case(origin_scheme));
    match host {
        Some(h) if schemes_agree && same_authority(origin_scheme, origin_host, h) => Ok(()),
        _ => Err(CrossSiteRequest),
    }
}

/// Whether the `Origin`'s host and port are the `Host`'s, a default port
/// written or not: browsers leave `:443` out of `https` origins, while a
/// client or proxy may write it in `Host`.
fn same_authority(scheme: &str, origin: &str, host: &str) -> bool {
    if origin.eq_ignore_ascii_case(host) {
        return true;
    }
    let default = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return false,
    };
    let split = |authority: &str| -> (String, String) {
        // The port follows the last colon after any IPv6 bracket.
        let after_bracket = authority.rfind(']').map_or(0, |i| i + 1);
        match authority[after_bracket..].rfind(':') {
            Some(i) => {
                let at = after_bracket + i;
                (
                    authority[..at].to_ascii_lowercase(),
                    authority[at + 1..].to_owned(),
                )
            }
            None => (authority.to_ascii_lowercase(), default.to_owned()),
        }
    };
    split(origin) == split(host)
}

/// [`check_origin_at`], also requiring the `Origin` to use `scheme` (`"https"`
/// for an app served over TLS, directly or through a TLS-terminating proxy;
/// `"http"` for plain-http development): a page on `http://host` cannot post
/// to `https://host`. A scheme in the request URI (HTTP/2) must agree too.
///
/// # Errors
/// [`CrossSiteRequest`], a `403 Forbidden`.
///
/// # Example
/// ```
/// use http::{HeaderMap, HeaderValue, Method};
/// use latch_axum::csrf::check_origin_with_scheme;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("host", HeaderValue::from_static("app.example"));
/// headers.insert("origin", HeaderValue::from_static("http://app.example"));
/// assert!(check_origin_with_scheme(&Method::POST, None, &headers, "https").is_err());
/// assert!(check_origin_with_scheme(&Method::POST, None, &headers, "http").is_ok());
/// ```
pub fn check_origin_with_scheme(
    method: &Method,
    uri: Option<&Uri>,
    headers: &HeaderMap,
    scheme: &str,
) -> Result<(), CrossSiteRequest> {
    check(method, uri, headers, Some(scheme))
}

use crate::rejection::CrossSiteRequest;

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
    fn a_default_port_written_or_not_is_the_same_origin() {
        for (origin, host, same) in [
            ("https://app.example", "app.example:443", true),
            ("https://app.example:443", "app.example", true),
            ("http://app.example", "app.example:80", true),
            ("https://APP.example", "app.example:443", true),
            ("https://[::1]", "[::1]:443", true),
            ("https://app.example", "app.example:80", false),
            ("http://app.example", "app.example:443", false),
            ("https://app.example:8443", "app.example", false),
            ("https://app.example", "app.example:4430", false),
            ("https://evil.example", "app.example:443", false),
        ] {
            let h = headers(&[("host", host), ("origin", origin)]);
            assert_eq!(
                check_origin(&Method::POST, &h).is_ok(),
                same,
                "{origin} vs Host {host}"
            );
        }
    }

    #[test]
    fn two_host_headers_are_refused() {
        let mut h = headers(&[("host", "app.example"), ("origin", "https://app.example")]);
        h.append(HOST, http::HeaderValue::from_static("evil.example"));
        assert!(check_origin(&Method::POST, &h).is_err());
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
    fn the_scheme_must_match_where_it_is_known() {
        // Issue 11: `Origin: https://host` was accepted by an http server
        // (and a page on http://host could post to https://host).
        let h = headers(&[("origin", "http://a.example"), ("host", "a.example")]);
        assert!(check_origin_with_scheme(&Method::POST, None, &h, "https").is_err());
        assert!(check_origin_with_scheme(&Method::POST, None, &h, "http").is_ok());
        let h = headers(&[("origin", "https://a.example"), ("host", "a.example")]);
        assert!(check_origin_with_scheme(&Method::POST, None, &h, "http").is_err());
        assert!(check_origin_with_scheme(&Method::POST, None, &h, "HTTPS").is_ok());
        // An HTTP/2 request carries its scheme: it must agree as well.
        let uri: Uri = "http://a.example/x".parse().unwrap();
        assert!(check_origin_at(&Method::POST, Some(&uri), &h).is_err());
        let uri: Uri = "https://a.example/x".parse().unwrap();
        assert!(check_origin_at(&Method::POST, Some(&uri), &h).is_ok());
    }

    #[test]
    fn repeated_fetch_metadata_or_origin_is_refused() {
        let mut h = headers(&[("sec-fetch-site", "same-origin")]);
        h.append("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(check_origin(&Method::POST, &h).is_err());
        let mut h = headers(&[("origin", "https://a.example"), ("host", "a.example")]);
        h.append("origin", HeaderValue::from_static("https://evil.example"));
        assert!(check_origin(&Method::POST, &h).is_err());
    }

    #[test]
    fn no_browser_headers_defers_to_the_token() {
        assert!(check_origin(&Method::POST, &HeaderMap::new()).is_ok());
    }
}
