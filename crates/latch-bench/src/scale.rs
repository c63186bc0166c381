//! `latch-bench scale`: load latency and requests/s of the SQLite, PostgreSQL
//! and Redis stores holding many sessions, purge time of expired sessions, and
//! the `MemoryStore`'s memory per session.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use latch::{ManualClock, SessionManager, SessionStore};

use crate::apps::latch as latch_app;
use crate::backends::{self, PrivateRedis, TempDir};
use crate::server::Server;
use crate::stats::{fmt_us, median};
use crate::svg::{Chart, Series};
use crate::wrk::{self, Cookies, Sample};
use crate::{fill, machine};

/// The flags of `latch-bench scale`.
#[derive(Debug, clap::Args)]
pub struct ScaleArgs {
    /// Stored sessions at each point of the curve.
    #[arg(long, value_delimiter = ',', default_value = "10000,1000000,10000000")]
    sizes: Vec<u64>,
    /// Stores measured.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres,redis", value_parser = Store::parse)]
    stores: Vec<Store>,
    /// Seconds each sample runs.
    #[arg(long, default_value_t = 4)]
    duration: u64,
    /// Interleaved repetitions per size.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    reps: u64,
    /// Expired sessions the purge measurement deletes.
    #[arg(long, default_value_t = 1_000_000)]
    purge: u64,
    /// Sizes of the memory-store memory measurement.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "100000,200000,500000,1000000"
    )]
    mem_sizes: Vec<u64>,
    /// Where the SVG charts go.
    #[arg(long, default_value = "docs/benchmarks")]
    out_dir: PathBuf,
    /// Port of the private redis-server the benchmark starts.
    #[arg(long, default_value_t = 16_380)]
    redis_port: u16,
    /// wrk connections.
    #[arg(long, default_value_t = 32)]
    connections: u32,
}

/// A store under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// latch-sqlite, a private file.
    Sqlite,
    /// latch-postgres, a private database.
    Postgres,
    /// latch-redis, a private redis-server.
    Redis,
}

impl Store {
    pub(crate) fn parse(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "sqlite" => Store::Sqlite,
            "postgres" => Store::Postgres,
            "redis" => Store::Redis,
            other => bail!("unknown store {other:?}; known: sqlite,postgres,redis"),
        })
    }

    fn name(self) -> &'static str {
        match self {
            Store::Sqlite => "sqlite",
            Store::Postgres => "postgres",
            Store::Redis => "redis",
        }
    }
}

/// Where one store's data lives during the run.
#[derive(Debug, Clone)]
enum Place {
    Sqlite(PathBuf),
    Postgres(String),
    Redis(String),
}

impl Place {
    async fn open(&self) -> anyhow::Result<Arc<dyn SessionStore>> {
        Ok(match self {
            Place::Sqlite(path) => Arc::new(latch_sqlite::SqliteStore::open(path)?),
            Place::Postgres(url) => Arc::new(latch_postgres::PostgresStore::connect(url).await?),
            Place::Redis(url) => Arc::new(latch_redis::RedisStore::connect(url).await?),
        })
    }

    async fn fill(
        &self,
        seed: &str,
        range: std::ops::Range<u64>,
        now: i64,
        exp: i64,
    ) -> anyhow::Result<()> {
        match self {
            Place::Sqlite(path) => {
                let path = path.clone();
                let seed = seed.to_owned();
                tokio::task::spawn_blocking(move || {
                    fill::sqlite::fill(&path, &seed, range, now, exp)
                })
                .await?
            }
            Place::Postgres(url) => fill::postgres::fill(url, seed, range, now, exp).await,
            Place::Redis(url) => fill::redis_fill::fill(url, seed, range, now, exp).await,
        }
    }
}

/// One size's measurements for one store.
#[derive(Debug, Clone)]
struct Point {
    store: Store,
    size: u64,
    fill_secs: f64,
    bare: Vec<Sample>,
    rw: Vec<Sample>,
    ro: Vec<Sample>,
}

#[derive(Debug, Clone)]
struct Purge {
    store: Store,
    live: u64,
    expired: u64,
    secs: f64,
    left: u64,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}

