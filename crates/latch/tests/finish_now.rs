//! `SessionManager::finish_now`, the adapters' shortcut past an asynchronous
//! finish: it answers exactly what `finish` answers whenever it answers, and
//! declines whenever finishing needs the store.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::sync::Arc;
use std::time::Duration;

use latch::{
    Expiry, Keyring, ManualClock, MemoryStore, SecretKey, Session, SessionManager,
    SessionManagerBuilder,
};

const T0: i64 = 1_800_000_000;

/// What a handler does with the session.
#[derive(Clone, Copy, Debug)]
enum Step {
    Nothing,
    Read,
    Write,
    LogIn,
    Remember,
    Destroy,
}

const STEPS: [Step; 6] = [
    Step::Nothing,
    Step::Read,
    Step::Write,
    Step::LogIn,
    Step::Remember,
    Step::Destroy,
];

async fn run(step: Step, session: &Session) {
    match step {
        Step::Nothing => {}
        Step::Read => {
            session.get::<i64>("n").await.unwrap();
        }
        Step::Write => session.insert("n", 2).await.unwrap(),
        Step::LogIn => session.log_in("ada").await.unwrap(),
        Step::Remember => session.set_remember(true).await.unwrap(),
        Step::Destroy => session.destroy().await.unwrap(),
    }
}

fn builder(clock: &ManualClock) -> SessionManagerBuilder {
    SessionManager::builder().clock(clock.clone()).expiry(
        Expiry::default()
            .idle(Duration::from_secs(1800))
            .absolute(Duration::from_secs(12 * 3600))
            .touch_interval(Duration::from_secs(60)),
    )
}

