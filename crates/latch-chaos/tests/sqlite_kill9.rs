//! A5: `kill -9` during writes loses no acknowledged session and leaves the
//! embedded store consistent.
//!
//! The demo runs on a SQLite file. A client fires a burst of concurrent
//! `PUT /api/scratch/{key}` (into existing sessions, and new sessions too) and
//! records which got a 2xx; in the middle of the burst the demo is SIGKILLed.
//! It is restarted on the same file, and then `PRAGMA integrity_check` says
//! `ok` and every acknowledged write is there, read back both through the demo
//! with the same cookie and straight from the file. Three rounds, killed
//! after more and more acknowledgements, each on the file the last one left.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly on purpose

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use latch_chaos::client::{self, Answer, CookieChange};
use latch_chaos::demo::Demo;
use latch_chaos::sqlite;
use reqwest::{Client, StatusCode};
use tokio::sync::Semaphore;

const ROUNDS: usize = 3;
/// Sessions made before the first burst; every burst also makes new ones.
const SESSIONS: usize = 8;
/// Writes per burst.
const BURST: usize = 400;
/// Writes in flight at once.
const IN_FLIGHT: usize = 32;

/// One write of the burst and what came of it.
struct Write {
    cookie: Option<String>,
    key: String,
    value: String,
    answer: Result<Answer, reqwest::Error>,
}

impl Write {
    fn acked(&self) -> bool {
        self.answer.as_ref().is_ok_and(|a| a.status.is_success())
    }

