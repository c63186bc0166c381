//! SQLite-specific behaviour: WAL, migrations, hashing at rest, bulk purge, and
//! blocking work kept off the async executor.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use latch::{ExpiredDeletion as _, Record, SessionId, SessionManager, SessionStore};
use latch_sqlite::SqliteStore;
use rusqlite::Connection;

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "latch-sqlite-{tag}-{}-{}",
            std::process::id(),
            &SessionId::generate().store_key().to_hex()[..12]
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn db(&self) -> PathBuf {
        self.0.join("sessions.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn database_is_in_wal_mode_with_current_schema() {
    let dir = TempDir::new("wal");
    let _store = SqliteStore::open(dir.db()).unwrap();
    let conn = Connection::open(dir.db()).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!((mode.as_str(), version), ("wal", 1));
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'latch_sessions' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        indexes,
        ["latch_sessions_expires_at", "latch_sessions_user_id"]
    );
}

#[tokio::test]
async fn reopening_keeps_sessions_and_migrates_once() {
    let dir = TempDir::new("reopen");
    let key = SessionId::generate().store_key();
    {
        let store = SqliteStore::open(dir.db()).unwrap();
        assert!(store.create(&key, &Record::new(1)).await.unwrap());
    }
    let store = SqliteStore::open(dir.db()).unwrap();
    assert_eq!(
        store.load(&key).await.unwrap().map(|r| r.created_at),
        Some(1)
    );
}

#[test]
fn newer_schema_is_refused_with_a_clear_message() {
    let dir = TempDir::new("newer");
    drop(SqliteStore::open(dir.db()).unwrap());
    Connection::open(dir.db())
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let err = SqliteStore::open(dir.db()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the session database has schema version 99, newer than the 1 this build of \
         latch-sqlite knows; upgrade latch or use another database file"
    );
}

#[test]
fn unwritable_location_is_a_clear_error() {
    let err = SqliteStore::open("/nonexistent-dir/for/latch/sessions.db").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("opening the session database /nonexistent-dir"),
        "{err}"
    );
    assert!(std::error::Error::source(&err).is_some(), "cause kept");
}

/// S5: the database holds only SHA-256 of each ID; no column contains an ID.
#[tokio::test]
async fn session_ids_are_hashed_at_rest() {
    let dir = TempDir::new("hash");
    let store = SqliteStore::open(dir.db()).unwrap();
    let manager = SessionManager::builder().store(store).build().unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        let s = manager.start(std::iter::empty(), Default::default());
        s.insert("i", i).await.unwrap();
        let set = manager.finish(&s).await.unwrap().set_cookie.unwrap();
        ids.push(
            set.split(';')
                .next()
                .unwrap()
                .split_once('=')
                .unwrap()
                .1
                .to_owned(),
        );
    }
    drop(manager);
    let conn = Connection::open(dir.db()).unwrap();
    let dump: Vec<(Vec<u8>, String)> = conn
        .prepare(
            "SELECT key, quote(key) || data || created_at || last_seen || expires_at || \
             coalesce(user_id, '') || coalesce(user_agent, '') || coalesce(ip, '') FROM latch_sessions",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(dump.len(), 5);
    let file = std::fs::read(dir.db()).unwrap_or_default();
    let wal = std::fs::read(dir.0.join("sessions.db-wal")).unwrap_or_default();
    for id in &ids {
        let hashed = SessionId::parse(id).unwrap().store_key();
        assert!(
            dump.iter().any(|(key, _)| key == hashed.as_bytes()),
            "row keyed by SHA-256(id)"
        );
        assert!(dump.iter().all(|(_, text)| !text.contains(id.as_str())));
        let raw = SessionIdBytes::of(id);
        for bytes in [&file, &wal] {
            assert!(
                !contains(bytes, id.as_bytes()) && !contains(bytes, &raw),
                "id found in the file"
            );
        }
    }
}

