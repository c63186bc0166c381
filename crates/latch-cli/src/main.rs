//! `latch`: the command-line tool of the latch session library.
//!
//! | command | what it does |
//! |---|---|
//! | `latch keygen` | print a new secret key from the OS CSPRNG |
//! | `latch inspect` | verify or decrypt a latch session cookie and show what it holds |
//! | `latch audit` | grade `Set-Cookie` headers (live URLs, header files, HAR files) |
//! | `latch sessions` | list, show, revoke and purge sessions in a SQLite, Redis or PostgreSQL store |
//!
//! Errors go to standard error as `latch: ...` (or, with `--json`, to standard
//! output as `{"error": "..."}`); the exit codes are listed in [`exit`] and in
//! `latch --help`.

#![forbid(unsafe_code)]

mod audit;
mod cli;
mod exit;
mod inspect;
mod keygen;
mod progress;
mod runtime;
mod sessions;
mod timefmt;

use std::process::ExitCode;

fn main() -> ExitCode {
    let parsed = cli::parse();
    let json = parsed.cli.json_output();
    match cli::run(parsed) {
        Ok(status) => status.into(),
        Err(err) => exit::report(&err, json),
    }
}
