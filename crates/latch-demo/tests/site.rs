//! The demo site end to end, in-process: sign-up, sign-in, CSRF, devices, API.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use latch::{MemoryStore, SessionManager};
use latch_demo::routes::api::MAX_SCRATCH_BYTES;
use latch_demo::users::Users;
use tower::ServiceExt;

#[derive(Clone)]
struct Site {
    app: Router,
    _dir: Arc<TempDir>,
    _purger: Arc<Vec<latch::PurgeTask>>,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A path no other test (or run) uses, under the system's temporary folder.
fn unique_dir(tag: &str) -> PathBuf {
    let random = latch::SessionId::generate().store_key().to_hex();
    std::env::temp_dir().join(format!(
        "latch-demo-{tag}-{}-{}",
        std::process::id(),
        &random[..12]
    ))
}

fn site() -> Site {
    let manager = SessionManager::builder()
        .store(MemoryStore::new())
        .build()
        .unwrap();
    site_with(manager)
}

/// The demo's routes on `manager`, with users in a fresh folder.
fn site_with(manager: SessionManager) -> Site {
    let dir = unique_dir("test");
    std::fs::create_dir_all(&dir).unwrap();
    let users = Users::open(&dir.join("users.db")).unwrap();
    Site {
        app: latch_demo::app::router(users, manager),
        _dir: Arc::new(TempDir(dir)),
        _purger: Arc::default(),
    }
}

/// The demo's routes on `manager`, with users in a fresh folder and the
/// throttling counters in a store of their own, as the served demo keeps
/// them (`router` keeps them in the sessions' store).
fn site_with_counters_apart(manager: SessionManager, tag: &str, new_sessions: u32) -> Site {
    let dir = unique_dir(tag);
    std::fs::create_dir_all(&dir).unwrap();
    let keys = latch::Keyring::new(latch::SecretKey::generate());
    let state = latch_demo::state::AppState {
        users: Users::open(&dir.join("users.db")).unwrap(),
        manager,
        limits: latch_demo::limits::Limits::new(Arc::new(MemoryStore::new()), new_sessions)
            .unwrap(),
        known_browsers: latch_demo::known_browsers::KnownBrowsers::new(&keys, true).unwrap(),
        scheme: "http",
        proxies: latch_axum::TrustedProxies::default(),
    };
    Site {
        app: latch_demo::app::router_with(state),
        _dir: Arc::new(TempDir(dir)),
        _purger: Arc::default(),
    }
}

/// A browser-like client: keeps its cookie, sends same-origin fetch metadata.
#[derive(Clone, Default)]
struct Client {
    cookie: Option<String>,
    /// The address the site sees (none: the in-process default, "unknown").
    peer: Option<std::net::SocketAddr>,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn csrf(&self) -> String {
        let marker = "name=\"csrf_token\" value=\"";
        let start = self.body.find(marker).expect("page has a CSRF field") + marker.len();
        self.body[start..].split('"').next().unwrap().to_owned()
    }

