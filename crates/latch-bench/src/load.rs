//! `latch-bench load`: every configuration under wrk, interleaved repetitions,
//! ratios to bare axum measured in the same repetition.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::apps::{Config, Env};
use crate::backends::{self, PrivateRedis, TempDir};
use crate::httpc;
use crate::server::Server;
use crate::stats::{self, Row, Verdict};
use crate::wrk::{self, Cookies, Sample};

/// Samples by mode, then by configuration.
type Grid = Vec<Vec<Vec<Sample>>>;

/// What the handler does, and whether wrk sends a cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Same session on every request: read the counter, add one, write it.
    ReadWrite,
    /// As `ReadWrite`, each request picking one of 256 sessions at random, so
    /// concurrent requests rarely share a session.
    ReadWriteSpread,
    /// Same session on every request: read the counter.
    ReadOnly,
    /// No cookie sent: every request writes into a new session.
    New,
    /// Cookie sent, the handler never touches the session.
    Untouched,
}

impl Mode {
    /// Every mode, in table order.
    pub const ALL: [Mode; 5] = [
        Mode::ReadWrite,
        Mode::ReadWriteSpread,
        Mode::ReadOnly,
        Mode::New,
        Mode::Untouched,
    ];

    /// The command-line and table name.
    pub fn name(self) -> &'static str {
        match self {
            Mode::ReadWrite => "rw",
            Mode::ReadWriteSpread => "rw256",
            Mode::ReadOnly => "ro",
            Mode::New => "new",
            Mode::Untouched => "none",
        }
    }

    /// Parse a name from [`Mode::name`].
    ///
    /// # Errors
    /// For an unknown name.
    pub fn parse(name: &str) -> anyhow::Result<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .with_context(|| format!("unknown mode {name:?}; known: rw,rw256,ro,new,none"))
    }

    /// The route wrk requests.
    pub fn path(self) -> &'static str {
        match self {
            Mode::ReadWrite | Mode::ReadWriteSpread | Mode::New => "/rw",
            Mode::ReadOnly => "/ro",
            Mode::Untouched => "/none",
        }
    }

    fn sends_cookie(self) -> bool {
        self != Mode::New
    }
}

/// Settings of one load run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Seconds of wrk per cell.
    pub duration: Duration,
    /// Interleaved repetitions.
    pub reps: usize,
    /// wrk connections.
    pub connections: u32,
    /// Modes to run.
    pub modes: Vec<Mode>,
    /// Configurations to run (bare is added when missing: it is the baseline).
    pub configs: Vec<Config>,
    /// The tower-sessions SQLite peer binary.
    pub ts_sqlite_bin: PathBuf,
    /// Port of the private redis-server.
    pub redis_port: u16,
    /// How bare axum is interleaved with the other configurations.
    pub pairing: Pairing,
}

/// How the bare baseline is interleaved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pairing {
    /// `for rep { for mode { for config != bare { bare; config } } }`: every
    /// sample has its own bare sample measured just before or after it (the
    /// order alternates between repetitions). Robust when the machine's load
    /// changes within a minute.
    Adjacent,
    /// `for rep { for mode { for config } }`, bare being the first configuration.
    Block,
}

impl Pairing {
    fn parse(name: &str) -> anyhow::Result<Self> {
        match name {
            "adjacent" => Ok(Pairing::Adjacent),
            "block" => Ok(Pairing::Block),
            other => bail!("unknown pairing {other:?}: use adjacent or block"),
        }
    }
}

/// The flags of `latch-bench load`.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Seconds each sample runs.
    #[arg(long, default_value_t = 2)]
    duration: u64,
    /// Repetitions of every (mode, configuration) pair.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    reps: u64,
    /// Request modes (rw, rw256, ro, new, none; default: all).
    #[arg(long, value_delimiter = ',', value_parser = Mode::parse)]
    modes: Vec<Mode>,
    /// Configurations (default: all); bare axum is always measured.
    #[arg(long, value_delimiter = ',', value_parser = Config::parse)]
    configs: Vec<Config>,
    /// wrk connections.
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// The tower-sessions SQLite peer binary (default:
    /// `$CARGO_TARGET_DIR/release/ts-sqlite-peer`).
    #[arg(long)]
    ts_sqlite_bin: Option<PathBuf>,
    /// Port of the private redis-server the benchmark starts.
    #[arg(long, default_value_t = 16_379)]
    redis_port: u16,
    /// Also write the report to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// How bare-axum samples are interleaved: `adjacent` (each sample next to
    /// its own bare one) or `block`.
    #[arg(long, default_value = "adjacent", value_parser = Pairing::parse)]
    pairing: Pairing,
}

