//! T3 through the manager: with `encrypt_at_rest`, a record swapped with
//! another session's, or stored before encryption was on, is no session (a
//! fresh one, never an error), and a key rotation keeps sessions working.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::sync::Arc;

use latch::{Keyring, MemoryStore, SecretKey, SessionId, SessionManager, SessionStore};
use latch_conformance::requests::{cookie_value, request};

fn manager(raw: &Arc<MemoryStore>, keys: Option<Keyring>) -> SessionManager {
    let shared: Arc<dyn SessionStore> = raw.clone();
    let builder = SessionManager::builder().shared_store(shared);
    match keys {
        Some(keys) => builder.encrypt_at_rest(keys),
        None => builder,
    }
    .build()
    .unwrap()
}

async fn sign_in(m: &SessionManager, user: &str) -> String {
    let user = user.to_owned();
    cookie_value(
        &request(m, None, |s| async move {
            s.log_in(user).await.unwrap();
        })
        .await
        .unwrap(),
    )
}

async fn who(m: &SessionManager, cookie: &str) -> (Option<String>, bool) {
    let header = format!("{}={cookie}", m.cookie_config().name());
    let s = m.start(Some(header.as_str()), Default::default());
    let user = s.user_id().await.unwrap();
    (user, s.facts().await.unwrap().is_new)
}

#[tokio::test]
async fn t3_swapped_records_are_fresh_sessions_not_errors() {
    let raw = Arc::new(MemoryStore::new());
    let m = manager(&raw, Some(Keyring::new(SecretKey::generate())));
    let (ada, bob) = (sign_in(&m, "ada").await, sign_in(&m, "bob").await);
    assert_eq!(who(&m, &ada).await.0.as_deref(), Some("ada"));

    // Someone with write access to the store swaps the two rows.
    let key = |c: &str| SessionId::parse(c).unwrap().store_key();
    let (a, b) = (
        raw.load(&key(&ada)).await.unwrap().unwrap(),
        raw.load(&key(&bob)).await.unwrap().unwrap(),
    );
    raw.save(&key(&ada), &b, a.version).await.unwrap();
    raw.save(&key(&bob), &a, b.version).await.unwrap();
    assert_eq!(
        who(&m, &ada).await,
        (None, true),
        "bob's record does not sign ada in as bob"
    );
    assert_eq!(who(&m, &bob).await, (None, true));
}

#[tokio::test]
async fn t3_sessions_from_before_encryption_end_and_rotation_keeps_them() {
    let raw = Arc::new(MemoryStore::new());
    let plain = manager(&raw, None);
    let before = sign_in(&plain, "ada").await;

    let old = SecretKey::generate();
    let sealed = manager(&raw, Some(Keyring::new(old.clone())));
    assert_eq!(
        who(&sealed, &before).await,
        (None, true),
        "unsealed records are not trusted"
    );

    let cookie = sign_in(&sealed, "ada").await;
    let rotated = manager(
        &raw,
        Some(Keyring::new(SecretKey::generate()).with_previous(old)),
    );
    assert_eq!(who(&rotated, &cookie).await.0.as_deref(), Some("ada"));
}