/// Run the scale benchmark; returns the Markdown report and writes SVGs to `--out-dir`.
///
/// # Errors
/// When a backend cannot be set up or a fill fails.
pub fn run(args: &ScaleArgs) -> anyhow::Result<String> {
    crate::wrk::check_installed()?;
    let sizes = args.sizes.clone();
    let stores = args.stores.clone();
    let duration = Duration::from_secs(args.duration);
    let reps = usize::try_from(args.reps)?;
    let connections = args.connections;
    let purge_n = args.purge;
    let mem_sizes = args.mem_sizes.clone();
    let out_dir = args.out_dir.clone();
    let redis_port = args.redis_port;
    std::fs::create_dir_all(&out_dir)?;
    let tmp = TempDir::new("scale")?;
    let mut report = format!(
        "scale: sizes {sizes:?}, {reps} interleaved repetitions (bare, rw, ro) of {} s per size, \
         wrk -t1 -c{connections} picking one of 2000 sampled sessions per request\n\
         at start: {}\n",
        duration.as_secs(),
        machine::describe()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut points = Vec::new();
    let mut purges = Vec::new();
    for &store in &stores {
        let started = Instant::now();
        let result = run_store(
            &rt,
            store,
            &sizes,
            &tmp.0,
            redis_port,
            purge_n,
            duration,
            reps,
            connections,
        );
        match result {
            Ok((p, q)) => {
                points.extend(p);
                purges.extend(q);
            }
            Err(e) => eprintln!("{}: FAILED: {e:#}", store.name()),
        }
        eprintln!(
            "{}: done in {:.0} s",
            store.name(),
            started.elapsed().as_secs_f64()
        );
    }
    let memory = memory_per_session(&mem_sizes)?;
    report.push_str(&format!("at end: {}\n\n", machine::describe()));
    report.push_str(&load_table(&points));
    report.push('\n');
    report.push_str(&purge_table(&purges));
    report.push('\n');
    report.push_str(&memory_table(&memory));
    write_charts(&out_dir, &points, &memory)?;
    Ok(report)
}

#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename these
fn run_store(
    rt: &tokio::runtime::Runtime,
    store: Store,
    sizes: &[u64],
    tmp: &Path,
    redis_port: u16,
    purge_n: u64,
    duration: Duration,
    reps: usize,
    connections: u32,
) -> anyhow::Result<(Vec<Point>, Vec<Purge>)> {
    let pg_db = format!("latch_bench_scale_{}", std::process::id());
    let mut redis = None;
    let place = match store {
        Store::Sqlite => Place::Sqlite(tmp.join("scale.db")),
        Store::Postgres => {
            let admin = backends::postgres_url();
            rt.block_on(async {
                let c = backends::pg_client(&admin).await?;
                c.batch_execute(&format!("DROP DATABASE IF EXISTS {pg_db}"))
                    .await?;
                c.batch_execute(&format!("CREATE DATABASE {pg_db}")).await?;
                anyhow::Ok(())
            })?;
            Place::Postgres(replace_db(&admin, &pg_db)?)
        }
        Store::Redis => {
            let r = PrivateRedis::start(redis_port)?;
            let url = r.url();
            redis = Some(r);
            Place::Redis(url)
        }
    };
    let result = measure_store(
        rt,
        store,
        &place,
        sizes,
        tmp,
        purge_n,
        duration,
        reps,
        connections,
    );
    // Clean up whatever happened.
    match &place {
        Place::Sqlite(path) => backends::remove_sqlite(path),
        Place::Postgres(_) => {
            let admin = backends::postgres_url();
            let dropped = rt.block_on(async {
                let c = backends::pg_client(&admin).await?;
                c.batch_execute(&format!("DROP DATABASE IF EXISTS {pg_db} WITH (FORCE)"))
                    .await?;
                anyhow::Ok(())
            });
            if let Err(e) = dropped {
                eprintln!("warning: could not drop database {pg_db}: {e:#}");
            }
        }
        Place::Redis(_) => {
            if let Some(r) = &redis {
                eprintln!(
                    "redis: used_memory_rss at the end {:.0} MiB",
                    r.rss().unwrap_or(0) as f64 / 1048576.0
                );
            }
        }
    }
    drop(redis);
    result
}

fn replace_db(url: &str, db: &str) -> anyhow::Result<String> {
    let (base, _) = url
        .rsplit_once('/')
        .context("PostgreSQL URL without a database")?;
    Ok(format!("{base}/{db}"))
}

#[allow(clippy::too_many_arguments)] // see run_store
fn measure_store(
    rt: &tokio::runtime::Runtime,
    store: Store,
    place: &Place,
    sizes: &[u64],
    tmp: &Path,
    purge_n: u64,
    duration: Duration,
    reps: usize,
    connections: u32,
) -> anyhow::Result<(Vec<Point>, Vec<Purge>)> {
    // Opening the store once creates the schema.
    rt.block_on(async { place.open().await.map(drop) })?;
    let mut filled = 0u64;
    let mut points = Vec::new();
    let mut purges = Vec::new();
    let mut sorted = sizes.to_vec();
    sorted.sort_unstable();
    for (k, &size) in sorted.iter().enumerate() {
        let t = Instant::now();
        let now = now();
        if size > filled {
            eprintln!("{}: filling {filled}..{size}", store.name());
            rt.block_on(place.fill(fill::LIVE, filled..size, now, now + 86_400))?;
            filled = size;
        }
        let fill_secs = t.elapsed().as_secs_f64();
        eprintln!("{}: {size} sessions after {fill_secs:.1} s", store.name());
        let (cookies, script) = (tmp.join("cookies.txt"), tmp.join("cookies.lua"));
        let lines: Vec<String> = fill::sample(size, 2000)
            .into_iter()
            .map(|i| format!("__Host-session={}", fill::id(fill::LIVE, i).encode()))
            .collect();
        std::fs::write(&cookies, lines.join("\n") + "\n")?;
        std::fs::write(&script, wrk::cookie_script(&cookies))?;
        let point = load_point(
            store,
            place,
            size,
            fill_secs,
            &script,
            duration,
            reps,
            connections,
        )?;
        points.push(point);
        // Purge: a tenth of --purge at every size (cost against table size), all
        // of --purge at the largest (cost against what expired).
        let mut amounts = vec![(purge_n / 10).max(1)];
        if k + 1 == sorted.len() {
            amounts.push(purge_n);
        }
        for expired in amounts {
            purges.push(purge(rt, store, place, size, expired)?);
        }
    }
    Ok((points, purges))
}

#[allow(clippy::too_many_arguments)] // see run_store
fn load_point(
    store: Store,
    place: &Place,
    size: u64,
    fill_secs: f64,
    script: &Path,
    duration: Duration,
    reps: usize,
    connections: u32,
) -> anyhow::Result<Point> {
    let bare = Server::start_with(|| async {
        Ok(axum::Router::new().route("/ro", axum::routing::get(|| async { "ok" })))
    })?;
    let place2 = place.clone();
    let server = Server::start_with(move || async move {
        let store = place2.open().await?;
        let manager = latch_app::builder().shared_store(store).build()?;
        Ok(latch_app::router(manager))
    })?;
    let cookies = Cookies::Script(script);
    let mut point = Point {
        store,
        size,
        fill_secs,
        bare: vec![],
        rw: vec![],
        ro: vec![],
    };
    for rep in 0..reps {
        point
            .bare
            .push(wrk::run(&bare.url("/ro"), &cookies, duration, connections)?);
        point.rw.push(wrk::run(
            &server.url("/rw"),
            &cookies,
            duration,
            connections,
        )?);
        point.ro.push(wrk::run(
            &server.url("/ro"),
            &cookies,
            duration,
            connections,
        )?);
        let last = |v: &[Sample]| v.last().copied().unwrap_or_default();
        eprintln!(
            "  {} {size} rep {}: bare {:.0}/s, rw {:.0}/s p99 {}, ro {:.0}/s p99 {}, errors {}",
            store.name(),
            rep + 1,
            last(&point.bare).rps,
            last(&point.rw).rps,
            fmt_us(last(&point.rw).p99_us),
            last(&point.ro).rps,
            fmt_us(last(&point.ro).p99_us),
            last(&point.rw).errors + last(&point.ro).errors
        );
    }
    Ok(point)
}

/// Generate `expired` sessions that expire in an hour, then purge through
/// `SessionManager::purge_expired` (batches of 1000, as latch-demo runs it) on a
/// clock set two hours ahead; only those sessions are due.
fn purge(
    rt: &tokio::runtime::Runtime,
    store: Store,
    place: &Place,
    live: u64,
    expired: u64,
) -> anyhow::Result<Purge> {
    let now = now();
    eprintln!("{}: generating {expired} sessions to expire", store.name());
    // A fresh index range each time, so repeated purges never collide.
    static ROUND: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let base = ROUND.fetch_add(1, std::sync::atomic::Ordering::Relaxed) << 32;
    rt.block_on(place.fill(fill::EXPIRED, base..base + expired, now, now + 3600))?;
    let (secs, n) = rt.block_on(async {
        let s = place.open().await?;
        let manager = SessionManager::builder()
            .expiry(latch_app::long_expiry())
            .shared_store(s)
            .clock(ManualClock::new(now + 7200))
            .build()?;
        let t = Instant::now();
        let n = manager.purge_expired(1000).await?;
        anyhow::Ok((t.elapsed().as_secs_f64(), n))
    })?;
    eprintln!(
        "{}: purged {n} of {expired} in {secs:.2} s (live {live})",
        store.name()
    );
    Ok(Purge {
        store,
        live,
        expired,
        secs,
        left: expired.saturating_sub(n),
    })
}

/// RSS growth per session of a `MemoryStore`, each N in a fresh child process.
fn memory_per_session(sizes: &[u64]) -> anyhow::Result<Vec<Probe>> {
    let exe = std::env::current_exe()?;
    let mut out = Vec::new();
    for &n in sizes {
        let o = std::process::Command::new(&exe)
            .args(["mem-probe", &n.to_string()])
            .output()?;
        let text = String::from_utf8_lossy(&o.stdout);
        let probe =
            parse_probe(n, &text).with_context(|| format!("mem-probe {n} printed {text:?}"))?;
        eprintln!("memory: {n} sessions grew RSS by {} bytes", probe.bytes);
        out.push(probe);
    }
    Ok(out)
}

/// What [`mem_probe`] measured for `n` sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Probe {
    n: u64,
    /// Resident-set growth.
    bytes: u64,
    /// The slowest single create, in µs.
    slowest_us: u64,
    /// All the time spent in creates that took over 100 µs, in µs: the
    /// stalls a request behind the store's lock would wait out.
    stalled_us: u64,
}

