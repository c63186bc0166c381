//! E3: cookie-only sessions are revocable with a revocation store.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::sync::Arc;

use std::sync::atomic::{AtomicBool, Ordering};

use latch::{
    ErrorKind, Keyring, ManualClock, MemoryStore, SecretKey, Session, SessionManager, SessionStore,
};
use latch_conformance::faults::{Call, Gate, Gated};

const T0: i64 = 1_800_000_000;

fn manager(revocations: Option<Arc<MemoryStore>>, clock: &ManualClock) -> SessionManager {
    let mut b = SessionManager::builder()
        .signed_cookies(Keyring::new(SecretKey::generate()))
        .clock(clock.clone());
    if let Some(store) = revocations {
        b = b.revocation_store(store);
    }
    b.build().unwrap()
}

fn start(m: &SessionManager, cookie: &str) -> Session {
    let header = format!("__Host-session={cookie}");
    m.start(Some(header.as_str()), Default::default())
}

fn value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned()
}

async fn log_in(m: &SessionManager, user: &str) -> String {
    let s = m.start(std::iter::empty(), Default::default());
    s.log_in(user).await.unwrap();
    value(&m.finish(&s).await.unwrap().set_cookie.unwrap())
}

async fn user_of(m: &SessionManager, cookie: &str) -> Option<String> {
    let s = start(m, cookie);
    let user = s.user_id().await.unwrap();
    m.finish(&s).await.unwrap();
    user
}

async fn facts_of(m: &SessionManager, cookie: &str) -> latch::SessionFacts {
    let s = start(m, cookie);
    let facts = s.facts().await.unwrap();
    m.finish(&s).await.unwrap();
    facts
}

#[tokio::test]
async fn replay_after_logout_is_refused() {
    let clock = ManualClock::new(T0);
    let m = manager(Some(Arc::new(MemoryStore::new())), &clock);
    let cookie = log_in(&m, "alice").await;
    assert_eq!(user_of(&m, &cookie).await.as_deref(), Some("alice"));
    let s = start(&m, &cookie);
    s.destroy().await.unwrap();
    assert!(
        m.finish(&s)
            .await
            .unwrap()
            .set_cookie
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(
        user_of(&m, &cookie).await,
        None,
        "a copy of the cookie outlived logout"
    );
}

#[tokio::test]
async fn sign_out_everywhere_else_refuses_older_copies_and_keeps_this_one() {
    let clock = ManualClock::new(T0);
    let m = manager(Some(Arc::new(MemoryStore::new())), &clock);
    let laptop = log_in(&m, "bob").await;
    let phone = log_in(&m, "bob").await;
    let other_user = log_in(&m, "carol").await;
    let deadline = facts_of(&m, &laptop).await.absolute_expires_at;
    clock.advance(5);
    let s = start(&m, &laptop);
    assert_eq!(s.sign_out_everywhere_else().await.unwrap(), 0);
    let reissued = value(
        &m.finish(&s)
            .await
            .unwrap()
            .set_cookie
            .expect("this device re-issued"),
    );
    assert_eq!(
        user_of(&m, &phone).await,
        None,
        "other device still signed in"
    );
    assert_eq!(
        user_of(&m, &laptop).await,
        None,
        "the old copy of this device's cookie"
    );
    assert_eq!(user_of(&m, &reissued).await.as_deref(), Some("bob"));
    assert_eq!(
        facts_of(&m, &reissued).await.absolute_expires_at,
        deadline,
        "signing out elsewhere extended this session's life"
    );
    assert_eq!(
        user_of(&m, &other_user).await.as_deref(),
        Some("carol"),
        "other users untouched"
    );
    // Signing in again later works.
    clock.advance(1);
    let again = log_in(&m, "bob").await;
    assert_eq!(user_of(&m, &again).await.as_deref(), Some("bob"));
}

#[tokio::test]
async fn regenerate_revokes_the_pre_login_cookie() {
    let clock = ManualClock::new(T0);
    let m = manager(Some(Arc::new(MemoryStore::new())), &clock);
    let s = m.start(std::iter::empty(), Default::default());
    s.insert("cart", 3).await.unwrap();
    let anonymous = value(&m.finish(&s).await.unwrap().set_cookie.unwrap());
    let s = start(&m, &anonymous);
    s.log_in("dora").await.unwrap();
    let signed_in = value(&m.finish(&s).await.unwrap().set_cookie.unwrap());
    let s = start(&m, &anonymous);
    assert_eq!(
        s.get::<i32>("cart").await.unwrap(),
        None,
        "pre-login cookie still honoured"
    );
    let s = start(&m, &signed_in);
    assert_eq!(s.get::<i32>("cart").await.unwrap(), Some(3));
}

#[tokio::test]
async fn admin_revoke_of_a_user_refuses_their_cookies() {
    let clock = ManualClock::new(T0);
    let m = manager(Some(Arc::new(MemoryStore::new())), &clock);
    let cookie = log_in(&m, "erin").await;
    clock.advance(1);
    assert_eq!(m.revoke_user("erin").await.unwrap(), 0);
    assert_eq!(user_of(&m, &cookie).await, None);
}

#[tokio::test]
async fn without_a_revocation_store_revoking_is_refused_loudly() {
    let clock = ManualClock::new(T0);
    let m = manager(None, &clock);
    let cookie = log_in(&m, "fay").await;
    let err = start(&m, &cookie)
        .sign_out_everywhere_else()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("revocation store"));
    assert!(m.revoke_user("fay").await.is_err());
}

