//! The command line: the root command, its help text and the dispatch to each
//! subcommand.

use clap::{ArgMatches, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

use crate::exit::Status;
use crate::{audit, inspect, keygen, sessions};

/// Shown after the subcommand list of `latch --help`.
const ROOT_AFTER_HELP: &str = "\
Examples:
  latch keygen --format env >> .env
  latch inspect --secret-env LATCH_SECRET_KEY '__Host-session=AQAAAABn...'
  latch audit https://example.com/login --fail-on high
  latch sessions --store sqlite:sessions.db stats

Exit codes:
  0  success; for audit: no finding at or above --fail-on
  1  refused: inspect found the cookie not authentic under any key given, or
     sessions show/revoke found no such session
  2  error: bad arguments or input, unreadable key or file, unreachable URL or
     store
  3  audit: a finding at or above the --fail-on severity

Errors are printed on standard error as `latch: ...`; with --json they are
printed on standard output as {\"error\": \"...\"}, with the same exit code.";

/// latch: secret keys, session cookies and session stores from the command line.
#[derive(Debug, Parser)]
#[command(name = "latch", version, after_help = ROOT_AFTER_HELP)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a new random secret key for LATCH_SECRET_KEY.
    Keygen(keygen::Args),
    /// Verify (or decrypt) a latch session cookie and show what it holds.
    Inspect(inspect::Args),
    /// Grade Set-Cookie headers against best practice (URLs, header files, HAR).
    Audit(audit::Args),
    /// List, show, revoke and purge sessions in a session store.
    Sessions(sessions::Args),
}

impl Cli {
    /// Whether errors must be printed as JSON on standard output.
    pub fn json_output(&self) -> bool {
        match &self.command {
            Command::Keygen(_) => false,
            Command::Inspect(args) => args.json,
            Command::Audit(args) => args.json,
            Command::Sessions(args) => args.json,
        }
    }
}

/// The parsed command line, with clap's raw matches kept for what derive
/// cannot tell: the order of repeated options across two flags.
#[derive(Debug)]
pub struct Parsed {
    /// The typed arguments.
    pub cli: Cli,
    /// The raw matches they came from.
    pub matches: ArgMatches,
}

/// Parse the process's arguments; on a usage error clap prints it and exits 2.
pub fn parse() -> Parsed {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    Parsed { cli, matches }
}

/// Run the chosen subcommand.
///
/// # Errors
/// Whatever the subcommand reports; [`crate::exit::report`] prints it.
pub fn run(parsed: Parsed) -> anyhow::Result<Status> {
    let sub = parsed.matches.subcommand().map(|(_, m)| m);
    match parsed.cli.command {
        Command::Keygen(args) => keygen::run(&args),
        Command::Inspect(args) => inspect::run(&args, sub),
        Command::Audit(args) => audit::run(&args),
        Command::Sessions(args) => sessions::run(&args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
