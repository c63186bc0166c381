//! The conformance cases; each takes a fresh handle to the store under test.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::requests::{cookie_value, request};

use latch::{
    Clock, ExpiredDeletion, Expiry, ManualClock, Record, SaveOutcome, SessionId, SessionManager,
    SessionStore, StoreKey, UserIndex,
};

/// A store under test.
pub type Store = Arc<dyn SessionStore>;

/// The store's per-user index, which this case tests.
fn index(store: &Store) -> &dyn UserIndex {
    store.user_index().expect(
        "this case tests the per-user index, which this store does not have: opt out of it \
         with `store_conformance!(make; except: [...])`",
    )
}

/// The store's deletion of expired sessions, which this case tests.
fn expiry(store: &Store) -> &dyn ExpiredDeletion {
    store.expired_deletion().expect(
        "this case tests deleting expired sessions, which this store does not do: opt out of \
         it with `store_conformance!(make; except: [...])`",
    )
}

/// A time well after the epoch, so deadlines are realistic.
const T0: i64 = 1_800_000_000;

fn key() -> StoreKey {
    SessionId::generate().store_key()
}

fn unique_user() -> String {
    format!("user-{}", &SessionId::generate().encode()[..16])
}

fn record(user: Option<&str>, expires_at: i64) -> Record {
    let mut r = Record::new(T0);
    r.user_id = user.map(str::to_owned);
    r.expires_at = expires_at;
    r.version = 1;
    r
}

/// A manager over `store` with a manual clock at `T0`.
fn manager(store: &Store) -> (SessionManager, ManualClock) {
    let clock = ManualClock::new(T0);
    let manager = SessionManager::builder()
        .shared_store(Arc::clone(store))
        .clock(clock.clone())
        .store_timeout(Duration::from_secs(10))
        .expiry(
            Expiry::default()
                .idle(Duration::from_secs(1800))
                .absolute(Duration::from_secs(12 * 3600)),
        )
        .build()
        .expect("valid test configuration");
    (manager, clock)
}

/// A request carrying the session cookie `cookie`, left for the caller to
/// finish (for requests that overlap others).
fn start_with(manager: &SessionManager, cookie: &str) -> latch::Session {
    let header = format!("{}={cookie}", manager.cookie_config().name());
    manager.start(Some(header.as_str()), Default::default())
}

/// Start a stored session holding `k = v`; returns its cookie value.
async fn new_session(manager: &SessionManager) -> String {
    let set = request(manager, None, |s| async move {
        s.insert("seed", 1).await.expect("insert");
    })
    .await
    .expect("a new session sets a cookie");
    cookie_value(&set)
}

/// `N` stored sessions of `user`, live until `T0 + 600`.
async fn sessions_of<const N: usize>(store: &Store, user: &str) -> [StoreKey; N] {
    let keys = [(); N].map(|()| key());
    for k in &keys {
        assert!(
            store
                .create(k, &record(Some(user), T0 + 600))
                .await
                .expect("create")
        );
    }
    keys
}

/// Sign `user` in on `n` devices; their cookie values.
async fn signed_in_devices(manager: &SessionManager, user: &str, n: usize) -> Vec<String> {
    let mut cookies = Vec::new();
    for _ in 0..n {
        let u = user.to_owned();
        let set = request(manager, None, |s| async move {
            s.log_in(u).await.expect("log in");
        })
        .await
        .expect("cookie");
        cookies.push(cookie_value(&set));
    }
    cookies
}

/// S4: creating never overwrites an existing session.
pub async fn create_never_overwrites(store: Store) {
    let k = key();
    let mut first = record(None, T0 + 60);
    first.data.insert("who".into(), "first".into());
    assert!(store.create(&k, &first).await.expect("create"));
    let mut second = first.clone();
    second.data.insert("who".into(), "second".into());
    assert!(!store.create(&k, &second).await.expect("create again"));
    let loaded = store.load(&k).await.expect("load").expect("present");
    assert_eq!(loaded.data["who"], "first");
}

/// Every field comes back as written.
pub async fn load_returns_every_field(store: Store) {
    let k = key();
    let mut r = record(Some("alice"), T0 + 600);
    r.data.insert("n".into(), 42.into());
    r.data.insert("nested".into(), serde_json_value());
    r.last_seen = T0 + 5;
    r.remember = true;
    r.user_agent = Some("Mozilla/5.0 (X11)".into());
    r.ip = Some("2001:db8::1".into());
    r.version = 7;
    assert!(store.create(&k, &r).await.expect("create"));
    assert_eq!(store.load(&k).await.expect("load"), Some(r));
}

/// A nested value, to show nesting and non-ASCII text survive the store.
fn serde_json_value() -> serde_json::Value {
    serde_json::json!({"list": [1, 2, 3], "text": "é \u{1f512} \"quoted\"", "none": null})
}

/// An unknown key loads as `None`.
pub async fn load_of_unknown_key_is_none(store: Store) {
    assert_eq!(store.load(&key()).await.expect("load"), None);
}

/// A6/E5 building block: save succeeds only on the expected version.
pub async fn save_is_compare_and_swap(store: Store) {
    let k = key();
    let r = record(None, T0 + 60);
    assert!(store.create(&k, &r).await.expect("create"));
    let mut next = r.clone();
    next.version = 2;
    next.data.insert("a".into(), 1.into());
    assert_eq!(
        store.save(&k, &next, 1).await.expect("save"),
        SaveOutcome::Saved
    );
    let mut stale = r.clone();
    stale.version = 2;
    assert_eq!(
        store.save(&k, &stale, 1).await.expect("save"),
        SaveOutcome::Conflict
    );
    assert_eq!(store.load(&k).await.expect("load"), Some(next));
}

