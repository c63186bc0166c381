//! The layer over HTTP, in-process with `tower::ServiceExt::oneshot`.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use latch::{Keyring, MemoryStore, SecretKey, SessionManager};
use latch_axum::{Session, SessionError, SessionLayer};
use latch_conformance::faults::{Call, Gate, Gated};
use tower::ServiceExt;

async fn write(session: Session) -> Result<&'static str, SessionError> {
    session.insert("k", "v").await?;
    Ok("written")
}

async fn read(session: Session) -> Result<String, SessionError> {
    Ok(session
        .get::<String>("k")
        .await?
        .unwrap_or_else(|| "none".into()))
}

async fn login(session: Session) -> Result<&'static str, SessionError> {
    session.log_in("alice").await?;
    Ok("in")
}

async fn whoami(session: Session) -> Result<String, SessionError> {
    Ok(session
        .user_id()
        .await?
        .unwrap_or_else(|| "anonymous".into()))
}

async fn logout(session: Session) -> Result<&'static str, SessionError> {
    session.destroy().await?;
    Ok("out")
}

async fn busy(session: Session) -> Result<&'static str, SessionError> {
    session.insert("a", 1).await?;
    session.regenerate().await?;
    session.flash("info", "hello").await?;
    session.insert("b", 2).await?;
    Ok("busy")
}

async fn cached(session: Session) -> Result<impl IntoResponse, SessionError> {
    session.insert("k", "v").await?;
    Ok(([(header::CACHE_CONTROL, "public, max-age=3600")], "cached"))
}

async fn strict_cache(session: Session) -> Result<impl IntoResponse, SessionError> {
    session.insert("k", "v").await?;
    Ok(([(header::CACHE_CONTROL, "no-store, private")], "strict"))
}

fn app(manager: SessionManager) -> Router {
    Router::new()
        .route("/write", post(write))
        .route("/read", get(read))
        .route("/login", post(login))
        .route("/whoami", get(whoami))
        .route("/logout", post(logout))
        .route("/busy", post(busy))
        .route("/cached", post(cached))
        .route("/strict-cache", post(strict_cache))
        .route("/plain", get(|| async { "plain" }))
        .layer(SessionLayer::new(manager))
}

fn memory_app() -> Router {
    app(SessionManager::builder()
        .store(MemoryStore::new())
        .build()
        .unwrap())
}

