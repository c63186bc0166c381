//! Signed and encrypted cookie sessions through the manager: expiry, rotation,
//! size limit and bad input.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::time::Duration;

use latch::codec::Aead;
use latch::{
    Clock, CookieConfig, ErrorKind, Expiry, Keyring, ManualClock, SecretKey, Session,
    SessionManager,
};

const T0: i64 = 1_800_000_000;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Signed,
    Sealed(Aead),
}

const KINDS: [Kind; 3] = [
    Kind::Signed,
    Kind::Sealed(Aead::XChaCha20Poly1305),
    Kind::Sealed(Aead::Aes256Gcm),
];

fn manager(kind: Kind, keys: Keyring, clock: &ManualClock) -> SessionManager {
    let builder = SessionManager::builder().clock(clock.clone()).expiry(
        Expiry::default()
            .idle(Duration::from_secs(1800))
            .absolute(Duration::from_secs(12 * 3600)),
    );
    match kind {
        Kind::Signed => builder.signed_cookies(keys),
        Kind::Sealed(aead) => builder.encrypted_cookies(keys, aead),
    }
    .build()
    .unwrap()
}

fn value_of(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().unwrap();
    pair.split_once('=').unwrap().1.to_owned()
}

fn start(m: &SessionManager, cookie: &str) -> Session {
    let header = format!("__Host-session={cookie}");
    m.start(Some(header.as_str()), Default::default())
}

async fn write(m: &SessionManager, cookie: Option<&str>, key: &str, value: i32) -> String {
    let s = match cookie {
        Some(c) => start(m, c),
        None => m.start(std::iter::empty(), Default::default()),
    };
    s.insert(key, value).await.unwrap();
    value_of(&m.finish(&s).await.unwrap().set_cookie.unwrap())
}

async fn read(m: &SessionManager, cookie: &str, key: &str) -> (Option<i32>, latch::Finished) {
    let s = start(m, cookie);
    let v = s.get(key).await.unwrap();
    (v, m.finish(&s).await.unwrap())
}

#[tokio::test]
async fn round_trip_and_read_only_requests_send_no_cookie() {
    for kind in KINDS {
        let clock = ManualClock::new(T0);
        let m = manager(kind, Keyring::new(SecretKey::generate()), &clock);
        let cookie = write(&m, None, "n", 7).await;
        let (v, finished) = read(&m, &cookie, "n").await;
        assert_eq!(v, Some(7), "{kind:?}");
        assert_eq!(
            finished.set_cookie, None,
            "{kind:?}: a read re-sent the cookie"
        );
        assert!(finished.vary_cookie);
    }
}

#[tokio::test]
async fn untouched_session_costs_nothing() {
    let clock = ManualClock::new(T0);
    let m = manager(Kind::Signed, Keyring::new(SecretKey::generate()), &clock);
    let s = start(&m, "garbage");
    assert_eq!(m.finish(&s).await.unwrap(), latch::Finished::default());
    assert_eq!(
        m.rejected_cookies(),
        0,
        "an unused cookie was not even decoded"
    );
}

#[tokio::test]
async fn idle_timeout_enforced_to_the_second() {
    for kind in KINDS {
        let clock = ManualClock::new(T0);
        let m = manager(kind, Keyring::new(SecretKey::generate()), &clock);
        let cookie = write(&m, None, "n", 1).await;
        clock.set(T0 + 1799);
        assert_eq!(
            read(&m, &cookie, "n").await.0,
            Some(1),
            "{kind:?} expired early"
        );
        clock.set(T0 + 1800);
        let (v, finished) = read(&m, &cookie, "n").await;
        assert_eq!(v, None, "{kind:?} honoured at the idle deadline");
        assert!(
            finished.set_cookie.unwrap().contains("Max-Age=0"),
            "expired cookie not cleared"
        );
    }
}