/// Where `cargo build --release --manifest-path crates/latch-bench/peers/ts-sqlite/Cargo.toml`
/// puts the peer binary.
pub fn default_peer_bin() -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    target.join("release").join("ts-sqlite-peer")
}

impl Plan {
    /// Read the flags.
    ///
    /// # Errors
    /// For malformed flags.
    pub fn from_args(args: &LoadArgs) -> anyhow::Result<Self> {
        let mut configs = if args.configs.is_empty() {
            Config::ALL.to_vec()
        } else {
            args.configs.clone()
        };
        if !configs.contains(&Config::Bare) {
            configs.insert(0, Config::Bare);
        }
        Ok(Self {
            duration: Duration::from_secs(args.duration),
            reps: usize::try_from(args.reps)?,
            connections: args.connections,
            modes: if args.modes.is_empty() {
                Mode::ALL.to_vec()
            } else {
                args.modes.clone()
            },
            configs,
            ts_sqlite_bin: args.ts_sqlite_bin.clone().unwrap_or_else(default_peer_bin),
            redis_port: args.redis_port,
            pairing: args.pairing,
        })
    }
}

/// Sessions the `rw256` mode spreads its requests over.
const SPREAD: usize = 256;

/// A stand-in cookie for bare axum, the size of a latch session cookie, so
/// every configuration parses a request of about the same size.
pub(crate) const BARE_COOKIE: &str = "session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// Run the plan; returns the Markdown report.
///
/// # Errors
/// When a backend cannot be set up; a failing cell is reported and skipped.
pub fn run(plan: &Plan) -> anyhow::Result<String> {
    crate::wrk::check_installed()?;
    let tmp = TempDir::new("load")?;
    let redis = if plan.configs.iter().any(|c| c.needs_redis()) {
        Some(PrivateRedis::start(plan.redis_port)?)
    } else {
        None
    };
    let env = Env {
        redis_url: redis.as_ref().map(PrivateRedis::url).unwrap_or_default(),
        redis_tls_url: redis
            .as_ref()
            .map(PrivateRedis::tls_url)
            .unwrap_or_default(),
        postgres_url: backends::postgres_url(),
        pg_schema: format!("latch_bench_load_{}", std::process::id()),
        dir: tmp.0.clone(),
    };
    if plan.configs.contains(&Config::TsSqlite) && !plan.ts_sqlite_bin.exists() {
        bail!(
            "{} is missing: build the tower-sessions SQLite peer first with \
             `cargo build --release --manifest-path crates/latch-bench/peers/ts-sqlite/Cargo.toml` \
             (same CARGO_TARGET_DIR), or leave ts-sqlite out of --configs",
            plan.ts_sqlite_bin.display()
        );
    }
    let start_load = crate::machine::describe();
    let grid = || -> Grid { vec![vec![Vec::new(); plan.configs.len()]; plan.modes.len()] };
    // samples[mode][config]; baselines[mode][config] holds the bare samples
    // each of that configuration's samples is compared with.
    let (mut samples, mut baselines) = (grid(), grid());
    let bare = plan
        .configs
        .iter()
        .position(|&c| c == Config::Bare)
        .unwrap_or(0);
    let mut cell = 0usize;
    let others = plan.configs.len() - 1;
    let total = plan.reps
        * plan.modes.len()
        * match plan.pairing {
            Pairing::Adjacent => 2 * others,
            Pairing::Block => others + 1,
        };
    let mut one = |rep: usize, mode: Mode, config: Config| {
        cell += 1;
        let sample = measure(plan, &env, config, mode, cell).unwrap_or_else(|e| {
            eprintln!("  {} {}: FAILED: {e:#}", config.name(), mode.name());
            Sample {
                rps: f64::NAN,
                p50_us: f64::NAN,
                p99_us: f64::NAN,
                errors: 0,
                requests: 0,
                cpu_us: f64::NAN,
            }
        });
        eprintln!(
            "[{cell}/{total}] rep {} {:>5} {:<20} {:>9.0} req/s  p50 {:>9}  p99 {:>9}  errors {}",
            rep + 1,
            mode.name(),
            config.name(),
            sample.rps,
            stats::fmt_us(sample.p50_us),
            stats::fmt_us(sample.p99_us),
            sample.errors
        );
        sample
    };
    for rep in 0..plan.reps {
        for (mi, &mode) in plan.modes.iter().enumerate() {
            match plan.pairing {
                Pairing::Block => {
                    let row: Vec<Sample> =
                        plan.configs.iter().map(|&c| one(rep, mode, c)).collect();
                    for (ci, s) in row.iter().enumerate() {
                        samples[mi][ci].push(*s);
                        baselines[mi][ci].push(row[bare]);
                    }
                }
                Pairing::Adjacent => {
                    for (ci, &config) in plan.configs.iter().enumerate() {
                        if ci == bare {
                            continue;
                        }
                        // Alternate which of the pair runs first, so a trend in
                        // the machine's load favours neither.
                        let (b, s) = if rep % 2 == 0 {
                            let b = one(rep, mode, Config::Bare);
                            (b, one(rep, mode, config))
                        } else {
                            let s = one(rep, mode, config);
                            (one(rep, mode, Config::Bare), s)
                        };
                        samples[mi][ci].push(s);
                        baselines[mi][ci].push(b);
                        samples[mi][bare].push(b);
                        baselines[mi][bare].push(b);
                    }
                }
            }
        }
    }
    if plan.configs.contains(&Config::LatchPostgres) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        if let Err(e) = rt.block_on(backends::drop_schema(&env.postgres_url, &env.pg_schema)) {
            eprintln!("warning: could not drop schema {}: {e:#}", env.pg_schema);
        }
    }
    drop(redis);
    let rows = rows(plan, &samples, &baselines);
    let mut report = format!(
        "{}\nat start: {start_load}\nat end:   {}\n\n",
        command_line(plan),
        crate::machine::describe()
    );
    report.push_str(&stats::table(&rows, |r| verdict(r, &rows)));
    Ok(report)
}

