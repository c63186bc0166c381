//! Exit codes, and how errors are printed.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success; for `audit`: no finding at or above `--fail-on` |
//! | 1 | refused: the cookie is not authentic under any key given, or no such session |
//! | 2 | error (bad input, unreadable key, unreachable URL or store, unavailable feature) or usage error |
//! | 3 | `audit` found something at or above `--fail-on` |

use std::fmt;
use std::io::Write as _;
use std::process::ExitCode;

/// How a command that ran to completion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Exit code 0.
    Success,
    /// Exit code 2, the errors already reported in the command's own output
    /// (audit: some inputs failed, the others were audited).
    Failed,
    /// Exit code 3: audit findings at or above `--fail-on`.
    Findings,
}

impl From<Status> for ExitCode {
    fn from(status: Status) -> Self {
        match status {
            Status::Success => ExitCode::SUCCESS,
            Status::Failed => ExitCode::from(2),
            Status::Findings => ExitCode::from(3),
        }
    }
}

/// An error that is a negative answer rather than a failure: a cookie that is
/// not authentic, a session that does not exist. It exits with code 1; every
/// other error exits with 2.
#[derive(Debug)]
pub struct Refused(pub String);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// The exit code for `err`: 1 for a [`Refused`] anywhere in its chain, else 2.
pub fn code_for(err: &anyhow::Error) -> u8 {
    if err.chain().any(|cause| cause.is::<Refused>()) {
        1
    } else {
        2
    }
}

/// Print `err` (on stderr as `latch: ...`, or on stdout as `{"error": "..."}`
/// when `json`) and return its exit code.
pub fn report(err: &anyhow::Error, json: bool) -> ExitCode {
    let message = format!("{err:#}");
    if json {
        let body = serde_json::json!({ "error": message });
        // A closed stdout leaves nothing to report to: the exit code still tells.
        let _ = writeln!(std::io::stdout(), "{body}");
    } else {
        eprintln!("latch: {message}");
    }
    ExitCode::from(code_for(err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_exit_1_even_with_context_and_others_exit_2() {
        let refused = anyhow::Error::new(Refused("no".into())).context("inspecting");
        assert_eq!(code_for(&refused), 1);
        assert_eq!(code_for(&anyhow::anyhow!("disk on fire")), 2);
    }
}