/// T3: with encryption at rest, neither the database file nor its WAL holds
/// the session's data, user, user agent or address, in any form SQLite
/// writes them; and sessions still work.
#[tokio::test]
async fn t3_an_encrypted_database_holds_no_session_value() {
    let dir = TempDir::new("sealed");
    let store = SqliteStore::open(dir.db()).unwrap();
    let manager = SessionManager::builder()
        .store(store)
        .encrypt_at_rest(latch::Keyring::new(latch::SecretKey::generate()))
        .build()
        .unwrap();
    let user = format!("carol-{}", &SessionId::generate().store_key().to_hex()[..8]);
    let planted = latch_conformance::requests::fill_for_dump(&manager, &user).await;
    drop(manager);
    let mut bytes = Vec::new();
    for name in ["sessions.db", "sessions.db-wal"] {
        bytes.extend(std::fs::read(dir.0.join(name)).unwrap_or_default());
    }
    assert!(bytes.len() > 4096, "the files were read");
    for secret in &planted.secrets {
        assert!(
            !contains(&bytes, secret.as_bytes()),
            "{secret:?} in the file"
        );
    }
    // The same scenario without encryption does show them: the check can fail.
    let plain_dir = TempDir::new("plain");
    let manager = SessionManager::builder()
        .store(SqliteStore::open(plain_dir.db()).unwrap())
        .build()
        .unwrap();
    let planted = latch_conformance::requests::fill_for_dump(&manager, &user).await;
    drop(manager);
    let mut plain = Vec::new();
    for name in ["sessions.db", "sessions.db-wal"] {
        plain.extend(std::fs::read(plain_dir.0.join(name)).unwrap_or_default());
    }
    assert!(
        planted
            .secrets
            .iter()
            .all(|s| contains(&plain, s.as_bytes()))
    );
}

/// The 32 raw bytes behind an encoded ID.
struct SessionIdBytes;

