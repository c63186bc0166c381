//! `latch-bench inproc`: N requests through a configuration's router in this
//! process, with no sockets and no HTTP parsing, on a current-thread runtime, so
//! that `valgrind --tool=callgrind` counts only the session layer's work (and
//! axum's routing), compared with bare axum.

use std::time::Instant;

use anyhow::bail;
use axum::body::Body;
use axum::http::{Request, header};
use tower::ServiceExt as _;

use crate::apps::{self, Config, Env};
use crate::backends::{self, TempDir};
use crate::load::Mode;

/// The flags of `latch-bench inproc`.
#[derive(Debug, clap::Args)]
pub struct InprocArgs {
    /// The configuration to run (as `load --configs` names them).
    #[arg(long, value_parser = Config::parse)]
    config: Config,
    /// The request mode.
    #[arg(long, default_value = "rw", value_parser = Mode::parse)]
    mode: Mode,
    /// Requests sent.
    #[arg(long, default_value_t = 20_000)]
    requests: u64,
    /// Print the status and headers of the first answer (to compare what
    /// each configuration sends over the wire).
    #[arg(long)]
    show: bool,
}

/// Run `--requests` requests of `--mode` through `--config`.
///
/// # Errors
/// For unknown names, store set-up failures or a non-200 answer.
pub fn run(args: &InprocArgs) -> anyhow::Result<()> {
    let (config, mode, n) = (args.config, args.mode, args.requests);
    if config == Config::TsSqlite {
        bail!("inproc cannot run ts-sqlite: it is a separate program (see docs/benchmarks.md)");
    }
    let tmp = TempDir::new("inproc")?;
    let env = Env {
        // Redis configurations use the shared server (instruction counts
        // cover this process only, so the server's own work is not in them).
        redis_url: std::env::var("LATCH_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned()),
        // No TLS port on the shared server: latch-redis-tls is for `load`.
        redis_tls_url: String::new(),
        postgres_url: backends::postgres_url(),
        pg_schema: format!("latch_bench_inproc_{}", std::process::id()),
        dir: tmp.0.clone(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        // Routes made ready once, as `axum::serve` does for each connection
        // (`Router::with_state`). Without it, a router whose handlers have no
        // state of their own turns each handler into a route again, layers
        // included, on every request: work the load benchmark's server does
        // once per connection, and which the configurations that call
        // `with_state` themselves (the jars, the floors) never paid here.
        let app = apps::router(config, &env, 0).await?.with_state(());
        let cookie = if mode == Mode::New {
            None
        } else {
            let res = app.clone().oneshot(get("/rw", None)).await?;
            res.headers()
                .get(header::SET_COOKIE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .map(str::to_owned)
                // Bare axum sets no cookie: send it the same stand-in as the
                // load benchmark, so both parse a header of the same size.
                .or_else(|| Some(crate::load::BARE_COOKIE.to_owned()))
        };
        if args.show {
            let res = app
                .clone()
                .oneshot(get(mode.path(), cookie.as_deref()))
                .await?;
            println!("{}", res.status());
            for (name, value) in res.headers() {
                println!("{name}: {}", String::from_utf8_lossy(value.as_bytes()));
            }
        }
        let t = Instant::now();
        for _ in 0..n {
            let res = app
                .clone()
                .oneshot(get(mode.path(), cookie.as_deref()))
                .await?;
            if !res.status().is_success() {
                bail!("answered {}", res.status());
            }
            axum::body::to_bytes(res.into_body(), 1 << 16).await?;
        }
        let secs = t.elapsed().as_secs_f64();
        // Never dropped: freeing every session a `new` run stored in memory
        // would count towards the run's CPU time (it grows with the number of
        // requests, so the difference of two runs keeps it), and a serving
        // process never pays it.
        std::mem::forget(app);
        eprintln!(
            "{} {}: {n} requests in {secs:.3} s ({:.0}/s)",
            config.name(),
            mode.name(),
            n as f64 / secs
        );
        anyhow::Ok(())
    })?;
    if config == Config::LatchPostgres {
        rt.block_on(backends::drop_schema(&env.postgres_url, &env.pg_schema))?;
    }
    Ok(())
}

fn get(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut req = Request::get(path);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    // OK because the path and cookie come from this program and are valid.
    req.body(Body::empty()).expect("a valid request")
}