async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    cookies: &[&str],
) -> (StatusCode, HeaderMap, String) {
    let mut req = Request::builder().method(method).uri(uri);
    for c in cookies {
        req = req.header(header::COOKIE, *c);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = res.into_parts();
    let body = String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap();
    (parts.status, parts.headers, body)
}

fn set_cookies(h: &HeaderMap) -> Vec<String> {
    h.get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// `name=value` of the single Set-Cookie, ready for a Cookie header.
fn cookie_pair(h: &HeaderMap) -> String {
    let all = set_cookies(h);
    assert_eq!(all.len(), 1, "{all:?}");
    all[0].split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn default_cookie_carries_every_secure_attribute() {
    let app = memory_app();
    let (status, h, _) = send(&app, "POST", "/write", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let set = set_cookies(&h);
    assert_eq!(set.len(), 1);
    let value = cookie_pair(&h)
        .trim_start_matches("__Host-session=")
        .to_owned();
    assert_eq!(value.len(), 43, "256-bit opaque id");
    assert_eq!(
        set[0],
        format!("__Host-session={value}; HttpOnly; SameSite=Lax; Secure; Path=/")
    );
    assert_eq!(h[header::CACHE_CONTROL], "no-store");
    assert_eq!(h[header::VARY], "Cookie");
}

#[tokio::test]
async fn untouched_session_gets_no_headers() {
    let app = memory_app();
    let (_, h, body) = send(&app, "GET", "/plain", &["__Host-session=whatever"]).await;
    assert_eq!(body, "plain");
    assert!(h.get(header::SET_COOKIE).is_none());
    assert!(h.get(header::VARY).is_none());
    assert!(h.get(header::CACHE_CONTROL).is_none());
}

#[tokio::test]
async fn read_only_request_varies_on_cookie_and_sets_nothing() {
    let app = memory_app();
    let (_, h, _) = send(&app, "POST", "/write", &[]).await;
    let cookie = cookie_pair(&h);
    let (_, h, body) = send(&app, "GET", "/read", &[&cookie]).await;
    assert_eq!(body, "v");
    assert_eq!(h[header::VARY], "Cookie");
    assert!(h.get(header::SET_COOKIE).is_none());
}

#[tokio::test]
async fn anonymous_read_creates_no_session() {
    let store = Arc::new(MemoryStore::new());
    let manager = SessionManager::builder()
        .shared_store(store.clone())
        .build()
        .unwrap();
    let app = app(manager);
    for _ in 0..10 {
        let (_, h, body) = send(&app, "GET", "/read", &[]).await;
        assert_eq!(body, "none");
        assert!(h.get(header::SET_COOKIE).is_none());
    }
    assert!(store.is_empty());
}

#[tokio::test]
async fn set_cookie_responses_are_not_cacheable() {
    let app = memory_app();
    let (_, h, _) = send(&app, "POST", "/cached", &[]).await;
    assert_eq!(
        h.get_all(header::CACHE_CONTROL).iter().collect::<Vec<_>>(),
        ["no-store"]
    );
    let (_, h, _) = send(&app, "POST", "/strict-cache", &[]).await;
    assert_eq!(
        h[header::CACHE_CONTROL],
        "no-store, private",
        "handler's stricter choice kept"
    );
}

/// C5: reading a signed-in session makes the response uncacheable even
/// without a cookie on it; an anonymous read does not; a handler's own
/// `Cache-Control` is kept.
#[tokio::test]
async fn signed_in_reads_are_not_cacheable() {
    let app = memory_app();
    let (_, h, _) = send(&app, "POST", "/write", &[]).await;
    let anonymous = cookie_pair(&h);
    let (_, h, _) = send(&app, "GET", "/whoami", &[&anonymous]).await;
    assert!(h.get(header::CACHE_CONTROL).is_none());
    let (_, h, _) = send(&app, "POST", "/login", &[&anonymous]).await;
    let signed_in = cookie_pair(&h);
    let (_, h, body) = send(&app, "GET", "/whoami", &[&signed_in]).await;
    assert_eq!(body, "alice");
    assert!(h.get(header::SET_COOKIE).is_none());
    assert_eq!(h[header::CACHE_CONTROL], "no-store");
}

#[tokio::test]
async fn one_set_cookie_per_response() {
    let app = memory_app();
    let (_, h, _) = send(&app, "POST", "/write", &[]).await;
    let cookie = cookie_pair(&h);
    let (_, h, _) = send(&app, "POST", "/busy", &[&cookie]).await;
    assert_eq!(set_cookies(&h).len(), 1);
}

#[tokio::test]
async fn cookie_headers_split_over_lines_are_read() {
    let app = memory_app();
    let (_, h, _) = send(&app, "POST", "/write", &[]).await;
    let cookie = cookie_pair(&h);
    let (_, _, body) = send(
        &app,
        "GET",
        "/read",
        &["theme=dark", &format!("a=b; {cookie}")],
    )
    .await;
    assert_eq!(body, "v");
}

#[tokio::test]
async fn duplicate_session_cookies_are_not_trusted() {
    let app = memory_app();
    let (_, h, _) = send(&app, "POST", "/write", &[]).await;
    let mine = cookie_pair(&h);
    let (_, h, _) = send(&app, "POST", "/login", &[]).await;
    let tossed = cookie_pair(&h);
    // An attacker's session tossed next to the victim's: neither is honoured.
    let (_, h, body) = send(&app, "GET", "/whoami", &[&format!("{tossed}; {mine}")]).await;
    assert_eq!(body, "anonymous");
    assert!(set_cookies(&h)[0].contains("Max-Age=0"));
    let (_, _, body) = send(&app, "GET", "/whoami", &[&tossed, &mine]).await;
    assert_eq!(body, "anonymous");
}

#[tokio::test]
async fn tampered_and_unknown_cookies_start_fresh_sessions() {
    for manager in [
        SessionManager::builder()
            .store(MemoryStore::new())
            .build()
            .unwrap(),
        SessionManager::builder()
            .signed_cookies(Keyring::new(SecretKey::generate()))
            .build()
            .unwrap(),
    ] {
        let app = app(manager);
        let (_, h, _) = send(&app, "POST", "/write", &[]).await;
        let good = cookie_pair(&h);
        let mut bad = good.clone().into_bytes();
        let last = bad.len() - 2;
        bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8(bad).unwrap();
        for cookie in [
            bad.as_str(),
            "__Host-session=",
            "__Host-session=%%%",
            "__Host-session=\u{e9}",
        ] {
            let (status, h, body) = send(&app, "GET", "/read", &[cookie]).await;
            assert_eq!(
                (status, body.as_str()),
                (StatusCode::OK, "none"),
                "{cookie}"
            );
            assert!(set_cookies(&h).iter().all(|c| c.contains("Max-Age=0")));
        }
    }
}

#[tokio::test]
async fn login_regenerates_and_logout_replay_is_refused() {
    let app = memory_app();
    let (_, h, _) = send(&app, "POST", "/write", &[]).await;
    let before = cookie_pair(&h);
    let (_, h, _) = send(&app, "POST", "/login", &[&before]).await;
    let after = cookie_pair(&h);
    assert_ne!(before, after);
    assert_eq!(send(&app, "GET", "/whoami", &[&after]).await.2, "alice");
    assert_eq!(
        send(&app, "GET", "/read", &[&after]).await.2,
        "v",
        "data kept across regenerate"
    );
    assert_eq!(
        send(&app, "GET", "/whoami", &[&before]).await.2,
        "anonymous",
        "old id dead"
    );
    let (_, h, _) = send(&app, "POST", "/logout", &[&after]).await;
    assert_eq!(
        set_cookies(&h),
        ["__Host-session=; HttpOnly; SameSite=Lax; Secure; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"]
            .map(String::from)
            .to_vec()
    );
    assert_eq!(
        send(&app, "GET", "/whoami", &[&after]).await.2,
        "anonymous",
        "replay after logout"
    );
}

#[tokio::test]
async fn ids_in_urls_are_ignored() {
    let app = memory_app();
    let (_, h, _) = send(&app, "POST", "/login", &[]).await;
    let pair = cookie_pair(&h);
    let (_, _, body) = send(&app, "GET", &format!("/whoami?{pair}"), &[]).await;
    assert_eq!(body, "anonymous");
}

#[tokio::test]
async fn handler_without_layer_is_a_500_not_a_panic() {
    let app: Router = Router::new().route("/read", get(read));
    let (status, _, body) = send(&app, "GET", "/read", &[]).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n")
    );
}

#[tokio::test]
async fn oversized_cookie_session_is_a_loud_500() {
    async fn big(session: Session) -> Result<&'static str, SessionError> {
        session.insert("blob", "x".repeat(5000)).await?;
        Ok("ok")
    }
    let manager = SessionManager::builder()
        .signed_cookies(Keyring::new(SecretKey::generate()))
        .build()
        .unwrap();
    let app = Router::new()
        .route("/big", post(big))
        .layer(SessionLayer::new(manager));
    let (status, h, body) = send(&app, "POST", "/big", &[]).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(h.get(header::SET_COOKIE).is_none());
    assert!(body.contains("exceeds the 4096-byte limit"), "{body}");
}

/// The network to a store, switched off or made slow: stands in for the
/// *network failure*, not for a real backend (those are tested in their crates).
#[derive(Debug, Default)]
struct Network {
    down: AtomicBool,
    slow: AtomicBool,
}

#[async_trait]
impl Gate for Network {
    async fn before(&self, _: Call) -> latch::Result<()> {
        if self.slow.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        if self.down.load(Ordering::SeqCst) {
            return Err(latch::Error::store(
                "talking to the store",
                std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    "10.0.0.7:6379 refused",
                ),
            ));
        }
        Ok(())
    }
}

#[tokio::test]
async fn store_outage_is_a_plain_503_and_recovers() {
    let store = Arc::new(Gated::new(Arc::new(MemoryStore::new()), Network::default()));
    let manager = SessionManager::builder()
        .shared_store(store.clone())
        .store_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let app = app(manager);
    let (_, h, _) = send(&app, "POST", "/write", &[]).await;
    let cookie = cookie_pair(&h);

    store.gate.down.store(true, Ordering::SeqCst);
    let (status, h, body) = send(&app, "GET", "/read", &[&cookie]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        "Service temporarily unavailable; please try again shortly.\n"
    );
    assert_eq!(h[header::RETRY_AFTER], "1");
    assert!(!body.contains("10.0.0.7"), "internal detail leaked");
    let (status, _, _) = send(&app, "POST", "/write", &[]).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "a failed create is not acknowledged"
    );
    let (status, _, body) = send(&app, "GET", "/plain", &[&cookie]).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "plain"),
        "untouched routes unaffected"
    );

    store.gate.down.store(false, Ordering::SeqCst);
    store.gate.slow.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let (status, _, _) = send(&app, "GET", "/read", &[&cookie]).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "timeout not applied: {:?}",
        started.elapsed()
    );

    store.gate.slow.store(false, Ordering::SeqCst);
    let (status, _, body) = send(&app, "GET", "/read", &[&cookie]).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "v"),
        "recovered without restart"
    );
}