#[tokio::test]
async fn clearing_the_data_before_logout_still_revokes_the_cookie() {
    let clock = ManualClock::new(T0);
    let m = manager(Some(Arc::new(MemoryStore::new())), &clock);
    let cookie = log_in(&m, "gus").await;
    let s = start(&m, &cookie);
    s.clear().await.unwrap();
    s.set_remember(false).await.unwrap();
    s.destroy().await.unwrap();
    m.finish(&s).await.unwrap();
    assert_eq!(
        user_of(&m, &cookie).await,
        None,
        "a copy of the cookie outlived a logout that cleared the data first"
    );
}

#[tokio::test]
async fn a_second_revocation_refuses_what_was_signed_in_between() {
    let clock = ManualClock::new(T0);
    let m = manager(Some(Arc::new(MemoryStore::new())), &clock);
    let first = log_in(&m, "hal").await;
    clock.advance(1);
    m.revoke_user("hal").await.unwrap();
    clock.advance_millis(1);
    let second = log_in(&m, "hal").await;
    assert_eq!(user_of(&m, &second).await.as_deref(), Some("hal"));
    clock.advance(1);
    m.revoke_user("hal").await.unwrap();
    assert_eq!(user_of(&m, &first).await, None);
    assert_eq!(user_of(&m, &second).await, None);
}

/// Makes a store's `create` fail on demand (as a store timing out mid-operation
/// would).
#[derive(Debug, Default)]
struct FailCreates(AtomicBool);