fn command_line(plan: &Plan) -> String {
    format!(
        "load: wrk -t1 -c{} --latency, {} s per cell, {} interleaved repetitions, order {}, \
         server: tokio runtime with 1 worker thread",
        plan.connections,
        plan.duration.as_secs(),
        plan.reps,
        match plan.pairing {
            Pairing::Adjacent =>
                "for rep { for mode { for config { bare; config } } } (pair order alternating)",
            Pairing::Block => "for rep { for mode { for config } }",
        }
    )
}

fn rows(plan: &Plan, samples: &[Vec<Vec<Sample>>], baselines: &[Vec<Vec<Sample>>]) -> Vec<Row> {
    let mut rows = Vec::new();
    for (mi, mode) in plan.modes.iter().enumerate() {
        for (ci, config) in plan.configs.iter().enumerate() {
            rows.push(Row {
                config: config.name().to_owned(),
                mode: mode.name().to_owned(),
                samples: samples[mi][ci].clone(),
                baseline: baselines[mi][ci].clone(),
            });
        }
    }
    rows
}

/// The per-request cost targets (issue 15), as ratios measured in the same
/// run: with the session unused, at least 0.97 of bare (or within 10 % of
/// the empty layer, its floor); otherwise at or
/// ahead of the peer doing the same job, each relative to its own bare
/// baseline and compared repetition by repetition.
pub fn verdict(row: &Row, rows: &[Row]) -> Option<Verdict> {
    if !row.config.starts_with("latch-") {
        return None;
    }
    let norm = |r: &Row, of: fn(&Sample) -> f64| -> Vec<f64> {
        let a: Vec<f64> = r.samples.iter().map(of).collect();
        let b: Vec<f64> = r.baseline.iter().map(of).collect();
        stats::paired_ratios(&a, &b)
    };
    let compare = |name: &str, of: fn(&Sample) -> f64| -> Option<f64> {
        let other = rows
            .iter()
            .find(|r| r.config == name && r.mode == row.mode)?;
        Some(stats::median(&stats::paired_ratios(
            &norm(row, of),
            &norm(other, of),
        )))
    };
    let against = |name: &str| compare(name, |s| s.rps);
    if row.mode == "none" {
        // The floor of an untouched session is a layer that only passes the
        // request on (`bare-layer`). On this machine that empty layer's own
        // cell moves by more than the 3 % the target allows, so the issue's
        // fallback, within 10 % of the floor in the same run, stands beside it.
        let mut verdict = Verdict {
            target: "≥0.97".into(),
            met: row.ratio() >= 0.97,
        };
        if let Some(to_floor) = against("bare-layer") {
            verdict
                .target
                .push_str(&format!(" or ≥0.9x bare-layer (is {to_floor:.2}x)"));
            verdict.met |= to_floor >= 0.9;
        }
        return Some(verdict);
    }
    let (peer, at_least) = match row.config.as_str() {
        "latch-signed" => ("extra-signed", 1.0),
        "latch-encrypted" | "latch-encrypted-gcm" => ("extra-private", 1.0),
        "latch-memory" => ("ts-memory", 1.0),
        "latch-redis" => ("ts-redis", 1.0),
        // Read-mostly is what the read cache is for.
        "latch-redis-cached" if row.mode == "ro" => ("ts-redis", 1.5),
        "latch-redis-cached" => ("ts-redis", 1.0),
        "latch-sqlite" => ("ts-sqlite", 1.5),
        _ => return None,
    };
    let ratio = against(peer)?;
    let mut verdict = Verdict {
        target: format!("≥{at_least}x {peer} (is {ratio:.2}x"),
        met: ratio >= at_least,
    };
    // Server CPU per request against the peer's, each over its own bare:
    // below 1 is cheaper. Shown beside the throughput verdict, which is the
    // issue's measure, because it barely moves with the machine's load.
    if let Some(cpu) = compare(peer, |s| s.cpu_us).filter(|c| !c.is_nan()) {
        verdict.target.push_str(&format!("; CPU/request {cpu:.2}x"));
    }
    verdict.target.push(')');
    // A configuration behind its peer is judged against its floor too: the
    // issue's fallback, within 10 % of doing only what latch must (for a
    // server-side store: what the store itself must do, without the engine).
    let floor = match row.config.as_str() {
        "latch-signed" => Some("floor-signed"),
        "latch-encrypted" => Some("floor-encrypted"),
        "latch-encrypted-gcm" => Some("floor-encrypted-gcm"),
        "latch-memory" => Some("floor-memory"),
        "latch-redis" => Some("floor-redis"),
        "latch-sqlite" => Some("floor-sqlite"),
        // The read cache's `ro` target is about beating a round trip: no floor.
        "latch-redis-cached" if row.mode != "ro" => Some("floor-redis"),
        _ => None,
    };
    if let Some((floor, to_floor)) = floor.and_then(|f| Some((f, against(f)?))) {
        verdict
            .target
            .push_str(&format!(" or ≥0.9x {floor} (is {to_floor:.2}x)"));
        verdict.met |= to_floor >= 0.9;
    }
    if row.config == "latch-memory" {
        verdict.target.push_str(", p99 ≤2x");
        verdict.met &= row.p99_ratio() <= 2.0;
    }
    Some(verdict)
}

