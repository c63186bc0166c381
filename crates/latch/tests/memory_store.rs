//! The store conformance suite against the in-memory store.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::sync::Arc;

use latch::{MemoryStore, SessionStore};

async fn make() -> Option<Arc<dyn SessionStore>> {
    Some(Arc::new(MemoryStore::new()))
}

latch_conformance::store_conformance!(make);

/// T3: the same cases with every record sealed ([`latch::store::EncryptedStore`]).
mod encrypted {
    use std::sync::Arc;

    use latch::store::EncryptedStore;
    use latch::{Keyring, SecretKey, SessionStore};

    async fn make() -> Option<Arc<dyn SessionStore>> {
        let inner = super::make().await?;
        Some(Arc::new(EncryptedStore::new(
            inner,
            &Keyring::new(SecretKey::generate()),
        )))
    }

    latch_conformance::store_conformance!(make);
}

/// The memory store hands out the records it holds: a refresh (which it does
/// in place) must leave a record a request still holds as it was, and a
/// save must keep the record it was given rather than a copy of it.
#[tokio::test]
async fn records_handed_out_are_never_changed_in_place() {
    use latch::{Record, SaveOutcome, SessionId};

    let store = MemoryStore::new();
    let key = SessionId::generate().store_key();
    let mut record = Record::new(1_000);
    record.expires_at = 2_000;
    record.version = 1;
    assert!(store.create_shared(&key, &Arc::new(record)).await.unwrap());

    let held = store.load_shared(&key).await.unwrap().unwrap();
    assert!(store.touch(&key, None, 1_500, 2_500).await.unwrap());
    assert_eq!((held.last_seen, held.expires_at), (1_000, 2_000));
    let refreshed = store.load_shared(&key).await.unwrap().unwrap();
    assert_eq!((refreshed.last_seen, refreshed.expires_at), (1_500, 2_500));

    let mut next = Record::clone(&refreshed);
    next.version = 2;
    let next = Arc::new(next);
    assert_eq!(
        store.save_shared(&key, &next, 1).await.unwrap(),
        SaveOutcome::Saved
    );
    let loaded = store.load_shared(&key).await.unwrap().unwrap();
    assert!(
        Arc::ptr_eq(&loaded, &next),
        "the store copied what it was given"
    );
}

/// A bounded store holds exactly as many sessions as it was given room for,
/// even with creates racing on several threads, and every way out of the
/// store (delete, sign-out everywhere, purge) makes room again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bounded_store_holds_exactly_its_limit_and_frees_room() {
    use latch::{ExpiredDeletion as _, Record, SessionId, UserIndex as _};

    const LIMIT: usize = 500;
    let store = Arc::new(MemoryStore::with_max_sessions(LIMIT));
    let racers: Vec<_> = (0..8)
        .map(|n| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut made = Vec::new();
                for i in 0..200 {
                    let key = SessionId::generate().store_key();
                    let mut record = Record::new(1_000);
                    // Half of each racer's sessions expire early, a quarter
                    // belong to one user.
                    record.expires_at = if i % 2 == 0 { 1_500 } else { 9_000 };
                    if i % 4 == 1 {
                        record.user_id = Some(format!("user-{n}"));
                    }
                    match store.create(&key, &record).await {
                        Ok(true) => made.push(key),
                        Ok(false) => panic!("a fresh ID was taken"),
                        Err(e) => assert!(e.to_string().contains("full"), "{e}"),
                    }
                }
                made
            })
        })
        .collect();
    let mut made = Vec::new();
    for racer in racers {
        made.extend(racer.await.unwrap());
    }
    assert_eq!(
        made.len(),
        LIMIT,
        "8 x 200 creates against room for {LIMIT}"
    );
    assert_eq!(store.len(), LIMIT);
    let one_more = SessionId::generate().store_key();
    assert!(store.create(&one_more, &Record::new(1_000)).await.is_err());

    assert!(store.delete(&made[0]).await.unwrap());
    assert_eq!(store.len(), LIMIT - 1);
    assert!(store.create(&one_more, &Record::new(1_000)).await.unwrap());
    assert_eq!(store.len(), LIMIT);

    let signed_out = store.delete_by_user("user-3", None).await.unwrap();
    assert_eq!(store.len(), LIMIT - usize::try_from(signed_out).unwrap());
    let purged = store.purge_expired(2_000, usize::MAX).await.unwrap();
    assert!(purged > 0);
    let left = LIMIT - usize::try_from(signed_out + purged).unwrap();
    assert_eq!(store.len(), left);
    // What the count says is what the store holds: exactly that many more fit.
    for _ in 0..LIMIT - left {
        let key = SessionId::generate().store_key();
        assert!(store.create(&key, &Record::new(1_000)).await.unwrap());
    }
    assert!(
        store
            .create(&SessionId::generate().store_key(), &Record::new(1_000))
            .await
            .is_err()
    );
}

/// Room kept for sign-ins (black-box attack, sixteenth round: a flood of
/// anonymous sessions filled the demo's store and then every sign-in got a
/// 503, since a sign-in creates its session under a new ID): past
/// `max_anonymous_sessions`, only sessions created signed in are made, up
/// to the store's limit; room freed below the mark is anyone's again.
#[tokio::test]
async fn anonymous_sessions_leave_room_for_sign_ins() {
    use latch::{Record, SessionId};

    let store = MemoryStore::with_max_sessions(6).max_anonymous_sessions(4);
    let anonymous = Record::new(1_000);
    let mut signed_in = Record::new(1_000);
    signed_in.user_id = Some("ada".into());
    let mut made = Vec::new();
    for _ in 0..4 {
        let key = SessionId::generate().store_key();
        assert!(store.create(&key, &anonymous).await.unwrap());
        made.push(key);
    }
    let refused = store
        .create(&SessionId::generate().store_key(), &anonymous)
        .await
        .unwrap_err();
    assert!(refused.is_unavailable(), "{refused}");
    assert!(refused.to_string().contains("signed-in"), "{refused}");
    for _ in 0..2 {
        let key = SessionId::generate().store_key();
        assert!(store.create(&key, &signed_in).await.unwrap(), "room kept");
    }
    assert!(
        store
            .create(&SessionId::generate().store_key(), &signed_in)
            .await
            .is_err(),
        "the store's own limit still holds"
    );
    assert_eq!(store.len(), 6);
    // Three anonymous ones end: one anonymous one fits again (5 < 4 is
    // false, 3 < 4 is true), then no more.
    for key in &made[..3] {
        assert!(store.delete(key).await.unwrap());
    }
    assert!(
        store
            .create(&SessionId::generate().store_key(), &anonymous)
            .await
            .unwrap()
    );
    assert!(
        store
            .create(&SessionId::generate().store_key(), &anonymous)
            .await
            .is_err()
    );
}
