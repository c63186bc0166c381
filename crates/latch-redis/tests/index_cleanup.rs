//! The per-user and expiry indexes do not keep what Redis's TTLs removed, and a
//! stale index entry never lists or deletes somebody else's session.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::time::Duration;

use latch::{ExpiredDeletion as _, UserIndex as _};
use latch::{Record, SessionId, SessionStore, StoreKey};
use latch_redis::RedisStore;
use redis::aio::MultiplexedConnection;

/// Lifetime of the short sessions, in seconds: 2 rather than 1 so that a second
/// boundary passing between reading the clock and creating cannot make a
/// session born expired.
const SHORT: i64 = 2;

struct Fixture {
    store: RedisStore,
    prefix: String,
    raw: MultiplexedConnection,
}

async fn fixture(tag: &str) -> Option<Fixture> {
    let prefix = common::unique_prefix(tag);
    let store = common::single_store(&prefix).await?;
    let raw = common::raw(&common::redis_url()).await;
    Some(Fixture { store, prefix, raw })
}

impl Fixture {
    /// Create a session for `user` expiring at `expires_at`.
    async fn session(&self, user: Option<&str>, expires_at: i64) -> StoreKey {
        let key = SessionId::generate().store_key();
        let mut record = Record::new(common::wall_now());
        record.user_id = user.map(str::to_owned);
        record.expires_at = expires_at;
        assert!(self.store.create(&key, &record).await.unwrap());
        key
    }

    fn session_key(&self, key: &StoreKey) -> String {
        format!("{}s:{}", self.prefix, key.to_hex())
    }

    fn index_key(&self, user: &str) -> String {
        format!("{}u:{user}", self.prefix)
    }

    async fn members(&mut self, zset: &str) -> Vec<String> {
        let mut members: Vec<String> = redis::cmd("ZRANGE")
            .arg(zset)
            .arg(0)
            .arg(-1)
            .query_async(&mut self.raw)
            .await
            .unwrap();
        members.sort();
        members
    }

    async fn exists(&mut self, key: &str) -> bool {
        redis::cmd("EXISTS")
            .arg(key)
            .query_async(&mut self.raw)
            .await
            .unwrap()
    }