fn measure(
    plan: &Plan,
    env: &Env,
    config: Config,
    mode: Mode,
    cell: usize,
) -> anyhow::Result<Sample> {
    let db = env.dir.join(format!("ts-{cell}.db"));
    let server = if config == Config::TsSqlite {
        Server::start_child(&plan.ts_sqlite_bin, &db)?
    } else {
        Server::start(config, env, cell)?
    };
    let cookie = if !mode.sends_cookie() || mode == Mode::ReadWriteSpread {
        None
    } else if matches!(config, Config::Bare | Config::BareLayer) {
        Some(BARE_COOKIE.to_owned())
    } else {
        let (status, cookie) = httpc::get(server.addr, "/rw", None)?;
        if status != 200 {
            bail!("setting up the session answered {status}");
        }
        Some(cookie.context("no Set-Cookie when setting up the session")?)
    };
    let script = env.dir.join(format!("cookies-{cell}.lua"));
    let cookies = if mode == Mode::ReadWriteSpread {
        spread_cookies(
            server.addr,
            config,
            &env.dir.join(format!("cookies-{cell}.txt")),
            &script,
        )?
    } else {
        cookie.as_deref().map_or(Cookies::None, Cookies::Same)
    };
    // Where /proc cannot be read (not Linux), the column reads "-" and the
    // cell still counts: CPU time is extra information, not the measure.
    let cpu_now = || crate::machine::cpu_time(server.pid()).ok();
    let cpu_before = cpu_now();
    let sample = wrk::run(
        &server.url(mode.path()),
        &cookies,
        plan.duration,
        plan.connections,
    )
    .map(|mut sample| {
        // Lossless for any count a run can reach (< 2^53).
        #[allow(clippy::cast_precision_loss)]
        let requests = sample.requests.max(1) as f64;
        sample.cpu_us = match (cpu_before, cpu_now()) {
            (Some(before), Some(after)) => (after - before).as_secs_f64() * 1e6 / requests,
            _ => f64::NAN,
        };
        sample
    });
    drop(server);
    backends::remove_sqlite(&env.dir.join(format!("latch-{cell}.db")));
    backends::remove_sqlite(&db);
    sample
}