fn parse_probe(n: u64, text: &str) -> anyhow::Result<Probe> {
    let mut it = text.split_whitespace().map(str::parse::<u64>);
    match (it.next(), it.next(), it.next()) {
        (Some(Ok(bytes)), Some(Ok(slowest_us)), Some(Ok(stalled_us))) => Ok(Probe {
            n,
            bytes,
            slowest_us,
            stalled_us,
        }),
        _ => bail!("expected three numbers"),
    }
}

/// The child side of [`memory_per_session`]: create `n` sessions like the load
/// benchmark's and print how many bytes the resident set grew, the slowest
/// single `create` and the time spent in creates over 100 µs, in
/// microseconds.
///
/// # Errors
/// When /proc cannot be read.
pub fn mem_probe(n: u64) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let store = latch::MemoryStore::new();
    let t = now();
    let record = fill::record(t, t + 86_400);
    let before = rss()?;
    let (slowest, stalled) = rt.block_on(async {
        let (mut slowest, mut stalled) = (Duration::ZERO, Duration::ZERO);
        for i in 0..n {
            let key = fill::id(fill::LIVE, i).store_key();
            let t = Instant::now();
            store.create(&key, &record).await?;
            let took = t.elapsed();
            slowest = slowest.max(took);
            if took > Duration::from_micros(100) {
                stalled += took;
            }
        }
        anyhow::Ok((slowest, stalled))
    })?;
    let after = rss()?;
    println!(
        "{} {} {}",
        after.saturating_sub(before),
        slowest.as_micros(),
        stalled.as_micros()
    );
    drop(store);
    Ok(())
}

