//! `chaos-demo`: the `latch-demo` binary, built inside this crate so that its
//! tests can start it (`CARGO_BIN_EXE_chaos-demo`; Cargo hands test binaries
//! the path of their own package's binaries only).
//!
//! Keep it identical to `crates/latch-demo/src/main.rs`: the same flags, the
//! same settings and the same `latch_demo::serve::run`, so the process the
//! tests kill and starve is the demo. Set `LATCH_DEMO_BIN` to run the tests
//! against a `latch-demo` built elsewhere instead.

use clap::Parser as _;
use latch_demo::config::{Args, Settings};

fn main() {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    if let Err(err) = run(&args) {
        eprintln!("latch-demo: {err:#}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let settings = Settings::from_args(args)?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.worker_threads {
        runtime.worker_threads(n.max(1));
    }
    runtime
        .enable_all()
        .build()?
        .block_on(latch_demo::serve::run(settings))
}