#[tokio::test]
async fn absolute_timeout_enforced_even_when_active() {
    for kind in KINDS {
        let clock = ManualClock::new(T0);
        let m = manager(kind, Keyring::new(SecretKey::generate()), &clock);
        let mut cookie = write(&m, None, "n", 1).await;
        // Stay active every 20 minutes: each write re-issues the cookie.
        while clock.now() + 1200 < T0 + 12 * 3600 {
            clock.advance(1200);
            cookie = write(&m, Some(&cookie), "n", 1).await;
        }
        clock.set(T0 + 12 * 3600 - 1);
        assert_eq!(read(&m, &cookie, "n").await.0, Some(1), "{kind:?}");
        clock.set(T0 + 12 * 3600);
        assert_eq!(
            read(&m, &cookie, "n").await.0,
            None,
            "{kind:?} outlived its absolute timeout"
        );
    }
}

#[tokio::test]
async fn a_slow_handler_stamps_the_session_with_the_requests_start() {
    // One clock reading per request, when the session loads: a handler that
    // runs long can only make its session expire sooner, never later.
    for kind in KINDS {
        let clock = ManualClock::new(T0);
        let m = manager(kind, Keyring::new(SecretKey::generate()), &clock);
        let s = m.start(std::iter::empty(), Default::default());
        s.insert("n", 1).await.unwrap();
        clock.advance(600);
        let cookie = value_of(&m.finish(&s).await.unwrap().set_cookie.unwrap());
        // Idle for 1800 s counted from T0, when the request loaded its
        // session, not from T0 + 600, when it finished.
        clock.set(T0 + 1799);
        assert_eq!(read(&m, &cookie, "n").await.0, Some(1), "{kind:?}");
        clock.set(T0 + 1800);
        assert_eq!(read(&m, &cookie, "n").await.0, None, "{kind:?}");
    }
}

#[tokio::test]
async fn the_idle_deadline_reported_never_passes_the_absolute_one() {
    // Found by the black-box attack: near the end of its absolute lifetime,
    // an active session reported an idle deadline after its absolute one.
    let clock = ManualClock::new(T0);
    let m = manager(Kind::Signed, Keyring::new(SecretKey::generate()), &clock);
    let mut cookie = write(&m, None, "n", 1).await;
    // Active every 20 minutes until 10 minutes before the absolute end,
    // where the idle timeout (30 minutes) reaches past it.
    while clock.now() + 1200 < T0 + 12 * 3600 {
        clock.advance(1200);
        cookie = write(&m, Some(&cookie), "n", 1).await;
    }
    assert!(clock.now() + 1800 > T0 + 12 * 3600);
    let facts = start(&m, &cookie).facts().await.unwrap();
    assert_eq!(facts.absolute_expires_at, T0 + 12 * 3600);
    assert_eq!(facts.idle_expires_at, facts.absolute_expires_at);
}

#[tokio::test]
async fn reads_refresh_the_cookie_once_per_touch_interval() {
    let clock = ManualClock::new(T0);
    let m = manager(Kind::Signed, Keyring::new(SecretKey::generate()), &clock);
    let cookie = write(&m, None, "n", 1).await;
    clock.advance(59);
    assert_eq!(read(&m, &cookie, "n").await.1.set_cookie, None);
    clock.advance(1);
    let refreshed = read(&m, &cookie, "n")
        .await
        .1
        .set_cookie
        .expect("refresh after 60 s");
    // The refreshed cookie restarts the idle clock.
    clock.set(T0 + 60 + 1799);
    assert_eq!(read(&m, &value_of(&refreshed), "n").await.0, Some(1));
}