#[tokio::test]
async fn new_sessions_record_user_agent_and_client_address() {
    use axum::extract::ConnectInfo;
    let manager = SessionManager::builder()
        .store(MemoryStore::new())
        .build()
        .unwrap();
    let store = Arc::clone(manager.store().unwrap());
    let app = app(manager);
    let long_agent = format!("Mozilla/5.0 {}", "x".repeat(400));
    let mut req = Request::builder()
        .method("POST")
        .uri("/login")
        .header(header::USER_AGENT, &long_agent)
        .body(Body::empty())
        .unwrap();
    let addr: std::net::SocketAddr = "192.0.2.7:4242".parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(addr));
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let devices = store
        .user_index()
        .unwrap()
        .list_by_user("alice", 0)
        .await
        .unwrap();
    assert_eq!(devices.len(), 1);
    let agent = devices[0].user_agent.as_deref().unwrap();
    assert_eq!(agent.len(), 256, "user agent is truncated to 256 bytes");
    assert!(long_agent.starts_with(agent));
    assert_eq!(devices[0].ip.as_deref(), Some("192.0.2.7"));
}

/// Sign in as alice from `peer` with these `X-Forwarded-For` lines; returns
/// the address the devices list recorded and the one `ClientIp` gave.
async fn sign_in_through(
    proxies: Option<latch_axum::TrustedProxies>,
    peer: &str,
    forwarded: &[&str],
) -> (Option<String>, String) {
    use axum::extract::ConnectInfo;
    use latch_axum::ClientIp;
    let manager = SessionManager::builder()
        .store(MemoryStore::new())
        .build()
        .unwrap();
    let store = Arc::clone(manager.store().unwrap());
    let mut layer = SessionLayer::new(manager);
    if let Some(proxies) = proxies {
        layer = layer.trusted_proxies(proxies);
    }
    let app = Router::new()
        .route(
            "/login",
            post(|ClientIp(ip): ClientIp, session: Session| async move {
                session.log_in("alice").await.unwrap();
                ip.map_or_else(|| "none".to_owned(), |ip| ip.to_string())
            }),
        )
        .layer(layer);
    let mut req = Request::builder().method("POST").uri("/login");
    for line in forwarded {
        req = req.header("x-forwarded-for", *line);
    }
    let mut req = req.body(Body::empty()).unwrap();
    let peer: std::net::SocketAddr = peer.parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(peer));
    let res = app.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let said =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    let devices = store
        .user_index()
        .unwrap()
        .list_by_user("alice", 0)
        .await
        .unwrap();
    (devices[0].ip.clone(), said)
}

