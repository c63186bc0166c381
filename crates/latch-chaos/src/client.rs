//! A load client for the demo's JSON scratch API, carrying cookies by hand.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use reqwest::{Client, StatusCode};

/// The demo's session cookie name (latch's default).
pub const COOKIE_NAME: &str = "__Host-session";

/// An HTTP client with a per-request timeout, for loopback use only.
///
/// # Panics
/// When the client cannot be built.
pub fn http(timeout: Duration) -> Client {
    Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(2))
        .pool_max_idle_per_host(64)
        .build()
        // OK because a default client without TLS always builds.
        .expect("an HTTP client")
}

/// [`http`] that does not follow redirects, so a form's `303` is seen as such
/// (for [`submit`]).
///
/// # Panics
/// When the client cannot be built.
pub fn forms(timeout: Duration) -> Client {
    Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(2))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        // OK because a default client without TLS always builds.
        .expect("an HTTP client")
}

/// What the `Set-Cookie` header of a response said about the session cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieChange {
    /// No `Set-Cookie` for the session.
    None,
    /// A new value (`name=value`, ready for a `Cookie` header).
    Set(String),
    /// The cookie was removed (`Max-Age=0`).
    Removed,
}

impl CookieChange {
    fn of(res: &reqwest::Response) -> Self {
        let mut change = CookieChange::None;
        for header in res.headers().get_all(SET_COOKIE) {
            let Ok(text) = header.to_str() else { continue };
            let pair = text.split(';').next().unwrap_or_default().trim();
            if !pair.starts_with(&format!("{COOKIE_NAME}=")) {
                continue;
            }
            change = if text.contains("Max-Age=0") {
                CookieChange::Removed
            } else {
                CookieChange::Set(pair.to_owned())
            };
        }
        change
    }
}

/// The answer to one request.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The session cookie change.
    pub cookie: CookieChange,
    /// The body.
    pub body: String,
}

/// `PUT /api/scratch/{key}` with `{"value": value}`, carrying `cookie`
/// (`name=value`) if any.
///
/// # Errors
/// Transport errors (refused, reset, timed out).
pub async fn put(
    http: &Client,
    base: &str,
    cookie: Option<&str>,
    key: &str,
    value: &str,
) -> Result<Answer, reqwest::Error> {
    let body = serde_json::json!({ "value": value }).to_string();
    let mut req = http
        .put(format!("{base}/api/scratch/{key}"))
        .header(CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(c) = cookie {
        req = req.header(COOKIE, c);
    }
    answer(req.send().await?).await
}

/// `GET /api/scratch`, carrying `cookie` if any.
///
/// # Errors
/// Transport errors.
pub async fn get_scratch(
    http: &Client,
    base: &str,
    cookie: Option<&str>,
) -> Result<Answer, reqwest::Error> {
    let mut req = http.get(format!("{base}/api/scratch"));
    if let Some(c) = cookie {
        req = req.header(COOKIE, c);
    }
    answer(req.send().await?).await
}

/// `GET /healthz`: whether the demo answers at all.
pub async fn healthy(http: &Client, base: &str) -> bool {
    match http.get(format!("{base}/healthz")).send().await {
        Ok(res) => res.status() == StatusCode::OK,
        Err(_) => false,
    }
}

async fn answer(res: reqwest::Response) -> Result<Answer, reqwest::Error> {
    let status = res.status();
    let cookie = CookieChange::of(&res);
    let body = res.text().await?;
    Ok(Answer {
        status,
        cookie,
        body,
    })
}

/// The scratch map in a `GET /api/scratch` body; `None` if it is not one.
pub fn scratch_map(body: &str) -> Option<BTreeMap<String, String>> {
    serde_json::from_str(body).ok()
}

/// The value of a `name=value` cookie pair.
pub fn cookie_value(pair: &str) -> &str {
    pair.split_once('=').map_or("", |(_, v)| v)
}

/// Every acknowledged write of `(cookie, key, value)` that a read through the
/// demo does not show; the reads are retried briefly on transport errors.
///
/// # Panics
/// When a read keeps failing, or answers anything but 200.
pub async fn missing_writes(
    http: &Client,
    base: &str,
    acked: &[(String, String, String)],
) -> Vec<(String, String, String)> {
    let mut by_cookie: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    for (cookie, key, value) in acked {
        by_cookie
            .entry(cookie)
            .or_default()
            .push((key.as_str(), value.as_str()));
    }
    let mut missing = Vec::new();
    for (cookie, writes) in by_cookie {
        let answer = read_with_retries(http, base, cookie).await;
        assert_eq!(answer.status, StatusCode::OK, "reading back: {answer:?}");
        let map = scratch_map(&answer.body).unwrap_or_default();
        for (key, value) in writes {
            if map.get(key).map(String::as_str) != Some(value) {
                missing.push((cookie.to_owned(), key.to_owned(), value.to_owned()));
            }
        }
    }
    missing
}

async fn read_with_retries(http: &Client, base: &str, cookie: &str) -> Answer {
    let mut last = None;
    for _ in 0..20 {
        match get_scratch(http, base, Some(cookie)).await {
            Ok(answer) => return answer,
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("reading back kept failing: {last:?}");
}

/// A browser-like form round trip: `GET page` for its CSRF token and session
/// cookie, then `POST action` with `fields` and that token (same-origin fetch
/// metadata). Returns the status and the session cookie pair to keep. Use a
/// client from [`forms`] to see redirects.
///
/// # Errors
/// Transport errors.
///
/// # Panics
/// When the page has no CSRF field.
pub async fn submit(
    http: &Client,
    base: &str,
    page: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> Result<(StatusCode, Option<String>), reqwest::Error> {
    let form = http.get(format!("{base}{page}")).send().await?;
    let session = match CookieChange::of(&form) {
        CookieChange::Set(pair) => Some(pair),
        _ => None,
    };
    // Like a browser, send back every cookie the form set (the session's,
    // or the pre-session CSRF cookie of a visitor without one).
    let pairs: Vec<String> = form
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| !v.contains("Max-Age=0"))
        .filter_map(|v| v.split(';').next())
        .map(str::to_owned)
        .collect();
    let sent = (!pairs.is_empty()).then(|| pairs.join("; "));
    let body = form.text().await?;
    let marker = "name=\"csrf_token\" value=\"";
    let start = body.find(marker).expect("a page with a CSRF field") + marker.len();
    let token = body[start..].split('"').next().unwrap_or_default();
    let mut encoded: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect();
    encoded.push(format!("csrf_token={}", urlencode(token)));
    let mut req = http
        .post(format!("{base}{action}"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .body(encoded.join("&"));
    if let Some(c) = &sent {
        req = req.header(COOKIE, c);
    }
    let res = req.send().await?;
    let status = res.status();
    let cookie = match CookieChange::of(&res) {
        CookieChange::Set(pair) => Some(pair),
        _ => session,
    };
    let _ = res.bytes().await?;
    Ok((status, cookie))
}

/// Percent-encode a form value.
fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