#[tokio::test]
async fn rotation_reissues_under_the_current_key_in_the_same_response() {
    for kind in KINDS {
        let clock = ManualClock::new(T0);
        let old = SecretKey::generate();
        let before = manager(kind, Keyring::new(old.clone()), &clock);
        let cookie = write(&before, None, "n", 5).await;
        let new = SecretKey::generate();
        let rotated = manager(kind, Keyring::new(new.clone()).with_previous(old), &clock);
        let (v, finished) = read(&rotated, &cookie, "n").await;
        assert_eq!(v, Some(5), "{kind:?}: previous key no longer verifies");
        let reissued = value_of(&finished.set_cookie.expect("re-issued cookie"));
        let only_new = manager(kind, Keyring::new(new), &clock);
        assert_eq!(read(&only_new, &reissued, "n").await.0, Some(5), "{kind:?}");
        assert_eq!(read(&only_new, &cookie, "n").await.0, None, "{kind:?}");
    }
}

/// A signed cookie as latch wrote it before layout 4: HMAC-SHA256 over the
/// length-prefixed label and name, the version and the body in one stream.
fn first_layout_cookie(key: &SecretKey, issued_at: i64, payload: &[u8]) -> String {
    use base64::Engine as _;
    use hmac::Mac as _;
    let label = latch::Purpose::COOKIE_SIGNING.label();
    let name = "__Host-session";
    let subkey = key.derive(latch::Purpose::COOKIE_SIGNING);
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(subkey.as_bytes()).unwrap();
    let mut body = vec![1u8];
    body.extend_from_slice(&issued_at.to_be_bytes());
    body.extend_from_slice(payload);
    for part in [
        &(label.len() as u64).to_be_bytes()[..],
        label.as_bytes(),
        &(name.len() as u64).to_be_bytes(),
        name.as_bytes(),
        &[1],
        &body,
    ] {
        mac.update(part);
    }
    body.extend_from_slice(&mac.finalize().into_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(body)
}

#[tokio::test]
async fn cookies_in_the_first_signed_layout_are_read_and_reissued() {
    let clock = ManualClock::new(T0);
    let key = SecretKey::generate();
    let m = manager(Kind::Signed, Keyring::new(key.clone()), &clock);
    let old = first_layout_cookie(&key, T0 - 5, br#"{"c":1799999000,"d":{"n":7}}"#);
    let (v, finished) = read(&m, &old, "n").await;
    assert_eq!(
        v,
        Some(7),
        "a cookie from the previous release must still open"
    );
    let reissued = value_of(
        &finished
            .set_cookie
            .expect("re-issued in the current layout"),
    );
    assert_ne!(reissued, old);
    let (v, again) = read(&m, &reissued, "n").await;
    assert_eq!(v, Some(7));
    assert!(
        again.set_cookie.is_none(),
        "a current cookie is not re-issued on read"
    );
    // A forged one in the old layout (wrong key) is refused as before.
    let forged = first_layout_cookie(&SecretKey::generate(), T0 - 5, br#"{"c":1,"d":{}}"#);
    assert_eq!(read(&m, &forged, "n").await.0, None);
}

#[tokio::test]
async fn oversized_session_fails_loudly_naming_the_limit() {
    for kind in KINDS {
        let clock = ManualClock::new(T0);
        let m = manager(kind, Keyring::new(SecretKey::generate()), &clock);
        let s = m.start(std::iter::empty(), Default::default());
        s.insert("blob", "x".repeat(4000)).await.unwrap();
        let err = m.finish(&s).await.unwrap_err();
        let ErrorKind::CookieTooLarge { size, limit } = *err.kind() else {
            panic!("{kind:?}: wrong error {err:?}");
        };
        assert_eq!(limit, 4096);
        assert!(size > 4096);
        assert!(
            err.to_string()
                .starts_with(&format!("session cookie would be {size} bytes"))
        );
        assert!(err.to_string().contains("4096-byte limit"));
    }
}

#[tokio::test]
async fn every_defect_gets_the_same_answer() {
    let clock = ManualClock::new(T0);
    let keys = Keyring::new(SecretKey::generate());
    let m = manager(Kind::Sealed(Aead::XChaCha20Poly1305), keys, &clock);
    let good = write(&m, None, "n", 1).await;
    let other = manager(
        Kind::Sealed(Aead::XChaCha20Poly1305),
        Keyring::new(SecretKey::generate()),
        &clock,
    );
    let wrong_key = write(&other, None, "n", 1).await;
    let mut flipped = good.clone().into_bytes();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let defects = [
        String::from_utf8(flipped).unwrap(),
        good[..good.len() - 3].to_owned(),
        format!("{good}AAAA"),
        wrong_key,
        "%00%ff".to_owned(),
        "A".repeat(5000),
        String::new(),
    ];
    let mut answers = Vec::new();
    for bad in &defects {
        let s = start(&m, bad);
        let facts = s.facts().await.unwrap();
        assert!(facts.is_new);
        assert_eq!(s.get::<i32>("n").await.unwrap(), None);
        answers.push(m.finish(&s).await.unwrap());
    }
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "answers differ: {answers:?}"
    );
    assert_eq!(
        answers[0].set_cookie.as_deref(),
        Some(m.cookie_config().removal_cookie().as_str())
    );
    assert_eq!(m.rejected_cookies(), defects.len() as u64);
}

#[tokio::test]
async fn remember_me_sets_max_age_to_the_session_deadline() {
    let clock = ManualClock::new(T0);
    let m = manager(Kind::Signed, Keyring::new(SecretKey::generate()), &clock);
    let s = m.start(std::iter::empty(), Default::default());
    s.insert("n", 1).await.unwrap();
    s.set_remember(true).await.unwrap();
    let set = m.finish(&s).await.unwrap().set_cookie.unwrap();
    // Default remember-me timeouts: 7 days idle, 30 days absolute.
    assert!(set.contains(&format!("Max-Age={}", 7 * 24 * 3600)), "{set}");
    // Kept active, the session nears its absolute deadline, which then bounds Max-Age.
    let mut cookie = value_of(&set);
    for _ in 0..9 {
        clock.advance(3 * 24 * 3600);
        cookie = write(&m, Some(&cookie), "n", 2).await;
    }
    let s = start(&m, &cookie);
    s.insert("n", 3).await.unwrap();
    let set = m.finish(&s).await.unwrap().set_cookie.unwrap();
    assert!(set.contains(&format!("Max-Age={}", 3 * 24 * 3600)), "{set}");
    let plain = write(&m, None, "n", 1).await;
    let s = start(&m, &plain);
    s.insert("m", 2).await.unwrap();
    let set = m.finish(&s).await.unwrap().set_cookie.unwrap();
    assert!(
        !set.contains("Max-Age"),
        "browser-session cookie by default: {set}"
    );
}

#[tokio::test]
async fn future_issue_time_is_refused() {
    let clock = ManualClock::new(T0 + 3600);
    let m = manager(Kind::Signed, Keyring::new(SecretKey::generate()), &clock);
    let cookie = write(&m, None, "n", 1).await;
    clock.set(T0);
    assert_eq!(read(&m, &cookie, "n").await.0, None);
}

#[tokio::test]
async fn destroy_expires_cookie_with_matching_path_and_domain() {
    let clock = ManualClock::new(T0);
    let cookie_config = CookieConfig::builder()
        .name("__Secure-s")
        .domain("example.com")
        .path("/app")
        .build()
        .unwrap();
    let m = SessionManager::builder()
        .signed_cookies(Keyring::new(SecretKey::generate()))
        .cookie(cookie_config)
        .clock(clock)
        .build()
        .unwrap();
    let s = m.start(std::iter::empty(), Default::default());
    s.insert("n", 1).await.unwrap();
    let set = m.finish(&s).await.unwrap().set_cookie.unwrap();
    let header = format!("__Secure-s={}", value_of(&set));
    let s = m.start(Some(header.as_str()), Default::default());
    s.destroy().await.unwrap();
    let removal = m.finish(&s).await.unwrap().set_cookie.unwrap();
    assert!(removal.starts_with("__Secure-s=;"));
    assert!(removal.contains("Path=/app") && removal.contains("Domain=example.com"));
    assert!(removal.contains("Max-Age=0"));
}

#[tokio::test]
async fn reserved_keys_are_refused() {
    let clock = ManualClock::new(T0);
    let m = manager(Kind::Signed, Keyring::new(SecretKey::generate()), &clock);
    let s = m.start(std::iter::empty(), Default::default());
    let err = s.insert("_latch.flash", 1).await.unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidKey);
}

#[tokio::test]
async fn flash_messages_are_read_once() {
    let clock = ManualClock::new(T0);
    let m = manager(Kind::Signed, Keyring::new(SecretKey::generate()), &clock);
    let s = m.start(std::iter::empty(), Default::default());
    s.flash("info", "Welcome back").await.unwrap();
    s.flash("error", "Second").await.unwrap();
    let cookie = value_of(&m.finish(&s).await.unwrap().set_cookie.unwrap());
    let s = start(&m, &cookie);
    let flashes = s.take_flashes().await.unwrap();
    assert_eq!(
        flashes,
        vec![
            latch::Flash::new("info", "Welcome back"),
            latch::Flash::new("error", "Second")
        ]
    );
    let after = m.finish(&s).await.unwrap().set_cookie.unwrap();
    let s = start(&m, &value_of(&after));
    assert!(s.take_flashes().await.unwrap().is_empty());
}

/// Attack round 10: flash messages queued again and again (a script posting
/// without loading a page) no longer pile up until the cookie outgrows 4 KB
/// and every request fails: the newest [`latch::MAX_PENDING_FLASHES`] stay.
#[tokio::test]
async fn pending_flash_messages_are_bounded_and_the_newest_kept() {
    let clock = ManualClock::new(T0);
    let m = manager(Kind::Signed, Keyring::new(SecretKey::generate()), &clock);
    let mut cookie: Option<String> = None;
    for i in 0..100 {
        let s = match &cookie {
            Some(c) => start(&m, c),
            None => m.start(std::iter::empty(), Default::default()),
        };
        s.flash("success", &format!("Signed out {i} other sessions."))
            .await
            .unwrap();
        let done = m.finish(&s).await.unwrap();
        cookie = Some(value_of(&done.set_cookie.unwrap()));
    }
    let cookie = cookie.unwrap();
    let flashes = start(&m, &cookie).take_flashes().await.unwrap();
    let expected: Vec<latch::Flash> = (100 - latch::MAX_PENDING_FLASHES..100)
        .map(|i| latch::Flash::new("success", format!("Signed out {i} other sessions.")))
        .collect();
    assert_eq!(flashes, expected);
}

#[test]
fn configuration_errors_are_refused_at_build() {
    let err = SessionManager::builder().build().unwrap_err();
    assert!(err.to_string().starts_with("choose a session kind"));
    let err = SessionManager::builder()
        .signed_cookies(Keyring::new(SecretKey::generate()))
        .expiry(Expiry::default().remember_absolute(Duration::from_secs(500 * 86400)))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("400 days"));
}

/// K5: a correctly signed value whose payload is not latch's format is refused
/// (the MAC is checked first, then the payload parsed into fixed types).
#[tokio::test]
async fn authentic_but_foreign_payload_is_refused() {
    use latch::codec::{CookieCodec, SignedCodec};
    let keys = Keyring::new(SecretKey::generate());
    let clock = ManualClock::new(T0);
    let m = manager(Kind::Signed, keys.clone(), &clock);
    let codec = SignedCodec::new(&keys);
    for payload in [
        &b"not json"[..],
        br#"{"c":1,"d":{},"evil":"extra field"}"#,
        br#"{"c":"x","d":[]}"#,
    ] {
        let value = codec.seal("__Host-session", T0, payload).unwrap();
        let s = start(&m, &value);
        assert!(s.facts().await.unwrap().is_new);
    }
    assert_eq!(m.rejected_cookies(), 3);
}
