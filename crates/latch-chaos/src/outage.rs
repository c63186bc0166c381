//! A steady load against the demo while its store server is stopped and
//! started again, with everything measured: what each request got, when, how
//! long the demo took to recover, and whether every acknowledged write survived.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};

use crate::client::{self, CookieChange};
use crate::demo::Demo;

/// The shape of the run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Load before the server is stopped.
    pub up_before: Duration,
    /// How long the server stays down.
    pub down_for: Duration,
    /// Load after the demo has recovered.
    pub after: Duration,
    /// Concurrent clients.
    pub workers: usize,
    /// Pause between one client's requests.
    pub pace: Duration,
    /// Sessions the clients share.
    pub sessions: usize,
}

impl Default for Plan {
    fn default() -> Self {
        Self {
            up_before: Duration::from_millis(1500),
            down_for: Duration::from_secs(2),
            after: Duration::from_millis(1500),
            workers: 4,
            pace: Duration::from_millis(20),
            sessions: 6,
        }
    }
}

/// One request of the load.
#[derive(Debug, Clone)]
struct Event {
    started: Instant,
    finished: Instant,
    /// `None` for a transport error.
    status: Option<StatusCode>,
}

/// What happened.
#[derive(Debug)]
pub struct Outcome {
    /// Requests sent by the load.
    pub requests: usize,
    /// Requests by status code.
    pub by_status: BTreeMap<u16, usize>,
    /// Requests that got no HTTP answer at all.
    pub transport_errors: usize,
    /// Requests sent and answered while the server was down (from 100 ms after
    /// the stop until the restart began).
    pub down_requests: usize,
    /// Of those, how many got a 503.
    pub down_503: usize,
    /// The slowest answer while down.
    pub down_slowest: Duration,
    /// From the server answering again to the first 200 of a probe that reads
    /// a session every 10 ms.
    pub recovery: Duration,
    /// From the server answering again to the end of the last load request
    /// that did not succeed (zero if none failed after the return).
    pub load_recovery: Duration,
    /// Writes acknowledged with a 2xx: (cookie, key, value).
    pub acked: Vec<(String, String, String)>,
    /// Acknowledged writes a read afterwards did not show.
    pub missing: Vec<(String, String, String)>,
    /// Whether the demo process was alive at the end.
    pub alive: bool,
    /// Whether `/healthz` answered 200 at the end.
    pub healthy: bool,
    /// Panic lines in the demo's output.
    pub panics: Vec<String>,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} requests {:?}, {} transport errors; while down {}/{} got 503 \
             (slowest {} ms); recovered {} ms after the server returned (load: {} ms); \
             {} acknowledged writes, {} missing; alive {}, healthy {}, panics {}",
            self.requests,
            self.by_status,
            self.transport_errors,
            self.down_503,
            self.down_requests,
            self.down_slowest.as_millis(),
            self.recovery.as_millis(),
            self.load_recovery.as_millis(),
            self.acked.len(),
            self.missing.len(),
            self.alive,
            self.healthy,
            self.panics.len()
        )
    }
}

#[derive(Default)]
struct Log {
    events: Vec<Event>,
    acked: Vec<(String, String, String)>,
}

/// Run the load of `plan` against `demo`; `stop` and `restart` the server in
/// between (both block until done: `restart` returns once the server answers).
///
/// Needs a multi-thread tokio runtime (the blocking calls run in place).
///
/// # Panics
/// When the sessions cannot be created before the outage, or reads afterwards
/// keep failing.
pub async fn run(
    demo: &mut Demo,
    plan: &Plan,
    stop: impl FnOnce(),
    restart: impl FnOnce(),
) -> Outcome {
    let http = client::http(Duration::from_secs(10));
    let base = demo.base.clone();
    let log = Arc::new(Mutex::new(Log::default()));
    let cookies = create_sessions(&http, &base, plan.sessions, &log).await;
    let done = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..plan.workers)
        .map(|w| {
            let (http, base, log, done) = (http.clone(), base.clone(), log.clone(), done.clone());
            let (cookies, pace) = (cookies.clone(), plan.pace);
            tokio::spawn(async move { worker(w, &http, &base, &cookies, pace, &log, &done).await })
        })
        .collect();

    tokio::time::sleep(plan.up_before).await;
    tokio::task::block_in_place(stop);
    let down = Instant::now();
    tokio::time::sleep(plan.down_for).await;
    let restarting = Instant::now();
    tokio::task::block_in_place(restart);
    let back = Instant::now();
    let recovery = probe_until_ok(&http, &base, &cookies[0]).await - back;
    tokio::time::sleep(plan.after).await;
    done.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }

    let Log { events, acked } = std::mem::take(&mut *log.lock().expect("log lock"));
    let missing = client::missing_writes(&http, &base, &acked).await;
    let mut by_status = BTreeMap::new();
    for e in &events {
        if let Some(s) = e.status {
            *by_status.entry(s.as_u16()).or_insert(0) += 1;
        }
    }
    let in_outage: Vec<&Event> = events
        .iter()
        .filter(|e| e.started >= down + Duration::from_millis(100) && e.finished <= restarting)
        .collect();
    let load_recovery = events
        .iter()
        .filter(|e| e.started >= back && !e.status.is_some_and(|s| s.is_success()))
        .map(|e| e.finished - back)
        .max()
        .unwrap_or_default();
    Outcome {
        requests: events.len(),
        transport_errors: events.iter().filter(|e| e.status.is_none()).count(),
        by_status,
        down_requests: in_outage.len(),
        down_503: in_outage
            .iter()
            .filter(|e| e.status == Some(StatusCode::SERVICE_UNAVAILABLE))
            .count(),
        down_slowest: in_outage
            .iter()
            .map(|e| e.finished - e.started)
            .max()
            .unwrap_or_default(),
        recovery,
        load_recovery,
        acked,
        missing,
        alive: demo.is_alive(),
        healthy: client::healthy(&http, &base).await,
        panics: demo.panics(),
    }
}