#[async_trait::async_trait]
impl Gate for FailCreates {
    async fn before(&self, call: Call) -> latch::Result<()> {
        if call == Call::Create && self.0.load(Ordering::SeqCst) {
            return Err(latch::Error::store_msg("injected write failure"));
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_failed_revocation_never_lifts_an_earlier_one() {
    let clock = ManualClock::new(T0);
    let store = Arc::new(Gated::new(
        Arc::new(MemoryStore::new()),
        FailCreates::default(),
    ));
    let m = SessionManager::builder()
        .signed_cookies(Keyring::new(SecretKey::generate()))
        .clock(clock.clone())
        .revocation_store(Arc::clone(&store) as Arc<dyn SessionStore>)
        .build()
        .unwrap();
    let cookie = log_in(&m, "ivy").await;
    clock.advance(1);
    m.revoke_user("ivy").await.unwrap();
    assert_eq!(user_of(&m, &cookie).await, None);
    clock.advance(1);
    store.gate.0.store(true, Ordering::SeqCst);
    let err = m.revoke_user("ivy").await.unwrap_err();
    assert!(err.is_unavailable(), "{err}");
    store.gate.0.store(false, Ordering::SeqCst);
    assert_eq!(
        user_of(&m, &cookie).await,
        None,
        "a failed revocation lifted the earlier one"
    );
}

#[tokio::test]
async fn purging_removes_markers_once_their_cookies_are_dead() {
    let clock = ManualClock::new(T0);
    let markers = Arc::new(MemoryStore::new());
    let m = manager(Some(Arc::clone(&markers)), &clock);
    let cookie = log_in(&m, "jo").await;
    let s = start(&m, &cookie);
    s.destroy().await.unwrap();
    m.finish(&s).await.unwrap();
    assert_eq!(markers.len(), 1);
    assert_eq!(m.purge_expired(100).await.unwrap(), 0, "still needed");
    assert_eq!(user_of(&m, &cookie).await, None);
    // A copy of the cookie made a remember-me one (same ID) could live for
    // the remember-me absolute timeout (30 days by default): the marker
    // stays until then, and not a second less.
    clock.advance(12 * 3600 + 1);
    assert_eq!(
        m.purge_expired(100).await.unwrap(),
        0,
        "a remember-me copy may live"
    );
    clock.advance(30 * 86_400 - 12 * 3600 - 1);
    assert_eq!(m.purge_expired(100).await.unwrap(), 1);
    assert!(markers.is_empty());
}

/// Issue 11, item 7: "sign out everywhere else" refuses sessions signed in
/// within the same second before it (compared in milliseconds), and a sign-in
/// right after it works (item 13: it used to be refused, so the browser got
/// 303 on sign-in and then 401).
#[tokio::test]
async fn e3_revocation_and_sign_in_are_ordered_within_a_second() {
    let clock = ManualClock::new(T0);
    let m = manager(Some(Arc::new(MemoryStore::new())), &clock);
    let asking = log_in(&m, "kim").await;
    let mut others = Vec::new();
    for _ in 0..5 {
        clock.advance_millis(10);
        others.push(log_in(&m, "kim").await);
    }
    clock.advance_millis(10);
    let s = start(&m, &asking);
    s.sign_out_everywhere_else().await.unwrap();
    let kept = value(&m.finish(&s).await.unwrap().set_cookie.unwrap());
    for (i, other) in others.iter().enumerate() {
        assert_eq!(
            user_of(&m, other).await,
            None,
            "session {i} of the same second survived"
        );
    }
    assert_eq!(user_of(&m, &kept).await.as_deref(), Some("kim"));
    // An anonymous session older than the revocation signs in a moment later.
    let anonymous = {
        let s = m.start(std::iter::empty(), Default::default());
        s.insert("cart", 1).await.unwrap();
        value(&m.finish(&s).await.unwrap().set_cookie.unwrap())
    };
    clock.advance_millis(5);
    m.revoke_user("kim").await.unwrap();
    clock.advance_millis(5);
    let s = start(&m, &anonymous);
    s.log_in("kim").await.unwrap();
    let signed_in = value(&m.finish(&s).await.unwrap().set_cookie.unwrap());
    assert_eq!(
        user_of(&m, &signed_in).await.as_deref(),
        Some("kim"),
        "303 then 401"
    );
    assert_eq!(
        user_of(&m, &kept).await,
        None,
        "the admin revocation spared a session"
    );
}

/// Issue 11, item 11: `clear()` keeps the cookie session's ID, so a logout in
/// a later request revokes copies made before the `clear()` too (it used to
/// draw a new ID, and the old copies, user included, outlived the logout).
#[tokio::test]
async fn e2_clear_then_logout_in_another_request_revokes_older_copies() {
    let clock = ManualClock::new(T0);
    let m = manager(Some(Arc::new(MemoryStore::new())), &clock);
    let before_clear = log_in(&m, "lou").await;
    let s = start(&m, &before_clear);
    s.insert("x", 1).await.unwrap();
    s.clear().await.unwrap();
    let after_clear = value(&m.finish(&s).await.unwrap().set_cookie.unwrap());
    assert_eq!(
        user_of(&m, &after_clear).await.as_deref(),
        Some("lou"),
        "clear keeps the user"
    );
    let s = start(&m, &after_clear);
    s.destroy().await.unwrap();
    m.finish(&s).await.unwrap();
    assert_eq!(user_of(&m, &after_clear).await, None);
    assert_eq!(
        user_of(&m, &before_clear).await,
        None,
        "a pre-clear copy outlived logout"
    );
}

/// Issue 11, item 12: a logout revokes copies of the cookie for as long as
/// any could live, even when the cookie presented at logout had stopped
/// being a remember-me one while older remember-me copies remain.
#[tokio::test]
async fn e2_logout_outlives_remember_me_copies_of_the_cookie() {
    let clock = ManualClock::new(T0);
    let m = manager(Some(Arc::new(MemoryStore::new())), &clock);
    let s = m.start(std::iter::empty(), Default::default());
    s.log_in("mo").await.unwrap();
    s.set_remember(true).await.unwrap();
    let remembered = value(&m.finish(&s).await.unwrap().set_cookie.unwrap());
    let s = start(&m, &remembered);
    s.set_remember(false).await.unwrap();
    let plain = value(&m.finish(&s).await.unwrap().set_cookie.unwrap());
    let s = start(&m, &plain);
    s.destroy().await.unwrap();
    m.finish(&s).await.unwrap();
    // Well past the ordinary absolute timeout (12 h), within the remember-me
    // one (30 days), with the purge having run: the stolen copy stays dead.
    for _ in 0..6 {
        clock.advance(86_400 - 60);
        let s = start(&m, &remembered);
        s.get::<i32>("touch").await.unwrap();
        m.finish(&s).await.unwrap();
    }
    m.purge_expired(100).await.unwrap();
    assert_eq!(
        user_of(&m, &remembered).await,
        None,
        "a remember-me copy outlived logout"
    );
}

/// Attack round 2: signing out an anonymous cookie session files no marker
/// (the attack filed 45,000 30-day rows in 30 s that way); a signed-in one
/// still does.
#[tokio::test]
async fn ending_an_anonymous_cookie_session_files_no_marker() {
    let clock = ManualClock::new(T0);
    let markers = Arc::new(MemoryStore::new());
    let m = manager(Some(Arc::clone(&markers)), &clock);
    let anonymous = {
        let s = m.start(std::iter::empty(), Default::default());
        s.insert("cart", 1).await.unwrap();
        value(&m.finish(&s).await.unwrap().set_cookie.unwrap())
    };
    for _ in 0..10 {
        let s = start(&m, &anonymous);
        s.destroy().await.unwrap();
        m.finish(&s).await.unwrap();
    }
    assert!(markers.is_empty(), "{} markers", markers.len());
    let signed_in = log_in(&m, "nia").await;
    let s = start(&m, &signed_in);
    s.destroy().await.unwrap();
    m.finish(&s).await.unwrap();
    assert_eq!(markers.len(), 1);
    assert_eq!(user_of(&m, &signed_in).await, None);
}

/// A double-submitted sign-in form: two requests with the same cookie both
/// sign in. One wins and sets the new cookie; the other must set no cookie
/// at all, since a removal cookie arriving after the winner's would sign the
/// browser out again (found by the third outside attack).
#[tokio::test]
async fn the_losing_half_of_a_double_sign_in_sets_no_cookie() {
    let store = Arc::new(MemoryStore::new());
    let m = SessionManager::builder()
        .shared_store(store)
        .build()
        .unwrap();
    // A stored session (a visit that put something in it).
    let first = m.start(std::iter::empty(), Default::default());
    first.insert("cart", 1).await.unwrap();
    let cookie = value(&m.finish(&first).await.unwrap().set_cookie.unwrap());
    let a = start(&m, &cookie);
    let b = start(&m, &cookie);
    a.log_in("alice").await.unwrap();
    b.log_in("alice").await.unwrap();
    let won = m.finish(&a).await.unwrap().set_cookie.unwrap();
    assert!(!won.contains("Max-Age=0"), "{won}");
    let lost = m.finish(&b).await.unwrap();
    assert_eq!(lost.set_cookie, None, "the loser must not touch the cookie");
    // The winner's cookie is signed in, with the visit's data.
    let session = start(&m, &value(&won));
    assert_eq!(session.user_id().await.unwrap().as_deref(), Some("alice"));
    assert_eq!(session.get::<i32>("cart").await.unwrap(), Some(1));
    m.finish(&session).await.unwrap();
}
