//! `latch sessions` round trips against real stores: sessions are made through
//! `latch::SessionManager` on the store crates, changed through the binary, and
//! the store is checked afterwards. SQLite always runs; Redis and PostgreSQL
//! come from `LATCH_REDIS_URL` / `LATCH_POSTGRES_URL` (loud skip when
//! unreachable, failure with `LATCH_REQUIRE_BACKENDS=1`).

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod common;

use std::collections::BTreeSet;
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use common::{json, latch, now, stderr, stdout};
use latch::{ManualClock, RequestMeta, SessionId, SessionManager, SessionStore, StoreKey};
use serde_json::{Value, json};

const USER_AGENT: &str = "latch-cli-test/1.0";
const IP: &str = "203.0.113.7";

/// A store under test and how the binary reaches it.
struct Fixture {
    store: Arc<dyn SessionStore>,
    /// `--store ...` and any prefix or schema options.
    args: Vec<String>,
    /// Redis deletes expired sessions by TTL; the others keep them until a purge.
    ttl: bool,
}

impl Fixture {
    fn cli(&self, args: &[&str]) -> Output {
        self.cli_stdin(args, "")
    }

    fn cli_stdin(&self, args: &[&str], stdin: &str) -> Output {
        latch()
            .arg("sessions")
            .args(&self.args)
            .args(args)
            .write_stdin(stdin)
            .output()
            .unwrap()
    }

    fn cli_json(&self, args: &[&str]) -> Value {
        let out = self.cli(&[args, &["--json"]].concat());
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
        json(&out)
    }
}

fn unique(tag: &str) -> String {
    format!("{tag}-{}", &SessionId::generate().encode()[..12])
}

fn key_of(cookie: &str) -> StoreKey {
    SessionId::parse(cookie).unwrap().store_key()
}

fn hex_of(cookie: &str) -> String {
    key_of(cookie).to_hex()
}