    /// The cookie of the session written: the one sent, or the one a new
    /// session got.
    fn session(&self) -> Option<String> {
        match (&self.cookie, &self.answer) {
            (Some(c), _) => Some(c.clone()),
            (
                None,
                Ok(Answer {
                    cookie: CookieChange::Set(c),
                    ..
                }),
            ) => Some(c.clone()),
            _ => None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_burst_keeps_the_file_sound_and_every_acknowledged_write() {
    let data = latch_chaos::temp_dir("sqlite-kill9");
    let db = data.join("sessions.db");
    let store = format!("sqlite:{}", db.display());
    let bin = latch_chaos::demo_bin!();
    let http = client::http(Duration::from_secs(10));
    let mut demo = Demo::start(&bin, &data, ["--store", &store]);

    let mut cookies = Vec::new();
    let mut acked = Vec::new();
    for i in 0..SESSIONS {
        let answer = client::put(&http, &demo.base, None, "init", &i.to_string())
            .await
            .unwrap();
        assert_eq!(answer.status, StatusCode::NO_CONTENT);
        let CookieChange::Set(cookie) = answer.cookie else {
            panic!("no cookie for a new session: {answer:?}");
        };
        acked.push((cookie.clone(), "init".to_owned(), i.to_string()));
        cookies.push(cookie);
    }

    for round in 1..=ROUNDS {
        let kill_after = BURST * round / (ROUNDS + 1);
        let (writes, in_flight_at_kill) =
            burst_and_kill(&http, &mut demo, &cookies, round, kill_after).await;
        let unexpected: Vec<_> = writes
            .iter()
            .filter_map(|w| w.answer.as_ref().ok())
            .filter(|a| a.status != StatusCode::NO_CONTENT)
            .collect();
        assert!(
            unexpected.is_empty(),
            "answers other than 204: {unexpected:?}"
        );
        let round_acked: Vec<_> = writes
            .iter()
            .filter(|w| w.acked())
            .map(|w| (w.session().unwrap(), w.key.clone(), w.value.clone()))
            .collect();
        for w in writes.iter().filter(|w| w.cookie.is_none() && w.acked()) {
            cookies.push(w.session().unwrap());
        }
        acked.extend(round_acked.iter().cloned());

        demo = Demo::start(&bin, &data, ["--store", &store]);
        let integrity = sqlite::integrity_check(&db).unwrap();
        assert_eq!(integrity, "ok", "round {round}: PRAGMA integrity_check");
        let missing = client::missing_writes(&http, &demo.base, &acked).await;
        assert!(
            missing.is_empty(),
            "round {round}: acknowledged writes lost: {missing:?}"
        );
        let missing_on_disk = missing_in_file(&db, &acked);
        assert!(
            missing_on_disk.is_empty(),
            "round {round}: acknowledged writes not in the file: {missing_on_disk:?}"
        );
        let landed_unacked = landed_without_ack(&db, &writes);
        eprintln!(
            "kill -9 round {round}: {BURST} PUTs ({IN_FLIGHT} at a time, {new} for new sessions), \
             killed after {kill_after} acks with {in_flight_at_kill} in flight: {ok} acknowledged, \
             {failed} failed; after restart: integrity_check ok, {total}/{total} acknowledged \
             writes so far present (through the demo and in the file), {landed_unacked} \
             unacknowledged writes landed too",
            new = writes.iter().filter(|w| w.cookie.is_none()).count(),
            ok = round_acked.len(),
            failed = writes.len() - round_acked.len(),
            total = acked.len(),
        );
    }
    assert!(demo.panics().is_empty(), "{:?}", demo.panics());
    drop(demo);
    let _ = std::fs::remove_dir_all(data);
}

/// Fire the burst of `round`, SIGKILL the demo once `kill_after` writes were
/// acknowledged, and wait for every write to end. Returns the writes and how
/// many were in flight at the kill.
async fn burst_and_kill(
    http: &Client,
    demo: &mut Demo,
    cookies: &[String],
    round: usize,
    kill_after: usize,
) -> (Vec<Write>, usize) {
    let acked = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(IN_FLIGHT));
    let tasks: Vec<_> = (0..BURST)
        .map(|j| {
            // Every (SESSIONS + 1)-th write makes a new session.
            let slot = j % (cookies.len() + 1);
            let cookie = cookies.get(slot).cloned();
            let (http, base) = (http.clone(), demo.base.clone());
            let (acked, started, finished, gate) = (
                acked.clone(),
                started.clone(),
                finished.clone(),
                gate.clone(),
            );
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.unwrap();
                let (key, value) = (format!("r{round}k{j}"), format!("v{round}-{j}"));
                started.fetch_add(1, Ordering::SeqCst);
                let answer = client::put(&http, &base, cookie.as_deref(), &key, &value).await;
                if answer.as_ref().is_ok_and(|a| a.status.is_success()) {
                    acked.fetch_add(1, Ordering::SeqCst);
                }
                finished.fetch_add(1, Ordering::SeqCst);
                Write {
                    cookie,
                    key,
                    value,
                    answer,
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.load(Ordering::SeqCst) < kill_after {
        assert!(
            Instant::now() < deadline,
            "the burst did not get {kill_after} acks in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let in_flight = started.load(Ordering::SeqCst) - finished.load(Ordering::SeqCst);
    demo.kill9();
    let mut writes = Vec::new();
    for t in tasks {
        writes.push(t.await.unwrap());
    }
    assert!(
        writes.iter().any(|w| !w.acked()),
        "round {round}: the kill came after the burst ended; nothing was interrupted"
    );
    (writes, in_flight)
}

/// Acknowledged writes that the file itself does not hold.
fn missing_in_file(db: &Path, acked: &[(String, String, String)]) -> Vec<(String, String)> {
    let conn = sqlite::open(db).unwrap();
    acked
        .iter()
        .filter(|(cookie, key, value)| {
            let stored = sqlite::stored_scratch(&conn, client::cookie_value(cookie)).unwrap();
            stored.and_then(|m| m.get(key).cloned()).as_ref() != Some(value)
        })
        .map(|(cookie, key, _)| (cookie[..24].to_owned(), key.clone()))
        .collect()
}

/// Writes that got no acknowledgement (cut by the kill) but are in the file.
fn landed_without_ack(db: &Path, writes: &[Write]) -> usize {
    let conn = sqlite::open(db).unwrap();
    writes
        .iter()
        .filter(|w| !w.acked())
        .filter_map(|w| w.cookie.as_ref().map(|c| (c, w)))
        .filter(|(cookie, w)| {
            sqlite::stored_scratch(&conn, client::cookie_value(cookie))
                .unwrap()
                .is_some_and(|m| m.get(&w.key) == Some(&w.value))
        })
        .count()
}