/// A save replaces the whole record: every field, `created_at` included (the
/// revocation markers of cookie sessions move their "not before" time this way).
pub async fn save_replaces_every_field(store: Store) {
    let k = key();
    let r = record(Some("before"), T0 + 60);
    assert!(store.create(&k, &r).await.expect("create"));
    let mut next = Record::new(T0 + 5);
    next.last_seen = T0 + 7;
    next.expires_at = T0 + 900;
    next.remember = !r.remember;
    next.user_id = Some(unique_user());
    next.user_agent = Some("after/2.0".into());
    next.ip = Some("192.0.2.1".into());
    next.data.insert("k".into(), "v".into());
    next.version = 2;
    assert_eq!(
        store.save(&k, &next, 1).await.expect("save"),
        SaveOutcome::Saved
    );
    assert_eq!(store.load(&k).await.expect("load"), Some(next));
}

/// The `_shared` forms (what the engine calls; by default they call the plain
/// ones) keep the same contract, and a record handed out stays as it was
/// handed out: a later save changes the store's record, not a copy a request
/// holds. Checked on the data and the version the store reports, so that
/// stores that keep fewer fields (Flask-Session's layout) run it too.
pub async fn shared_records_keep_the_contract_and_stay_isolated(store: Store) {
    let k = key();
    let user = unique_user();
    let mut first = record(Some(&user), T0 + 60);
    first.data.insert("who".into(), "first".into());
    let first = Arc::new(first);
    assert!(store.create_shared(&k, &first).await.expect("create"));
    let mut other = Record::clone(&first);
    other.data.insert("who".into(), "second".into());
    assert!(
        !store
            .create_shared(&k, &Arc::new(other))
            .await
            .expect("create again"),
        "create_shared overwrote a session"
    );
    let held = store.load_shared(&k).await.expect("load").expect("present");
    assert_eq!(held.data, first.data);
    let plain = store.load(&k).await.expect("load").expect("present");
    assert_eq!((&plain.data, plain.version), (&held.data, held.version));

    let mut next = Record::clone(&held);
    next.version = held.version + 1;
    next.data.insert("n".into(), 1.into());
    let next = Arc::new(next);
    assert_eq!(
        store
            .save_shared(&k, &next, held.version)
            .await
            .expect("save"),
        SaveOutcome::Saved
    );
    let stale = Arc::new(Record::clone(&held));
    assert_eq!(
        store
            .save_shared(&k, &stale, held.version)
            .await
            .expect("stale save"),
        SaveOutcome::Conflict
    );
    assert_eq!(
        held.data, first.data,
        "a record handed out changed under its holder"
    );
    let now = store.load_shared(&k).await.expect("load").expect("present");
    assert_eq!(now.data, next.data);

    assert!(store.delete(&k).await.expect("delete"));
    assert_eq!(
        store
            .save_shared(&k, &next, now.version)
            .await
            .expect("save after delete"),
        SaveOutcome::Gone
    );
    assert_eq!(store.load_shared(&k).await.expect("load"), None);
}

/// A store that answers without waiting ([`latch::InProcess`]) answers what
/// its asynchronous methods answer, and both see each other's writes. A store
/// without that face has nothing to check here.
pub async fn in_process_answers_match_the_store(store: Store) {
    let Some(now) = store.in_process() else {
        return;
    };
    let k = key();
    let mut first = record(Some(&unique_user()), T0 + 60);
    first.data.insert("who".into(), "first".into());
    let first = Arc::new(first);
    assert!(now.create_now(&k, &first).expect("create_now"));
    let mut other = Record::clone(&first);
    other.data.insert("who".into(), "second".into());
    assert!(
        !now.create_now(&k, &Arc::new(other.clone()))
            .expect("create_now again"),
        "create_now overwrote a session"
    );
    assert!(
        !store
            .create_shared(&k, &Arc::new(other))
            .await
            .expect("create again"),
        "create_shared overwrote a session created by create_now"
    );
    let sync = now.load_now(&k).expect("load_now").expect("present");
    let not_sync = store.load_shared(&k).await.expect("load").expect("present");
    assert_eq!((&sync.data, sync.version), (&first.data, first.version));
    assert_eq!(
        (&not_sync.data, not_sync.version),
        (&sync.data, sync.version)
    );

    let k2 = key();
    assert!(store.create_shared(&k2, &first).await.expect("create"));
    let seen = now.load_now(&k2).expect("load_now").expect("present");
    assert_eq!(seen.data, first.data);
    assert!(store.delete(&k2).await.expect("delete"));
    assert_eq!(now.load_now(&k2).expect("load_now"), None);
    assert_eq!(now.load_now(&key()).expect("load_now"), None);
}

/// A change a request has made but not saved is seen by no other request,
/// even by a store that hands out the record it holds.
pub async fn unsaved_changes_stay_with_their_request(store: Store) {
    let (manager, _clock) = manager(&store);
    let cookie = new_session(&manager).await;
    let writer = start_with(&manager, &cookie);
    writer.insert("seed", 2).await.expect("insert");
    let reader = start_with(&manager, &cookie);
    assert_eq!(
        reader.get::<i64>("seed").await.expect("get"),
        Some(1),
        "another request saw a change before it was saved"
    );
    manager.finish(&reader).await.expect("finish reader");
    manager.finish(&writer).await.expect("finish writer");
    let after = start_with(&manager, &cookie);
    assert_eq!(after.get::<i64>("seed").await.expect("get"), Some(2));
}