#[tokio::test]
async fn a_forwarded_address_is_believed_only_from_a_trusted_proxy() {
    let proxies = || Some(latch_axum::TrustedProxies::new(["10.0.0.0/8"]).unwrap());

    // Behind the proxy: the hop the proxy appended, not what the client wrote.
    let (recorded, said) =
        sign_in_through(proxies(), "10.0.0.2:5000", &["6.6.6.6, 198.51.100.7"]).await;
    assert_eq!(recorded.as_deref(), Some("198.51.100.7"));
    assert_eq!(said, "198.51.100.7");

    // A client connecting directly cannot choose its address with the header.
    let (recorded, said) = sign_in_through(proxies(), "203.0.113.5:5000", &["10.0.0.9"]).await;
    assert_eq!(recorded.as_deref(), Some("203.0.113.5"));
    assert_eq!(said, "203.0.113.5");

    // Without trusted proxies the header is never read.
    let (recorded, said) = sign_in_through(None, "10.0.0.2:5000", &["198.51.100.7"]).await;
    assert_eq!(recorded.as_deref(), Some("10.0.0.2"));
    assert_eq!(said, "10.0.0.2");
}

#[tokio::test]
async fn a_refused_change_answers_409_without_blaming_concurrency() {
    let manager = SessionManager::builder()
        .store(MemoryStore::new())
        .build()
        .unwrap();
    let app = Router::new()
        .route(
            "/add",
            post(|session: Session| async move {
                // Already at its cap: refused at once, with no other request about.
                let capped = |n: Option<u32>| Some(n.unwrap_or(5) + 1).filter(|n| *n <= 5);
                session.try_update("n", capped).await?;
                Ok::<_, SessionError>("added")
            }),
        )
        .layer(SessionLayer::new(manager));
    let (status, headers, body) = send(&app, "POST", "/add", &[]).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body.contains("Nothing was saved"), "{body}");
    assert!(!body.contains("changed while"), "{body}");
    assert!(set_cookies(&headers).is_empty(), "nothing stored");
}