fn rss() -> anyhow::Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm.split_whitespace().nth(1).context("statm")?.parse()?;
    Ok(pages * 4096)
}

fn load_table(points: &[Point]) -> String {
    let mut out = String::from(
        "| store | sessions | fill time | mode | requests/s | ratio to bare | p50 | p99 | errors | p50 / smallest | p99 / smallest | target (≤1.5x of smallest) |\n\
         |---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for p in points {
        let first = points.iter().find(|q| q.store == p.store).unwrap_or(p);
        let largest = points
            .iter()
            .filter(|q| q.store == p.store)
            .map(|q| q.size)
            .max()
            == Some(p.size);
        for (mode, s, f) in [("rw", &p.rw, &first.rw), ("ro", &p.ro, &first.ro)] {
            let m =
                |v: &[Sample], g: fn(&Sample) -> f64| median(&v.iter().map(g).collect::<Vec<_>>());
            let ratios: Vec<f64> = s.iter().zip(&p.bare).map(|(a, b)| a.rps / b.rps).collect();
            let p50r = m(s, |x| x.p50_us) / m(f, |x| x.p50_us);
            let p99r = m(s, |x| x.p99_us) / m(f, |x| x.p99_us);
            let target = if largest && p.size != first.size {
                if p50r <= 1.5 && p99r <= 1.5 {
                    "met"
                } else {
                    "MISSED"
                }
            } else {
                "-"
            };
            out.push_str(&format!(
                "| {} | {} | {:.0} s | {mode} | {:.0} | {:.2} | {} | {} | {} | {p50r:.2} | {p99r:.2} | {target} |\n",
                p.store.name(),
                p.size,
                p.fill_secs,
                m(s, |x| x.rps),
                median(&ratios),
                fmt_us(m(s, |x| x.p50_us)),
                fmt_us(m(s, |x| x.p99_us)),
                s.iter().map(|x| x.errors).sum::<u64>(),
            ));
        }
    }
    out
}

