//! What latch logs: warnings where they matter, and never a session ID, cookie
//! value or key.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::io::Write;
use std::sync::{Arc, Mutex};

use latch::{CookieConfig, Keyring, MemoryStore, SecretKey, SessionManager};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture() -> (Captured, tracing::subscriber::DefaultGuard) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    (captured, tracing::subscriber::set_default(subscriber))
}

#[test]
fn dev_mode_warns_at_start_up() {
    let (logs, _guard) = capture();
    SessionManager::builder()
        .store(MemoryStore::new())
        .cookie(CookieConfig::insecure_dev_mode())
        .build()
        .unwrap();
    let text = logs.text();
    assert!(text.contains("WARN"), "{text}");
    assert!(text.contains("plain-http development mode"), "{text}");
}

#[test]
fn secure_defaults_log_no_warning() {
    let (logs, _guard) = capture();
    SessionManager::builder()
        .store(MemoryStore::new())
        .build()
        .unwrap();
    assert!(!logs.text().contains("WARN"));
}

#[tokio::test(flavor = "current_thread")]
async fn logs_never_contain_ids_cookie_values_or_keys() {
    let (logs, _guard) = capture();
    let key = SecretKey::generate();
    let mut secrets = Vec::new();
    for manager in [
        SessionManager::builder()
            .store(MemoryStore::new())
            .build()
            .unwrap(),
        SessionManager::builder()
            .signed_cookies(Keyring::new(key.clone()))
            .build()
            .unwrap(),
    ] {
        let s = manager.start(std::iter::empty(), Default::default());
        s.insert("k", 1).await.unwrap();
        let set = manager.finish(&s).await.unwrap().set_cookie.unwrap();
        let value = set
            .split(';')
            .next()
            .unwrap()
            .split_once('=')
            .unwrap()
            .1
            .to_owned();
        // Valid, tampered, duplicated and unknown cookies all pass through the logs.
        let tampered = format!("{}x", &value[..value.len() - 1]);
        for header in [
            format!("__Host-session={value}"),
            format!("__Host-session={tampered}"),
            format!("__Host-session={value}; __Host-session={value}"),
        ] {
            let s = manager.start(Some(header.as_str()), Default::default());
            s.get::<i32>("k").await.unwrap();
            manager.finish(&s).await.unwrap();
        }
        secrets.push(value);
        secrets.push(tampered);
    }
    let text = logs.text();
    assert!(
        text.contains("session cookie refused"),
        "events were logged: {text}"
    );
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a cookie value reached the log"
        );
    }
    let key_text = format!("{:?}", key.expose_bytes());
    assert!(!text.contains(&key_text));
}

#[tokio::test]
async fn debug_output_never_contains_ids_cookie_values_or_data() {
    let manager = SessionManager::builder()
        .store(MemoryStore::new())
        .build()
        .unwrap();
    let s = manager.start(std::iter::empty(), Default::default());
    s.insert("note", "private-note-text").await.unwrap();
    let finished = manager.finish(&s).await.unwrap();
    let set = finished.set_cookie.clone().unwrap();
    let pair = set.split(';').next().unwrap();
    let value = pair.split_once('=').unwrap().1.to_owned();

    let mut raw = latch::RawRequest::new();
    raw.cookie_header(http::HeaderValue::from_str(pair).unwrap());
    let incoming = latch::cookie::find_session_cookie([pair], "__Host-session");
    let shown = [
        format!("{manager:?}"),
        format!("{finished:?}"),
        format!("{raw:?}"),
        format!("{incoming:?}"),
        format!("{:?}", manager.start_raw(raw.clone())),
    ];
    for text in &shown {
        assert!(
            !text.contains(&value),
            "a session ID in Debug output: {text}"
        );
        assert!(
            !text.contains("private-note-text"),
            "session data in Debug output: {text}"
        );
    }
    assert!(
        shown[1].contains("__Host-session=<redacted>; HttpOnly"),
        "{}",
        shown[1]
    );
}

/// K4/issue 11: choosing AES-256-GCM states its deployment-wide nonce budget
/// at start-up; the default AEAD logs nothing of the kind.
#[test]
fn choosing_aes_gcm_logs_its_nonce_budget() {
    let (captured, _guard) = capture();
    let ring = Keyring::new(SecretKey::generate());
    SessionManager::builder()
        .encrypted_cookies(ring.clone(), latch::codec::Aead::default())
        .build()
        .unwrap();
    assert!(!captured.text().contains("2^32"), "{}", captured.text());
    SessionManager::builder()
        .encrypted_cookies(ring, latch::codec::Aead::Aes256Gcm)
        .build()
        .unwrap();
    let text = captured.text();
    assert!(text.contains("WARN"), "{text}");
    assert!(
        text.contains("rotate the key before all processes sharing it have sealed 2^32"),
        "{text}"
    );
}