/// E5: a save after a delete reports `Gone` and does not recreate.
pub async fn save_never_resurrects_deleted(store: Store) {
    let k = key();
    let r = record(None, T0 + 60);
    assert!(store.create(&k, &r).await.expect("create"));
    assert!(store.delete(&k).await.expect("delete"));
    let mut next = r.clone();
    next.version = 2;
    assert_eq!(
        store.save(&k, &next, 1).await.expect("save"),
        SaveOutcome::Gone
    );
    assert_eq!(store.load(&k).await.expect("load"), None);
}

/// Touch moves `last_seen`/`expires_at` and nothing else.
pub async fn touch_refreshes_times_only(store: Store) {
    let k = key();
    let mut r = record(None, T0 + 60);
    r.data.insert("x".into(), true.into());
    assert!(store.create(&k, &r).await.expect("create"));
    assert!(
        store
            .touch(&k, None, T0 + 30, T0 + 90)
            .await
            .expect("touch")
    );
    let loaded = store.load(&k).await.expect("load").expect("present");
    assert_eq!((loaded.last_seen, loaded.expires_at), (T0 + 30, T0 + 90));
    assert_eq!((loaded.data, loaded.version), (r.data, r.version));
    assert!(
        !store
            .touch(&key(), None, T0, T0 + 1)
            .await
            .expect("touch missing")
    );
}

/// A touch keeps the per-user index current whatever its user hint says: with
/// the loaded user the session stays listed until its new expiry; with a stale
/// hint (another request gave the session to someone else since the load) or
/// none, it is listed, and revoked, under the stored user only.
pub async fn touch_keeps_the_user_index_current(store: Store) {
    let (alice, bob) = (unique_user(), unique_user());
    let k = key();
    let listed = |user: String, now: i64| {
        let store = Arc::clone(&store);
        async move {
            index(&store)
                .list_by_user(&user, now)
                .await
                .expect("list")
                .into_iter()
                .map(|info| (info.key, info.expires_at))
                .collect::<Vec<_>>()
        }
    };
    assert!(
        store
            .create(&k, &record(Some(&alice), T0 + 60))
            .await
            .expect("create")
    );
    assert!(
        store
            .touch(&k, Some(&alice), T0 + 30, T0 + 900)
            .await
            .expect("touch")
    );
    assert_eq!(listed(alice.clone(), T0 + 600).await, [(k, T0 + 900)]);

    let mut moved = record(Some(&bob), T0 + 900);
    moved.version = 2;
    assert_eq!(
        store.save(&k, &moved, 1).await.expect("save"),
        SaveOutcome::Saved
    );
    assert!(
        store
            .touch(&k, Some(&alice), T0 + 700, T0 + 1500)
            .await
            .expect("touch with a stale hint")
    );
    assert_eq!(listed(bob.clone(), T0 + 1200).await, [(k, T0 + 1500)]);
    assert!(listed(alice.clone(), T0 + 1200).await.is_empty());
    assert_eq!(
        index(&store)
            .delete_by_user(&alice, None)
            .await
            .expect("revoke"),
        0,
        "a stale hint let another user revoke the session"
    );

    assert!(
        store
            .touch(&k, None, T0 + 1400, T0 + 2000)
            .await
            .expect("touch without a hint")
    );
    assert_eq!(listed(bob.clone(), T0 + 1800).await, [(k, T0 + 2000)]);
    assert_eq!(
        index(&store)
            .delete_by_user(&bob, None)
            .await
            .expect("revoke"),
        1
    );
    assert_eq!(store.load(&k).await.expect("load"), None);
}

/// Delete says whether something was there.
pub async fn delete_reports_presence(store: Store) {
    let k = key();
    assert!(
        store
            .create(&k, &record(None, T0 + 60))
            .await
            .expect("create")
    );
    assert!(store.delete(&k).await.expect("delete"));
    assert!(!store.delete(&k).await.expect("delete again"));
}

/// E4: listing shows the user's live sessions and no one else's.
pub async fn list_by_user_lists_live_sessions_of_that_user_only(store: Store) {
    let (alice, bob) = (unique_user(), unique_user());
    let live: BTreeSet<StoreKey> = (0..3).map(|_| key()).collect();
    for k in &live {
        assert!(
            store
                .create(k, &record(Some(&alice), T0 + 600))
                .await
                .expect("create")
        );
    }
    let expired = key();
    assert!(
        store
            .create(&expired, &record(Some(&alice), T0 - 1))
            .await
            .expect("create")
    );
    assert!(
        store
            .create(&key(), &record(Some(&bob), T0 + 600))
            .await
            .expect("create")
    );
    let listed: BTreeSet<StoreKey> = index(&store)
        .list_by_user(&alice, T0)
        .await
        .expect("list")
        .into_iter()
        .map(|i| i.key)
        .collect();
    assert_eq!(listed, live);
    assert!(
        index(&store)
            .list_by_user(&unique_user(), T0)
            .await
            .expect("list")
            .is_empty()
    );
}