/// Make [`SPREAD`] sessions and a wrk script that picks one per request.
fn spread_cookies<'a>(
    addr: std::net::SocketAddr,
    config: Config,
    list: &Path,
    script: &'a Path,
) -> anyhow::Result<Cookies<'a>> {
    let mut lines = Vec::with_capacity(SPREAD);
    for _ in 0..SPREAD {
        lines.push(match config {
            Config::Bare | Config::BareLayer => BARE_COOKIE.to_owned(),
            _ => httpc::get(addr, "/rw", None)?
                .1
                .context("no Set-Cookie when setting up a session")?,
        });
    }
    std::fs::write(list, lines.join("\n") + "\n")?;
    std::fs::write(script, wrk::cookie_script(list))?;
    Ok(Cookies::Script(script))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(config: &str, mode: &str, rps: f64, p99: f64, base_rps: f64) -> Row {
        let s = |rps, p99_us| Sample {
            rps,
            p50_us: 1.0,
            p99_us,
            errors: 0,
            requests: 0,
            cpu_us: 1e6 / rps,
        };
        Row {
            config: config.into(),
            mode: mode.into(),
            samples: vec![s(rps, p99)],
            baseline: vec![s(base_rps, 100.0)],
        }
    }

    #[test]
    fn cookie_rows_are_judged_against_the_axum_extra_jar() {
        let fast = row("latch-signed", "rw", 95.0, 150.0, 100.0);
        let slow = row("latch-encrypted", "rw", 80.0, 150.0, 100.0);
        let signed = row("extra-signed", "rw", 90.0, 150.0, 100.0);
        let private = row("extra-private", "rw", 85.0, 150.0, 100.0);
        let rows = vec![fast.clone(), slow.clone(), signed, private];
        assert_eq!(
            verdict(&fast, &rows).unwrap().cell(),
            "≥1x extra-signed (is 1.06x; CPU/request 0.95x): met"
        );
        assert_eq!(
            verdict(&slow, &rows).unwrap().cell(),
            "≥1x extra-private (is 0.94x; CPU/request 1.06x): MISSED"
        );
    }

    #[test]
    fn a_cookie_row_behind_its_peer_is_met_within_ten_percent_of_its_floor() {
        let latch = row("latch-signed", "new", 80.0, 150.0, 100.0);
        let peer = row("extra-signed", "new", 90.0, 150.0, 100.0);
        let floor = row("floor-signed", "new", 85.0, 150.0, 100.0);
        let v = verdict(&latch, &[latch.clone(), peer.clone(), floor]).unwrap();
        assert_eq!(
            v.cell(),
            "≥1x extra-signed (is 0.89x; CPU/request 1.12x) or ≥0.9x floor-signed (is 0.94x): met"
        );
        let far = row("floor-signed", "new", 95.0, 150.0, 100.0);
        assert!(!verdict(&latch, &[latch.clone(), peer, far]).unwrap().met);
    }

    #[test]
    fn memory_rows_also_need_their_p99_within_twice_bare() {
        let slow_tail = row("latch-memory", "rw", 95.0, 250.0, 100.0);
        let peer = row("ts-memory", "rw", 90.0, 150.0, 100.0);
        let v = verdict(&slow_tail, &[slow_tail.clone(), peer]).unwrap();
        assert_eq!(
            v.target,
            "≥1x ts-memory (is 1.06x; CPU/request 0.95x), p99 ≤2x"
        );
        assert!(!v.met);
    }

    #[test]
    fn untouched_mode_needs_ninety_seven_percent() {
        let r = row("latch-redis", "none", 96.0, 100.0, 100.0);
        let v = verdict(&r, std::slice::from_ref(&r)).unwrap();
        assert_eq!(v.target, "≥0.97");
        assert!(!v.met);
        assert!(verdict(&row("bare-layer", "none", 99.0, 1.0, 100.0), &[]).is_none());
    }

    #[test]
    fn untouched_mode_falls_back_to_the_empty_layer_of_the_same_run() {
        let r = row("latch-redis", "none", 90.0, 100.0, 100.0);
        let near = row("bare-layer", "none", 95.0, 100.0, 100.0);
        let v = verdict(&r, &[r.clone(), near]).unwrap();
        assert_eq!(v.cell(), "≥0.97 or ≥0.9x bare-layer (is 0.95x): met");
        let far = row("bare-layer", "none", 99.0, 100.0, 100.0);
        let v = verdict(&r, &[r.clone(), far]).unwrap();
        assert_eq!(v.cell(), "≥0.97 or ≥0.9x bare-layer (is 0.91x): met");
        let farther = row("bare-layer", "none", 99.0, 100.0, 100.0);
        let slow = row("latch-redis", "none", 85.0, 100.0, 100.0);
        assert!(!verdict(&slow, &[slow.clone(), farther]).unwrap().met);
    }

    #[test]
    fn store_rows_are_judged_against_their_peer_in_the_same_mode() {
        let latch = row("latch-sqlite", "rw", 300.0, 1.0, 1000.0);
        let peer = row("ts-sqlite", "rw", 180.0, 1.0, 1000.0);
        let other_mode = row("ts-sqlite", "ro", 100.0, 1.0, 1000.0);
        let v = verdict(&latch, &[latch.clone(), other_mode, peer]).unwrap();
        assert_eq!(
            v.cell(),
            "≥1.5x ts-sqlite (is 1.67x; CPU/request 0.60x): met"
        );
        assert!(verdict(&row("ts-memory", "rw", 1.0, 1.0, 1.0), &[]).is_none());
        let cached = row("latch-redis-cached", "ro", 140.0, 1.0, 1000.0);
        let ts = row("ts-redis", "ro", 100.0, 1.0, 1000.0);
        let v = verdict(&cached, &[cached.clone(), ts]).unwrap();
        assert_eq!(
            v.cell(),
            "≥1.5x ts-redis (is 1.40x; CPU/request 0.71x): MISSED"
        );
    }

    #[test]
    fn modes_round_trip() {
        for m in Mode::ALL {
            assert_eq!(Mode::parse(m.name()).unwrap(), m);
        }
        assert!(!Mode::New.sends_cookie());
        assert_eq!(Mode::New.path(), "/rw");
    }
}
