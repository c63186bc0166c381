//! Soak: the demo on SQLite with short timeouts (idle 5 s, absolute 20 s) under
//! a fixed request rate that mixes new sessions, reads, writes, and visits
//! that come back after the idle or absolute timeout. The demo's resident
//! memory and the number of session rows stay bounded (the purge task, every
//! 60 s, brings the row count back down), every expiry is enforced, no
//! acknowledged write goes missing, and nothing answers 5xx.
//!
//! Runs only when asked: `LATCH_SOAK=1` (CI sets it). `LATCH_SOAK_SECS`
//! (default 120) and `LATCH_SOAK_RPS` (default 200) size it; `LATCH_SOAK_SEED`
//! replays a run's choices. It prints one summary line for `docs/security.md`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use latch_chaos::client::{self, Answer, CookieChange};
use latch_chaos::demo::Demo;
use latch_chaos::sqlite;
use reqwest::{Client, StatusCode};
use tokio::sync::Semaphore;

const IDLE_SECS: u64 = 5;
const ABSOLUTE_SECS: u64 = 20;
/// The demo's purge task period.
const PURGE_SECS: u64 = 60;
/// Requests in flight at most; a tick that finds none free is counted as late.
const IN_FLIGHT: usize = 64;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One simulated browser: its cookie and what its session must hold.
#[derive(Debug, Clone)]
struct Browser {
    cookie: String,
    created: Instant,
    /// When its last request started and ended.
    last_start: Instant,
    last_end: Instant,
    keys: BTreeMap<String, String>,
}

impl Browser {
    /// What the server must say now, given second-granular times on the
    /// server: `Some(true)` alive, `Some(false)` expired, `None` too close to
    /// a deadline to tell.
    fn expect_alive(&self, now: Instant) -> Option<bool> {
        let idle = IDLE_SECS as f64;
        let absolute = ABSOLUTE_SECS as f64;
        let age = (now - self.created).as_secs_f64();
        let since_end = (now - self.last_end).as_secs_f64();
        let since_start = (now - self.last_start).as_secs_f64();
        if since_start >= idle + 1.5 || age >= absolute + 1.5 {
            Some(false)
        } else if since_end <= idle - 1.5 && age <= absolute - 1.5 {
            Some(true)
        } else {
            None
        }
    }
}

#[derive(Default)]
struct Pool {
    active: Vec<Browser>,
    /// Browsers left alone on purpose until past the idle timeout.
    sleeping: Vec<(Instant, Browser)>,
}

#[derive(Default, Debug)]
struct Tally {
    requests: u64,
    by_status: BTreeMap<u16, u64>,
    transport_errors: u64,
    late_ticks: u64,
    created: u64,
    idle_expiries: u64,
    absolute_expiries: u64,
    /// A session served after its deadline, or refused before it.
    expiry_violations: Vec<String>,
    /// An acknowledged write not there on the next read.
    lost_writes: Vec<String>,
}

struct Shared {
    http: Client,
    base: String,
    pool: Mutex<Pool>,
    tally: Mutex<Tally>,
}

