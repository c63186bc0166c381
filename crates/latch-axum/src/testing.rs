//! A browser stand-in for integration tests: it keeps cookies across
//! in-process calls (`oneshot`) and sends the headers a browser sends on a
//! same-site form post, so tests of a sessioned app read like a visit.
//!
//! # Example
//! ```
//! use axum::{Router, routing::{get, post}};
//! use latch::{MemoryStore, SessionManager};
//! use latch_axum::testing::TestClient;
//! use latch_axum::{Session, SessionError, SessionLayer};
//!
//! async fn login(session: Session) -> Result<&'static str, SessionError> {
//!     session.log_in("alice").await?;
//!     Ok("signed in")
//! }
//! async fn me(session: Session) -> Result<String, SessionError> {
//!     Ok(session.user_id().await?.unwrap_or_default())
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! let manager = SessionManager::builder().store(MemoryStore::new()).build()?;
//! let cookie_name = manager.cookie_config().name().to_owned(); // "__Host-session"
//! let app = Router::new()
//!     .route("/login", post(login))
//!     .route("/me", get(me))
//!     .layer(SessionLayer::new(manager));
//!
//! let mut browser = TestClient::new(app);
//! assert_eq!(browser.post_form("/login", &[]).await.status, 200);
//! assert!(browser.cookie(&cookie_name).is_some());
//! assert_eq!(browser.get("/me").await.body, "alice");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use http::header::{CONTENT_TYPE, COOKIE, HOST, ORIGIN, SET_COOKIE};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// An app and the cookies it has set, like one browser visiting it at
/// `http://localhost` (browsers keep `Secure` and `__Host-` cookies there).
#[derive(Debug, Clone)]
pub struct TestClient {
    app: Router,
    jar: BTreeMap<String, String>,
    peer: Option<SocketAddr>,
}

/// What the app answered.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TestResponse {
    /// The status code.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body, as text (lossily, if it is not UTF-8).
    pub body: String,
}

impl TestResponse {
    /// The `Set-Cookie` headers of this response.
    pub fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect()
    }
}

impl TestClient {
    /// A browser with no cookies, visiting `app`.
    pub fn new(app: Router) -> Self {
        Self {
            app,
            jar: BTreeMap::new(),
            peer: None,
        }
    }

    /// Connect from `addr` from now on, as a server started with
    /// [`into_make_service_with_connect_info`](axum::Router::into_make_service_with_connect_info)
    /// would see it: [`ClientIp`](crate::ClientIp) and the devices list then
    /// show it (without, they have no address, as under any `oneshot`).
    #[must_use]
    pub fn peer(mut self, addr: SocketAddr) -> Self {
        self.peer = Some(addr);
        self
    }

    /// `GET uri`.
    pub async fn get(&mut self, uri: &str) -> TestResponse {
        self.send(Request::get(uri).body(Body::empty()).unwrap_or_default())
            .await
    }

    /// `POST uri` with an `application/x-www-form-urlencoded` body of
    /// `fields` (add `("csrf_token", token)` for a
    /// [`CsrfLayer`](crate::csrf::CsrfLayer)), from a page of the same site.
    pub async fn post_form(&mut self, uri: &str, fields: &[(&str, &str)]) -> TestResponse {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let request = Request::post(uri)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap_or_default();
        self.send(request).await
    }

    /// Send `request` as this browser: from its [`peer`](Self::peer) address,
    /// with its cookies, `Host: localhost`
    /// when it has none, and for methods other than GET, HEAD and OPTIONS
    /// the `Origin` and `Sec-Fetch-Site` of a same-site page (set your own to
    /// test cross-site requests). Cookies the answer sets are kept, and ones
    /// it expires are dropped.
    ///
    /// # Panics
    /// If the app fails to produce a body (axum's own services do not).
    pub async fn send(&mut self, mut request: Request<Body>) -> TestResponse {
        if let Some(peer) = self.peer {
            request.extensions_mut().insert(ConnectInfo(peer));
        }
        let headers = request.headers_mut();
        if !headers.contains_key(HOST) {
            headers.insert(HOST, http::HeaderValue::from_static("localhost"));
        }
        let safe = matches!(
            *request.method(),
            Method::GET | Method::HEAD | Method::OPTIONS
        );
        let headers = request.headers_mut();
        if !safe && !headers.contains_key(ORIGIN) && !headers.contains_key("sec-fetch-site") {
            headers.insert(ORIGIN, http::HeaderValue::from_static("http://localhost"));
            headers.insert(
                "sec-fetch-site",
                http::HeaderValue::from_static("same-origin"),
            );
        }
        if !self.jar.is_empty() && !headers.contains_key(COOKIE) {
            let line = self
                .jar
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join("; ");
            if let Ok(value) = http::HeaderValue::from_str(&line) {
                headers.insert(COOKIE, value);
            }
        }
        let Ok(response) = self.app.clone().oneshot(request).await;
        let (parts, body) = response.into_parts();
        let bytes = body
            .collect()
            .await
            .map(http_body_util::Collected::to_bytes)
            .unwrap_or_else(|err| panic!("reading the response body: {err}"));
        for value in parts.headers.get_all(SET_COOKIE) {
            if let Some(cookie) = value
                .to_str()
                .ok()
                .and_then(|v| cookie::Cookie::parse(v).ok())
            {
                self.keep(&cookie);
            }
        }
        TestResponse {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// The value of the cookie `name`, if the browser holds it.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.jar.get(name).map(String::as_str)
    }

    /// Every cookie the browser holds, as a `Cookie` header would carry them
    /// (to replay from another client, as a thief would).
    pub fn cookie_header(&self) -> String {
        self.jar
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The app this browser visits (to point a second client at it).
    pub fn app(&self) -> &Router {
        &self.app
    }

    /// Forget every cookie (a new browser, same app).
    pub fn clear_cookies(&mut self) {
        self.jar.clear();
    }

    fn keep(&mut self, cookie: &cookie::Cookie<'_>) {
        let expired = cookie
            .max_age()
            .is_some_and(|age| age.is_zero() || age.is_negative())
            || cookie
                .expires_datetime()
                .is_some_and(|at| at <= cookie::time::OffsetDateTime::now_utc());
        if expired {
            self.jar.remove(cookie.name());
        } else {
            self.jar
                .insert(cookie.name().to_owned(), cookie.value().to_owned());
        }
    }
}
