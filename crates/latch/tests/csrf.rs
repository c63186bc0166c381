//! CSRF tokens: bound to their session, and a stored secret latch did not make
//! (a store shared with other code) is replaced instead of failing the request.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::sync::Arc;

use latch::{MemoryStore, Record, SessionId, SessionManager, SessionStore};

#[tokio::test]
async fn a_malformed_stored_secret_is_replaced_not_a_panic() {
    let store = Arc::new(MemoryStore::new());
    let manager = SessionManager::builder()
        .shared_store(Arc::clone(&store) as Arc<dyn SessionStore>)
        .build()
        .unwrap();
    let id = SessionId::generate();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut record = Record::new(now);
    record.expires_at = now + 600;
    record.version = 1;
    record
        .data
        .insert("_latch.csrf".into(), "not a latch secret!".into());
    assert!(store.create(&id.store_key(), &record).await.unwrap());

    let header = format!("__Host-session={}", id.encode());
    let s = manager.start(Some(header.as_str()), Default::default());
    assert!(!s.verify_csrf("anything").await.unwrap());
    let token = s.csrf_token().await.unwrap();
    assert!(s.verify_csrf(&token).await.unwrap());
    manager.finish(&s).await.unwrap();

    // The new secret was saved: the token verifies on the next request, and
    // another session's token does not.
    let s = manager.start(Some(header.as_str()), Default::default());
    assert!(s.verify_csrf(&token).await.unwrap());
    let other = manager.start(std::iter::empty(), Default::default());
    let foreign = other.csrf_token().await.unwrap();
    assert!(!s.verify_csrf(&foreign).await.unwrap());
}

fn keyed(store: &Arc<MemoryStore>) -> SessionManager {
    SessionManager::builder()
        .shared_store(Arc::clone(store) as Arc<dyn SessionStore>)
        .keys(latch::Keyring::new(latch::SecretKey::generate()))
        .build()
        .unwrap()
}

/// `name=value` of each `Set-Cookie` of a finished request.
fn pairs(finished: &latch::Finished) -> Vec<String> {
    finished
        .set_cookie
        .iter()
        .chain(&finished.other_cookies)
        .map(|c| c.split(';').next().unwrap().to_owned())
        .collect()
}

/// A3 for forms: with keys, a CSRF token for a visitor without a session
/// stores nothing (the secret travels in a signed cookie of its own) and
/// verifies on the next request; the cookie is as strict as the session's.
#[tokio::test]
async fn a3_a_form_for_a_visitor_without_a_session_stores_nothing() {
    let store = Arc::new(MemoryStore::new());
    let manager = keyed(&store);
    let s = manager.start(std::iter::empty(), Default::default());
    let token = s.csrf_token().await.unwrap();
    let finished = manager.finish(&s).await.unwrap();
    assert!(store.is_empty(), "rendering a form stored a session");
    assert!(finished.set_cookie.is_none());
    let csrf_cookie = &finished.other_cookies[0];
    assert!(
        csrf_cookie.starts_with("__Host-session-csrf=")
            && csrf_cookie.ends_with("; HttpOnly; SameSite=Lax; Secure; Path=/"),
        "{csrf_cookie}"
    );
    let cookie = pairs(&finished).join("; ");
    // The post: the token verifies against the cookie; another doesn't.
    let s = manager.start(Some(cookie.as_str()), Default::default());
    assert!(s.verify_csrf(&token).await.unwrap());
    assert!(!s.verify_csrf("forged").await.unwrap());
    let again = s.csrf_token().await.unwrap();
    assert_ne!(again, token, "masked afresh");
    assert!(manager.finish(&s).await.unwrap().other_cookies.is_empty());
    assert!(store.is_empty());
    // Without the cookie (another browser), the token is worth nothing.
    let s = manager.start(std::iter::empty(), Default::default());
    assert!(!s.verify_csrf(&token).await.unwrap());
}

/// The secret moves into the session when one is stored (the visitor's open
/// forms keep working) and is replaced at sign-in (a token seen before
/// signing in is worth nothing after); either way the cookie is removed.
#[tokio::test]
async fn the_pre_session_secret_moves_into_the_session_or_is_replaced_at_sign_in() {
    let store = Arc::new(MemoryStore::new());
    let manager = keyed(&store);
    let s = manager.start(std::iter::empty(), Default::default());
    let token = s.csrf_token().await.unwrap();
    let csrf_cookie = pairs(&manager.finish(&s).await.unwrap()).join("; ");

    // A write stores the session: the form's token still verifies.
    let s = manager.start(Some(csrf_cookie.as_str()), Default::default());
    s.insert("cart", 1).await.unwrap();
    let finished = manager.finish(&s).await.unwrap();
    assert_eq!(store.len(), 1);
    assert!(
        finished.other_cookies[0].contains("Max-Age=0"),
        "{finished:?}"
    );
    let session_cookie = pairs(&finished)[0].clone();
    let s = manager.start(Some(session_cookie.as_str()), Default::default());
    assert!(
        s.verify_csrf(&token).await.unwrap(),
        "an open form stopped working"
    );

    // Signing in from the pre-session state: a new secret.
    let s = manager.start(Some(csrf_cookie.as_str()), Default::default());
    assert!(s.verify_csrf(&token).await.unwrap());
    s.log_in("alice").await.unwrap();
    let finished = manager.finish(&s).await.unwrap();
    assert!(finished.other_cookies[0].contains("Max-Age=0"));
    let signed_in = pairs(&finished)[0].clone();
    let s = manager.start(Some(signed_in.as_str()), Default::default());
    assert!(
        !s.verify_csrf(&token).await.unwrap(),
        "a pre-sign-in token survived"
    );
}

/// Without keys, a form still works, by storing the session as before.
#[tokio::test]
async fn without_keys_a_form_stores_its_session() {
    let store = Arc::new(MemoryStore::new());
    let manager = SessionManager::builder()
        .shared_store(Arc::clone(&store) as Arc<dyn SessionStore>)
        .build()
        .unwrap();
    let s = manager.start(std::iter::empty(), Default::default());
    let token = s.csrf_token().await.unwrap();
    let finished = manager.finish(&s).await.unwrap();
    assert_eq!(store.len(), 1);
    let cookie = pairs(&finished).join("; ");
    let s = manager.start(Some(cookie.as_str()), Default::default());
    assert!(s.verify_csrf(&token).await.unwrap());
}