/// A small deterministic generator (xorshift64*), so a run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[derive(Debug, Clone, Copy)]
enum Action {
    New,
    Read,
    Write(u64),
    Sleep(u64),
    Wake,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_memory_and_rows_stay_bounded_and_expiry_holds() {
    if std::env::var("LATCH_SOAK").as_deref() != Ok("1") {
        eprintln!(
            "SKIPPED: soak test not requested; set LATCH_SOAK=1 to run it \
             (LATCH_SOAK_SECS, default 120; LATCH_SOAK_RPS, default 200)"
        );
        return;
    }
    let secs = env_u64("LATCH_SOAK_SECS", 120);
    let rps = env_u64("LATCH_SOAK_RPS", 200).max(1);
    let seed = env_u64(
        "LATCH_SOAK_SEED",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1,
    );
    eprintln!("soak: {secs} s at {rps} req/s, LATCH_SOAK_SEED={seed}");

    let data = latch_chaos::temp_dir("soak");
    let db = data.join("sessions.db");
    let demo = Demo::start(
        &latch_chaos::demo_bin!(),
        &data,
        [
            "--store".to_owned(),
            format!("sqlite:{}", db.display()),
            "--idle-timeout".to_owned(),
            IDLE_SECS.to_string(),
            "--absolute-timeout".to_owned(),
            ABSOLUTE_SECS.to_string(),
            // Every simulated browser comes from 127.0.0.1.
            "--new-sessions-per-client".to_owned(),
            "1000000".to_owned(),
        ],
    );
    let demo_started = Instant::now();
    let shared = Arc::new(Shared {
        http: client::http(Duration::from_secs(10)),
        base: demo.base.clone(),
        pool: Mutex::new(Pool::default()),
        tally: Mutex::new(Tally::default()),
    });

    let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
    let sampler = tokio::spawn(sample_every_second(
        demo.pid(),
        db.clone(),
        samples.clone(),
        Duration::from_secs(secs + 1),
    ));
    drive(&shared, secs, rps, seed).await;
    sampler.await.unwrap();

    let samples = samples.lock().unwrap().clone();
    let tally = std::mem::take(&mut *shared.tally.lock().unwrap());
    let report = Report::new(&samples, secs, rps);
    eprintln!("{}", report.line(&tally));
    let panics = demo.panics();
    drop(demo);

    assert!(panics.is_empty(), "the demo panicked: {panics:?}");
    let server_errors: u64 = tally.by_status.range(500..).map(|(_, n)| n).sum();
    assert_eq!(server_errors, 0, "5xx answers: {:?}", tally.by_status);
    assert_eq!(tally.transport_errors, 0, "requests went unanswered");
    assert!(
        tally.expiry_violations.is_empty(),
        "{:#?}",
        tally.expiry_violations
    );
    assert!(tally.lost_writes.is_empty(), "{:#?}", tally.lost_writes);
    assert!(
        tally.late_ticks * 100 <= tally.requests,
        "the demo fell behind the rate: {} late ticks",
        tally.late_ticks
    );
    // Rows: sessions made per second times the longest a row can live
    // (absolute timeout, then up to one purge period, plus slack), whatever
    // the run's length.
    let new_per_sec = tally.created as f64 / secs as f64;
    let row_bound = (new_per_sec * (ABSOLUTE_SECS + PURGE_SECS + 15) as f64).ceil() as u64 + 50;
    assert!(
        report.rows_max <= row_bound,
        "rows grew to {} (bound {row_bound})",
        report.rows_max
    );
    if demo_started.elapsed() > Duration::from_secs(PURGE_SECS + 5) {
        assert!(
            report.falls >= 1,
            "the row count never fell back: {:?}",
            samples.iter().map(|s| s.rows).collect::<Vec<_>>()
        );
    }
    // Memory: after warm-up, growth stays small however long the run.
    assert!(
        report.rss_max_kib <= report.rss_warm_kib + 32 * 1024,
        "resident memory grew from {} KiB (after warm-up) to {} KiB",
        report.rss_warm_kib,
        report.rss_max_kib
    );
    let _ = std::fs::remove_dir_all(data);
}

/// Fire one action per tick for `secs` seconds, then wait for all to end.
async fn drive(shared: &Arc<Shared>, secs: u64, rps: u64, seed: u64) {
    let mut rng = Rng(seed);
    let gate = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / rps as u32);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::new();
    for n in 0..secs * rps {
        ticker.tick().await;
        let action = match rng.below(100) {
            0..15 => Action::New,
            15..50 => Action::Read,
            50..85 => Action::Write(n),
            85..93 => Action::Sleep(rng.below(3000)),
            _ => Action::Wake,
        };
        let pick = rng.next();
        let permit = match gate.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                shared.tally.lock().unwrap().late_ticks += 1;
                gate.clone().acquire_owned().await.unwrap()
            }
        };
        let shared = shared.clone();
        tasks.push(tokio::spawn(async move {
            act(&shared, action, pick).await;
            drop(permit);
        }));
        if tasks.len() > 4 * IN_FLIGHT {
            tasks.retain(|t| !t.is_finished());
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Take a browser for `action` out of the pool (so no two requests of one
/// browser overlap), run the request, check it, and put the browser back.
async fn act(shared: &Shared, action: Action, pick: u64) {
    let browser = {
        let mut pool = shared.pool.lock().unwrap();
        match action {
            Action::New => None,
            Action::Wake => {
                let now = Instant::now();
                match pool.sleeping.iter().position(|(wake, _)| *wake <= now) {
                    Some(i) => Some(pool.sleeping.swap_remove(i).1),
                    None => take_random(&mut pool.active, pick),
                }
            }
            _ => take_random(&mut pool.active, pick),
        }
    };
    let Some(browser) = browser else {
        return new_browser(shared).await;
    };
    match action {
        // A last read, then left alone past the idle timeout before a visit.
        Action::Sleep(extra_ms) => {
            let idle = Duration::from_secs(IDLE_SECS + 2) + Duration::from_millis(extra_ms);
            read(shared, browser, Some(idle)).await;
        }
        Action::Write(n) => write(shared, browser, n).await,
        _ => read(shared, browser, None).await,
    }
}

fn take_random(list: &mut Vec<Browser>, pick: u64) -> Option<Browser> {
    if list.is_empty() {
        return None;
    }
    let i = (pick % list.len() as u64) as usize;
    Some(list.swap_remove(i))
}

/// Count one answer; `None` for a transport error.
fn record(shared: &Shared, answer: &Result<Answer, reqwest::Error>) -> Option<Answer> {
    let mut tally = shared.tally.lock().unwrap();
    tally.requests += 1;
    match answer {
        Ok(a) => {
            *tally.by_status.entry(a.status.as_u16()).or_insert(0) += 1;
            Some(a.clone())
        }
        Err(_) => {
            tally.transport_errors += 1;
            None
        }
    }
}

async fn new_browser(shared: &Shared) {
    let start = Instant::now();
    let answer = client::put(&shared.http, &shared.base, None, "a", "1").await;
    let Some(answer) = record(shared, &answer) else {
        return;
    };
    if let (StatusCode::NO_CONTENT, CookieChange::Set(cookie)) = (answer.status, answer.cookie) {
        shared.tally.lock().unwrap().created += 1;
        let browser = Browser {
            cookie,
            created: start,
            last_start: start,
            last_end: Instant::now(),
            keys: BTreeMap::from([("a".to_owned(), "1".to_owned())]),
        };
        shared.pool.lock().unwrap().active.push(browser);
    }
}

/// Note an expiry the server enforced, or a violation if it should not have.
fn expired(shared: &Shared, browser: &Browser, expected: Option<bool>, start: Instant) {
    let mut tally = shared.tally.lock().unwrap();
    if expected == Some(true) {
        tally.expiry_violations.push(format!(
            "refused at age {:?}, {:?} after its last request",
            start - browser.created,
            start - browser.last_end
        ));
    } else if (start - browser.created).as_secs() >= ABSOLUTE_SECS {
        tally.absolute_expiries += 1;
    } else {
        tally.idle_expiries += 1;
    }
}

fn served_when_expired(shared: &Shared, browser: &Browser, start: Instant) {
    shared.tally.lock().unwrap().expiry_violations.push(format!(
        "served at age {:?}, {:?} after its last request",
        start - browser.created,
        start - browser.last_start
    ));
}

/// Read the session and check it; then put the browser back, or to sleep for
/// `sleep` when given.
async fn read(shared: &Shared, mut browser: Browser, sleep: Option<Duration>) {
    let start = Instant::now();
    let expected = browser.expect_alive(start);
    let answer = client::get_scratch(&shared.http, &shared.base, Some(&browser.cookie)).await;
    let Some(answer) = record(shared, &answer) else {
        return;
    };
    if answer.status != StatusCode::OK {
        return;
    }
    let map = client::scratch_map(&answer.body).unwrap_or_default();
    if answer.cookie == CookieChange::Removed && map.is_empty() {
        // Expired: this browser's session is gone; it is dropped.
        return expired(shared, &browser, expected, start);
    }
    if expected == Some(false) {
        return served_when_expired(shared, &browser, start);
    }
    for (key, value) in &browser.keys {
        if map.get(key) != Some(value) {
            shared
                .tally
                .lock()
                .unwrap()
                .lost_writes
                .push(format!("{key}={value} missing from {map:?}"));
        }
    }
    browser.last_start = start;
    browser.last_end = Instant::now();
    let mut pool = shared.pool.lock().unwrap();
    match sleep {
        Some(idle) => pool.sleeping.push((browser.last_end + idle, browser)),
        None => pool.active.push(browser),
    }
}

async fn write(shared: &Shared, mut browser: Browser, n: u64) {
    let start = Instant::now();
    let expected = browser.expect_alive(start);
    let (key, value) = (format!("k{n}"), n.to_string());
    let answer = client::put(
        &shared.http,
        &shared.base,
        Some(&browser.cookie),
        &key,
        &value,
    )
    .await;
    let Some(answer) = record(shared, &answer) else {
        return;
    };
    if answer.status != StatusCode::NO_CONTENT {
        return;
    }
    match answer.cookie {
        CookieChange::Set(cookie) => {
            // The old session had expired; the write made a new one.
            expired(shared, &browser, expected, start);
            shared.tally.lock().unwrap().created += 1;
            browser.cookie = cookie;
            browser.created = start;
            browser.keys.clear();
        }
        _ if expected == Some(false) => return served_when_expired(shared, &browser, start),
        _ => {}
    }
    browser.keys.insert(key, value);
    browser.last_start = start;
    browser.last_end = Instant::now();
    shared.pool.lock().unwrap().active.push(browser);
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Duration,
    rss_kib: u64,
    rows: u64,
    expired_rows: u64,
}

/// Every second for `span`: the demo's RSS and the session rows.
async fn sample_every_second(
    pid: u32,
    db: std::path::PathBuf,
    out: Arc<Mutex<Vec<Sample>>>,
    span: Duration,
) {
    let started = Instant::now();
    let conn = sqlite::open(&db).unwrap();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    while started.elapsed() < span {
        ticker.tick().await;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let (rows, expired_rows) = sqlite::row_counts(&conn, now).unwrap();
        let rss_kib = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .unwrap_or(0);
        out.lock().unwrap().push(Sample {
            at: started.elapsed(),
            rss_kib,
            rows,
            expired_rows,
        });
    }
}

struct Report {
    secs: u64,
    rps: u64,
    rss_start_kib: u64,
    rss_warm_kib: u64,
    rss_end_kib: u64,
    rss_max_kib: u64,
    rows_max: u64,
    rows_end: u64,
    expired_rows_max: u64,
    /// Samples where the row count fell by a quarter or more since the last
    /// (the purge task at work; one purge may span two samples).
    falls: usize,
}

impl Report {
    fn new(samples: &[Sample], secs: u64, rps: u64) -> Self {
        let first = samples.first().copied();
        let warm = samples
            .iter()
            .find(|s| s.at >= Duration::from_secs(10))
            .or(samples.last())
            .copied();
        Self {
            secs,
            rps,
            rss_start_kib: first.map_or(0, |s| s.rss_kib),
            rss_warm_kib: warm.map_or(0, |s| s.rss_kib),
            rss_end_kib: samples.last().map_or(0, |s| s.rss_kib),
            rss_max_kib: samples.iter().map(|s| s.rss_kib).max().unwrap_or(0),
            rows_max: samples.iter().map(|s| s.rows).max().unwrap_or(0),
            rows_end: samples.last().map_or(0, |s| s.rows),
            expired_rows_max: samples.iter().map(|s| s.expired_rows).max().unwrap_or(0),
            falls: samples
                .windows(2)
                .filter(|w| w[1].rows * 4 <= w[0].rows * 3)
                .count(),
        }
    }

    fn line(&self, t: &Tally) -> String {
        let mib = |kib: u64| kib as f64 / 1024.0;
        format!(
            "soak summary: {} s at {} req/s on SQLite (idle {IDLE_SECS} s, absolute \
             {ABSOLUTE_SECS} s): {} requests {:?}, transport errors {}, late ticks {}; \
             {} sessions created, {} idle and {} absolute expiries enforced, {} expiry \
             violations, {} lost writes; RSS start {:.1} MiB, after 10 s {:.1} MiB, end \
             {:.1} MiB, max {:.1} MiB; rows max {} (expired awaiting purge max {}), end {}, \
             falls of the row count by a quarter or more {}",
            self.secs,
            self.rps,
            t.requests,
            t.by_status,
            t.transport_errors,
            t.late_ticks,
            t.created,
            t.idle_expiries,
            t.absolute_expiries,
            t.expiry_violations.len(),
            t.lost_writes.len(),
            mib(self.rss_start_kib),
            mib(self.rss_warm_kib),
            mib(self.rss_end_kib),
            mib(self.rss_max_kib),
            self.rows_max,
            self.expired_rows_max,
            self.rows_end,
            self.falls
        )
    }
}