fn purge_table(purges: &[Purge]) -> String {
    let mut out = String::from(
        "| store | live sessions | expired sessions | purge time | µs per expired session | not purged |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    for p in purges {
        out.push_str(&format!(
            "| {} | {} | {} | {:.2} s | {:.1} | {} |\n",
            p.store.name(),
            p.live,
            p.expired,
            p.secs,
            p.secs * 1e6 / p.expired as f64,
            p.left
        ));
    }
    out
}

fn memory_table(memory: &[Probe]) -> String {
    let mut out = String::from(
        "| MemoryStore sessions | RSS growth | bytes per session | slowest single create() | time in creates over 100 µs |\n\
         |---:|---:|---:|---:|---:|\n",
    );
    for p in memory {
        out.push_str(&format!(
            "| {} | {:.1} MiB | {:.0} | {} | {} |\n",
            p.n,
            p.bytes as f64 / 1048576.0,
            p.bytes as f64 / p.n as f64,
            fmt_us(p.slowest_us as f64),
            fmt_us(p.stalled_us as f64)
        ));
    }
    out
}

fn curves(points: &[Point], f: impl Fn(&[Sample]) -> f64) -> Vec<Series> {
    let mut stores: Vec<Store> = points.iter().map(|p| p.store).collect();
    stores.dedup();
    let mut out = Vec::new();
    for store in stores {
        let mine: Vec<&Point> = points.iter().filter(|p| p.store == store).collect();
        out.push(Series {
            name: format!("{} rw", store.name()),
            points: mine.iter().map(|p| (p.size as f64, f(&p.rw))).collect(),
        });
        out.push(Series {
            name: format!("{} ro", store.name()),
            points: mine.iter().map(|p| (p.size as f64, f(&p.ro))).collect(),
        });
    }
    out
}

fn write_charts(dir: &Path, points: &[Point], memory: &[Probe]) -> anyhow::Result<()> {
    let med = |v: &[Sample], g: fn(&Sample) -> f64| median(&v.iter().map(g).collect::<Vec<_>>());
    let rps = Chart {
        title: "Requests/s by sessions in the store".into(),
        x_label: "sessions in the store (log scale)".into(),
        y_label: "requests/s".into(),
        log_x: true,
        series: curves(points, |v| med(v, |s| s.rps)),
    };
    let p99 = Chart {
        title: "p99 latency by sessions in the store".into(),
        x_label: "sessions in the store (log scale)".into(),
        y_label: "p99 latency (ms)".into(),
        log_x: true,
        series: curves(points, |v| med(v, |s| s.p99_us) / 1e3),
    };
    let mem = Chart {
        title: "MemoryStore: resident memory growth".into(),
        x_label: "sessions".into(),
        y_label: "RSS growth (MiB)".into(),
        log_x: false,
        series: vec![Series {
            name: "MemoryStore".into(),
            points: memory
                .iter()
                .map(|p| (p.n as f64, p.bytes as f64 / 1048576.0))
                .collect(),
        }],
    };
    if !points.is_empty() {
        std::fs::write(dir.join("scale-rps.svg"), rps.render())?;
        std::fs::write(dir.join("scale-p99.svg"), p99.render())?;
    }
    if !memory.is_empty() {
        std::fs::write(dir.join("memory.svg"), mem.render())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_output_is_bytes_then_slowest_create_then_stalls() {
        assert_eq!(
            parse_probe(10, "1234 56 789\n").unwrap(),
            Probe {
                n: 10,
                bytes: 1234,
                slowest_us: 56,
                stalled_us: 789
            }
        );
        assert!(parse_probe(10, "1234 56").is_err());
    }

    #[test]
    fn database_name_is_replaced_in_the_url() {
        assert_eq!(
            replace_db("postgres://postgres@127.0.0.1:5432/test", "x").unwrap(),
            "postgres://postgres@127.0.0.1:5432/x"
        );
    }

    #[test]
    fn purge_table_reports_cost_per_expired_session() {
        let t = purge_table(&[Purge {
            store: Store::Redis,
            live: 10,
            expired: 1_000_000,
            secs: 20.0,
            left: 0,
        }]);
        assert!(
            t.ends_with("| redis | 10 | 1000000 | 20.00 s | 20.0 | 0 |\n"),
            "{t}"
        );
    }
}