impl SessionIdBytes {
    fn of(encoded: &str) -> Vec<u8> {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(encoded)
            .unwrap()
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A4 at scale: 100,000 expired and 100,000 live sessions; purging removes
/// exactly the expired ones, in bounded batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_of_100k_expired_keeps_100k_live() {
    let dir = TempDir::new("purge");
    let store = SqliteStore::open(dir.db()).unwrap();
    let now = 1_800_000_000;
    {
        let mut conn = Connection::open(dir.db()).unwrap();
        let tx = conn.transaction().unwrap();
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO latch_sessions (key, version, data, created_at, last_seen, \
                     expires_at, remember, user_id) VALUES (?1, 1, '{}', ?2, ?2, ?3, 0, NULL)",
                )
                .unwrap();
            for i in 0..200_000i64 {
                let key = SessionId::generate().store_key();
                // Even rows expired up to ~28 h ago, odd rows live for ~28 h more.
                let expires_at = if i % 2 == 0 {
                    now - 1 - i / 2
                } else {
                    now + 1 + i / 2
                };
                insert
                    .execute(rusqlite::params![key.as_bytes(), now - 3600, expires_at])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let started = Instant::now();
    let mut purged = 0;
    let mut calls = 0;
    loop {
        let n = store.purge_expired(now, 10_000).await.unwrap();
        assert!(n <= 10_000);
        purged += n;
        calls += 1;
        if n < 10_000 {
            break;
        }
    }
    let took = started.elapsed();
    println!("purged {purged} expired sessions in {calls} batches in {took:?}");
    assert_eq!(purged, 100_000);
    let conn = Connection::open(dir.db()).unwrap();
    let (left, expired): (i64, i64) = conn
        .query_row(
            "SELECT count(*), count(*) FILTER (WHERE expires_at <= ?1) FROM latch_sessions",
            [now],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((left, expired), (100_000, 0));
}

/// SQLite calls wait on a lock here for half a second; a ticker on the same
/// single-threaded runtime must keep ticking meanwhile, which it could not if
/// the store blocked the executor thread.
#[test]
fn blocking_calls_stay_off_the_executor() {
    let dir = TempDir::new("blocking");
    let store = SqliteStore::open(dir.db()).unwrap();
    let locker = Connection::open(dir.db()).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        locker.execute_batch("COMMIT").unwrap();
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ticks = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&ticks);
    rt.block_on(async move {
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        let key = SessionId::generate().store_key();
        let started = Instant::now();
        assert!(store.create(&key, &Record::new(1)).await.unwrap());
        assert!(
            started.elapsed() >= Duration::from_millis(400),
            "the lock did not block the write"
        );
        ticker.abort();
    });
    release.join().unwrap();
    // About 50 ticks fit in the 500 ms wait; a blocked executor would allow none.
    let ticks = ticks.load(Ordering::SeqCst);
    assert!(
        ticks >= 20,
        "executor stalled during a blocking SQLite call: {ticks} ticks"
    );
}

/// Checkpoints run on the store's own thread (SQLite's automatic checkpoint
/// inside a request's commit is off): under a steady stream of writes the WAL
/// file keeps being reset instead of growing with every write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_is_checkpointed_in_the_background() {
    let dir = TempDir::new("checkpoint");
    let store = SqliteStore::open(dir.db()).unwrap();
    let wal = dir.0.join("sessions.db-wal");
    let payload = "x".repeat(1000);
    let (rounds, per_round) = (10, 300);
    let mut largest = 0;
    let mut record = Record::new(1_900_000_000);
    record.expires_at = 1_900_003_600;
    record.data.insert("pad".into(), payload.into());
    for _ in 0..rounds {
        for _ in 0..per_round {
            let key = SessionId::generate().store_key();
            assert!(store.create(&key, &record).await.unwrap());
        }
        largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    println!(
        "{} sessions of 1 KB written; largest WAL file seen: {} KB",
        rounds * per_round,
        largest / 1024
    );
    // Without checkpoints the log holds every page ever written (71 MB here,
    // measured with the checkpointer stopped); with them, about two rounds'
    // writes (7 MB here).
    assert!(
        largest < 24 << 20,
        "WAL grew to {largest} bytes: is the checkpointer running?"
    );
}

/// Writes whose callers gave up (the store timeout passed while they queued
/// for the connection behind a locked database) are not carried out later:
/// nothing appears that a request was told failed, and the queue drains at
/// once when the lock goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_abandoned_by_a_timeout_are_not_carried_out_later() {
    let dir = TempDir::new("abandoned");
    let store = Arc::new(SqliteStore::open(dir.db()).unwrap());
    // Another process holds the write lock.
    let other = Connection::open(dir.db()).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();

    let keys: Vec<_> = (0..5).map(|_| SessionId::generate().store_key()).collect();
    let mut timed_out = 0;
    for key in &keys {
        let mut record = Record::new(1_800_000_000);
        record.expires_at = 1_800_000_600;
        let create = store.create(key, &record);
        if tokio::time::timeout(Duration::from_millis(200), create)
            .await
            .is_err()
        {
            timed_out += 1;
        }
    }
    assert_eq!(timed_out, 5, "the database was locked");
    other.execute_batch("COMMIT").unwrap();

    // The first write had the connection and waits on SQLite's own busy
    // timeout, so it may still land; the four queued behind it must not.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut landed = 0;
    for key in &keys {
        landed += u32::from(store.load(key).await.unwrap().is_some());
    }
    assert!(
        landed <= 1,
        "{landed} writes nobody waited for were carried out"
    );
}

/// A6: sustained writes keep the WAL file bounded, and it shrinks back once
/// they stop. A passive checkpoint never catches up with a writer that never
/// pauses, so the log used to grow for as long as the writes went on (an
/// attack grew it to 2.24 GB with 2,000 writes of a growing session in 12 s)
/// and SQLite never shrank it afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a6_wal_stays_bounded_under_sustained_writes_and_shrinks_after() {
    let dir = TempDir::new("wal-bound");
    let limit: u64 = 8 << 20;
    let store = Arc::new(
        SqliteStore::builder(dir.db())
            .wal_limit(limit)
            .open()
            .unwrap(),
    );
    let wal = dir.0.join("sessions.db-wal");
    let wal_size = move || std::fs::metadata(&wal).map_or(0, |m| m.len());
    // A handful of 60 KB sessions rewritten again and again (as a client
    // rewriting its own session does), with readers going all the time.
    let keys: Vec<_> = (0..8).map(|_| SessionId::generate().store_key()).collect();
    let mut record = Record::new(1_900_000_000);
    record.expires_at = 1_900_003_600;
    record.version = 1;
    record.data.insert("pad".into(), "x".repeat(60_000).into());
    for key in &keys {
        assert!(store.create(key, &record).await.unwrap());
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Readers that never pause: a WAL in use by a reader cannot be restarted.
    let readers: Vec<_> = (0..3)
        .map(|i| {
            let (store, stop, keys) = (Arc::clone(&store), Arc::clone(&stop), keys.clone());
            tokio::spawn(async move {
                let mut n = i;
                while !stop.load(Ordering::Relaxed) {
                    let _ = store.load(&keys[n % keys.len()]).await.unwrap();
                    n += 1;
                }
            })
        })
        .collect();
    let mut tasks = Vec::new();
    for key in keys.clone() {
        let (store, stop, mut record) = (Arc::clone(&store), Arc::clone(&stop), record.clone());
        tasks.push(tokio::spawn(async move {
            let mut writes = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let expected = record.version;
                record.version += 1;
                let outcome = store.save(&key, &record, expected).await.unwrap();
                assert_eq!(outcome, latch::SaveOutcome::Saved);
                writes += 1;
            }
            writes
        }));
    }
    let started = Instant::now();
    let mut largest = 0;
    while started.elapsed() < Duration::from_secs(6) {
        largest = largest.max(wal_size());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut writes = 0;
    for t in tasks {
        writes += t.await.unwrap();
    }
    for r in readers {
        r.await.unwrap();
    }
    let written_mb = writes * 60_000 / 1_000_000;
    // Shrinks back once the writes stop: within a few checkpoint rounds.
    let mut after = wal_size();
    for _ in 0..50 {
        if after == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = wal_size();
    }
    println!(
        "{writes} writes of 60 KB ({written_mb} MB) in 6 s; largest WAL {} MB (limit {} MB); \
         {} KB after the writes stopped",
        largest >> 20,
        limit >> 20,
        after >> 10
    );
    assert!(
        written_mb > 4 * (limit >> 20),
        "too few writes ({written_mb} MB) to test the bound"
    );
    // The limit plus what can be written between two checks (200 ms) and
    // while a truncation waits for its locks.
    assert!(
        largest <= 4 * limit,
        "WAL grew to {largest} bytes under a {limit}-byte limit"
    );
    assert_eq!(after, 0, "the WAL did not shrink after the writes stopped");
}

/// A9: the database, and the WAL and shared-memory files SQLite creates
/// beside it, are readable by their owner only.
#[tokio::test]
async fn a9_database_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = TempDir::new("perms");
    let store = SqliteStore::open(dir.db()).unwrap();
    let mut record = Record::new(1_900_000_000);
    record.expires_at = 1_900_003_600;
    assert!(
        store
            .create(&SessionId::generate().store_key(), &record)
            .await
            .unwrap()
    );
    for name in ["sessions.db", "sessions.db-wal", "sessions.db-shm"] {
        let mode = std::fs::metadata(dir.0.join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{name} has mode {mode:o}");
    }
}

/// A6: a database that held many sessions shrinks back once they are purged
/// (incremental auto-vacuum on new databases; before, an attack left a 67 MB
/// file for an empty table).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a6_the_file_shrinks_back_after_a_purge() {
    let dir = TempDir::new("shrink");
    let store = SqliteStore::open(dir.db()).unwrap();
    let conn = Connection::open(dir.db()).unwrap();
    let mode: i64 = conn
        .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, 2, "incremental");
    let mut record = Record::new(1_900_000_000);
    record.expires_at = 1_900_000_100;
    record.data.insert("pad".into(), "x".repeat(4000).into());
    for _ in 0..3000 {
        assert!(
            store
                .create(&SessionId::generate().store_key(), &record)
                .await
                .unwrap()
        );
    }
    let size = || {
        std::fs::metadata(dir.db()).map_or(0, |m| m.len())
            + std::fs::metadata(dir.0.join("sessions.db-wal")).map_or(0, |m| m.len())
    };
    let full = size();
    let mut purged = 0;
    loop {
        let n = store.purge_expired(1_900_000_200, 1000).await.unwrap();
        purged += n;
        if n < 1000 {
            break;
        }
    }
    assert_eq!(purged, 3000);
    // The checkpoint thread copies the log back and truncates it.
    let mut after = size();
    for _ in 0..50 {
        if after < full / 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = size();
    }
    let free: i64 = conn
        .query_row("PRAGMA freelist_count", [], |r| r.get(0))
        .unwrap();
    let pages: i64 = conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    println!(
        "3000 sessions of 4 KB: {} KB on disk; after the purge {} KB (db {} KB, {pages} pages, {free} free)",
        full >> 10,
        after >> 10,
        std::fs::metadata(dir.db()).map_or(0, |m| m.len()) >> 10
    );
    assert!(after < full / 8, "{after} bytes left of {full}");
}