/// Saving a record with another user moves it in the per-user index.
pub async fn user_change_moves_index_entry(store: Store) {
    let (alice, bob) = (unique_user(), unique_user());
    let k = key();
    let r = record(Some(&alice), T0 + 600);
    assert!(store.create(&k, &r).await.expect("create"));
    let mut next = r.clone();
    next.user_id = Some(bob.clone());
    next.version = 2;
    assert_eq!(
        store.save(&k, &next, 1).await.expect("save"),
        SaveOutcome::Saved
    );
    assert!(
        index(&store)
            .list_by_user(&alice, T0)
            .await
            .expect("list")
            .is_empty()
    );
    assert_eq!(
        index(&store)
            .list_by_user(&bob, T0)
            .await
            .expect("list")
            .len(),
        1
    );
}

/// E4: "sign out everywhere else" keeps exactly the current session.
pub async fn delete_by_user_keeps_current(store: Store) {
    let (alice, bob) = (unique_user(), unique_user());
    let keys: Vec<StoreKey> = (0..4).map(|_| key()).collect();
    for k in &keys {
        assert!(
            store
                .create(k, &record(Some(&alice), T0 + 600))
                .await
                .expect("create")
        );
    }
    let bobs = key();
    assert!(
        store
            .create(&bobs, &record(Some(&bob), T0 + 600))
            .await
            .expect("create")
    );
    assert_eq!(
        index(&store)
            .delete_by_user(&alice, Some(&keys[0]))
            .await
            .expect("delete"),
        3
    );
    assert!(store.load(&keys[0]).await.expect("load").is_some());
    assert!(store.load(&keys[1]).await.expect("load").is_none());
    assert_eq!(
        index(&store)
            .delete_by_user(&alice, None)
            .await
            .expect("delete all"),
        1
    );
    assert!(
        store.load(&bobs).await.expect("load").is_some(),
        "other users untouched"
    );
}

/// E4: "sign out everywhere else" deletes nothing once the session it keeps
/// is gone (another device's sign-out ended it): the later of two sign-outs
/// must not end the earlier one's device too. A kept session that is not
/// (yet) the user's, as when a session signs in during the request, still
/// counts as there.
pub async fn sign_out_elsewhere_needs_the_kept_session(store: Store) {
    let alice = unique_user();
    let [laptop, phone, tablet] = sessions_of(&store, &alice).await;
    let users = index(&store);
    // Sign `alice` out everywhere but `keep`; how many sessions went.
    let keeping = |keep: StoreKey| {
        let alice = alice.clone();
        async move {
            users
                .delete_by_user(&alice, Some(&keep))
                .await
                .expect("delete")
        }
    };
    assert_eq!(keeping(laptop).await, 2);
    assert!(store.load(&tablet).await.expect("load").is_none());
    // The phone's request loaded its session before the laptop's sign-out.
    assert_eq!(
        keeping(phone).await,
        0,
        "the phone's session is gone: it ends no other"
    );
    assert!(
        store.load(&laptop).await.expect("load").is_some(),
        "the laptop, which signed out the others first, stays signed in"
    );
    assert_eq!(keeping(key()).await, 0, "a kept session that never existed");
    assert!(store.load(&laptop).await.expect("load").is_some());

    // An anonymous session signing in as alice is still stored as nobody's.
    let signing_in = key();
    assert!(
        store
            .create(&signing_in, &record(None, T0 + 600))
            .await
            .expect("create")
    );
    assert_eq!(keeping(signing_in).await, 1);
    assert!(store.load(&laptop).await.expect("load").is_none());
    assert!(store.load(&signing_in).await.expect("load").is_some());
}

/// E4: two devices of one user signing out everywhere else at the same
/// moment: one of them stays signed in (as if they came one after the
/// other), never neither.
pub async fn racing_sign_outs_elsewhere_leave_one_session(store: Store) {
    for round in 0..16 {
        let alice = unique_user();
        let [laptop, phone, tablet] = sessions_of(&store, &alice).await;
        let (a, b) = {
            let (s1, s2) = (store.clone(), store.clone());
            let (u1, u2) = (alice.clone(), alice.clone());
            let first =
                tokio::spawn(async move { index(&s1).delete_by_user(&u1, Some(&laptop)).await });
            let second =
                tokio::spawn(async move { index(&s2).delete_by_user(&u2, Some(&phone)).await });
            (
                first.await.expect("task").expect("delete"),
                second.await.expect("task").expect("delete"),
            )
        };
        let left = [
            store.load(&laptop).await.expect("load").is_some(),
            store.load(&phone).await.expect("load").is_some(),
        ];
        assert_eq!(
            left.iter().filter(|&&l| l).count(),
            1,
            "round {round}: laptop and phone left {left:?} (deleted {a} and {b})"
        );
        assert_eq!(a + b, 2, "round {round}: the tablet and one of the two");
        assert!(store.load(&tablet).await.expect("load").is_none());
    }
}

