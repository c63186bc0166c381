//! latch-bench: load benchmarks (wrk against axum on loopback), store scale
//! curves, and the ratios of criterion's micro-benchmarks. See
//! `docs/benchmarks.md` for the commands and results.

mod apps;
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

use clap::{Parser, Subcommand};

/// latch's benchmarks; every report gives ratios to a baseline measured in the
/// same run. See docs/benchmarks.md.
#[derive(Debug, Parser)]
#[command(name = "latch-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// wrk against axum on loopback: latch's configurations and the peers,
    /// each sample next to a bare-axum one.
    Load(load::LoadArgs),
    /// Store latency and throughput as the number of stored sessions grows;
    /// purge time; memory per session.
    Scale(scale::ScaleArgs),
    /// The ratios of criterion's micro-benchmarks (`cargo bench -p latch`).
    MicroReport(micro::MicroArgs),
    /// Requests through one configuration in this process (for callgrind).
    Inproc(inproc::InprocArgs),
    /// The child of `scale`'s memory measurement.
    #[command(hide = true)]
    MemProbe {
        /// Sessions to create.
        #[arg(default_value_t = 100_000)]
        n: u64,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Load(args) => {
            let plan = load::Plan::from_args(&args)?;
            let report = load::run(&plan)?;
            println!("{report}");
            if let Some(out) = &args.out {
                std::fs::write(out, &report)?;
            }
            Ok(())
        }
        Command::Scale(args) => {
            println!("{}", scale::run(&args)?);
            Ok(())
        }
        Command::MicroReport(args) => {
            println!("{}", micro::run(&args)?);
            Ok(())
        }
        Command::Inproc(args) => inproc::run(&args),
        Command::MemProbe { n } => scale::mem_probe(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_as_documented() {
        let cli = Cli::try_parse_from([
            "latch-bench",
            "load",
            "--modes",
            "rw,none",
            "--configs",
            "latch-memory",
            "--pairing",
            "block",
            "--duration",
            "4",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let Command::Load(args) = cli.command else {
            panic!("not load")
        };
        let plan = load::Plan::from_args(&args).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.modes.len(), 2);
        assert_eq!(plan.configs.len(), 2, "bare is always added");
        for bad in [
            &["latch-bench", "load", "--modes", "rx"][..],
            &["latch-bench", "load", "--reps", "0"],
            &["latch-bench", "scale", "--stores", "mysql"],
            &["latch-bench", "inproc"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?} accepted");
        }
    }
}
