//! `Session::save`: a handler writes its changes before answering, so it can
//! answer with what the store holds (other requests' changes included).
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::sync::Arc;

use latch::{Keyring, MemoryStore, SecretKey, SessionManager, SessionStore};

fn stored(store: &Arc<MemoryStore>) -> SessionManager {
    let shared: Arc<dyn SessionStore> = store.clone();
    SessionManager::builder()
        .shared_store(shared)
        .build()
        .unwrap()
}

/// The `name=value` part of a `Set-Cookie`.
fn cookie_of(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

async fn new_session(m: &SessionManager) -> String {
    let s = m.start(std::iter::empty(), Default::default());
    s.insert("n", 0_u64).await.unwrap();
    cookie_of(&m.finish(&s).await.unwrap().set_cookie.unwrap())
}

async fn read_n(m: &SessionManager, cookie: &str) -> Option<u64> {
    let s = m.start(Some(cookie), Default::default());
    s.get("n").await.unwrap()
}

fn increment(n: Option<u64>) -> u64 {
    n.unwrap_or(0) + 1
}

#[tokio::test]
async fn a_save_merges_what_other_requests_stored_and_applies_updates_once() {
    let store = Arc::new(MemoryStore::new());
    let m = stored(&store);
    let cookie = new_session(&m).await;

    // Both requests load the session (n = 0) before either writes.
    let a = m.start(Some(cookie.as_str()), Default::default());
    let b = m.start(Some(cookie.as_str()), Default::default());
    assert_eq!(a.get::<u64>("n").await.unwrap(), Some(0));
    assert_eq!(b.get::<u64>("n").await.unwrap(), Some(0));

    // Without a save, each answers from what it loaded.
    assert_eq!(a.update("n", increment).await.unwrap(), 1);
    assert_eq!(b.update("n", increment).await.unwrap(), 1);

    a.save().await.unwrap();
    assert_eq!(a.get::<u64>("n").await.unwrap(), Some(1));
    assert_eq!(
        read_n(&m, &cookie).await,
        Some(1),
        "saved before the response"
    );

    // B's increment is re-run on A's stored value: B can answer 2.
    b.save().await.unwrap();
    assert_eq!(b.get::<u64>("n").await.unwrap(), Some(2));

    // Finishing writes nothing more: each increment counted once.
    let fa = m.finish(&a).await.unwrap();
    let fb = m.finish(&b).await.unwrap();
    assert_eq!(read_n(&m, &cookie).await, Some(2));
    assert!(fa.set_cookie.is_none() && fb.set_cookie.is_none());
}

#[tokio::test]
async fn changes_after_a_save_are_written_when_the_request_finishes() {
    let store = Arc::new(MemoryStore::new());
    let m = stored(&store);
    let cookie = new_session(&m).await;

    let s = m.start(Some(cookie.as_str()), Default::default());
    s.insert("n", 5_u64).await.unwrap();
    s.save().await.unwrap();
    s.insert("after", "yes").await.unwrap();
    assert_eq!(read_n(&m, &cookie).await, Some(5));
    m.finish(&s).await.unwrap();

    let check = m.start(Some(cookie.as_str()), Default::default());
    assert_eq!(check.get::<String>("after").await.unwrap().unwrap(), "yes");
    assert_eq!(check.get::<u64>("n").await.unwrap(), Some(5));
}

#[tokio::test]
async fn saving_a_fresh_session_stores_it_and_its_cookie_goes_out_at_the_end() {
    let store = Arc::new(MemoryStore::new());
    let m = stored(&store);

    let s = m.start(std::iter::empty(), Default::default());
    s.insert("n", 7_u64).await.unwrap();
    assert!(store.is_empty());
    s.save().await.unwrap();
    assert_eq!(store.len(), 1, "created by the save");
    s.insert("later", true).await.unwrap();
    let finished = m.finish(&s).await.unwrap();
    assert_eq!(
        store.len(),
        1,
        "the end of the request creates no second session"
    );

    let cookie = cookie_of(&finished.set_cookie.expect("the new session's cookie"));
    let check = m.start(Some(cookie.as_str()), Default::default());
    assert_eq!(check.get::<u64>("n").await.unwrap(), Some(7));
    assert_eq!(check.get::<bool>("later").await.unwrap(), Some(true));
}

#[tokio::test]
async fn saving_an_empty_fresh_session_stores_nothing() {
    let store = Arc::new(MemoryStore::new());
    let m = stored(&store);
    let s = m.start(std::iter::empty(), Default::default());
    s.save().await.unwrap();
    assert!(store.is_empty());
    assert!(m.finish(&s).await.unwrap().set_cookie.is_none());
}

#[tokio::test]
async fn a_session_ended_elsewhere_before_the_save_stays_ended() {
    let store = Arc::new(MemoryStore::new());
    let m = stored(&store);
    let cookie = new_session(&m).await;

    let s = m.start(Some(cookie.as_str()), Default::default());
    assert_eq!(s.get::<u64>("n").await.unwrap(), Some(0));
    // Logged out in another tab meanwhile.
    let logout = m.start(Some(cookie.as_str()), Default::default());
    logout.destroy().await.unwrap();
    m.finish(&logout).await.unwrap();

    s.insert("n", 1_u64).await.unwrap();
    s.save().await.unwrap();
    let finished = m.finish(&s).await.unwrap();
    assert!(store.is_empty(), "the save did not bring the session back");
    let removal = finished.set_cookie.expect("the cookie is removed");
    assert!(removal.contains("Max-Age=0"), "{removal}");
}

#[tokio::test]
async fn destroy_and_log_in_still_happen_at_the_end() {
    let store = Arc::new(MemoryStore::new());
    let m = stored(&store);
    let cookie = new_session(&m).await;

    let s = m.start(Some(cookie.as_str()), Default::default());
    s.insert("n", 3_u64).await.unwrap();
    s.destroy().await.unwrap();
    s.save().await.unwrap();
    assert_eq!(
        read_n(&m, &cookie).await,
        Some(0),
        "nothing written by the save"
    );
    m.finish(&s).await.unwrap();
    assert!(store.is_empty());

    let cookie = new_session(&m).await;
    let s = m.start(Some(cookie.as_str()), Default::default());
    s.log_in("ada").await.unwrap();
    s.save().await.unwrap();
    assert_eq!(
        read_n(&m, &cookie).await,
        Some(0),
        "still the old id until the end"
    );
    let set = m.finish(&s).await.unwrap().set_cookie.unwrap();
    assert_ne!(cookie_of(&set), cookie, "a new id at sign-in");
    assert_eq!(read_n(&m, &cookie).await, None, "the old id is dead");
}

#[tokio::test]
async fn cookie_sessions_ignore_save_and_are_written_with_the_response() {
    let m = SessionManager::builder()
        .signed_cookies(Keyring::new(SecretKey::generate()))
        .build()
        .unwrap();
    let s = m.start(std::iter::empty(), Default::default());
    s.insert("n", 1_u64).await.unwrap();
    s.save().await.unwrap();
    let cookie = cookie_of(&m.finish(&s).await.unwrap().set_cookie.unwrap());
    assert_eq!(read_n(&m, &cookie).await, Some(1));
}