/// E4: revoking one device is the user's only, and needs the revoking
/// device's own session: a device that another has just signed out
/// everywhere else can revoke no one, so a revoke racing a sign-out
/// elsewhere leaves one of the two devices in, never neither.
pub async fn revoking_a_device_needs_the_revoking_session(store: Store) {
    let (alice, bob) = (unique_user(), unique_user());
    let (laptop, phone, tablet, bobs) = (key(), key(), key(), key());
    for (k, user) in [
        (&laptop, &alice),
        (&phone, &alice),
        (&tablet, &alice),
        (&bobs, &bob),
    ] {
        assert!(
            store
                .create(k, &record(Some(user), T0 + 600))
                .await
                .expect("create")
        );
    }
    let users = index(&store);
    let revoke = |k: StoreKey, keep: StoreKey| {
        let alice = alice.clone();
        async move {
            users
                .delete_one_by_user(&alice, &k, Some(&keep))
                .await
                .expect("revoke")
        }
    };
    assert!(!revoke(bobs, phone).await, "another user's session");
    assert!(store.load(&bobs).await.expect("load").is_some());
    assert!(revoke(laptop, phone).await);
    assert!(store.load(&laptop).await.expect("load").is_none());
    assert!(!revoke(laptop, phone).await, "already gone");
    assert_eq!(
        users
            .delete_by_user(&alice, Some(&tablet))
            .await
            .expect("sign out elsewhere"),
        1
    );
    assert!(
        !revoke(tablet, phone).await,
        "the phone was signed out: it revokes no one"
    );
    assert!(store.load(&tablet).await.expect("load").is_some());
    assert!(
        users
            .delete_one_by_user(&alice, &tablet, None)
            .await
            .expect("revoke without a session to keep")
    );

    for round in 0..16 {
        let alice = unique_user();
        let [laptop, phone, tablet] = sessions_of(&store, &alice).await;
        let (s1, s2) = (store.clone(), store.clone());
        let (u1, u2) = (alice.clone(), alice.clone());
        let others =
            tokio::spawn(async move { index(&s1).delete_by_user(&u1, Some(&laptop)).await });
        let one = tokio::spawn(async move {
            index(&s2)
                .delete_one_by_user(&u2, &laptop, Some(&phone))
                .await
        });
        let (others, one) = (
            others.await.expect("task").expect("sign out elsewhere"),
            one.await.expect("task").expect("revoke"),
        );
        let alive = |k: StoreKey| {
            let store = store.clone();
            async move { store.load(&k).await.expect("load").is_some() }
        };
        let (l, p, t) = (alive(laptop).await, alive(phone).await, alive(tablet).await);
        assert!(
            l != p,
            "round {round}: laptop {l}, phone {p} (signed out {others}, revoked {one})"
        );
        assert_eq!(t, p, "round {round}: the tablet goes with the phone");
    }
}

/// A4: purge deletes expired sessions only, at most `limit` per call.
pub async fn purge_removes_only_expired_in_batches(store: Store) {
    // Far-past expiry times so other cases' rows sharing the store are not counted.
    let past = 1_000_000;
    let expired: Vec<StoreKey> = (0..5).map(|_| key()).collect();
    for (i, k) in expired.iter().enumerate() {
        assert!(
            store
                .create(k, &record(None, past + i as i64))
                .await
                .expect("create")
        );
    }
    let live = key();
    assert!(
        store
            .create(&live, &record(None, T0 + 600))
            .await
            .expect("create")
    );
    let mut purged = 0;
    loop {
        let n = expiry(&store)
            .purge_expired(past + 10, 2)
            .await
            .expect("purge");
        assert!(n <= 2, "purge exceeded its batch limit: {n}");
        purged += n;
        if n < 2 {
            break;
        }
    }
    assert!(purged >= 5);
    for k in &expired {
        assert!(store.load(k).await.expect("load").is_none());
    }
    assert!(store.load(&live).await.expect("load").is_some());
}

/// A6: a record over the manager's size limit is refused before it reaches
/// the store, the same way on every store: a fresh session is not created, a
/// stored one keeps what it had, and two requests that each fit but together
/// do not end with one saved and the other refused.
pub async fn records_over_the_size_limit_are_refused(store: Store) {
    let limit = 4096;
    let manager = SessionManager::builder()
        .shared_store(Arc::clone(&store))
        .max_record_bytes(limit)
        .build()
        .expect("valid test configuration");
    let big = "x".repeat(limit);
    let too_large = |err: latch::Error| match err.kind() {
        latch::ErrorKind::RecordTooLarge { size, limit: l } => {
            assert!(*size > limit && *l == limit, "{err}");
        }
        other => panic!("expected RecordTooLarge, got {other:?}: {err}"),
    };

    let fresh = manager.start(std::iter::empty(), Default::default());
    fresh.insert("big", &big).await.expect("insert");
    too_large(
        manager
            .finish(&fresh)
            .await
            .expect_err("a fresh oversized session"),
    );

    let cookie = new_session(&manager).await;
    let header = format!("{}={cookie}", manager.cookie_config().name());
    let one = manager.start(Some(header.as_str()), Default::default());
    one.insert("big", &big).await.expect("insert");
    too_large(manager.finish(&one).await.expect_err("an oversized save"));

    // Two requests load the same version; each adds 60 % of the limit.
    let half = "y".repeat(limit * 6 / 10);
    let a = manager.start(Some(header.as_str()), Default::default());
    let b = manager.start(Some(header.as_str()), Default::default());
    a.insert("a", &half).await.expect("insert");
    b.insert("b", &half).await.expect("insert");
    manager.finish(&a).await.expect("the first fits");
    too_large(manager.finish(&b).await.expect_err("the second does not"));

    let check = manager.start(Some(header.as_str()), Default::default());
    assert_eq!(check.get::<i32>("seed").await.expect("get"), Some(1));
    assert!(check.get::<String>("big").await.expect("get").is_none());
    assert_eq!(check.get::<String>("a").await.expect("get"), Some(half));
    assert!(check.get::<String>("b").await.expect("get").is_none());
}