    /// Wait (at most 5 s) until Redis's TTL has removed every one of `keys`.
    async fn wait_expired(&mut self, keys: &[StoreKey]) {
        for _ in 0..100 {
            let mut any = false;
            for key in keys {
                any |= self.exists(&self.session_key(key)).await;
            }
            if !any {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("sessions did not expire by TTL");
    }
}

fn hexes(keys: &[StoreKey]) -> Vec<String> {
    let mut hexes: Vec<String> = keys.iter().map(StoreKey::to_hex).collect();
    hexes.sort();
    hexes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expired_by_ttl_leave_the_user_index() {
    let Some(mut f) = fixture("ttl-index").await else {
        return;
    };
    let user = common::unique_user();
    let now = common::wall_now();
    let short = [
        f.session(Some(&user), now + SHORT).await,
        f.session(Some(&user), now + SHORT).await,
    ];
    let long = f.session(Some(&user), now + 600).await;
    let index = f.index_key(&user);
    assert_eq!(f.members(&index).await.len(), 3);

    f.wait_expired(&short).await;
    let listed = f
        .store
        .list_by_user(&user, common::wall_now())
        .await
        .unwrap();
    assert_eq!(listed.iter().map(|i| i.key).collect::<Vec<_>>(), [long]);
    assert_eq!(f.members(&index).await, hexes(&[long]));
    let ttl: i64 = redis::cmd("TTL")
        .arg(&index)
        .query_async(&mut f.raw)
        .await
        .unwrap();
    assert!(
        (590..=600).contains(&ttl),
        "index TTL follows its latest session: {ttl}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_of_vanished_sessions_are_removed_when_listed() {
    let Some(mut f) = fixture("vanished").await else {
        return;
    };
    let user = common::unique_user();
    let now = common::wall_now();
    let gone = f.session(Some(&user), now + 600).await;
    let kept = f.session(Some(&user), now + 600).await;
    // As if the session vanished and its index entry was not removed with it.
    let _: () = redis::cmd("DEL")
        .arg(f.session_key(&gone))
        .query_async(&mut f.raw)
        .await
        .unwrap();

    let listed = f.store.list_by_user(&user, now).await.unwrap();
    assert_eq!(listed.iter().map(|i| i.key).collect::<Vec<_>>(), [kept]);
    assert_eq!(f.members(&f.index_key(&user)).await, hexes(&[kept]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_entry_never_lists_or_deletes_another_users_session() {
    let Some(mut f) = fixture("stale").await else {
        return;
    };
    let (alice, bob) = (common::unique_user(), common::unique_user());
    let now = common::wall_now();
    let bobs = f.session(Some(&bob), now + 600).await;
    // A stale entry: Bob's session filed under Alice.
    let _: () = redis::cmd("ZADD")
        .arg(f.index_key(&alice))
        .arg(now + 600)
        .arg(bobs.to_hex())
        .query_async(&mut f.raw)
        .await
        .unwrap();

    assert!(f.store.list_by_user(&alice, now).await.unwrap().is_empty());
    assert_eq!(f.store.delete_by_user(&alice, None).await.unwrap(), 0);
    assert!(
        f.store.load(&bobs).await.unwrap().is_some(),
        "Bob's session survives"
    );
    let listed = f.store.list_by_user(&bob, now).await.unwrap();
    assert_eq!(listed.iter().map(|i| i.key).collect::<Vec<_>>(), [bobs]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_user_index_lives_as_long_as_its_longest_session() {
    let Some(mut f) = fixture("index-ttl").await else {
        return;
    };
    let (carol, dave) = (common::unique_user(), common::unique_user());
    let now = common::wall_now();
    let carols_short = f.session(Some(&carol), now + SHORT).await;
    let carols_touched = f.session(Some(&carol), now + SHORT).await;
    assert!(
        f.store
            .touch(&carols_touched, Some(&carol), now, now + 600)
            .await
            .unwrap()
    );
    let daves = f.session(Some(&dave), now + SHORT).await;

    f.wait_expired(&[carols_short, daves]).await;
    // Dave's index went with his only session; Carol's was extended by the touch.
    assert!(!f.exists(&f.index_key(&dave)).await);
    let listed = f
        .store
        .list_by_user(&carol, common::wall_now())
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|i| i.key).collect::<Vec<_>>(),
        [carols_touched]
    );
    assert_eq!(listed[0].expires_at, now + 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_clears_what_ttls_left_and_deletes_what_they_have_not_reached() {
    let Some(mut f) = fixture("purge").await else {
        return;
    };
    let user = common::unique_user();
    let now = common::wall_now();
    let expired = [
        f.session(None, now + SHORT).await,
        f.session(None, now + SHORT).await,
    ];
    let due_later = f.session(Some(&user), now + 300).await;
    let live = f.session(Some(&user), now + 600).await;
    let expiry = format!("{}expiry", f.prefix);
    assert_eq!(f.members(&expiry).await.len(), 4);

    f.wait_expired(&expired).await;
    // The TTL removed two sessions; purging removes their entries and counts them.
    assert_eq!(
        f.store.purge_expired(common::wall_now(), 10).await.unwrap(),
        2
    );
    assert_eq!(f.members(&expiry).await, hexes(&[due_later, live]));

    // At a `now` past its expiry but before its TTL, purge deletes the session
    // itself, with its user-index entry.
    assert_eq!(f.store.purge_expired(now + 300, 10).await.unwrap(), 1);
    assert!(f.store.load(&due_later).await.unwrap().is_none());
    assert_eq!(f.members(&f.index_key(&user)).await, hexes(&[live]));
    assert_eq!(f.members(&expiry).await, hexes(&[live]));
    assert!(f.store.load(&live).await.unwrap().is_some());
}

/// `url` with its credentials replaced by `user`/`password`.
fn with_credentials(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}:{password}@{host}")
}

/// A session's deadlines as Redis holds them: its `exp` field and TTL, and its
/// user-index entry's score and the index's TTL.
async fn deadlines(f: &mut Fixture, key: &StoreKey, user: &str) -> (i64, i64, i64, i64) {
    let (exp, ttl): (i64, i64) = redis::pipe()
        .cmd("HGET")
        .arg(f.session_key(key))
        .arg("exp")
        .cmd("TTL")
        .arg(f.session_key(key))
        .query_async(&mut f.raw)
        .await
        .unwrap();
    let (score, index_ttl): (i64, i64) = redis::pipe()
        .cmd("ZSCORE")
        .arg(f.index_key(user))
        .arg(key.to_hex())
        .cmd("TTL")
        .arg(f.index_key(user))
        .query_async(&mut f.raw)
        .await
        .unwrap();
    (exp, ttl, score, index_ttl)
}

/// A touch whose user-index update fails (here a Redis ACL denies the index
/// keys to the store's user) fails before it extends the session, so a session
/// never outlives its index entry and "sign out everywhere" always finds it.
/// (Before the index was raised first, the session lived on for the new
/// expiry while its entry, and the index itself, lapsed at the old one.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_touch_that_cannot_raise_the_index_does_not_extend_the_session() {
    let Some(mut f) = fixture("touch-acl").await else {
        return;
    };
    let user = common::unique_user();
    let now = common::wall_now();
    let key = f.session(Some(&user), now + 60).await;

    let acl_user = format!("latch-test-{}", &SessionId::generate().encode()[..12]);
    let password = SessionId::generate().encode();
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(&acl_user)
        .arg("reset")
        .arg("on")
        .arg(format!(">{password}"))
        .arg(format!("~{}s:*", f.prefix))
        .arg(format!("~{}expiry", f.prefix))
        .arg("+@all")
        .query_async(&mut f.raw)
        .await
        .unwrap();
    let limited = RedisStore::builder(with_credentials(&common::redis_url(), &acl_user, &password))
        .prefix(&f.prefix)
        .connect()
        .await
        .unwrap();

    let refused = limited.touch(&key, Some(&user), now + 1, now + 600).await;
    let (exp, ttl, score, index_ttl) = deadlines(&mut f, &key, &user).await;
    let _: () = redis::cmd("ACL")
        .arg("DELUSER")
        .arg(&acl_user)
        .query_async(&mut f.raw)
        .await
        .unwrap();
    assert!(refused.is_err(), "the index update was not refused");
    assert_eq!(
        (exp, score),
        (now + 60, now + 60),
        "the session was extended"
    );
    assert!(
        ttl <= 60 && index_ttl >= ttl,
        "TTLs: session {ttl}, index {index_ttl}"
    );

    // With the index reachable the touch goes through, index first.
    assert!(
        f.store
            .touch(&key, Some(&user), now + 1, now + 600)
            .await
            .unwrap()
    );
    let (exp, ttl, score, index_ttl) = deadlines(&mut f, &key, &user).await;
    assert_eq!((exp, score), (now + 600, now + 600));
    assert!(
        ttl > 60 && index_ttl >= ttl,
        "TTLs: session {ttl}, index {index_ttl}"
    );
    assert_eq!(f.store.delete_by_user(&user, None).await.unwrap(), 1);
}

/// An expiry entry's score carries the fraction of a second at which it was
/// filed, yet purging still goes by the deadline alone: a session is purged
/// at exactly its `expires_at` and not a second before.
#[tokio::test]
async fn purge_goes_by_the_deadline_to_the_second() {
    let Some(mut f) = fixture("purge-boundary").await else {
        return;
    };
    // Far enough ahead that Redis's own TTL does not fire during the test.
    let at = common::wall_now() + 3600;
    let keys = [f.session(None, at).await, f.session(None, at).await];
    let expiry = format!("{}expiry", f.prefix);
    let scores: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg(&expiry)
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(&mut f.raw)
        .await
        .unwrap();
    assert_eq!(scores.len(), 2);
    for (_, score) in &scores {
        assert!(*score >= at as f64 && *score < (at + 1) as f64, "{score}");
    }

    let purge = f.store.expired_deletion().unwrap();
    assert_eq!(purge.purge_expired(at - 1, 10).await.unwrap(), 0);
    for key in &keys {
        assert!(f.store.load(key).await.unwrap().is_some());
    }
    assert_eq!(purge.purge_expired(at, 10).await.unwrap(), 2);
    for key in &keys {
        assert!(f.store.load(key).await.unwrap().is_none());
    }
    assert!(f.members(&expiry).await.is_empty());
}

impl Fixture {
    /// Save the session under `key` with a new expiry, as the engine does on a
    /// write (a new version over the stored one).
    async fn save_until(&self, key: &StoreKey, expires_at: i64) {
        let mut record = self.store.load(key).await.unwrap().unwrap();
        let expected = record.version;
        record.version += 1;
        record.expires_at = expires_at;
        let outcome = self.store.save(key, &record, expected).await.unwrap();
        assert_eq!(outcome, latch::SaveOutcome::Saved);
    }
}

/// Saves and touches that extend a session leave its expiry entry where it
/// was (one command fewer per write): the entry comes due early, and purge
/// then finds the session live, leaves it alone, does not count it, and
/// moves the entry to the real expiry, so the session is purged at exactly
/// that expiry and no sooner.
#[tokio::test]
async fn purge_keeps_sessions_that_saves_and_touches_extended() {
    let Some(mut f) = fixture("purge-extended").await else {
        return;
    };
    let user = common::unique_user();
    // Far enough ahead that Redis's own TTL does not fire during the test.
    let now = common::wall_now() + 3600;
    let saved = f.session(None, now + 100).await;
    let touched = f.session(Some(&user), now + 100).await;
    for step in 1..=3 {
        f.save_until(&saved, now + 100 + step * 100).await;
        assert!(
            f.store
                .touch(&touched, Some(&user), now, now + 100 + step * 100)
                .await
                .unwrap()
        );
    }
    let purge = f.store.expired_deletion().unwrap();
    assert_eq!(purge.purge_expired(now + 200, 10).await.unwrap(), 0);
    for key in [&saved, &touched] {
        assert!(f.store.load(key).await.unwrap().is_some());
    }
    let expiry = format!("{}expiry", f.prefix);
    for key in [&saved, &touched] {
        let score: f64 = redis::cmd("ZSCORE")
            .arg(&expiry)
            .arg(key.to_hex())
            .query_async(&mut f.raw)
            .await
            .unwrap();
        assert_eq!(score.floor() as i64, now + 400, "the entry was not moved");
    }
    assert_eq!(purge.purge_expired(now + 399, 10).await.unwrap(), 0);
    assert_eq!(purge.purge_expired(now + 400, 10).await.unwrap(), 2);
    assert!(f.members(&expiry).await.is_empty());
    assert!(f.members(&f.index_key(&user)).await.is_empty());
}

/// A save or touch that moves a session's expiry *sooner* lowers its entry,
/// so purge still finds the session once it is expired.
#[tokio::test]
async fn purge_finds_sessions_that_saves_and_touches_shortened() {
    let Some(f) = fixture("purge-shortened").await else {
        return;
    };
    let now = common::wall_now() + 3600;
    let saved = f.session(None, now + 600).await;
    let touched = f.session(None, now + 600).await;
    f.save_until(&saved, now + 300).await;
    assert!(f.store.touch(&touched, None, now, now + 300).await.unwrap());
    let purge = f.store.expired_deletion().unwrap();
    assert_eq!(purge.purge_expired(now + 299, 10).await.unwrap(), 0);
    assert_eq!(purge.purge_expired(now + 300, 10).await.unwrap(), 2);
    for key in [&saved, &touched] {
        assert!(f.store.load(key).await.unwrap().is_none());
    }
}

/// Entries of live sessions that came due early do not cut a batch short:
/// callers loop until a call removes fewer than its limit, so a call must
/// read past them and remove its limit while expired sessions remain.
#[tokio::test]
async fn a_purge_batch_reads_past_entries_of_sessions_still_live() {
    let Some(f) = fixture("purge-batch").await else {
        return;
    };
    let now = common::wall_now() + 3600;
    // Filed at now+100, sorted first, but extended to now+1000.
    let mut extended = Vec::new();
    for _ in 0..5 {
        let key = f.session(None, now + 100).await;
        f.save_until(&key, now + 1000).await;
        extended.push(key);
    }
    let expired = [
        f.session(None, now + 200).await,
        f.session(None, now + 200).await,
        f.session(None, now + 200).await,
    ];
    let purge = f.store.expired_deletion().unwrap();
    assert_eq!(purge.purge_expired(now + 300, 2).await.unwrap(), 2);
    assert_eq!(purge.purge_expired(now + 300, 2).await.unwrap(), 1);
    assert_eq!(purge.purge_expired(now + 300, 2).await.unwrap(), 0);
    for key in &expired {
        assert!(f.store.load(key).await.unwrap().is_none());
    }
    for key in &extended {
        assert!(f.store.load(key).await.unwrap().is_some());
    }
}