    fn location(&self) -> &str {
        self.headers[header::LOCATION].to_str().unwrap()
    }
}

impl Client {
    async fn send(&mut self, site: &Site, req: http::request::Builder, body: Body) -> Reply {
        let req = match &self.cookie {
            Some(c) => req.header(header::COOKIE, c),
            None => req,
        };
        let req = match self.peer {
            Some(peer) => req.extension(axum::extract::ConnectInfo(peer)),
            None => req,
        };
        let res = site
            .app
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let (parts, body) = res.into_parts();
        // A small cookie jar: one value per name, removals honoured.
        let mut jar: BTreeMap<String, String> = self
            .cookie
            .iter()
            .flat_map(|c| c.split("; "))
            .filter_map(|pair| pair.split_once('='))
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        for set in parts.headers.get_all(header::SET_COOKIE) {
            let set = set.to_str().unwrap();
            let (name, value) = set.split(';').next().unwrap().split_once('=').unwrap();
            if set.contains("Max-Age=0") {
                jar.remove(name);
            } else {
                jar.insert(name.to_owned(), value.to_owned());
            }
        }
        self.cookie = (!jar.is_empty()).then(|| {
            jar.iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        });
        let body = String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    async fn get(&mut self, site: &Site, uri: &str) -> Reply {
        self.send(site, Request::get(uri), Body::empty()).await
    }

    async fn post(&mut self, site: &Site, uri: &str, form: &[(&str, &str)]) -> Reply {
        self.post_as(site, uri, "application/x-www-form-urlencoded", form)
            .await
    }

    /// `post` with the given `Content-Type`.
    async fn post_as(
        &mut self,
        site: &Site,
        uri: &str,
        content_type: &str,
        form: &[(&str, &str)],
    ) -> Reply {
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let req = Request::post(uri)
            .header(header::CONTENT_TYPE, content_type)
            .header("sec-fetch-site", "same-origin");
        self.send(site, req, Body::from(body)).await
    }

    /// Fetch `form_page`, then post `fields` to `action` with its CSRF token.
    async fn submit(
        &mut self,
        site: &Site,
        form_page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> Reply {
        let token = self.get(site, form_page).await.csrf();
        let mut all = fields.to_vec();
        all.push(("csrf_token", &token));
        self.post(site, action, &all).await
    }

    async fn signup(&mut self, site: &Site, user: &str) -> Reply {
        self.submit(
            site,
            "/signup",
            "/signup",
            &[("username", user), ("password", "correct horse")],
        )
        .await
    }

    async fn login(&mut self, site: &Site, user: &str, password: &str) -> Reply {
        self.submit(
            site,
            "/login",
            "/login",
            &[("username", user), ("password", password)],
        )
        .await
    }

    async fn me(&mut self, site: &Site) -> StatusCode {
        self.get(site, "/api/me").await.status
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn signup_signs_in_and_shows_the_user() {
    let site = site();
    let mut c = Client::default();
    let r = c.signup(&site, "alice").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/");
    let home = c.get(&site, "/").await;
    assert!(home.body.contains("Hello, <b>alice</b>"));
    assert!(
        home.body.contains("Welcome! Your account is ready."),
        "flash shown"
    );
    assert!(
        !c.get(&site, "/").await.body.contains("Welcome!"),
        "flash shown once"
    );
    assert!(
        home.body.contains("action=\"/logout\""),
        "signed-in pages carry the sign-out form"
    );
    assert_eq!(home.headers[header::CACHE_CONTROL], "no-store");
}

#[tokio::test]
async fn failed_sign_in_is_401_and_says_nothing_specific() {
    let site = site();
    Client::default().signup(&site, "bob").await;
    let mut c = Client::default();
    let wrong_password = c.login(&site, "bob", "not the password").await;
    let unknown_user = c.login(&site, "nobody", "correct horse").await;
    for r in [&wrong_password, &unknown_user] {
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r.body.contains("Wrong username or password."));
        assert!(r.body.contains("action=\"/login\""), "form shown again");
    }
    assert_eq!(c.me(&site).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_form_type_in_capitals_is_still_a_form() {
    // Media types are case-insensitive; axum's `Form` alone answered 415.
    let site = site();
    Client::default().signup(&site, "carol").await;
    let mut c = Client::default();
    for content_type in [
        "Application/X-WWW-Form-Urlencoded",
        "APPLICATION/X-WWW-FORM-URLENCODED; charset=UTF-8",
    ] {
        let token = c.get(&site, "/login").await.csrf();
        let fields = [
            ("username", "carol"),
            ("password", "not the password"),
            ("csrf_token", token.as_str()),
        ];
        let r = c.post_as(&site, "/login", content_type, &fields).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{content_type}");
    }
    let token = c.get(&site, "/login").await.csrf();
    let fields = [
        ("username", "carol"),
        ("password", "correct horse"),
        ("csrf_token", token.as_str()),
    ];
    let r = c
        .post_as(
            &site,
            "/login",
            "Application/x-www-form-urlencoded",
            &fields,
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(c.me(&site).await, StatusCode::OK);
    // Another type is still refused, whatever its case.
    let token = c.get(&site, "/login").await.csrf();
    let fields = [("csrf_token", token.as_str())];
    let r = c.post_as(&site, "/login", "Text/Plain", &fields).await;
    assert_ne!(r.status, StatusCode::SEE_OTHER);
    assert!(r.status.is_client_error(), "{}", r.status);
}

#[tokio::test]
async fn sign_in_regenerates_the_session_id() {
    let site = site();
    Client::default().signup(&site, "carol").await;
    let mut c = Client::default();
    let token = c.get(&site, "/login").await.csrf();
    let before = c.cookie.clone().unwrap();
    let r = c
        .post(
            &site,
            "/login",
            &[
                ("username", "carol"),
                ("password", "correct horse"),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let after = c.cookie.clone().unwrap();
    assert_ne!(before, after);
    assert_eq!(c.me(&site).await, StatusCode::OK);
    let mut fixated = Client {
        cookie: Some(before),
        peer: None,
    };
    assert_eq!(
        fixated.me(&site).await,
        StatusCode::UNAUTHORIZED,
        "pre-login id still works"
    );
}

#[tokio::test]
async fn forms_without_a_valid_token_or_from_another_site_are_refused() {
    let site = site();
    Client::default().signup(&site, "dave").await;
    let mut c = Client::default();
    let token = c.get(&site, "/login").await.csrf();
    let creds = [("username", "dave"), ("password", "correct horse")];
    // No token.
    assert_eq!(
        c.post(&site, "/login", &creds).await.status,
        StatusCode::FORBIDDEN
    );
    // Another session's token.
    let other = Client::default().get(&site, "/login").await.csrf();
    let mut with_other = creds.to_vec();
    with_other.push(("csrf_token", &other));
    assert_eq!(
        c.post(&site, "/login", &with_other).await.status,
        StatusCode::FORBIDDEN
    );
    // The right token, but a cross-site request.
    let mut good = creds.to_vec();
    good.push(("csrf_token", &token));
    let body = good
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let req = Request::post("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "cross-site");
    assert_eq!(
        c.send(&site, req, Body::from(body)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        c.me(&site).await,
        StatusCode::UNAUTHORIZED,
        "no state changed"
    );
    // And the right token from the same site works.
    assert_eq!(
        c.post(&site, "/login", &good).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn csrf_tokens_are_masked_per_response() {
    let site = site();
    let mut c = Client::default();
    let a = c.get(&site, "/login").await.csrf();
    let b = c.get(&site, "/login").await.csrf();
    assert_ne!(a, b, "same token bytes twice");
    for token in [a, b] {
        let r = c
            .post(
                &site,
                "/signup",
                &[
                    ("username", "erin"),
                    ("password", "x"),
                    ("csrf_token", &token),
                ],
            )
            .await;
        assert_ne!(
            r.status,
            StatusCode::FORBIDDEN,
            "a masked token was refused"
        );
    }
}

#[tokio::test]
async fn get_requests_never_change_state() {
    let site = site();
    Client::default().signup(&site, "gina").await;
    let mut c = Client::default();
    let r = c
        .get(&site, "/login?username=gina&password=correct+horse")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        c.get(&site, "/logout").await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert_eq!(c.me(&site).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sign_out_kills_the_session_and_a_replay_is_refused() {
    let site = site();
    let mut c = Client::default();
    c.signup(&site, "frank").await;
    let cookie = c.cookie.clone().unwrap();
    let token = c.get(&site, "/").await.csrf();
    let r = c.post(&site, "/logout", &[("csrf_token", &token)]).await;
    assert_eq!(
        (r.status, r.location()),
        (StatusCode::SEE_OTHER, "/login?bye=1")
    );
    let removal = r.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        removal.starts_with("__Host-session=;")
            && removal.contains("Path=/")
            && removal.contains("Max-Age=0")
    );
    assert!(
        c.get(&site, "/login?bye=1")
            .await
            .body
            .contains("You are signed out.")
    );
    let mut replay = Client {
        cookie: Some(cookie),
        peer: None,
    };
    assert_eq!(replay.me(&site).await, StatusCode::UNAUTHORIZED);
    let profile = replay.get(&site, "/profile").await;
    assert_eq!(
        (profile.status, profile.location()),
        (StatusCode::SEE_OTHER, "/login")
    );
}

#[tokio::test]
async fn devices_list_and_revoke_from_another_device() {
    let site = site();
    let mut laptop = Client::default();
    laptop.signup(&site, "hana").await;
    let mut phone = Client::default();
    assert_eq!(
        phone.login(&site, "hana", "correct horse").await.status,
        StatusCode::SEE_OTHER
    );
    let page = laptop.get(&site, "/devices").await;
    assert_eq!(page.body.matches("<tr class=\"device\">").count(), 2);
    assert_eq!(page.body.matches("this device").count(), 1);
    // Revoke the phone (the only other device listed) from the laptop.
    let marker = "name=\"key\" value=\"";
    let start = page.body.find(marker).unwrap() + marker.len();
    let key = page.body[start..start + 64].to_owned();
    let r = laptop
        .post(
            &site,
            "/devices/revoke",
            &[("csrf_token", &page.csrf()), ("key", &key)],
        )
        .await;
    assert_eq!(
        (r.status, r.location()),
        (StatusCode::SEE_OTHER, "/devices")
    );
    assert!(
        laptop
            .get(&site, "/devices")
            .await
            .body
            .contains("That device is signed out.")
    );
    assert_eq!(
        phone.me(&site).await,
        StatusCode::UNAUTHORIZED,
        "revoked device still in"
    );
    assert_eq!(laptop.me(&site).await, StatusCode::OK);
}

#[tokio::test]
async fn sign_out_everywhere_else_keeps_this_device() {
    let site = site();
    let mut a = Client::default();
    a.signup(&site, "ivan").await;
    let mut others = vec![Client::default(), Client::default()];
    for o in &mut others {
        o.login(&site, "ivan", "correct horse").await;
    }
    let r = a
        .submit(&site, "/devices", "/devices/revoke-others", &[])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        a.get(&site, "/devices")
            .await
            .body
            .contains("Signed out 2 other sessions.")
    );
    for o in &mut others {
        assert_eq!(o.me(&site).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(a.me(&site).await, StatusCode::OK);
}

#[tokio::test]
async fn profile_shows_the_session_facts() {
    let site = site();
    let mut c = Client::default();
    c.signup(&site, "judy").await;
    let body = c.get(&site, "/profile").await.body;
    for id in [
        "created",
        "last-seen",
        "idle-expiry",
        "absolute-expiry",
        "remember",
    ] {
        assert!(body.contains(&format!("id=\"{id}\"")), "{id} missing");
    }
    assert!(body.contains(" UTC</td>"));
}

#[tokio::test]
async fn api_me_and_healthz() {
    let site = site();
    let mut c = Client::default();
    let health = c.get(&site, "/healthz").await;
    assert_eq!(
        (health.status, health.body.as_str()),
        (StatusCode::OK, "ok")
    );
    assert!(
        health.headers.get(header::SET_COOKIE).is_none()
            && health.headers.get(header::VARY).is_none()
    );
    assert_eq!(c.me(&site).await, StatusCode::UNAUTHORIZED);
    c.signup(&site, "kate").await;
    let me: serde_json::Value = serde_json::from_str(&c.get(&site, "/api/me").await.body).unwrap();
    assert_eq!(me["user"], "kate");
    for field in [
        "created_at",
        "last_seen",
        "idle_expires_at",
        "absolute_expires_at",
    ] {
        assert!(me["session"][field].is_i64(), "{field}");
    }
}

async fn put_scratch(site: &Site, c: &mut Client, key: &str, value: &str) -> StatusCode {
    let req = Request::put(format!("/api/scratch/{key}"))
        .header(header::CONTENT_TYPE, "application/json");
    let body = serde_json::json!({ "value": value }).to_string();
    c.send(site, req, Body::from(body)).await.status
}

#[tokio::test]
async fn scratch_api_reads_and_writes_and_keeps_concurrent_writes() {
    let site = site();
    let mut c = Client::default();
    assert_eq!(c.get(&site, "/api/scratch").await.body, "{}");
    assert_eq!(
        put_scratch(&site, &mut c, "first", "1").await,
        StatusCode::NO_CONTENT
    );
    assert!(c.cookie.is_some(), "PUT created the session");
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let (site, mut client) = (site.clone(), c.clone());
            tokio::spawn(async move {
                put_scratch(&site, &mut client, &format!("k{i}"), &i.to_string()).await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::NO_CONTENT);
    }
    let map: BTreeMap<String, String> =
        serde_json::from_str(&c.get(&site, "/api/scratch").await.body).unwrap();
    assert_eq!(map.len(), 65, "lost writes: {map:?}");
}

/// Attack round 4: a scratch PUT reads at most 8 KiB (a value is at most 1
/// KiB); a megabyte of JSON used to be buffered before being refused. The
/// largest value, written with six-byte escapes, still fits.
#[tokio::test]
async fn scratch_puts_read_a_bounded_body() {
    let site = site();
    let mut c = Client::default();
    let huge = "a".repeat(100 * 1024);
    assert_eq!(
        put_scratch(&site, &mut c, "big", &huge).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let escaped = "\u{1}".repeat(1024);
    assert_eq!(
        put_scratch(&site, &mut c, "esc", &escaped).await,
        StatusCode::NO_CONTENT
    );
}

/// A6: what one session may hold is bounded: the scratch map refuses a write
/// that would take it past its byte limit (replacing an entry with a smaller
/// value still works), and the stored session never outgrows the limit
/// however many requests try, concurrently or not; a write refused after a
/// concurrent change is a 409, never acknowledged and then dropped.
#[tokio::test]
async fn a6_scratch_map_is_bounded() {
    let site = site();
    let mut c = Client::default();
    let value = "v".repeat(1024);
    let mut fit = 0;
    while put_scratch(&site, &mut c, &format!("{fit:0>64}"), &value).await == StatusCode::NO_CONTENT
    {
        fit += 1;
        assert!(fit < 100, "no limit");
    }
    // 64-byte keys, 1 KiB values and their JSON punctuation.
    let entry = 64 + 1024 + 6;
    assert_eq!(fit, MAX_SCRATCH_BYTES / entry, "as many as fit");
    for i in 0..5 {
        let key = format!("{:0>64}", fit + 1 + i);
        assert_eq!(
            put_scratch(&site, &mut c, &key, &value).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "entry {i} past the limit"
        );
    }
    // Counted as stored: a value of control characters takes six bytes each
    // in JSON, so it cannot slip 6x the limit past it.
    let escaped = "\u{1}".repeat(1024);
    assert_eq!(
        put_scratch(&site, &mut Client::default(), "e", &escaped).await,
        StatusCode::NO_CONTENT
    );
    let mut other = Client::default();
    let mut stored = 0;
    while put_scratch(&site, &mut other, &format!("e{stored}"), &escaped).await
        == StatusCode::NO_CONTENT
    {
        stored += 1;
        assert!(stored < 100, "no limit");
    }
    assert_eq!(stored, MAX_SCRATCH_BYTES / (6 * 1024 + 10));
    let key = format!("{:0>64}", 3);
    assert_eq!(
        put_scratch(&site, &mut c, &key, "new").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        put_scratch(&site, &mut c, "big", &"v".repeat(1025)).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // Concurrent writers racing for the room that is left: every write that
    // was acknowledged is there, and the map stays within its limit.
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let (site, mut client) = (site.clone(), c.clone());
            let value = value.clone();
            tokio::spawn(async move {
                let key = format!("race{i}");
                (
                    key.clone(),
                    put_scratch(&site, &mut client, &key, &value).await,
                )
            })
        })
        .collect();
    let mut acked = Vec::new();
    for t in tasks {
        let (key, status) = t.await.unwrap();
        assert!(
            [
                StatusCode::NO_CONTENT,
                StatusCode::UNPROCESSABLE_ENTITY,
                StatusCode::CONFLICT
            ]
            .contains(&status),
            "{status}"
        );
        if status == StatusCode::NO_CONTENT {
            acked.push(key);
        }
    }
    let map: BTreeMap<String, String> =
        serde_json::from_str(&c.get(&site, "/api/scratch").await.body).unwrap();
    assert_eq!(map[&key], "new");
    for key in acked {
        assert!(map.contains_key(&key), "{key} was acknowledged and lost");
    }
    let bytes = serde_json::to_vec(&map).unwrap().len();
    assert!(bytes <= MAX_SCRATCH_BYTES, "{bytes} bytes");
}

#[tokio::test]
async fn scratch_put_needs_json_and_same_origin() {
    let site = site();
    let mut c = Client::default();
    let form = Request::put("/api/scratch/a").header(header::CONTENT_TYPE, "text/plain");
    assert_eq!(
        c.send(&site, form, Body::from("{\"value\":\"x\"}"))
            .await
            .status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let cross = Request::put("/api/scratch/a")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::HOST, "demo.example")
        .header(header::ORIGIN, "https://evil.example");
    assert_eq!(
        c.send(&site, cross, Body::from("{\"value\":\"x\"}"))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(c.get(&site, "/api/scratch").await.body, "{}");
    // Issue 11: the same host under another scheme is another origin (a page
    // injected into plain http must not write to the https site, and the
    // other way round).
    for origin in ["https://demo.example", "http://demo.example"] {
        let req = Request::put("/api/scratch/a")
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::HOST, "demo.example")
            .header(header::ORIGIN, origin);
        let status = c
            .send(&site, req, Body::from("{\"value\":\"x\"}"))
            .await
            .status;
        let expected = if origin.starts_with("http:") {
            StatusCode::NO_CONTENT
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(status, expected, "{origin} to an http demo");
    }
}

/// C5: a response that shows a signed-in user's data is kept out of every
/// cache, even when no cookie is set on it; anonymous reads of the session
/// are not forced out of caches.
#[tokio::test]
async fn c5_responses_that_read_a_signed_in_session_are_not_stored() {
    let site = site();
    let mut c = Client::default();
    let anonymous = c.get(&site, "/api/scratch").await;
    assert!(anonymous.headers.get(header::CACHE_CONTROL).is_none());
    c.signup(&site, "cachy").await;
    for path in ["/api/me", "/api/scratch"] {
        let reply = c.get(&site, path).await;
        assert!(reply.headers.get(header::SET_COOKIE).is_none(), "{path}");
        assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store", "{path}");
        assert_eq!(reply.headers[header::VARY], "Cookie", "{path}");
    }
}

#[tokio::test]
async fn pages_carry_security_headers() {
    let site = site();
    let r = Client::default().get(&site, "/login").await;
    assert_eq!(r.headers[header::X_FRAME_OPTIONS], "DENY");
    assert_eq!(r.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert!(
        r.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
}

/// The demo as `latch-demo --store store` serves it, in a fresh data
/// directory named after `tag`.
async fn served(store: &str, tag: &str) -> Site {
    let dir = unique_dir(tag);
    let settings = latch_demo::config::Settings::from_args(&demo_args(store, &dir)).unwrap();
    let (app, purger) = latch_demo::serve::app(&settings).await.unwrap();
    Site {
        app,
        _dir: Arc::new(TempDir(dir)),
        _purger: Arc::new(purger),
    }
}

/// The demo's flags for `--store store --data-dir dir`, the rest defaults.
fn demo_args(store: &str, dir: &std::path::Path) -> latch_demo::config::Args {
    use clap::Parser as _;
    latch_demo::config::Args::try_parse_from([
        "latch-demo".as_ref(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--store".as_ref(),
        store.as_ref(),
        "--data-dir".as_ref(),
        dir.as_os_str(),
    ])
    .unwrap()
}

/// The same flow with sessions and users in PostgreSQL (`LATCH_POSTGRES_URL`).
#[tokio::test]
async fn postgres_store_holds_sessions_and_users() {
    let url = std::env::var("LATCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let dir = std::env::temp_dir().join(format!("latch-demo-pg-{}", std::process::id()));
    let args = demo_args(&url, &dir);
    let settings = latch_demo::config::Settings::from_args(&args).unwrap();
    let (app, _purger) = match latch_demo::serve::app(&settings).await {
        Ok(app) => app,
        Err(e) => {
            latch_conformance::skip_or_fail::<()>("PostgreSQL", &format!("{e:#}"));
            return;
        }
    };
    let site = Site {
        app,
        _dir: Arc::new(TempDir(dir)),
        _purger: Arc::default(),
    };
    let user = format!(
        "pg{}",
        &latch::SessionId::generate().store_key().to_hex()[..12]
    );
    let mut c = Client::default();
    assert_eq!(c.signup(&site, &user).await.status, StatusCode::SEE_OTHER);
    let mut other = Client::default();
    assert_eq!(
        other.login(&site, &user, "correct horse").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(other.me(&site).await, StatusCode::OK);
    assert_eq!(
        c.submit(&site, "/devices", "/devices/revoke-others", &[])
            .await
            .status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(other.me(&site).await, StatusCode::UNAUTHORIZED);
    assert_eq!(c.me(&site).await, StatusCode::OK);
}

/// With sessions in the cookie, the scratch map is capped to what a cookie
/// can carry: filling it gets 422s, never the 500 of a session too large for
/// its cookie (found by the third outside attack).
#[tokio::test]
async fn cookie_sessions_refuse_a_scratch_map_too_large_for_a_cookie() {
    for store in ["cookie-signed", "cookie-encrypted"] {
        let site = served(store, "scratch").await;
        let mut c = Client::default();
        c.signup(&site, "maya").await;
        let value = "\u{1}".repeat(1000); // six bytes each in JSON
        let mut statuses = Vec::new();
        for i in 0..8 {
            statuses
                .push(put_scratch(&site, &mut c, &format!("k{i}"), &value[..100 * (i + 1)]).await);
        }
        assert!(
            statuses
                .iter()
                .all(|s| *s == StatusCode::NO_CONTENT || *s == StatusCode::UNPROCESSABLE_ENTITY),
            "{store}: {statuses:?}"
        );
        assert!(
            statuses.contains(&StatusCode::UNPROCESSABLE_ENTITY),
            "{store}: never capped"
        );
        // The session still works, with what was accepted.
        assert_eq!(c.me(&site).await, StatusCode::OK, "{store}");
        let map: BTreeMap<String, String> =
            serde_json::from_str(&c.get(&site, "/api/scratch").await.body).unwrap();
        assert!(!map.is_empty(), "{store}");
    }
}

/// Cookie-only sessions in the demo are revocable too (E3): logout and "sign
/// out everywhere else" refuse old copies of the cookie.
#[tokio::test]
async fn cookie_sessions_are_revocable_in_the_demo() {
    for store in ["cookie-signed", "cookie-encrypted"] {
        let site = served(store, "revocable").await;
        let mut a = Client::default();
        a.signup(&site, "lena").await;
        let copy = a.cookie.clone();
        let mut b = Client::default();
        b.login(&site, "lena", "correct horse").await;
        assert_eq!(b.me(&site).await, StatusCode::OK, "{store}");
        // Make sure the revocation happens in a later second than the sign-ins.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let r = a
            .submit(&site, "/devices", "/devices/revoke-others", &[])
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{store}");
        assert_eq!(
            b.me(&site).await,
            StatusCode::UNAUTHORIZED,
            "{store}: other device still in"
        );
        assert_eq!(
            a.me(&site).await,
            StatusCode::OK,
            "{store}: this device signed out"
        );
        let mut replay = Client {
            cookie: copy,
            peer: None,
        };
        assert_eq!(
            replay.me(&site).await,
            StatusCode::UNAUTHORIZED,
            "{store}: old copy accepted"
        );
        let fresh = a.cookie.clone();
        let token = a.get(&site, "/").await.csrf();
        a.post(&site, "/logout", &[("csrf_token", &token)]).await;
        let mut replay = Client {
            cookie: fresh,
            peer: None,
        };
        assert_eq!(
            replay.me(&site).await,
            StatusCode::UNAUTHORIZED,
            "{store}: replay after logout"
        );
    }
}

/// Attack round 10: revoking one device on a cookie store (which keeps no
/// list of a user's sessions) answered 500; it is "no such device" now.
#[tokio::test]
async fn revoking_one_device_on_a_cookie_store_is_no_such_device() {
    for store in ["cookie-signed", "cookie-encrypted"] {
        let site = served(store, "revoke-one").await;
        let mut a = Client::default();
        a.signup(&site, "mira").await;
        let key = "ab".repeat(32);
        let r = a
            .submit(&site, "/devices", "/devices/revoke", &[("key", &key)])
            .await;
        assert_eq!(
            (r.status, r.location()),
            (StatusCode::SEE_OTHER, "/devices"),
            "{store}"
        );
        let page = a.get(&site, "/devices").await;
        assert!(page.body.contains("No such device."), "{store}");
        assert_eq!(a.me(&site).await, StatusCode::OK, "{store}");
    }
}

/// C6, end to end as the attack of issue 11 ran it: a valid session cookie
/// sent under `<U+00A0>__Host-session` (which browsers store as a different,
/// unprefixed cookie that any page of the host can set) signs nobody in, and
/// planted beside the real cookie it neither replaces it nor signs the user
/// out.
#[tokio::test]
async fn c6_a_planted_cookie_with_a_unicode_space_before_the_name_is_ignored() {
    let site = site();
    let mut victim = Client::default();
    victim.signup(&site, "victim").await;
    let mut attacker = Client::default();
    attacker.signup(&site, "attacker").await;
    let session_pair = |c: &Client| {
        let jar = c.cookie.clone().unwrap();
        let pair = jar.split("; ").find(|p| p.starts_with("__Host-session="));
        pair.unwrap().to_owned()
    };
    let real = session_pair(&victim);
    let planted_value = session_pair(&attacker);
    let planted_value = planted_value.split_once('=').unwrap().1;
    for space in ["\u{a0}", "\u{2000}", "\u{3000}", "\u{85}", "\u{2028}"] {
        let planted = format!("{space}__Host-session={planted_value}");
        let mut alone = Client {
            cookie: Some(planted.clone()),
            peer: None,
        };
        assert_eq!(alone.me(&site).await, StatusCode::UNAUTHORIZED, "{space:?}");
        for header in [format!("{planted}; {real}"), format!("{real}; {planted}")] {
            let mut both = Client {
                cookie: Some(header),
                peer: None,
            };
            let reply = both.get(&site, "/api/me").await;
            assert_eq!(reply.status, StatusCode::OK, "{space:?}");
            assert!(reply.body.contains("\"user\":\"victim\""), "{}", reply.body);
            assert!(reply.headers.get(header::SET_COOKIE).is_none());
        }
    }
}

async fn sign_in(site: &Site, c: &mut Client, user: &str, password: &str) -> Reply {
    c.submit(
        site,
        "/login",
        "/login",
        &[("username", user), ("password", password)],
    )
    .await
}

/// A7: sign-in attempts are throttled per account before any password is
/// checked: after five attempts the right password is refused too, with a 429
/// and `Retry-After`; other accounts are not affected; a successful sign-in
/// forgives the account's count.
/// Attack round 9: a sign-in that can match no account (a name or a password
/// length no sign-up accepts) is answered 401 at once, without a throttle
/// counter (a flood of them from ever new addresses left one each) and
/// without counting against the client or the account.
#[tokio::test]
async fn sign_ins_that_can_match_no_account_are_not_counted() {
    use latch_demo::limits::{PER_ACCOUNT, PER_CLIENT};
    let site = site();
    Client::default().signup(&site, "fern").await;
    let mut guesser = Client::default();
    let too_long = "x".repeat(latch_demo::users::MAX_PASSWORD_BYTES + 1);
    for i in 0..2 * PER_CLIENT {
        for (user, password) in [
            ("fern", "short"),
            ("fern", too_long.as_str()),
            ("a b", "long enough"),
        ] {
            let reply = sign_in(&site, &mut guesser, user, password).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "attempt {i} as {user:?}"
            );
        }
    }
    const { assert!(PER_ACCOUNT < 2 * PER_CLIENT) };
    let ok = sign_in(&site, &mut guesser, "fern", "correct horse").await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
}

#[tokio::test]
async fn a7_sign_in_attempts_are_throttled_per_account() {
    use latch_demo::limits::PER_ACCOUNT;
    let site = site();
    let mut owner = Client::default();
    owner.signup(&site, "dana").await;
    owner.signup(&site, "erin").await;
    let mut guesser = Client::default();
    for i in 0..PER_ACCOUNT {
        let reply = sign_in(&site, &mut guesser, "dana", "wrong password").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let reply = sign_in(&site, &mut guesser, "dana", "correct horse").await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = reply.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=300).contains(&wait), "Retry-After {wait}");
    assert!(reply.body.contains("Too many sign-in attempts"));
    assert_eq!(guesser.me(&site).await, StatusCode::UNAUTHORIZED);
    // Another account still signs in, and that forgives erin's count only.
    let ok = sign_in(&site, &mut guesser, "erin", "correct horse").await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let again = sign_in(&site, &mut Client::default(), "DANA", "correct horse").await;
    assert_eq!(
        again.status,
        StatusCode::TOO_MANY_REQUESTS,
        "case does not escape"
    );
}

/// A7, attack round ten: anyone who knew a username spent the account's five
/// attempts per window, and the owner's right password then got 429 from
/// every address. A browser the account signed in from carries a signed
/// known-browser cookie, and its attempts are counted apart from strangers':
/// the owner signs in from it while strangers are locked out, its own
/// guesses are capped as strictly, and a cookie that is forged, moved to
/// another account or missing buys nothing.
#[tokio::test]
async fn a7_strangers_cannot_lock_an_owner_out_of_their_known_browser() {
    use latch_demo::limits::{PER_ACCOUNT, PER_KNOWN_BROWSER};
    let site = site();
    let mut owner = Client::default();
    let signed_up = owner.signup(&site, "gina").await;
    let known = signed_up
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("__Host-known-browser="))
        .expect("sign-up makes the browser known");
    for attribute in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(known.contains(attribute), "{known} lacks {attribute}");
    }
    Client::default().signup(&site, "hank").await;
    let token = owner.get(&site, "/").await.csrf();
    owner
        .post(&site, "/logout", &[("csrf_token", &token)])
        .await;
    assert_eq!(owner.me(&site).await, StatusCode::UNAUTHORIZED);

    // The attack: strangers spend the account's attempts.
    let mut stranger = Client::default();
    for i in 0..PER_ACCOUNT {
        let reply = sign_in(&site, &mut stranger, "gina", "a wrong guess").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "guess {i}");
    }
    let locked = sign_in(&site, &mut Client::default(), "gina", "correct horse").await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS, "strangers");

    // The owner's browser still signs in, and stays known.
    let reply = sign_in(&site, &mut owner, "GINA", "correct horse").await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert_eq!(owner.me(&site).await, StatusCode::OK);
    let token = owner.get(&site, "/").await.csrf();
    owner
        .post(&site, "/logout", &[("csrf_token", &token)])
        .await;

    // Its cookie, tampered with or presented for another account, is a
    // stranger's: hank's attempts are spent too, and gina's cookie does not
    // escape that.
    let jar = owner.cookie.clone().unwrap();
    let mut tampered = Client {
        cookie: Some(jar.replacen("__Host-known-browser=", "__Host-known-browser=A", 1)),
        peer: None,
    };
    let reply = sign_in(&site, &mut tampered, "gina", "correct horse").await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "tampered");
    for _ in 0..PER_ACCOUNT {
        sign_in(&site, &mut Client::default(), "hank", "a wrong guess").await;
    }
    let mut moved = Client {
        cookie: Some(jar.clone()),
        peer: None,
    };
    let reply = sign_in(&site, &mut moved, "hank", "correct horse").await;
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "another account"
    );

    // The known browser's own guesses are capped as strictly.
    for i in 0..PER_KNOWN_BROWSER {
        let reply = sign_in(&site, &mut owner, "gina", "a wrong guess").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "own guess {i}");
    }
    let reply = sign_in(&site, &mut owner, "gina", "correct horse").await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "own guesses");
}

/// Attack round ten: one account signed in 152 times with "remember me" and
/// kept every session, to fill a bounded store. A sign-in past
/// `MAX_SESSIONS_PER_ACCOUNT` ends the account's sessions used longest ago;
/// the others, and other accounts', go on.
#[tokio::test]
async fn an_accounts_sessions_are_capped_and_the_longest_unused_end() {
    use latch_demo::routes::auth::MAX_SESSIONS_PER_ACCOUNT;
    let clock = latch::ManualClock::new(1_800_000_000);
    let manager = SessionManager::builder()
        .store(MemoryStore::new())
        .clock(clock.clone())
        .build()
        .unwrap();
    let site = site_with(manager);
    let mut other = Client::default();
    other.signup(&site, "judy").await;
    let mut first = Client::default();
    first.signup(&site, "ivan").await;
    let mut devices = vec![first];
    let extra = 3;
    for i in 1..MAX_SESSIONS_PER_ACCOUNT + extra {
        // Each from an address of its own (an address gets 20 sign-ins per
        // window) and a second after the last, so "used longest ago" is
        // the order of sign-in.
        clock.advance(1);
        let peer = std::net::SocketAddr::from(([10, 0, 0, u8::try_from(i).unwrap()], 5000));
        let mut device = Client {
            cookie: None,
            peer: Some(peer),
        };
        let reply = sign_in(&site, &mut device, "ivan", "correct horse").await;
        assert_eq!(
            reply.status,
            StatusCode::SEE_OTHER,
            "sign-in {i}: {}",
            reply.body
        );
        devices.push(device);
    }
    let alive: Vec<bool> = {
        let mut alive = Vec::new();
        for device in &mut devices {
            alive.push(device.me(&site).await == StatusCode::OK);
        }
        alive
    };
    let expected: Vec<bool> = (0..devices.len()).map(|i| i >= extra).collect();
    assert_eq!(alive, expected, "sessions ended past the cap");
    assert_eq!(other.me(&site).await, StatusCode::OK, "another account's");
    let listed = devices.last_mut().unwrap().get(&site, "/devices").await;
    assert_eq!(
        listed.body.matches("action=\"/devices/revoke\"").count(),
        MAX_SESSIONS_PER_ACCOUNT - 1,
        "every other session is listed with a revoke button"
    );
}

/// A7: one client address gets a bounded number of attempts whatever the
/// accounts (the in-process tests have no address: they share "unknown").
#[tokio::test]
async fn a7_sign_in_attempts_are_throttled_per_client() {
    use latch_demo::limits::{PER_ACCOUNT, PER_CLIENT};
    let site = site();
    let mut c = Client::default();
    let mut statuses = Vec::new();
    for i in 0..PER_CLIENT + 1 {
        // A fresh account name each time stays under the per-account limit.
        let user = format!("nobody{}", i / PER_ACCOUNT);
        statuses.push(sign_in(&site, &mut c, &user, "wrong password").await.status);
    }
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(refused, 1, "{statuses:?}");
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS));
}

/// Usernames are one account whatever their case, and a password over the
/// length limit is told so (not "too short").
#[tokio::test]
async fn usernames_are_case_insensitive_and_long_passwords_say_so() {
    let site = site();
    let mut c = Client::default();
    assert_eq!(c.signup(&site, "Carol").await.status, StatusCode::SEE_OTHER);
    let mut other = Client::default();
    let taken = other.signup(&site, "CAROL").await;
    assert_eq!(taken.status, StatusCode::CONFLICT);
    let ok = sign_in(&site, &mut other, "carol", "correct horse").await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let me: serde_json::Value =
        serde_json::from_str(&other.get(&site, "/api/me").await.body).unwrap();
    assert_eq!(me["user"], "carol");
    let long = "p".repeat(1025);
    let reply = Client::default()
        .submit(
            &site,
            "/signup",
            "/signup",
            &[("username", "dave"), ("password", &long)],
        )
        .await;
    assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(reply.body.contains("at most 1024 bytes"), "{}", reply.body);
}

/// A9: everything the demo creates is readable by its owner only: the data
/// folder, the generated key, the users and sessions database and the WAL
/// and shared-memory files beside it (before the fix: 0755 and 0644).
#[tokio::test]
async fn a9_files_the_demo_creates_are_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let root = unique_dir("perms");
    let dir = root.join("data");
    let settings = latch_demo::config::Settings::from_args(&demo_args("sqlite", &dir)).unwrap();
    let (app, _purger) = latch_demo::serve::app(&settings).await.unwrap();
    let site = Site {
        app,
        _dir: Arc::new(TempDir(root)),
        _purger: Arc::default(),
    };
    Client::default().signup(&site, "perm").await;
    let mode = |name: &str| {
        std::fs::metadata(dir.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(""), 0o700, "the data folder");
    for file in [
        "latch-demo.key",
        "latch-demo.db",
        "latch-demo.db-wal",
        "latch-demo.db-shm",
    ] {
        assert_eq!(mode(file), 0o600, "{file}");
    }
}

/// A6/A7: one client address makes a bounded number of new sessions (by
/// writing without a cookie) and accounts per window; beyond, 429 with
/// `Retry-After`. (In-process requests have no address: they share one.)
#[tokio::test]
async fn new_sessions_and_sign_ups_are_throttled_per_client() {
    use latch_demo::limits::{NEW_SESSIONS_PER_CLIENT, SIGN_UPS_PER_CLIENT};
    let site = site();
    for i in 0..NEW_SESSIONS_PER_CLIENT {
        let status = put_scratch(&site, &mut Client::default(), "k", "v").await;
        assert_eq!(status, StatusCode::NO_CONTENT, "session {i}");
    }
    let mut c = Client::default();
    let req = Request::put("/api/scratch/k").header(header::CONTENT_TYPE, "application/json");
    let reply = c.send(&site, req, Body::from("{\"value\":\"v\"}")).await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(reply.headers.contains_key(header::RETRY_AFTER));
    assert!(
        reply.headers.get(header::SET_COOKIE).is_none(),
        "no session made"
    );
    let site = self::site();
    for i in 0..SIGN_UPS_PER_CLIENT {
        let reply = Client::default().signup(&site, &format!("user{i}")).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER, "sign-up {i}");
    }
    let reply = Client::default().signup(&site, "onemore").await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(reply.body.contains("Too many sign-ups"), "{}", reply.body);
    // Sign-ups refused by the rules, before any hash, are not counted (attack
    // round nine: a flood of them left a counter per address).
    let site = self::site();
    for i in 0..3 * SIGN_UPS_PER_CLIENT {
        let reply = Client::default().signup(&site, "ab").await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid sign-up {i}"
        );
    }
    let reply = Client::default().signup(&site, "valid-after-all").await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
}

/// Attack round 9: a new session the store refuses (full, here) is not
/// counted against the client. Counted anyway, a flood from ever new
/// addresses at a full store left a throttle counter per refused request
/// behind, and the counters in turn filled their own store.
#[tokio::test]
async fn new_sessions_the_store_refuses_are_not_counted() {
    use latch_demo::limits::NEW_SESSIONS_PER_CLIENT;
    // Room for 16 sessions: most new sessions are refused.
    let manager = SessionManager::builder()
        .store(MemoryStore::with_max_sessions(16))
        .build()
        .unwrap();
    let site = site_with_counters_apart(manager, "full", NEW_SESSIONS_PER_CLIENT);
    let (mut made, mut refused) = (0, 0);
    for _ in 0..2 * NEW_SESSIONS_PER_CLIENT {
        match put_scratch(&site, &mut Client::default(), "k", "v").await {
            StatusCode::NO_CONTENT => made += 1,
            StatusCode::SERVICE_UNAVAILABLE => refused += 1,
            other => panic!("{other}: a refused session was counted"),
        }
    }
    assert!(
        made <= 16 && refused >= NEW_SESSIONS_PER_CLIENT,
        "{made} made, {refused} refused"
    );
}

/// Attack round 2: a page on another name that resolves to the demo (DNS
/// rebinding) cannot use it: on loopback the demo answers only `localhost`,
/// `127.0.0.1` and `[::1]` (or the `--allowed-host` names), with any port.
#[tokio::test]
async fn other_host_names_are_misdirected() {
    let site = served("memory", "hosts").await;
    for (host, expected) in [
        ("localhost:8080", StatusCode::OK),
        ("127.0.0.1:1234", StatusCode::OK),
        ("[::1]:8080", StatusCode::OK),
        ("LOCALHOST", StatusCode::OK),
        ("attacker.example", StatusCode::MISDIRECTED_REQUEST),
        ("attacker.example:8080", StatusCode::MISDIRECTED_REQUEST),
        (
            "localhost.attacker.example",
            StatusCode::MISDIRECTED_REQUEST,
        ),
    ] {
        let req = Request::get("/login").header(header::HOST, host);
        let reply = Client::default().send(&site, req, Body::empty()).await;
        assert_eq!(reply.status, expected, "{host}");
    }
    // Attack round 3: what no browser sends is a 400, not a guess at which
    // part counts: a second Host header, user-info and other junk.
    for host in [
        "localhost:8080@attacker.example",
        "localhost:x",
        "local host",
    ] {
        let req = Request::get("/login").header(header::HOST, host);
        let reply = Client::default().send(&site, req, Body::empty()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{host}");
    }
    let req = Request::get("/login")
        .header(header::HOST, "localhost")
        .header(header::HOST, "attacker.example");
    let reply = Client::default().send(&site, req, Body::empty()).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "two Host headers");
}

/// The store is down: every call fails.
#[derive(Debug, Default)]
struct Down(std::sync::atomic::AtomicBool);

#[async_trait::async_trait]
impl latch_conformance::faults::Gate for Down {
    async fn before(&self, _: latch_conformance::faults::Call) -> latch::Result<()> {
        if self.0.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(latch::Error::store_msg("the store is down"));
        }
        Ok(())
    }
}

/// A3 for forms (issue 16): with keys, showing the sign-in and sign-up forms
/// to visitors stores nothing (a crawler used to fill the store), works
/// while the store is down (it used to answer 503), and signing in from such
/// a form works once the store is back.
#[tokio::test]
async fn a3_sign_in_forms_store_nothing_and_work_during_a_store_outage() {
    use latch_conformance::faults::Gated;
    let memory = Arc::new(MemoryStore::new());
    let store = Arc::new(Gated::new(memory.clone(), Down::default()));
    let dir = unique_dir("a3");
    std::fs::create_dir_all(&dir).unwrap();
    let users = Users::open(&dir.join("users.db")).unwrap();
    let manager = SessionManager::builder()
        .shared_store(store.clone())
        .keys(latch::Keyring::new(latch::SecretKey::generate()))
        .build()
        .unwrap();
    let site = Site {
        app: latch_demo::app::router(users, manager),
        _dir: Arc::new(TempDir(dir)),
        _purger: Arc::default(),
    };
    Client::default().signup(&site, "fern").await;
    let rows = memory.len();
    for _ in 0..20 {
        for page in ["/login", "/signup"] {
            assert_eq!(
                Client::default().get(&site, page).await.status,
                StatusCode::OK
            );
        }
    }
    assert_eq!(memory.len(), rows, "showing forms stored sessions");
    store
        .gate
        .0
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let mut c = Client::default();
    let form = c.get(&site, "/login").await;
    assert_eq!(form.status, StatusCode::OK, "the form during an outage");
    store
        .gate
        .0
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let token = form.csrf();
    let reply = c
        .post(
            &site,
            "/login",
            &[
                ("username", "fern"),
                ("password", "correct horse"),
                ("csrf_token", &token),
            ],
        )
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(c.me(&site).await, StatusCode::OK);
}

/// The rows of the demo's sessions table in `db`, each as one text.
fn session_rows(db: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.prepare(
        "SELECT quote(data) || ' ' || coalesce(user_id, '') || ' ' || \
         coalesce(user_agent, '') || ' ' || coalesce(ip, '') FROM latch_sessions",
    )
    .unwrap()
    .query_map([], |r| r.get(0))
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// A3 in the demo as it is served (`serve::app`, not a test-built manager):
/// its sign-in and sign-up forms store nothing for a visitor; and with
/// `--encrypt-at-rest` (T3) the sessions table names no user and holds no
/// session value, while the site works as before.
#[tokio::test]
async fn the_served_demo_stores_nothing_for_forms_and_can_encrypt_at_rest() {
    for encrypt in [false, true] {
        let root = unique_dir("served");
        let dir = root.join("data");
        let mut args = demo_args("sqlite", &dir);
        args.encrypt_at_rest = encrypt;
        let settings = latch_demo::config::Settings::from_args(&args).unwrap();
        let (app, _purger) = latch_demo::serve::app(&settings).await.unwrap();
        let site = Site {
            app,
            _dir: Arc::new(TempDir(root)),
            _purger: Arc::default(),
        };
        let db = dir.join("latch-demo.db");
        for page in ["/login", "/signup"] {
            let reply = Client::default().get(&site, page).await;
            assert_eq!(reply.status, StatusCode::OK);
        }
        assert!(session_rows(&db).is_empty(), "a form view stored a session");

        let mut c = Client::default();
        c.signup(&site, "wilhelmina").await;
        let me = c.get(&site, "/api/me").await;
        assert!(me.body.contains("wilhelmina"), "{}", me.body);
        // The session, and the sign-up throttle's counter beside it.
        let rows = session_rows(&db);
        let naming = rows.iter().filter(|r| r.contains("wilhelmina")).count();
        assert_eq!(naming == 0, encrypt, "{rows:#?}");
    }
}

/// The demo binds signed-in sessions to the device (DBSC) on its default
/// store: the sign-in answer asks for a registration, a software device key
/// registers through the session layer, the devices page says the session is
/// bound, and the same cookies without the bound cookie are signed out.
#[tokio::test]
async fn the_demo_binds_sessions_to_the_device() {
    use latch_conformance::device::{SoftwareDevice, challenge_of};
    let site = served("memory", "dbsc").await;
    let mut c = Client::default();
    let signed_up = c.signup(&site, "ada").await;
    let registration = signed_up.headers["secure-session-registration"]
        .to_str()
        .unwrap()
        .to_owned();
    let challenge = challenge_of(&registration).unwrap();
    let device = SoftwareDevice::es256();
    let req = Request::post("/.latch/dbsc/register")
        .header(
            "secure-session-response",
            device.registration_proof(&challenge),
        )
        .header("sec-fetch-site", "same-origin");
    let registered = c.send(&site, req, Body::empty()).await;
    assert_eq!(registered.status, StatusCode::OK, "{}", registered.body);
    assert!(
        c.cookie
            .as_deref()
            .unwrap()
            .contains("__Host-session-bound=")
    );
    assert_eq!(c.me(&site).await, StatusCode::OK);
    let devices = c.get(&site, "/devices").await.body;
    assert!(devices.contains("yes, key proved"), "{devices}");

    // The session cookie alone (a thief whose copy of the bound cookie
    // expired): signed out, and the real device's session is untouched.
    let session_only = c
        .cookie
        .as_deref()
        .unwrap()
        .split("; ")
        .filter(|p| !p.starts_with("__Host-session-bound="))
        .collect::<Vec<_>>()
        .join("; ");
    let mut thief = Client {
        cookie: Some(session_only),
        peer: None,
    };
    assert_eq!(thief.me(&site).await, StatusCode::UNAUTHORIZED);
    assert_eq!(c.me(&site).await, StatusCode::OK);
}

/// Over HTTPS the demo tells browsers to stay on HTTPS (HSTS); over plain
/// http it does not (the header would be ignored, and a wrong one sticks).
#[tokio::test]
async fn https_responses_carry_strict_transport_security() {
    use clap::Parser as _;
    let dir = std::env::temp_dir().join(format!("latch-demo-hsts-{}", std::process::id()));
    let args = latch_demo::config::Args::try_parse_from([
        "latch-demo".as_ref(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--store".as_ref(),
        "memory".as_ref(),
        "--tls-self-signed".as_ref(),
        "--data-dir".as_ref(),
        dir.as_os_str(),
    ])
    .unwrap();
    let settings = latch_demo::config::Settings::from_args(&args).unwrap();
    let (app, _purger) = latch_demo::serve::app(&settings).await.unwrap();
    let site = Site {
        app,
        _dir: Arc::new(TempDir(dir)),
        _purger: Arc::default(),
    };
    let r = Client::default().get(&site, "/login").await;
    assert_eq!(
        r.headers[header::STRICT_TRANSPORT_SECURITY],
        "max-age=31536000"
    );
    let plain = served("memory", "no-hsts").await;
    let r = Client::default().get(&plain, "/login").await;
    assert!(r.headers.get(header::STRICT_TRANSPORT_SECURITY).is_none());
}

/// Black-box attack, sixteenth round: anonymous sessions made as fast as the
/// per-client limits allowed (from fake addresses) filled the store, and
/// then every sign-in got a 503, since a sign-in creates its session under
/// a new ID. With part of the store kept from anonymous sessions
/// (`max_anonymous_sessions`), the flood is refused at its share and people
/// still sign in.
#[tokio::test]
async fn a_store_full_of_anonymous_sessions_still_lets_people_sign_in() {
    let store = MemoryStore::with_max_sessions(30).max_anonymous_sessions(20);
    let keys = latch::Keyring::new(latch::SecretKey::generate());
    // With keys, as served: a form's CSRF secret waits in a signed cookie,
    // not in a stored session, until someone signs in.
    let manager = SessionManager::builder()
        .store(store)
        .keys(keys)
        .build()
        .unwrap();
    let site = site_with_counters_apart(manager, "anonymous-flood", 100);
    let mut ada = Client::default();
    assert_eq!(ada.signup(&site, "ada").await.status, StatusCode::SEE_OTHER);
    let r = Client::default().signup(&site, "bob").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    // A browser with an anonymous session from before the flood.
    let mut laptop = Client::default();
    assert!(put_scratch(&site, &mut laptop, "k", "v").await.is_success());
    // The flood: a new anonymous session per request, until refused.
    let mut made = 0;
    loop {
        let status = put_scratch(&site, &mut Client::default(), "k", "v").await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        assert!(status.is_success(), "{status}");
        made += 1;
        assert!(made < 30, "the flood was never refused");
    }
    assert_eq!(
        made, 17,
        "2 signed in, the laptop and 17 more: the share of 20"
    );
    // A new browser signs in (its session is made signed in): room kept.
    let mut phone = Client::default();
    let r = phone.login(&site, "ada", "correct horse").await;
    assert_eq!(
        (r.status, r.location()),
        (StatusCode::SEE_OTHER, "/"),
        "{}",
        r.body
    );
    assert_eq!(phone.me(&site).await, StatusCode::OK);
    // So does the browser that had an anonymous session.
    let r = laptop.login(&site, "bob", "correct horse").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(laptop.me(&site).await, StatusCode::OK);
}