/// A2: 64 concurrent requests on one session, each writing its own key, keep all.
pub async fn concurrent_writers_of_distinct_keys_all_kept(store: Store) {
    let (manager, _clock) = manager(&store);
    let cookie = new_session(&manager).await;
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let (manager, cookie) = (manager.clone(), cookie.clone());
            tokio::spawn(async move {
                request(&manager, Some(&cookie), |s| async move {
                    s.insert(&format!("k{i}"), i).await.expect("insert");
                })
                .await
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    let session = manager.start(
        Some(format!("{}={cookie}", manager.cookie_config().name()).as_str()),
        Default::default(),
    );
    for i in 0..64 {
        assert_eq!(
            session.get::<i32>(&format!("k{i}")).await.expect("get"),
            Some(i),
            "k{i} lost"
        );
    }
}

/// `Session::update` composes under concurrency: 32 increments end at 32.
pub async fn concurrent_counter_updates_are_exact(store: Store) {
    let (manager, _clock) = manager(&store);
    let cookie = new_session(&manager).await;
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (manager, cookie) = (manager.clone(), cookie.clone());
            tokio::spawn(async move {
                request(&manager, Some(&cookie), |s| async move {
                    s.update("n", |n: Option<u64>| n.unwrap_or(0) + 1)
                        .await
                        .expect("update");
                })
                .await
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    let header = format!("{}={cookie}", manager.cookie_config().name());
    let session = manager.start(Some(header.as_str()), Default::default());
    assert_eq!(session.get::<u64>("n").await.expect("get"), Some(32));
}

/// E5: a save that finishes after a concurrent logout does not bring it back.
pub async fn concurrent_logout_is_not_undone(store: Store) {
    let (manager, _clock) = manager(&store);
    let cookie = new_session(&manager).await;
    let header = format!("{}={cookie}", manager.cookie_config().name());
    // The slow request loads first ...
    let slow = manager.start(Some(header.as_str()), Default::default());
    slow.insert("late", true).await.expect("insert");
    // ... a logout completes meanwhile ...
    let logout = request(&manager, Some(&cookie), |s| async move {
        s.destroy().await.expect("destroy");
    })
    .await
    .expect("logout sets a removal cookie");
    assert!(logout.contains("Max-Age=0"));
    // ... and then the slow request saves.
    let finished = manager.finish(&slow).await.expect("finish");
    assert!(finished.set_cookie.expect("removal").contains("Max-Age=0"));
    let replay = manager.start(Some(header.as_str()), Default::default());
    assert_eq!(replay.get::<bool>("late").await.expect("get"), None);
    assert!(
        replay.facts().await.expect("facts").is_new,
        "logged-out session came back"
    );
}

/// E2/E5: a login (regeneration) that races a logout does not bring the ended
/// session back under a new ID.
pub async fn regenerate_does_not_revive_an_ended_session(store: Store) {
    let (manager, _clock) = manager(&store);
    let user = unique_user();
    let cookie = new_session(&manager).await;
    // The slow request signs in ...
    let slow = start_with(&manager, &cookie);
    slow.log_in(user.clone()).await.expect("log in");
    // ... a logout completes meanwhile ...
    request(&manager, Some(&cookie), |s| async move {
        s.destroy().await.expect("destroy");
    })
    .await
    .expect("logout sets a removal cookie");
    // ... and then the slow request finishes.
    // No cookie at all: not a new one (that would revive the session), and
    // not a removal either (under a double-submitted sign-in, it could land
    // after the winning request's cookie and delete it).
    let finished = manager.finish(&slow).await.expect("finish");
    assert_eq!(
        finished.set_cookie, None,
        "a regeneration that lost to a logout must set no cookie"
    );
    // With a per-user index, also check nothing lives on under the user.
    if let Some(index) = store.user_index() {
        assert!(
            index
                .list_by_user(&user, T0)
                .await
                .expect("list")
                .is_empty(),
            "the ended session lives on under a new id"
        );
    }
}

/// A2 at login: what another request saved to the session between this
/// request's load and its regeneration moves to the new ID with the rest.
pub async fn regenerate_keeps_changes_saved_meanwhile(store: Store) {
    let (manager, _clock) = manager(&store);
    let user = unique_user();
    let cookie = new_session(&manager).await;
    let slow = start_with(&manager, &cookie);
    slow.log_in(user.clone()).await.expect("log in");
    slow.insert("theme", "dark").await.expect("insert");
    request(&manager, Some(&cookie), |s| async move {
        s.insert("cart", 3).await.expect("insert");
    })
    .await;
    let finished = manager.finish(&slow).await.expect("finish");
    let renewed = cookie_value(&finished.set_cookie.expect("a new cookie"));
    assert_ne!(renewed, cookie);
    let s = start_with(&manager, &renewed);
    let (cart, theme, seed, who) = (
        s.get::<i32>("cart").await.expect("get"),
        s.get::<String>("theme").await.expect("get"),
        s.get::<i32>("seed").await.expect("get"),
        s.user_id().await.expect("user"),
    );
    assert_eq!(cart, Some(3), "a change saved meanwhile was lost at login");
    assert_eq!(
        (theme.as_deref(), seed, who),
        (Some("dark"), Some(1), Some(user))
    );
}

/// S3: regenerate issues a new ID, keeps the data and kills the old ID.
pub async fn regenerate_kills_old_id_and_keeps_data(store: Store) {
    let (manager, _clock) = manager(&store);
    let old = new_session(&manager).await;
    let user = unique_user();
    let set = request(&manager, Some(&old), |s| async move {
        s.log_in(user).await.expect("log in");
    })
    .await
    .expect("regenerate sets a cookie");
    let new = cookie_value(&set);
    assert_ne!(new, old);
    let header = |c: &str| format!("{}={c}", manager.cookie_config().name());
    let h_new = header(&new);
    let fresh = manager.start(Some(h_new.as_str()), Default::default());
    assert_eq!(
        fresh.get::<i32>("seed").await.expect("get"),
        Some(1),
        "data kept"
    );
    let h_old = header(&old);
    let stale = manager.start(Some(h_old.as_str()), Default::default());
    assert!(
        stale.facts().await.expect("facts").is_new,
        "old id still honoured"
    );
    assert_eq!(stale.get::<i32>("seed").await.expect("get"), None);
}

/// E2: after logout the old cookie is refused and the removal cookie matches.
pub async fn logout_replay_is_refused(store: Store) {
    let (manager, _clock) = manager(&store);
    let cookie = new_session(&manager).await;
    let removal = request(&manager, Some(&cookie), |s| async move {
        s.destroy().await.expect("destroy");
    })
    .await
    .expect("removal cookie");
    assert_eq!(removal, manager.cookie_config().removal_cookie());
    let header = format!("{}={cookie}", manager.cookie_config().name());
    let replay = manager.start(Some(header.as_str()), Default::default());
    assert!(replay.facts().await.expect("facts").is_new);
}

/// E1: idle and absolute timeouts, each checked at the boundary second.
pub async fn idle_and_absolute_expiry_to_the_second(store: Store) {
    let (manager, clock) = manager(&store);
    let alive = |cookie: String| {
        let manager = manager.clone();
        async move {
            let header = format!("{}={cookie}", manager.cookie_config().name());
            let s = manager.start(Some(header.as_str()), Default::default());
            let new = s.facts().await.expect("facts").is_new;
            manager.finish(&s).await.expect("finish");
            !new
        }
    };
    // Idle: valid at 1799 s of inactivity, expired at 1800 s.
    let cookie = new_session(&manager).await;
    clock.advance(1799);
    assert!(alive(cookie.clone()).await, "expired one second early");
    let cookie2 = new_session(&manager).await;
    clock.advance(1800);
    assert!(
        !alive(cookie2).await,
        "idle session honoured at the idle deadline"
    );
    // Absolute: a session kept busy still ends at 12 h.
    clock.set(T0);
    let busy = new_session(&manager).await;
    for _ in 0..(12 * 60 / 25) {
        clock.advance(25 * 60);
        if clock.now() >= T0 + 12 * 3600 {
            break;
        }
        assert!(alive(busy.clone()).await, "busy session expired early");
    }
    clock.set(T0 + 12 * 3600 - 1);
    assert!(
        alive(busy.clone()).await,
        "expired before the absolute deadline"
    );
    clock.set(T0 + 12 * 3600);
    assert!(!alive(busy).await, "honoured at the absolute deadline");
}

/// A3: reading an anonymous session creates nothing and sends no cookie.
pub async fn anonymous_reads_create_nothing(store: Store) {
    let (manager, _clock) = manager(&store);
    let set = request(&manager, None, |s| async move {
        assert_eq!(s.get::<String>("anything").await.expect("get"), None);
        assert!(s.user_id().await.expect("user").is_none());
    })
    .await;
    assert_eq!(set, None);
}

/// E4 through the `Session` API: list a user's devices, revoke one (only the
/// user's own), and sign out everywhere else.
pub async fn devices_list_and_revoke_through_sessions(store: Store) {
    let (manager, _clock) = manager(&store);
    let user = unique_user();
    let cookies = signed_in_devices(&manager, &user, 3).await;
    let stranger = request(&manager, None, |s| async move {
        s.log_in(unique_user()).await.expect("log in");
    })
    .await
    .expect("cookie");
    let stranger_key = SessionId::parse(&cookie_value(&stranger))
        .expect("id")
        .store_key();
    let header = |c: &str| format!("{}={c}", manager.cookie_config().name());
    let key_of = |c: &str| SessionId::parse(c).expect("id").store_key();

    let h = header(&cookies[0]);
    let s = manager.start(Some(h.as_str()), Default::default());
    let devices = s.devices().await.expect("devices");
    let listed: BTreeSet<StoreKey> = devices.iter().map(|d| d.key).collect();
    let expected: BTreeSet<StoreKey> = cookies.iter().map(|c| key_of(c)).collect();
    assert_eq!(listed, expected);
    assert_eq!(
        s.store_key().await.expect("key"),
        Some(key_of(&cookies[0])),
        "this device"
    );
    assert!(
        !s.revoke_device(&stranger_key).await.expect("revoke"),
        "revoked another user's session"
    );
    assert!(s.revoke_device(&key_of(&cookies[1])).await.expect("revoke"));
    manager.finish(&s).await.expect("finish");

    let anonymous = |c: String| {
        let manager = manager.clone();
        async move {
            let h = format!("{}={c}", manager.cookie_config().name());
            let s = manager.start(Some(h.as_str()), Default::default());
            s.user_id().await.expect("user").is_none()
        }
    };
    assert!(
        anonymous(cookies[1].clone()).await,
        "revoked device still signed in"
    );
    assert!(
        !anonymous(cookie_value(&stranger)).await,
        "stranger affected"
    );

    let s = manager.start(Some(h.as_str()), Default::default());
    assert_eq!(
        s.sign_out_everywhere_else().await.expect("sign out others"),
        1
    );
    manager.finish(&s).await.expect("finish");
    assert!(anonymous(cookies[2].clone()).await);
    assert!(
        !anonymous(cookies[0].clone()).await,
        "current device signed out too"
    );
}

/// E4 through the `Session` API: a device whose request loaded its session
/// before another device signed out everywhere else cannot then end that
/// device too, by signing out everywhere else or by revoking it; and a
/// session that signs in and signs out everywhere else in one request ends
/// the user's other sessions (its own is stored under its old, anonymous
/// owner until the request ends).
pub async fn sign_out_elsewhere_through_sessions(store: Store) {
    let (manager, _clock) = manager(&store);
    let user = unique_user();
    let cookies = signed_in_devices(&manager, &user, 2).await;
    let signed_in = |c: String| {
        let manager = manager.clone();
        async move {
            let s = start_with(&manager, &c);
            s.user_id().await.expect("user").is_some()
        }
    };

    let phone = start_with(&manager, &cookies[1]);
    assert!(phone.user_id().await.expect("user").is_some(), "loaded");
    let laptop = start_with(&manager, &cookies[0]);
    assert_eq!(laptop.sign_out_everywhere_else().await.expect("laptop"), 1);
    manager.finish(&laptop).await.expect("finish");
    assert_eq!(
        phone.sign_out_everywhere_else().await.expect("phone"),
        0,
        "the phone's own session was already ended"
    );
    let laptop_key = SessionId::parse(&cookies[0]).expect("id").store_key();
    assert!(
        !phone.revoke_device(&laptop_key).await.expect("revoke"),
        "nor can it revoke the laptop"
    );
    let _ = manager.finish(&phone).await;
    assert!(signed_in(cookies[0].clone()).await, "the laptop stays in");
    assert!(!signed_in(cookies[1].clone()).await, "the phone is out");

    let visitor = new_session(&manager).await;
    let u = user.clone();
    let set = request(&manager, Some(&visitor), |s| async move {
        s.log_in(u).await.expect("log in");
        assert_eq!(s.sign_out_everywhere_else().await.expect("others"), 1);
    })
    .await
    .expect("a signed-in cookie");
    assert!(signed_in(cookie_value(&set)).await, "the new sign-in stays");
    assert!(!signed_in(cookies[0].clone()).await, "the laptop is out");
}

/// The devices list shows the browser and address that signed in, not those
/// of the visit that started the anonymous session (issue 16).
pub async fn sign_in_records_its_client(store: Store) {
    let (manager, _clock) = manager(&store);
    let user = unique_user();
    let visit = latch::RequestMeta {
        user_agent: Some("first-visit-browser".into()),
        ip: Some("192.0.2.1".into()),
    };
    let anonymous = crate::requests::request_as(&manager, None, visit, |s| async move {
        s.insert("cart", 1).await.expect("insert");
    })
    .await
    .expect("a stored anonymous session");
    let sign_in = latch::RequestMeta {
        user_agent: Some("signing-in-browser".into()),
        ip: Some("198.51.100.7".into()),
    };
    let u = user.clone();
    crate::requests::request_as(
        &manager,
        Some(&cookie_value(&anonymous)),
        sign_in,
        |s| async move {
            s.log_in(u).await.expect("log in");
        },
    )
    .await
    .expect("a new session id");
    let devices = index(&store).list_by_user(&user, T0).await.expect("list");
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].user_agent.as_deref(), Some("signing-in-browser"));
    assert_eq!(devices[0].ip.as_deref(), Some("198.51.100.7"));
}

/// A device-bound session (DBSC) works on this store: the binding written at
/// registration and refresh comes back intact, the devices list says when the
/// key was last proved, and a copy without a live bound cookie is not
/// honoured.
pub async fn device_binding_round_trips(store: Store) {
    use crate::device::{DeviceClient, SoftwareDevice};
    let clock = ManualClock::new(T0);
    let manager = SessionManager::builder()
        .shared_store(Arc::clone(&store))
        .clock(clock.clone())
        .store_timeout(Duration::from_secs(10))
        .device_bound(latch::dbsc::DeviceBinding::default())
        .build()
        .expect("valid test configuration");
    let user = unique_user();
    let mut device = DeviceClient::new(manager.clone(), SoftwareDevice::es256());
    assert_eq!(device.sign_in_and_register(&user).await.status, 200);
    assert_eq!(device.user().await, Some(user.clone()));
    clock.advance(600);
    assert_eq!(device.user().await, None, "the bound cookie ran out");
    assert_eq!(device.refresh().await.status, 200);
    assert_eq!(device.user().await, Some(user.clone()));
    if let Some(index) = store.user_index() {
        let listed = index.list_by_user(&user, clock.now()).await.expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].device_proved_at, Some(T0 + 600));
    }
    let mut copy = DeviceClient::new(manager, SoftwareDevice::es256());
    copy.session.clone_from(&device.session);
    assert_eq!(copy.user().await, None, "no bound cookie, no user");
}