/// The count the triggers keep, and the table's own.
fn counts(db: &std::path::Path) -> (i64, i64) {
    let conn = Connection::open(db).unwrap();
    let kept = conn
        .query_row("SELECT n FROM latch_session_count", [], |r| r.get(0))
        .unwrap();
    let real = conn
        .query_row("SELECT count(*) FROM latch_sessions", [], |r| r.get(0))
        .unwrap();
    (kept, real)
}

fn live(created_at: i64) -> Record {
    let mut r = Record::new(created_at);
    r.expires_at = i64::MAX / 2;
    r
}

/// A disk-fill backstop: a store of at most 3 sessions holds exactly 3,
/// refuses the 4th as a store error (503), still answers "taken" for a key
/// that exists, and has room again after a delete, a user's sign-out
/// everywhere, or a purge.
#[tokio::test]
async fn a_bounded_store_holds_exactly_its_limit_and_frees_room() {
    let dir = TempDir::new("bounded");
    let store = SqliteStore::builder(dir.db())
        .max_sessions(3)
        .open()
        .unwrap();
    let keys: Vec<_> = (0..6).map(|_| SessionId::generate().store_key()).collect();
    for key in &keys[..3] {
        assert!(store.create(key, &live(1)).await.unwrap());
    }
    let full = store.create(&keys[3], &live(1)).await.unwrap_err();
    assert!(full.is_unavailable(), "{full}");
    assert!(full.to_string().contains("limit of 3 sessions"), "{full}");
    assert_eq!(
        store.load(&keys[3]).await.unwrap(),
        None,
        "nothing half made"
    );
    assert!(
        !store.create(&keys[0], &live(1)).await.unwrap(),
        "an existing key is still answered as taken"
    );
    assert_eq!(counts(&dir.db()), (3, 3));

    assert!(store.delete(&keys[0]).await.unwrap());
    assert!(store.create(&keys[3], &live(1)).await.unwrap());
    assert!(store.create(&keys[4], &live(1)).await.is_err());

    // Two sessions of one user, signed out everywhere: room for two.
    let mut ada = live(1);
    ada.user_id = Some("ada".into());
    let (a1, a2) = (
        SessionId::generate().store_key(),
        SessionId::generate().store_key(),
    );
    assert!(store.delete(&keys[1]).await.unwrap());
    assert!(store.delete(&keys[2]).await.unwrap());
    assert!(store.create(&a1, &ada).await.unwrap());
    assert!(store.create(&a2, &ada).await.unwrap());
    assert!(store.create(&keys[4], &live(1)).await.is_err());
    use latch::UserIndex as _;
    assert_eq!(store.delete_by_user("ada", None).await.unwrap(), 2);

    // Expired ones purged: room again.
    let mut old = Record::new(1);
    old.expires_at = 10;
    assert!(store.create(&keys[4], &old).await.unwrap());
    assert!(store.create(&keys[5], &old).await.unwrap());
    assert!(store.create(&a1, &live(1)).await.is_err());
    assert_eq!(store.purge_expired(100, 1000).await.unwrap(), 2);
    assert!(store.create(&a1, &live(1)).await.unwrap());
    // Saves and touches change no count.
    let mut saved = store.load(&a1).await.unwrap().unwrap();
    saved.version += 1;
    store.save(&a1, &saved, saved.version - 1).await.unwrap();
    store.touch(&a1, None, 5, i64::MAX / 2).await.unwrap();
    assert_eq!(counts(&dir.db()), (2, 2));
}

