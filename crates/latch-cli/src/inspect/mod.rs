//! `latch inspect`: verify or decrypt a latch session cookie and show what it
//! holds, when it was issued and whether it has expired.
//!
//! The steps, one file each: [`input`] reads the cookie, [`keys`] loads the keys
//! in command-line order, [`kind`] turns them into the cookie formats to try (the
//! one place where other formats, such as Flask's, are wired in), and [`report`]
//! works out the expiry and prints.

mod input;
mod keys;
mod kind;
mod report;

use std::path::PathBuf;

use clap::ArgMatches;
use latch::Expiry;
use latch::codec::DecodedCookie;

use crate::exit::{Refused, Status};
use kind::{Candidate, Kind};

/// Verify or decrypt a latch session cookie and show what it holds.
///
/// The cookie is checked with every key given, current key first. An authentic
/// but expired cookie is still shown, marked expired; a cookie that is not
/// authentic under any key is refused (exit code 1). Nothing is sent anywhere.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  latch inspect --secret-env LATCH_SECRET_KEY 'AQAAAABpJq...'
  latch inspect --secret-file new.key --secret-file old.key '__Host-session=AQAAAABpJq...'
  pbpaste | latch inspect --kind encrypted --json -
  latch inspect --name app_session --idle 900 --absolute 28800 'AgW3...'

Keys: each --secret-env / --secret-file adds one key, in the order given: the first
is the current key, the others previous keys (key index 1, 2, ...). Without any,
LATCH_SECRET_KEY is read. Keys are loaded as latch loads them, so a weak key is
refused here too.

The cookie name is bound into the signature, so a cookie only verifies under its
own name: give `name=value`, or the bare value and --name (default __Host-session).")]
pub struct Args {
    /// The cookie value, `name=value` (a pasted `Set-Cookie:` line works too), or
    /// `-` to read it from standard input.
    #[arg(value_name = "COOKIE", allow_hyphen_values = true)]
    pub cookie: String,

    /// An environment variable holding a key; repeat for previous keys.
    #[arg(long = "secret-env", value_name = "VAR")]
    pub secret_env: Vec<String>,

    /// A file holding a key; repeat for previous keys.
    #[arg(long = "secret-file", value_name = "FILE")]
    pub secret_file: Vec<PathBuf>,

    /// The kind of cookie; `auto` tries every latch kind.
    #[arg(long, value_enum, default_value_t = Kind::Auto)]
    pub kind: Kind,

    /// The cookie name, when COOKIE is a bare value [default: __Host-session, or
    /// session for --kind flask].
    #[arg(long)]
    pub name: Option<String>,

    /// Idle timeout in seconds (latch's default: 30 minutes).
    #[arg(long, value_name = "SECONDS", default_value_t = 30 * 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub idle: u64,

    /// Absolute timeout in seconds (latch's default: 12 hours).
    #[arg(long, value_name = "SECONDS", default_value_t = 12 * 3600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub absolute: u64,

    /// Idle timeout of remember-me sessions in seconds (latch's default: 7 days).
    #[arg(long, value_name = "SECONDS", default_value_t = 7 * 86_400,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub remember_idle: u64,

    /// Absolute timeout of remember-me sessions in seconds (latch's default: 30 days).
    #[arg(long, value_name = "SECONDS", default_value_t = 30 * 86_400,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub remember_absolute: u64,

    /// For --kind flask: Flask's PERMANENT_SESSION_LIFETIME in seconds (default 31
    /// days); a cookie older than this is expired, as Flask judges it.
    #[arg(long, value_name = "SECONDS", default_value_t = 31 * 86_400,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_age: u64,

    /// Print the result (or the error) as JSON on standard output.
    #[arg(long)]
    pub json: bool,
}

impl Args {
    /// The expiry policy the cookie is judged under.
    fn expiry(&self) -> anyhow::Result<Expiry> {
        use std::time::Duration;
        if self.kind == kind::Kind::Flask {
            return Ok(latch_flask::flask_expiry(Duration::from_secs(
                self.max_age,
            ))?);
        }
        Ok(Expiry::default()
            .idle(Duration::from_secs(self.idle))
            .absolute(Duration::from_secs(self.absolute))
            .remember_idle(Duration::from_secs(self.remember_idle))
            .remember_absolute(Duration::from_secs(self.remember_absolute)))
    }
}

/// Run `latch inspect`; `matches` are this subcommand's raw matches, which give
/// the order of the key options.
///
/// # Errors
/// [`Refused`] when the cookie is not authentic; any other error for unreadable
/// or weak keys, or a bad cookie argument.
pub fn run(args: &Args, matches: Option<&ArgMatches>) -> anyhow::Result<Status> {
    let sources = keys::ordered(args, matches);
    let candidates = kind::candidates(args.kind, &sources)?;
    let cookie = input::read(&args.cookie, args.name.as_deref(), args.kind)?;
    let (kind, decoded) = open(&candidates, &cookie, sources.len())?;
    let report = report::Report::new(
        &cookie.name,
        kind,
        &decoded,
        &sources,
        &args.expiry()?,
        latch::Clock::now(&latch::SystemClock),
    );
    report.print(args.json)?;
    Ok(Status::Success)
}

/// Try each candidate format in turn; the first that accepts the value wins.
fn open(
    candidates: &[Candidate],
    cookie: &input::CookieInput,
    key_count: usize,
) -> anyhow::Result<(&'static str, DecodedCookie)> {
    let mut reasons = Vec::new();
    for candidate in candidates {
        match candidate.format.decode(&cookie.name, &cookie.value) {
            Ok(decoded) => return Ok((candidate.label, decoded)),
            Err(rejected) => reasons.push(rejected.reason()),
        }
    }
    Err(Refused(refusal_message(&reasons, &cookie.name, key_count)).into())
}

/// One line saying why no format accepted the cookie. Formats that do not even
/// recognise the value say "unknown version"; the others say more.
fn refusal_message(reasons: &[&str], name: &str, key_count: usize) -> String {
    let reason = reasons
        .iter()
        .find(|r| **r != "unknown version")
        .or(reasons.first())
        .copied()
        .unwrap_or("no format to try");
    let keys = if key_count == 1 {
        "the key".to_owned()
    } else {
        format!("any of the {key_count} keys")
    };
    match reason {
        "bad signature" | "bad tag" => format!(
            "cookie refused: not authentic under {keys} given (tampered, signed with another \
             key, or issued under another cookie name than {name:?})"
        ),
        "not base64url" => "cookie refused: the value is not base64url, so not a latch cookie \
                            (a Flask cookie? try --kind flask)"
            .to_owned(),
        "unknown version" => "cookie refused: not a latch cookie of the kind asked for \
                              (try --kind auto)"
            .to_owned(),
        "truncated" => "cookie refused: the value is too short to be a latch cookie".to_owned(),
        "oversized" => format!(
            "cookie refused: name and value exceed {} bytes, which browsers drop",
            latch::codec::MAX_COOKIE_BYTES
        ),
        other => format!("cookie refused: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_prefers_the_specific_reason() {
        let msg = refusal_message(&["unknown version", "bad tag"], "__Host-session", 2);
        assert!(msg.starts_with("cookie refused: not authentic under any of the 2 keys"));
        let msg = refusal_message(&["unknown version"], "s", 1);
        assert!(msg.contains("not a latch cookie of the kind"), "{msg}");
        assert!(!refusal_message(&["truncated"], "s", 1).contains('\n'));
    }
}