/// Signed cookies, revocable; and a store.
fn managers(clock: &ManualClock) -> [(&'static str, SessionManager); 2] {
    let keys = Keyring::new(SecretKey::generate());
    [
        (
            "signed, revocable",
            builder(clock)
                .signed_cookies(keys)
                .revocation_store(Arc::new(MemoryStore::new()))
                .build()
                .unwrap(),
        ),
        (
            "memory store",
            builder(clock).store(MemoryStore::new()).build().unwrap(),
        ),
    ]
}

/// The `name=value` of a signed-in session's cookie.
async fn signed_in_cookie(m: &SessionManager) -> String {
    let s = m.start(std::iter::empty(), Default::default());
    s.log_in("ada").await.unwrap();
    s.insert("n", 1).await.unwrap();
    let cookie = m.finish(&s).await.unwrap().set_cookie.unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

/// A `Finished` with each cookie's value left out: a new cookie session
/// draws a random revocation ID, so two runs of the same request differ there
/// and only there.
fn shape(mut finished: latch::Finished) -> latch::Finished {
    let attributes = |c: String| c.split_once(';').map_or(c.clone(), |(_, a)| a.to_owned());
    finished.set_cookie = finished.set_cookie.map(attributes);
    finished.other_cookies = finished.other_cookies.into_iter().map(attributes).collect();
    finished
}

#[tokio::test]
async fn when_it_answers_it_answers_what_finish_answers() {
    for elapsed in [0, 120] {
        let clock = ManualClock::new(T0);
        for (kind, m) in managers(&clock) {
            clock.set(T0);
            let cookie = signed_in_cookie(&m).await;
            clock.set(T0 + elapsed);
            for step in STEPS {
                for arrives in [Some(cookie.as_str()), None] {
                    let what = format!("{kind}, {step:?}, cookie {}", arrives.is_some());
                    let a = m.start(arrives, Default::default());
                    let b = m.start(arrives, Default::default());
                    run(step, &a).await;
                    run(step, &b).await;
                    let Some(now) = m.finish_now(&a) else {
                        // Declined (which cases must be declined is the next
                        // test's): `finish` still does all of it.
                        assert!(m.finish(&a).await.is_ok(), "{what}");
                        continue;
                    };
                    let later = m.finish(&b).await.unwrap();
                    assert_eq!(shape(now.unwrap()), shape(later), "{what}");
                }
            }
        }
    }
}

#[tokio::test]
async fn reads_are_finished_now_and_store_work_is_left_to_finish() {
    let clock = ManualClock::new(T0);
    let [(_, cookies), (_, stored)] = managers(&clock);
    let stored_cookie = signed_in_cookie(&stored).await;
    let signed_cookie = signed_in_cookie(&cookies).await;
    let expect = [
        // What needs the store: writing, creating, refreshing, revoking.
        (&stored, Some(&stored_cookie), Step::Read, true),
        (&stored, Some(&stored_cookie), Step::Write, false),
        // The memory store keeps its records in this process: a new
        // session is created at once.
        (&stored, None, Step::Write, true),
        (&stored, None, Step::LogIn, true),
        (&stored, Some(&stored_cookie), Step::Destroy, false),
        (&stored, Some(&stored_cookie), Step::LogIn, false),
        (&stored, None, Step::Read, true),
        (&cookies, Some(&signed_cookie), Step::Read, true),
        (&cookies, Some(&signed_cookie), Step::Write, true),
        (&cookies, None, Step::Write, true),
        // A signed-in cookie session's logout and regeneration file a
        // revocation marker.
        (&cookies, Some(&signed_cookie), Step::Destroy, false),
        (&cookies, Some(&signed_cookie), Step::LogIn, false),
    ];
    for (m, cookie, step, now) in expect {
        let s = m.start(cookie.map(String::as_str), Default::default());
        run(step, &s).await;
        assert_eq!(m.finish_now(&s).is_some(), now, "{step:?}");
    }
    // A store across the network (here: the memory store behind a gate,
    // which is not in this process's reach) creates a new session in `finish`.
    let remote = remote(&clock);
    for step in [Step::Write, Step::LogIn] {
        let s = remote.start(std::iter::empty(), Default::default());
        run(step, &s).await;
        assert!(remote.finish_now(&s).is_none(), "{step:?}");
    }
    // A refresh is due after the touch interval: that is a store write.
    clock.set(T0 + 120);
    let s = stored.start(Some(stored_cookie.as_str()), Default::default());
    run(Step::Read, &s).await;
    assert!(stored.finish_now(&s).is_none());
}

/// A gate that lets every call through.
#[derive(Debug)]
struct Open;

#[async_trait::async_trait]
impl latch_conformance::faults::Gate for Open {
    async fn before(&self, _: latch_conformance::faults::Call) -> latch::Result<()> {
        Ok(())
    }
}

/// The memory store as a store that is not in process: behind a gate, which
/// only has the asynchronous methods.
fn remote(clock: &ManualClock) -> SessionManager {
    let store = latch_conformance::faults::Gated::new(Arc::new(MemoryStore::new()), Open);
    builder(clock)
        .shared_store(Arc::new(store))
        .build()
        .unwrap()
}

/// A new session created at once (in process) and one created by `finish`
/// (asynchronously) answer the same headers and hold the same session.
#[tokio::test]
async fn creating_at_once_answers_what_creating_later_answers() {
    let clock = ManualClock::new(T0);
    let [_, (_, local)] = managers(&clock);
    let remote = remote(&clock);
    for step in STEPS {
        let a = local.start(std::iter::empty(), Default::default());
        let b = remote.start(std::iter::empty(), Default::default());
        for s in [&a, &b] {
            s.insert("n", 5).await.unwrap();
            run(step, s).await;
        }
        let Some(now) = local.finish_now(&a) else {
            panic!("{step:?}: a new session in the memory store is finished at once");
        };
        let now = now.unwrap();
        let later = remote.finish(&b).await.unwrap();
        assert_eq!(shape(now.clone()), shape(later.clone()), "{step:?}");
        for (m, finished) in [(&local, now), (&remote, later)] {
            let Some(cookie) = finished.set_cookie.filter(|c| !c.contains("Max-Age=0")) else {
                assert!(matches!(step, Step::Destroy), "{step:?}");
                continue;
            };
            let pair = cookie.split(';').next().unwrap();
            let back = m.start(Some(pair), Default::default());
            assert_eq!(
                back.get::<i64>("n").await.unwrap(),
                Some(match step {
                    Step::Write => 2,
                    _ => 5,
                }),
                "{step:?}"
            );
            assert_eq!(
                back.user_id().await.unwrap().is_some(),
                matches!(step, Step::LogIn)
            );
        }
    }
}