/// `n` sessions, each made by an acknowledged write.
async fn create_sessions(http: &Client, base: &str, n: usize, log: &Mutex<Log>) -> Vec<String> {
    let mut cookies = Vec::new();
    for i in 0..n {
        let answer = client::put(http, base, None, "seed", &i.to_string())
            .await
            .expect("the demo answers before the outage");
        let CookieChange::Set(cookie) = answer.cookie else {
            panic!("no session cookie for a first write: {answer:?}");
        };
        assert_eq!(answer.status, StatusCode::NO_CONTENT);
        log.lock()
            .expect("log lock")
            .acked
            .push((cookie.clone(), "seed".into(), i.to_string()));
        cookies.push(cookie);
    }
    cookies
}

/// Alternate writes of fresh keys and reads over the shared sessions until
/// `done`, logging every answer.
async fn worker(
    w: usize,
    http: &Client,
    base: &str,
    cookies: &[String],
    pace: Duration,
    log: &Mutex<Log>,
    done: &AtomicBool,
) {
    // Bounded even if `done` never comes: 10 minutes of requests at most.
    let max = (600_000 / pace.as_millis().max(1)) as usize;
    for n in 0..max {
        if done.load(Ordering::Relaxed) {
            break;
        }
        let cookie = &cookies[(w + n) % cookies.len()];
        let started = Instant::now();
        let (status, write) = if n % 2 == 0 {
            let (key, value) = (format!("w{w}n{n}"), format!("v{n}"));
            let answer = client::put(http, base, Some(cookie), &key, &value).await;
            let status = answer.ok().map(|a| a.status);
            (status, Some((key, value)))
        } else {
            let answer = client::get_scratch(http, base, Some(cookie)).await;
            (answer.ok().map(|a| a.status), None)
        };
        let event = Event {
            started,
            finished: Instant::now(),
            status,
        };
        {
            let mut log = log.lock().expect("log lock");
            if let (Some(s), Some((key, value))) = (status, write) {
                if s.is_success() {
                    log.acked.push((cookie.clone(), key, value));
                }
            }
            log.events.push(event);
        }
        tokio::time::sleep(pace).await;
    }
}

/// Read a session every 10 ms until a 200 (at most 30 s); when it came.
async fn probe_until_ok(http: &Client, base: &str, cookie: &str) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(answer) = client::get_scratch(http, base, Some(cookie)).await {
            if answer.status == StatusCode::OK {
                return Instant::now();
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the demo did not recover within 30 s of the server's return");
}

/// Assert everything the outage must not break: no crash, no panic, no 500
/// (only 200, 204 and 503), every request while down a 503, recovery within
/// `recover_within` of the server's return, and no acknowledged write lost.
///
/// # Panics
/// When any of that does not hold.
pub fn assert_held(outcome: &Outcome, recover_within: Duration) {
    assert!(
        outcome.panics.is_empty(),
        "the demo panicked: {:?}",
        outcome.panics
    );
    assert!(outcome.alive, "the demo process died");
    assert!(outcome.healthy, "the demo does not answer /healthz");
    assert_eq!(
        outcome.transport_errors, 0,
        "requests went unanswered: {outcome}"
    );
    let unexpected: Vec<_> = outcome
        .by_status
        .keys()
        .filter(|s| ![200, 204, 503].contains(*s))
        .collect();
    assert!(
        unexpected.is_empty(),
        "unexpected statuses {unexpected:?}: {outcome}"
    );
    assert!(
        outcome.down_requests > 0,
        "no request was answered while down: {outcome}"
    );
    assert_eq!(
        outcome.down_503, outcome.down_requests,
        "every request while the server is down gets a 503: {outcome}"
    );
    assert!(
        outcome.recovery < recover_within,
        "recovered only {:?} after the server returned: {outcome}",
        outcome.recovery
    );
    assert!(
        !outcome.acked.is_empty(),
        "nothing was acknowledged: {outcome}"
    );
    assert!(
        outcome.missing.is_empty(),
        "acknowledged writes lost: {:?}",
        outcome.missing
    );
}
