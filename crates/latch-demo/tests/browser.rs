//! The demo in a real headless Chromium, driven over WebDriver (chromedriver):
//! sign-up, HttpOnly, sign-out and the back button, revoking another browser's
//! session, and remember-me across a browser restart.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them);
//! paths come from `LATCH_CHROMIUM` / `LATCH_CHROMEDRIVER` (defaults
//! `/usr/bin/chromium`, `/usr/bin/chromedriver`). Screenshots of the main pages
//! are written to `target/screenshots/`.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// Kills a child process when dropped, so a failing test leaves nothing behind.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Kills, when dropped, every process whose command line names this folder:
/// the Chromium processes of the test's profiles, which chromedriver leaves
/// running when the test fails before closing its sessions.
struct KillUnder(PathBuf);

impl Drop for KillUnder {
    fn drop(&mut self) {
        let _ = Command::new("pkill")
            .arg("-KILL")
            .arg("-f")
            .arg(&self.0)
            .status();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("latch-browser-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Start the demo on a free port; returns its base URL.
fn start_demo(data: &Path) -> (Reaper, String) {
    let (demo, url, _) = start_demo_with(data, &[]);
    (demo, url)
}

/// Start the demo on a free port with `args`; returns its base URL and the
/// Chromium flags it printed for a self-signed certificate, if any.
fn start_demo_with(data: &Path, args: &[&str]) -> (Reaper, String, Option<String>) {
    let mut demo = Reaper(
        Command::new(env!("CARGO_BIN_EXE_latch-demo"))
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .args(args)
            .env_remove("LATCH_SECRET_KEY")
            .env_remove("LATCH_STORE")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = BufReader::new(demo.0.stdout.take().unwrap());
    let mut url = None;
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some(rest) = line.split("serving ").nth(1) {
            url = Some(rest.split_whitespace().next().unwrap().to_owned());
            if !args.contains(&"--tls-self-signed") {
                break;
            }
        }
        if let Some(flags) = line.split("start Chromium with: ").nth(1) {
            return (demo, url.unwrap(), Some(flags.to_owned()));
        }
    }
    match url {
        Some(url) => (demo, url, None),
        None => panic!("latch-demo exited before serving"),
    }
}

fn start_chromedriver(driver: &str) -> (Reaper, u16) {
    let port = free_port();
    let driver = Reaper(
        Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    (driver, port)
}

/// A headless Chromium with its own profile folder (a "browser profile").
async fn browser(driver_port: u16, chromium: &str, profile: &Path) -> Client {
    browser_with(driver_port, chromium, profile, &[]).await
}

/// [`browser`] with `extra` command-line flags.
async fn browser_with(
    driver_port: u16,
    chromium: &str,
    profile: &Path,
    extra: &[String],
) -> Client {
    // The WebDriver connection is plain http, but the client is built with
    // rustls; when a workspace-wide build enables two crypto providers rustls
    // cannot pick one by itself, so pick ring (a no-op after the first call).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut caps = serde_json::Map::new();
    let mut args: Vec<String> = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1000,800",
        "--disable-dev-shm-usage",
    ]
    .map(String::from)
    .to_vec();
    args.push(format!("--user-data-dir={}", profile.display()));
    args.extend(extra.iter().cloned());
    caps.insert(
        "goog:chromeOptions".into(),
        json!({ "binary": chromium, "args": args }),
    );
    ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{driver_port}"))
        .await
        .unwrap()
}

async fn fill_and_submit(c: &Client, fields: &[(&str, &str)], remember: bool) {
    for (name, value) in fields {
        c.find(Locator::Css(&format!("input[name={name}]")))
            .await
            .unwrap()
            .send_keys(value)
            .await
            .unwrap();
    }
    if remember {
        c.find(Locator::Css("input[name=remember]"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }
    click_and_wait(c, "main button[type=submit]").await;
}

/// Click a button that submits a form and wait until the page it leads to has
/// loaded. A WebDriver click returns once the click is dispatched, not when the
/// navigation it starts has finished: without this wait the next command can
/// land between two documents (CI once failed on "no such element: body"), or
/// a `goto` can cancel the form's POST before the server has answered it.
async fn click_and_wait(c: &Client, css: &str) {
    let old_root = c.find(Locator::Css("html")).await.unwrap();
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    // The old document's root goes stale once the browser has replaced it,
    // and the new one is ready when its readyState says so. Other errors
    // (the driver has no execution context mid-navigation) are transient:
    // poll again, and report the last one if the page never arrives.
    let mut navigated = false;
    let mut last = String::from("none");
    loop {
        if !navigated {
            match old_root.tag_name().await {
                Ok(_) => {}
                Err(e) if e.is_stale_element_reference() || e.is_no_such_element() => {
                    navigated = true;
                }
                Err(e) => last = e.to_string(),
            }
        }
        if navigated {
            match c.execute("return document.readyState", vec![]).await {
                Ok(state) if state.as_str() == Some("complete") => return,
                Ok(state) => last = format!("readyState {state}"),
                Err(e) => last = e.to_string(),
            }
        }
        assert!(
            Instant::now() < deadline,
            "clicking {css} did not load a new page within 20 s (navigated: {navigated}; last: {last})"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn sign_up(c: &Client, base: &str, user: &str) {
    c.goto(&format!("{base}/signup")).await.unwrap();
    fill_and_submit(
        c,
        &[("username", user), ("password", "correct horse battery")],
        false,
    )
    .await;
}

async fn sign_in(c: &Client, base: &str, user: &str, remember: bool) {
    c.goto(&format!("{base}/login")).await.unwrap();
    fill_and_submit(
        c,
        &[("username", user), ("password", "correct horse battery")],
        remember,
    )
    .await;
}

async fn text(c: &Client) -> String {
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("body"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn signed_in_as(c: &Client, base: &str) -> Option<String> {
    c.goto(&format!("{base}/")).await.unwrap();
    let body = text(c).await;
    body.split("Signed in as ")
        .nth(1)
        .map(|rest| rest.split_whitespace().next().unwrap_or("").to_owned())
}

async fn screenshot(c: &Client, name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("{name}.png")),
        c.screenshot().await.unwrap(),
    )
    .unwrap();
}

#[tokio::test]
async fn browser_end_to_end() {
    let chromium = std::env::var("LATCH_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let driver =
        std::env::var("LATCH_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    if !Path::new(&chromium).exists() || !Path::new(&driver).exists() {
        latch_conformance::skip_or_fail::<()>(
            "Chromium and chromedriver",
            &format!("{chromium} or {driver} not found"),
        );
        return;
    }
    let root = temp_dir("e2e");
    let (_demo, base) = start_demo(&root.join("data"));
    let (_driver, port) = start_chromedriver(&driver);
    let _browsers = KillUnder(root.clone());

    // Profile A: sign up, see the signed-in page; the cookie is HttpOnly.
    let a = browser(port, &chromium, &root.join("profile-a")).await;
    sign_up(&a, &base, "alice").await;
    assert_eq!(
        signed_in_as(&a, &base).await.as_deref(),
        Some("alice"),
        "sign-up signs in"
    );
    screenshot(&a, "home").await;
    let cookie = a.execute("return document.cookie", vec![]).await.unwrap();
    assert!(
        !cookie.as_str().unwrap_or("").contains("session"),
        "session cookie visible to scripts: {cookie}"
    );
    a.goto(&format!("{base}/profile")).await.unwrap();
    assert!(text(&a).await.contains("Expires if idle"));
    screenshot(&a, "profile").await;

    // Sign out; "back" must not show the private page again.
    click_and_wait(&a, "nav form button").await;
    assert!(text(&a).await.contains("You are signed out."));
    screenshot(&a, "signed-out").await;
    a.back().await.unwrap();
    let after_back = text(&a).await;
    assert!(
        !after_back.contains("Expires if idle"),
        "back button showed a private page: {after_back}"
    );
    assert_eq!(signed_in_as(&a, &base).await, None);

    // Profiles A and B both sign in; A revokes B from its Devices page.
    sign_in(&a, &base, "alice", false).await;
    let b = browser(port, &chromium, &root.join("profile-b")).await;
    sign_in(&b, &base, "alice", false).await;
    assert_eq!(signed_in_as(&b, &base).await.as_deref(), Some("alice"));
    a.goto(&format!("{base}/devices")).await.unwrap();
    assert_eq!(
        a.find_all(Locator::Css("tr.device")).await.unwrap().len(),
        2
    );
    screenshot(&a, "devices").await;
    click_and_wait(&a, "tr.device form button").await;
    assert!(text(&a).await.contains("That device is signed out."));
    assert_eq!(
        signed_in_as(&b, &base).await,
        None,
        "revoked browser still signed in"
    );
    assert_eq!(signed_in_as(&a, &base).await.as_deref(), Some("alice"));
    b.close().await.unwrap();
    a.close().await.unwrap();

    // Remember-me survives a browser restart; a plain session does not.
    let remembered = root.join("profile-remember");
    let plain = root.join("profile-plain");
    for (profile, remember) in [(&remembered, true), (&plain, false)] {
        let c = browser(port, &chromium, profile).await;
        sign_in(&c, &base, "alice", remember).await;
        assert_eq!(signed_in_as(&c, &base).await.as_deref(), Some("alice"));
        if !remember {
            c.goto(&format!("{base}/login")).await.unwrap();
            screenshot(&c, "sign-in").await;
        }
        c.close().await.unwrap();
    }
    let c = browser(port, &chromium, &remembered).await;
    assert_eq!(
        signed_in_as(&c, &base).await.as_deref(),
        Some("alice"),
        "remember-me lost on restart"
    );
    c.close().await.unwrap();
    let c = browser(port, &chromium, &plain).await;
    assert_eq!(
        signed_in_as(&c, &base).await,
        None,
        "browser-session cookie survived a restart"
    );
    c.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&root);
}

/// Sign up `user` with a plain HTTP client; returns the session cookie's value.
async fn sign_up_over_http(base: &str, user: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http.get(format!("{base}/signup")).send().await.unwrap();
    let cookie = page.headers()["set-cookie"].to_str().unwrap().to_owned();
    let pair = cookie.split(';').next().unwrap().to_owned();
    let body = page.text().await.unwrap();
    let marker = "name=\"csrf_token\" value=\"";
    let token = body
        .split(marker)
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let form = format!("username={user}&password=correct+horse+battery&csrf_token={token}");
    let res = http
        .post(format!("{base}/signup"))
        .header("cookie", &pair)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let set = res.headers()["set-cookie"].to_str().unwrap();
    set.split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned()
}

/// Serve `html` to every request on a free port of localhost (the attacker's
/// page: another origin, but the same host, so its cookies reach the demo).
fn serve_page(html: String) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(20) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut stream, &mut buf);
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{html}",
                html.len()
            );
            let _ = std::io::Write::write_all(&mut stream, response.as_bytes());
        }
    });
    port
}

/// C6 in a real browser, as the attack of issue 11 ran it: a page on another
/// port of `localhost` plants the attacker's valid session cookie under names
/// the browser does not treat as `__Host-` (the real name behind U+00A0 or
/// U+3000). The victim is not signed in as the attacker (session donation),
/// can sign in (no lockout: "form has expired"), and stays signed in (no
/// forced sign-out by a planted duplicate).
#[tokio::test]
async fn browser_cookies_planted_from_another_origin_are_ignored() {
    let chromium = std::env::var("LATCH_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let driver =
        std::env::var("LATCH_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    if !Path::new(&chromium).exists() || !Path::new(&driver).exists() {
        latch_conformance::skip_or_fail::<()>(
            "Chromium and chromedriver",
            &format!("{chromium} or {driver} not found"),
        );
        return;
    }
    let root = temp_dir("planted");
    let (_demo, base) = start_demo(&root.join("data"));
    let (_driver, port) = start_chromedriver(&driver);
    let _browsers = KillUnder(root.clone());
    let attacker_session = sign_up_over_http(&base, "mallory").await;
    let plant = |name: &str| {
        format!(
            "document.cookie = {:?};",
            format!("{name}={attacker_session}; path=/")
        )
    };
    let page = format!(
        "<!doctype html><title>attacker</title><script>{}{}</script><p>planted</p>",
        plant("\u{a0}__Host-session"),
        plant("\u{3000}__Host-session"),
    );
    let attacker = serve_page(page);

    let c = browser(port, &chromium, &root.join("profile-victim")).await;
    c.goto(&format!("http://localhost:{attacker}/"))
        .await
        .unwrap();
    let planted = c.execute("return document.cookie", vec![]).await.unwrap();
    let planted = planted.as_str().unwrap_or("").to_owned();
    assert!(
        planted.contains("\u{a0}__Host-session=") && planted.contains(&attacker_session),
        "the browser did not keep the planted cookie: {planted:?}"
    );
    assert_eq!(
        signed_in_as(&c, &base).await,
        None,
        "the planted cookie signed the victim in as the attacker"
    );
    sign_up(&c, &base, "victim").await;
    assert_eq!(
        signed_in_as(&c, &base).await.as_deref(),
        Some("victim"),
        "sign-up failed beside the planted cookies"
    );
    c.goto(&format!("http://localhost:{attacker}/"))
        .await
        .unwrap();
    assert_eq!(
        signed_in_as(&c, &base).await.as_deref(),
        Some("victim"),
        "planting again signed the victim out"
    );
    c.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&root);
}

/// The value of the browser's cookie `name`, if it holds one.
async fn cookie_value(c: &Client, name: &str) -> Option<String> {
    c.get_all_cookies()
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.name() == name)
        .map(|k| k.value().to_owned())
}

/// Device-bound sessions in a real Chromium (DBSC with software keys, over
/// HTTPS with the demo's self-signed certificate and the flags it prints):
/// signing in registers the browser's key, a navigation after the bound
/// cookie expired waits for the browser's signed refresh and stays signed in,
/// and the same cookies replayed from a plain HTTP client work only until the
/// copied bound cookie expires.
#[tokio::test]
async fn browser_device_bound_session() {
    let chromium = std::env::var("LATCH_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let driver =
        std::env::var("LATCH_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    if !Path::new(&chromium).exists() || !Path::new(&driver).exists() {
        latch_conformance::skip_or_fail::<()>(
            "Chromium and chromedriver",
            &format!("{chromium} or {driver} not found"),
        );
        return;
    }
    const BOUND_SECS: u64 = 4;
    const BOUND: &str = "__Host-session-bound";
    let root = temp_dir("dbsc");
    let lifetime = BOUND_SECS.to_string();
    let (_demo, base, flags) = start_demo_with(
        &root.join("data"),
        &[
            "--tls-self-signed",
            "--store",
            "memory",
            "--bound-cookie-lifetime",
            &lifetime,
        ],
    );
    assert!(base.starts_with("https://localhost:"), "{base}");
    let flags = flags.expect("the demo prints the Chromium flags for its certificate");
    // The printed flags, with the refresh quota (6 signatures in 9 minutes)
    // lifted: this test refreshes far more often than a person would.
    let mut extra: Vec<String> = flags.split_whitespace().map(String::from).collect();
    for flag in &mut extra {
        if let Some(features) = flag.strip_prefix("--enable-features=") {
            *flag = format!(
                "--enable-features={}",
                features.replace(
                    "DeviceBoundSessions",
                    "DeviceBoundSessions:RefreshQuota/false"
                )
            );
        }
    }
    let (_driver, port) = start_chromedriver(&driver);
    let _browsers = KillUnder(root.clone());
    let c = browser_with(port, &chromium, &root.join("profile"), &extra).await;

    sign_up(&c, &base, "dana").await;
    // Chromium registers in the background after the sign-in response.
    let deadline = Instant::now() + Duration::from_secs(20);
    let first = loop {
        if let Some(v) = cookie_value(&c, BOUND).await {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "Chromium did not register a device-bound session (no {BOUND} cookie within 20 s)"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(signed_in_as(&c, &base).await.as_deref(), Some("dana"));

    // The bound cookie expires; the next navigation waits for a refresh
    // signed by the browser's key and goes out with a new bound cookie.
    tokio::time::sleep(Duration::from_secs(BOUND_SECS + 1)).await;
    assert_eq!(
        signed_in_as(&c, &base).await.as_deref(),
        Some("dana"),
        "signed in after the bound cookie expired: the browser refreshed"
    );
    let second = cookie_value(&c, BOUND)
        .await
        .expect("a refreshed bound cookie");
    assert_ne!(first, second, "the refresh set a new bound cookie");

    // A thief copies every cookie (HttpOnly ones too) and replays them from
    // a plain HTTP client: fine while the copied bound cookie lives...
    let jar = c
        .get_all_cookies()
        .await
        .unwrap()
        .iter()
        .map(|k| format!("{}={}", k.name(), k.value()))
        .collect::<Vec<_>>()
        .join("; ");
    let _ = rustls::crypto::ring::default_provider().install_default();
    // Only this test's own self-signed server is reached with it.
    let thief = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let me = |jar: String| {
        let thief = thief.clone();
        let url = format!("{base}/api/me");
        async move {
            thief
                .get(url)
                .header("cookie", jar)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(me(jar.clone()).await, 200, "a fresh copy works");
    // ... and is signed out once it expired; it cannot refresh without the key.
    tokio::time::sleep(Duration::from_secs(BOUND_SECS + 1)).await;
    assert_eq!(me(jar).await, 401, "the copy died with its bound cookie");

    // The browser itself stays signed in, and its devices page says so.
    c.goto(&format!("{base}/devices")).await.unwrap();
    let devices = text(&c).await;
    assert!(devices.contains("yes, key proved"), "{devices}");
    screenshot(&c, "dbsc-devices").await;
    c.close().await.unwrap();
}