/// A manager over `store` whose clock is stopped at `at`.
fn manager(store: &Arc<dyn SessionStore>, at: i64) -> SessionManager {
    SessionManager::builder()
        .shared_store(Arc::clone(store))
        .clock(ManualClock::new(at))
        .store_timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// One request that signs `user` in (or, without a user, only stores data);
/// returns the new session's cookie value.
async fn new_session(manager: &SessionManager, user: Option<&str>) -> String {
    let meta = RequestMeta {
        user_agent: Some(USER_AGENT.to_owned()),
        ip: Some(IP.to_owned()),
    };
    let session = manager.start(None, meta);
    session.insert("theme", "dark").await.unwrap();
    if let Some(user) = user {
        session.log_in(user).await.unwrap();
    }
    let set = manager.finish(&session).await.unwrap().set_cookie.unwrap();
    let pair = set.split(';').next().unwrap();
    pair.split_once('=').unwrap().1.to_owned()
}

/// The sessions the round trip works on.
struct Population {
    alice: String,
    bob: String,
    carol: String,
    /// Alice's three live sessions.
    a: Vec<String>,
    /// Bob's live session.
    b: String,
    /// A live session nobody signed in to.
    anon: String,
    /// Carol's two sessions, expired three days ago.
    expired: Vec<String>,
}

async fn populate(store: &Arc<dyn SessionStore>) -> Population {
    let (live, past) = (manager(store, now()), manager(store, now() - 3 * 86_400));
    let (alice, bob, carol) = (unique("alice"), unique("bob"), unique("carol"));
    let mut a = Vec::new();
    for _ in 0..3 {
        a.push(new_session(&live, Some(&alice)).await);
    }
    let b = new_session(&live, Some(&bob)).await;
    let anon = new_session(&live, None).await;
    let expired = vec![
        new_session(&past, Some(&carol)).await,
        new_session(&past, Some(&carol)).await,
    ];
    Population {
        alice,
        bob,
        carol,
        a,
        b,
        anon,
        expired,
    }
}

fn keys(listing: &Value) -> BTreeSet<String> {
    listing["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap().to_owned())
        .collect()
}

fn hexes<'a>(cookies: impl IntoIterator<Item = &'a String>) -> BTreeSet<String> {
    cookies.into_iter().map(|c| hex_of(c)).collect()
}

/// No output of the binary may hold a session ID.
fn no_ids(out: &Output, p: &Population) {
    let text = format!("{}{}", stdout(out), stderr(out));
    let all = p.a.iter().chain([&p.b, &p.anon]).chain(&p.expired);
    for id in all {
        assert!(
            !text.contains(id.as_str()),
            "a session ID was printed:\n{text}"
        );
    }
}

async fn round_trip(f: Fixture) {
    let p = populate(&f.store).await;
    let (total, expired) = if f.ttl { (5, 0) } else { (7, 2) };

    // stats
    assert_eq!(
        f.cli_json(&["stats"]),
        json!({"total": total, "live": 5, "expired": expired, "users": 2, "anonymous": 1})
    );

    // list --user: the user's live sessions, with what the manager recorded.
    let listing = f.cli_json(&["list", "--user", &p.alice]);
    assert_eq!(keys(&listing), hexes(&p.a));
    for s in listing["sessions"].as_array().unwrap() {
        assert_eq!(s["user_id"], p.alice.as_str());
        assert_eq!(s["user_agent"], USER_AGENT);
        assert_eq!(s["ip"], IP);
        assert_eq!(s["expired"], false);
    }
    assert_eq!(
        keys(&f.cli_json(&["list", "--user", &p.carol])),
        BTreeSet::new()
    );
    let text = f.cli(&["list", "--user", &p.alice]);
    assert!(text.status.success());
    assert!(stdout(&text).starts_with("STORE KEY "), "{}", stdout(&text));
    assert!(
        stdout(&text).ends_with("\n3 sessions\n"),
        "{}",
        stdout(&text)
    );
    no_ids(&text, &p);

    // list: every session, expired ones marked (Redis has already dropped them).
    let everything = f.cli_json(&["list"]);
    let mut expected = hexes(p.a.iter().chain([&p.b, &p.anon]));
    if !f.ttl {
        expected.extend(hexes(&p.expired));
    }
    assert_eq!(keys(&everything), expected);
    for s in everything["sessions"].as_array().unwrap() {
        let is_expired = hexes(&p.expired).contains(s["key"].as_str().unwrap());
        assert_eq!(s["expired"], is_expired, "{s}");
    }
    let limited = f.cli(&["list", "--limit", "2"]);
    assert!(stdout(&limited).ends_with("\n2 sessions (the --limit; there may be more)\n"));
    no_ids(&f.cli(&["list"]), &p);

    // show: by session ID, by store key, and from standard input.
    let shown = f.cli_json(&["show", &p.a[0]]);
    assert_eq!(shown["key"], hex_of(&p.a[0]));
    assert_eq!(shown["user_id"], p.alice.as_str());
    assert_eq!(shown["data"]["theme"], "dark");
    assert_eq!(shown["expired"], false);
    assert_eq!(shown["user_agent"], USER_AGENT);
    assert_eq!(f.cli_json(&["show", &hex_of(&p.a[0])]), shown);
    let from_stdin = f.cli_stdin(&["show", "-"], &format!("__Host-session={}\n", p.a[0]));
    assert!(from_stdin.status.success());
    assert!(stdout(&from_stdin).starts_with(&format!("key         {}\n", hex_of(&p.a[0]))));
    no_ids(&from_stdin, &p);

    // revoke: gone from the store; a second time there is nothing to revoke.
    let out = f.cli_stdin(&["revoke", "-"], &p.a[0]);
    assert_eq!(
        stdout(&out),
        format!("revoked session {}\n", hex_of(&p.a[0]))
    );
    assert_eq!(f.store.load(&key_of(&p.a[0])).await.unwrap(), None);
    let again = f.cli(&["revoke", &p.a[0]]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(
        stderr(&again),
        format!("latch: no session with store key {}\n", hex_of(&p.a[0]))
    );
    assert_eq!(f.cli(&["show", &hex_of(&p.a[0])]).status.code(), Some(1));

    // revoke-user: the rest of Alice's sessions; Bob's stays.
    let out = f.cli(&["revoke-user", &p.alice]);
    assert_eq!(
        stdout(&out),
        format!("revoked 2 sessions of user {:?}\n", p.alice)
    );
    for c in &p.a[1..] {
        assert_eq!(f.store.load(&key_of(c)).await.unwrap(), None);
    }
    assert_eq!(
        f.store
            .user_index()
            .unwrap()
            .list_by_user(&p.alice, now())
            .await
            .unwrap(),
        vec![]
    );
    assert!(f.store.load(&key_of(&p.b)).await.unwrap().is_some());
    assert_eq!(
        f.store
            .user_index()
            .unwrap()
            .list_by_user(&p.bob, now())
            .await
            .unwrap()
            .len(),
        1
    );

    // purge --dry-run counts and deletes nothing.
    assert_eq!(
        f.cli_json(&["purge", "--dry-run"]),
        json!({"dry_run": true, "expired": 2, "purged": 0})
    );
    if !f.ttl {
        for c in &p.expired {
            assert!(f.store.load(&key_of(c)).await.unwrap().is_some());
        }
    }
    // purge, one per batch: two batches of one, then an empty one.
    assert_eq!(
        f.cli_json(&["purge", "--batch", "1"]),
        json!({"dry_run": false, "expired": 2, "purged": 2, "batches": 3})
    );
    for c in &p.expired {
        assert_eq!(f.store.load(&key_of(c)).await.unwrap(), None);
    }
    let out = f.cli(&["purge"]);
    assert_eq!(stdout(&out), "purged 0 expired sessions in 1 batch\n");

    // What is left: Bob's session and the anonymous one.
    assert_eq!(
        f.cli_json(&["stats"]),
        json!({"total": 2, "live": 2, "expired": 0, "users": 1, "anonymous": 1})
    );
    assert!(f.store.load(&key_of(&p.anon)).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.db");
    let store = latch_sqlite::SqliteStore::open(&path).unwrap();
    round_trip(Fixture {
        store: Arc::new(store),
        args: vec!["--store".into(), format!("sqlite:{}", path.display())],
        ttl: false,
    })
    .await;
}

fn redis_url() -> String {
    std::env::var("LATCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_round_trip() {
    let prefix = format!("{}:", unique("latch-cli-test"));
    let url = redis_url();
    let store = match latch_redis::RedisStore::builder(&url)
        .prefix(&prefix)
        .connect()
        .await
    {
        Ok(store) => store,
        // The URL may carry a password: name the variable, not its value.
        Err(e) => {
            let _: Option<()> =
                latch_conformance::skip_or_fail("Redis", &format!("LATCH_REDIS_URL: {e}"));
            return;
        }
    };
    round_trip(Fixture {
        store: Arc::new(store),
        args: vec![
            "--store".into(),
            url.clone(),
            "--redis-prefix".into(),
            prefix.clone(),
        ],
        ttl: true,
    })
    .await;
    redis_cleanup(&url, &prefix).await;
}

/// A write that extends a Redis session leaves its expiry-index entry where it
/// was, so the entry comes due before the session does: `purge --dry-run`
/// must check each due entry against its session and not count a session
/// that lives on, and `purge` must leave it alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_purge_counts_only_sessions_expired() {
    let prefix = format!("{}:", unique("latch-cli-extended"));
    let url = redis_url();
    let store = match latch_redis::RedisStore::builder(&url)
        .prefix(&prefix)
        .connect()
        .await
    {
        Ok(store) => store,
        Err(e) => {
            let _: Option<()> =
                latch_conformance::skip_or_fail("Redis", &format!("LATCH_REDIS_URL: {e}"));
            return;
        }
    };
    let key = SessionId::generate().store_key();
    let mut record = latch::Record::new(now());
    record.expires_at = now() + 2;
    assert!(store.create(&key, &record).await.unwrap());
    record.version = 1;
    record.expires_at = now() + 600;
    assert_eq!(
        store.save(&key, &record, 0).await.unwrap(),
        latch::SaveOutcome::Saved
    );
    // Until the entry filed at creation is due.
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let f = Fixture {
        store: Arc::new(store),
        args: vec![
            "--store".into(),
            url.clone(),
            "--redis-prefix".into(),
            prefix.clone(),
        ],
        ttl: true,
    };
    assert_eq!(
        f.cli_json(&["purge", "--dry-run"]),
        json!({"dry_run": true, "expired": 0, "purged": 0})
    );
    assert_eq!(
        f.cli_json(&["purge"]),
        json!({"dry_run": false, "expired": 0, "purged": 0, "batches": 1})
    );
    assert!(f.store.load(&key).await.unwrap().is_some());
    redis_cleanup(&url, &prefix).await;
}

/// `latch sessions --store rediss://...?cacert=...&cert=...&key=...` against a
/// private Redis that requires mutual TLS (T1: every tool that takes a store
/// URL takes the TLS forms).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_over_mutual_tls_round_trip() {
    let server = match latch_conformance::servers::PrivateRedis::start_tls(true) {
        Ok(server) => server,
        Err(why) => {
            let _: Option<()> = latch_conformance::skip_or_fail("a private TLS Redis", &why);
            return;
        }
    };
    redis_round_trip_at(&server.tls_url_with_files().expect("TLS url"), "tls").await;
}

/// `latch sessions --store redis+sentinel://s1,s2,s3/latchmaster` against a
/// private Sentinel set-up (master, replica, three sentinels): the CLI finds
/// the master through the sentinels (issue 13 item 5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sentinel_round_trip() {
    let setup = match latch_conformance::servers::PrivateSentinel::start() {
        Ok(setup) => setup,
        Err(why) => {
            let _: Option<()> =
                latch_conformance::skip_or_fail("a private Redis Sentinel set-up", &why);
            return;
        }
    };
    redis_round_trip_at(&setup.url(), "sentinel").await;
}

/// The round trip on a private Redis (or Sentinel set-up) at `url`, which the
/// test drops afterwards, under a prefix named after `tag`.
async fn redis_round_trip_at(url: &str, tag: &str) {
    let prefix = format!("{}:", unique(&format!("latch-cli-{tag}")));
    let store = latch_redis::RedisStore::builder(url)
        .prefix(&prefix)
        .connect()
        .await
        .unwrap_or_else(|e| panic!("the store ({tag}): {e:?}"));
    round_trip(Fixture {
        store: Arc::new(store),
        args: vec![
            "--store".into(),
            url.to_owned(),
            "--redis-prefix".into(),
            prefix,
        ],
        ttl: true,
    })
    .await;
}

/// `latch sessions --store postgres://...?sslmode=verify-full&sslrootcert=...`
/// against a private PostgreSQL that accepts only TLS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_over_verified_tls_round_trip() {
    let server = match latch_conformance::servers::PrivatePostgres::start_tls(false) {
        Ok(server) => server,
        Err(why) => {
            let _: Option<()> = latch_conformance::skip_or_fail("a private TLS PostgreSQL", &why);
            return;
        }
    };
    let certs = server.certs().expect("TLS server");
    let url = server.url_via(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={}", certs.ca.display()),
    );
    let store = latch_postgres::PostgresStore::connect(&url)
        .await
        .expect("the store over TLS");
    round_trip(Fixture {
        store: Arc::new(store),
        args: vec!["--store".into(), url],
        ttl: false,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_round_trip() {
    // The cluster of LATCH_REDIS_CLUSTER_URLS, or a private one started here.
    let site = match latch_conformance::servers::ClusterSite::get() {
        Ok(site) => site,
        Err(why) => {
            let _: Option<()> = latch_conformance::skip_or_fail("Redis Cluster", &why);
            return;
        }
    };
    let urls = site.urls.clone();
    let prefix = format!("{}:", unique("latch-cli-cluster"));
    let store = match latch_redis::RedisStore::cluster_builder(urls.iter().map(|u| u.to_string()))
        .prefix(&prefix)
        .connect()
        .await
    {
        Ok(store) => store,
        Err(e) => {
            let _: Option<()> = latch_conformance::skip_or_fail(
                "Redis Cluster",
                &format!("the Redis Cluster: {e}"),
            );
            return;
        }
    };
    // Only the first node is named: the CLI finds the other masters itself, and
    // sessions hash to all of them.
    let first = urls[0].trim_start_matches("redis://").trim_end_matches('/');
    round_trip(Fixture {
        store: Arc::new(store),
        args: vec![
            "--store".into(),
            format!("redis-cluster://{first}"),
            "--redis-prefix".into(),
            prefix.clone(),
        ],
        ttl: true,
    })
    .await;
    for url in &urls {
        redis_cleanup(url, &prefix).await;
    }
}

/// Delete every key this test's prefix left (indexes without a TTL included);
/// on a cluster node, the keys that node holds.
async fn redis_cleanup(url: &str, prefix: &str) {
    let mut conn = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    // SCAN, not KEYS: a server that holds many other keys (a benchmark's
    // sessions, say) answers KEYS only after walking all of them at once,
    // past the client's response timeout.
    let mut keys: Vec<String> = Vec::new();
    {
        use redis::AsyncCommands as _;
        let mut scan = conn
            .scan_match::<_, String>(format!("{prefix}*"))
            .await
            .unwrap();
        while let Some(key) = scan.next_item().await {
            keys.push(key.unwrap());
        }
    }
    // One DEL per key: a cluster refuses one DEL of keys in different slots.
    let mut pipe = redis::pipe();
    for key in &keys {
        pipe.cmd("DEL").arg(key).ignore();
    }
    if !keys.is_empty() {
        pipe.exec_async(&mut conn).await.unwrap();
    }
}

fn postgres_url() -> String {
    std::env::var("LATCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_round_trip() {
    let url = postgres_url();
    let mut config: tokio_postgres::Config = url.parse().unwrap();
    config.connect_timeout(Duration::from_secs(3));
    let client = match config.connect(tokio_postgres::NoTls).await {
        Ok((client, connection)) => {
            tokio::spawn(connection);
            client
        }
        Err(e) => {
            let _: Option<()> =
                latch_conformance::skip_or_fail("PostgreSQL", &format!("LATCH_POSTGRES_URL: {e}"));
            return;
        }
    };
    // A private schema, so counts see only this test's sessions.
    let schema = unique("latch_cli").to_ascii_lowercase().replace('-', "_");
    let schema: String = schema
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let store = latch_postgres::PostgresStore::builder(&url)
        .schema(&schema)
        .connect()
        .await
        .unwrap();
    round_trip(Fixture {
        store: Arc::new(store),
        args: vec!["--store".into(), url, "--pg-schema".into(), schema.clone()],
        ttl: false,
    })
    .await;
    client
        .batch_execute(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .await
        .unwrap();
}

#[test]
fn a_path_that_is_not_a_latch_database_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo.db");
    latch()
        .args([
            "sessions",
            "--store",
            &format!("sqlite:{}", missing.display()),
            "stats",
        ])
        .assert()
        .code(2)
        .stderr(format!(
            "latch: no session database at {}\n",
            missing.display()
        ));
    assert!(!missing.exists(), "a typo must not create a database");

    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE users (id INTEGER)")
        .unwrap();
    let out = latch()
        .args([
            "sessions",
            "--json",
            "--store",
            &format!("sqlite:{}", other.display()),
            "purge",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        json(&out)["error"],
        format!(
            "{} has no latch_sessions table: it is not a latch-sqlite database",
            other.display()
        )
    );
    let tables: i64 = rusqlite::Connection::open(&other)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1);
}

/// One session ID in 64 starts with `-` (base64url): it is an ID, not a flag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_id_starting_with_a_hyphen_is_an_id() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.db");
    let store = latch_sqlite::SqliteStore::open(&path).unwrap();
    let id = format!("-{}", &SessionId::generate().encode()[1..]);
    let key = SessionId::parse(&id).unwrap().store_key();
    let mut record = latch::Record::new(now());
    record.user_id = Some("-dash".into());
    record.expires_at = now() + 600;
    assert!(store.create(&key, &record).await.unwrap());
    let f = Fixture {
        store: Arc::new(store),
        args: vec!["--store".into(), format!("sqlite:{}", path.display())],
        ttl: false,
    };
    assert_eq!(f.cli_json(&["show", &id])["key"], key.to_hex());
    assert_eq!(
        stdout(&f.cli(&["revoke-user", "-dash"])),
        "revoked 1 session of user \"-dash\"\n"
    );
    assert_eq!(f.store.load(&key).await.unwrap(), None);
}

#[test]
fn bad_ids_urls_and_unreachable_servers_are_errors_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    drop(latch_sqlite::SqliteStore::open(&path).unwrap());
    let store = format!("sqlite:{}", path.display());
    latch()
        .args(["sessions", "--store", &store, "show", "not-a-session"])
        .assert()
        .code(2)
        .stderr(
            "latch: the ID is neither a session ID (the cookie value: 43 base64url characters) \
             nor a store key (64 hex digits)\n",
        );
    latch()
        .args([
            "sessions",
            "--store",
            "mysql://root:hunter2@db/app",
            "stats",
        ])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("hunter2").not());
    // Nothing listens on port 1 of the loopback: refused at once.
    for url in [
        "redis://:hunter2@127.0.0.1:1/",
        "redis+sentinel://:hunter2@127.0.0.1:1/mymaster",
        "postgres://app:hunter2@127.0.0.1:1/app",
    ] {
        let out = latch()
            .args(["sessions", "--store", url, "stats"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{url}");
        let err = stderr(&out);
        assert!(
            err.starts_with("latch: ") && !err.contains("hunter2"),
            "{err}"
        );
    }
    // The store can also come from LATCH_STORE, and --json goes after the subcommand too.
    let out = latch()
        .args(["sessions", "stats", "--json"])
        .env("LATCH_STORE", &store)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["total"], 0);
}

use predicates::prelude::PredicateBooleanExt as _;

/// `show` and `list --user` say which sessions are device-bound (DBSC) and
/// when each last proved its key; the binding's challenges are not printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_bound_sessions_are_shown_as_such() {
    use latch::dbsc::DeviceBinding;
    use latch_conformance::device::{DeviceClient, SoftwareDevice};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.db");
    let store: Arc<dyn SessionStore> = Arc::new(latch_sqlite::SqliteStore::open(&path).unwrap());
    let at = now();
    let manager = SessionManager::builder()
        .shared_store(Arc::clone(&store))
        .clock(ManualClock::new(at))
        .device_bound(DeviceBinding::default())
        .build()
        .unwrap();
    let user = unique("dana");
    let mut bound = DeviceClient::new(manager.clone(), SoftwareDevice::es256());
    assert_eq!(bound.sign_in_and_register(&user).await.status, 200);
    let mut plain = DeviceClient::new(manager.clone(), SoftwareDevice::es256());
    plain.sign_in(&user).await;
    let f = Fixture {
        store,
        args: vec!["--store".into(), format!("sqlite:{}", path.display())],
        ttl: false,
    };
    let bound_id = bound.session.clone().unwrap();
    let shown = f.cli_json(&["show", &bound_id]);
    assert_eq!(shown["device_bound"], true);
    assert_eq!(shown["device_proved_at"], at);
    assert!(shown["data"].get("_latch.dbsc").is_none(), "{shown}");
    let text = stdout(&f.cli(&["show", &bound_id]));
    assert!(text.contains("device key  bound, last proved"), "{text}");
    let plain_shown = f.cli_json(&["show", plain.session.as_deref().unwrap()]);
    assert_eq!(plain_shown["device_bound"], false);
    let listed = f.cli_json(&["list", "--user", &user]);
    let proved: BTreeSet<String> = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["device_proved_at"].to_string())
        .collect();
    assert_eq!(proved, BTreeSet::from(["null".to_owned(), at.to_string()]));
}