/// The layer makes a session only for handlers that ask: an untouched route
/// gets no session headers, and tower's `Buffer` between the layer and the
/// handler (its worker calls the service in another task, the response future
/// is polled in the request's) still finds the session.
#[tokio::test]
async fn sessions_reach_handlers_behind_a_buffer() {
    use axum::routing::get;
    use latch_axum::{Session, SessionLayer};
    use tower::ServiceExt as _;
    let manager = latch::SessionManager::builder()
        .store(latch::MemoryStore::new())
        .build()
        .unwrap();
    let app = axum::Router::new()
        .route(
            "/write",
            get(|s: Session| async move {
                s.insert("k", 1).await.unwrap();
                "w"
            }),
        )
        .route("/none", get(|| async { "n" }))
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(
                    |_: tower::BoxError| async { http::StatusCode::SERVICE_UNAVAILABLE },
                ))
                .layer(tower::buffer::BufferLayer::new(8)),
        )
        .layer(SessionLayer::new(manager));
    let written = app
        .clone()
        .oneshot(
            http::Request::get("/write")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(written.status(), 200);
    assert!(written.headers().contains_key("set-cookie"));
    let untouched = app
        .oneshot(
            http::Request::get("/none")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(untouched.status(), 200);
    assert!(!untouched.headers().contains_key("set-cookie"));
    assert!(!untouched.headers().contains_key("vary"));
}