/// Two stores on one file (two processes, say) share the count: racing
/// creates from both never make more than the limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_sharing_a_file_share_its_limit() {
    let dir = TempDir::new("shared-limit");
    let a = SqliteStore::builder(dir.db())
        .max_sessions(5)
        .open()
        .unwrap();
    let b = SqliteStore::builder(dir.db())
        .max_sessions(5)
        .open()
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            store
                .create(&SessionId::generate().store_key(), &live(1))
                .await
                .is_ok()
        }));
    }
    let mut made = 0;
    for task in tasks {
        made += usize::from(task.await.unwrap());
    }
    assert_eq!(made, 5);
    assert_eq!(counts(&dir.db()), (5, 5));
}

/// A file written without a limit (sessions in it, no count) is counted
/// when a store with a limit first opens it, and the limit counts them; a
/// file never opened with a limit has no count to keep.
#[tokio::test]
async fn a_file_is_counted_when_a_store_with_a_limit_first_opens_it() {
    let dir = TempDir::new("count-later");
    let unlimited = SqliteStore::open(dir.db()).unwrap();
    for _ in 0..4 {
        let key = SessionId::generate().store_key();
        assert!(unlimited.create(&key, &live(1)).await.unwrap());
    }
    let tables: i64 = Connection::open(dir.db())
        .unwrap()
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name LIKE 'latch_session_count%' \
             OR name LIKE 'latch_sessions_count%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0, "nothing counted without a limit");
    let limited = SqliteStore::builder(dir.db())
        .max_sessions(5)
        .open()
        .unwrap();
    assert_eq!(counts(&dir.db()), (4, 4));
    let key = SessionId::generate().store_key();
    assert!(limited.create(&key, &live(1)).await.unwrap());
    let key = SessionId::generate().store_key();
    assert!(
        limited.create(&key, &live(1)).await.is_err(),
        "4 old + 1 = 5"
    );
    // The store without a limit keeps the count it now shares.
    let key = SessionId::generate().store_key();
    assert!(unlimited.create(&key, &live(1)).await.unwrap());
    assert!(unlimited.delete(&key).await.unwrap());
    assert_eq!(counts(&dir.db()), (5, 5));
    // Opening with a limit again does not count twice.
    drop(
        SqliteStore::builder(dir.db())
            .max_sessions(9)
            .open()
            .unwrap(),
    );
    assert_eq!(counts(&dir.db()), (5, 5));
}

