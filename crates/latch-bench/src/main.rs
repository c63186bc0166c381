//! latch-bench: load benchmarks (wrk against axum on loopback), store scale
//! curves, and the ratios of criterion's micro-benchmarks. See
//! `docs/benchmarks.md` for the commands and results.

mod apps;
mod args;
mod backends;
mod fill;
mod httpc;
mod inproc;
mod load;
mod machine;
mod micro;
mod scale;
mod server;
mod stats;
mod svg;
mod wrk;

use anyhow::bail;

const USAGE: &str = "usage: latch-bench <command> [flags]
  load          [--duration S] [--reps N] [--modes rw,ro,new,none] [--configs a,b,..]
                [--connections C] [--ts-sqlite-bin PATH] [--redis-port P] [--out FILE]
  scale         [--sizes 10000,1000000,10000000] [--stores sqlite,postgres,redis]
                [--duration S] [--reps N] [--purge N] [--mem-sizes 100000,..] [--out-dir DIR]
  micro-report  [--criterion-dir DIR]
  inproc        --config NAME --mode rw|ro|new|none [--requests N]   (for callgrind)";

fn main() -> anyhow::Result<()> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = argv.split_first() else {
        bail!("{USAGE}");
    };
    match command.as_str() {
        "load" => {
            let args = args::Args::parse(rest, load::FLAGS)?;
            let plan = load::Plan::from_args(&args)?;
            let report = load::run(&plan)?;
            println!("{report}");
            if let Some(out) = args.raw("out") {
                std::fs::write(out, &report)?;
            }
            Ok(())
        }
        "scale" => {
            let args = args::Args::parse(rest, scale::FLAGS)?;
            println!("{}", scale::run(&args)?);
            Ok(())
        }
        "micro-report" => {
            let args = args::Args::parse(rest, micro::FLAGS)?;
            println!("{}", micro::run(&args)?);
            Ok(())
        }
        "inproc" => inproc::run(&args::Args::parse(rest, inproc::FLAGS)?),
        "mem-probe" => {
            let n: u64 = rest.first().map_or(Ok(100_000), |s| s.parse())?;
            scale::mem_probe(n)
        }
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command {other:?}\n{USAGE}"),
    }
}
