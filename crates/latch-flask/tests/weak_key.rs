//! Weak Flask keys: refused for signing; where they are still accepted (the
//! loudly named migration option, and Flask-Session's signed IDs, whose
//! random IDs a forged signature cannot make up) a warning is logged, without
//! the key. Needs no Python.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::io::Write;
use std::sync::{Arc, Mutex};

use latch_flask::{FlaskCookieFormat, FlaskSessionIds};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logged(f: impl FnOnce()) -> String {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned()
}

#[test]
fn weak_keys_are_warned_about_without_the_key() {
    let text = logged(|| {
        assert!(FlaskCookieFormat::new("dev-secret").is_err());
        let _ = FlaskCookieFormat::new(
            "k9f_6udRlHPzgbVT-ri7lf79yXjJm_WJ8r-OlyK_SYkOqNgIKxyeAa-djbpQ933h",
        )
        .unwrap()
        .insecure_weak_fallbacks(["old-weak"]);
        let _ = FlaskSessionIds::signed("dev-secret");
    });
    assert_eq!(text.matches("WARN").count(), 2, "{text}");
    assert!(text.contains("the Flask secret key is weak"), "{text}");
    assert!(text.contains("insecure_weak_fallbacks[0]"), "{text}");
    assert!(text.contains("anyone who guesses that key"), "{text}");
    assert!(
        !text.contains("dev-secret") && !text.contains("old-weak"),
        "{text}"
    );
}

#[test]
fn strong_keys_are_not_warned_about() {
    let text = logged(|| {
        let _ = FlaskCookieFormat::new(
            "k9f_6udRlHPzgbVT-ri7lf79yXjJm_WJ8r-OlyK_SYkOqNgIKxyeAa-djbpQ933h",
        )
        .unwrap();
    });
    assert!(!text.contains("WARN"), "{text}");
}