#[test]
fn a_limit_of_no_sessions_is_refused_at_open() {
    let dir = TempDir::new("limit-zero");
    let err = SqliteStore::builder(dir.db())
        .max_sessions(0)
        .open()
        .unwrap_err();
    assert_eq!(err.kind(), &latch::ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("at least 1"), "{err}");
    assert!(!dir.db().exists(), "refused before any file is made");
}

/// Room kept for sign-ins, as `MemoryStore::max_anonymous_sessions`: past
/// the mark only sessions created signed in are made, up to the limit.
#[tokio::test]
async fn anonymous_sessions_leave_room_for_sign_ins() {
    let dir = TempDir::new("anonymous");
    let store = SqliteStore::builder(dir.db())
        .max_sessions(5)
        .max_anonymous_sessions(3)
        .open()
        .unwrap();
    let mut signed_in = live(1);
    signed_in.user_id = Some("ada".into());
    let new_key = || SessionId::generate().store_key();
    for _ in 0..3 {
        assert!(store.create(&new_key(), &live(1)).await.unwrap());
    }
    let refused = store.create(&new_key(), &live(1)).await.unwrap_err();
    assert!(refused.is_unavailable(), "{refused}");
    assert!(refused.to_string().contains("limit of 3"), "{refused}");
    assert!(store.create(&new_key(), &signed_in).await.unwrap());
    assert!(store.create(&new_key(), &signed_in).await.unwrap());
    assert!(
        store.create(&new_key(), &signed_in).await.is_err(),
        "5 in all"
    );
    assert_eq!(counts(&dir.db()), (5, 5));
    // Only an anonymous limit: signed-in sessions are not limited.
    let other = TempDir::new("anonymous-only");
    let store = SqliteStore::builder(other.db())
        .max_anonymous_sessions(1)
        .open()
        .unwrap();
    assert!(store.create(&new_key(), &live(1)).await.unwrap());
    assert!(store.create(&new_key(), &live(1)).await.is_err());
    for _ in 0..3 {
        assert!(store.create(&new_key(), &signed_in).await.unwrap());
    }
}
