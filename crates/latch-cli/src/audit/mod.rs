//! `latch audit`: grade `Set-Cookie` headers against current best practice.
//!
//! Inputs ([`input`], [`fetch`]) become [`input::Observed`] headers; each is
//! parsed ([`setcookie`]), classified ([`looks`]) and checked against the rule
//! table ([`rules`]); [`report`] prints the result. The rule table and the JSON
//! format are documented in `latch audit --help` and the crate README.

mod date;
mod fetch;
mod input;
mod looks;
mod report;
mod rules;
pub(crate) mod setcookie;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use indicatif::ProgressBar;

use crate::exit::Status;
use input::Observed;
use report::{AuditedCookie, InputError, Report};
use rules::{RULES, Severity, Subject};
use setcookie::SetCookie;

/// Grade Set-Cookie headers against current best practice.
///
/// Reads live http(s) URLs (every redirect hop's Set-Cookie is collected), files
/// of raw `Set-Cookie:` lines (with or without the header name), and HAR files
/// exported from a browser. Cookie values are never printed.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:
  latch audit https://example.com/ https://example.com/login
  latch audit --file headers.txt --fail-on medium
  curl -si https://example.com/ | latch audit -
  latch audit --file session.har --json

Exit codes: 0 no finding at or above --fail-on (or no --fail-on); 3 a finding at
or above it; 2 an input failed (unreadable file, URL that did not answer) or a
usage error. `latch audit --help` lists the rules and the JSON format.",
    after_long_help = long_help()
)]
pub struct Args {
    /// http(s) URLs to fetch, or `-` to read Set-Cookie lines or a HAR file from
    /// standard input.
    #[arg(value_name = "URL")]
    pub inputs: Vec<String>,

    /// A file of Set-Cookie lines, or a HAR file; repeatable.
    #[arg(long, value_name = "FILE")]
    pub file: Vec<PathBuf>,

    /// Print the report as JSON on standard output.
    #[arg(long)]
    pub json: bool,

    /// Exit with code 3 when a finding is at least this severe.
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<Severity>,

    /// Seconds to wait for each HTTP request.
    #[arg(long, value_name = "SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,

    /// Redirects to follow from each URL.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub max_redirects: usize,
}

/// Run `latch audit`.
///
/// # Errors
/// No input, an argument that is neither a URL nor `-`, or an unreadable file.
/// URLs that fail are reported in the output and end with exit code 2.
pub fn run(args: &Args) -> anyhow::Result<Status> {
    let (urls, stdin) = split_inputs(args)?;
    let mut observed = Vec::new();
    for file in &args.file {
        observed.extend(input::read_file(file)?);
    }
    if stdin {
        observed.extend(input::read_stdin()?);
    }
    let mut errors = Vec::new();
    if !urls.is_empty() {
        let fetcher = fetch::Fetcher::new(Duration::from_secs(args.timeout), args.max_redirects)?;
        crate::runtime::block_on(fetch_all(&fetcher, &urls, &mut observed, &mut errors))?;
    }
    let now = latch::Clock::now(&latch::SystemClock);
    let cookies = observed.iter().map(|o| audit(o, now)).collect();
    let report = Report::new(cookies, errors);
    report.print(args.json)?;
    Ok(status(&report, args.fail_on))
}

/// URLs to fetch and whether to read standard input (`-`, positional or `--file -`).
fn split_inputs(args: &Args) -> anyhow::Result<(Vec<String>, bool)> {
    let mut urls = Vec::new();
    let mut stdin = args.file.iter().any(|f| f.as_os_str() == "-");
    for input in &args.inputs {
        if input == "-" {
            stdin = true;
        } else if has_http_scheme(input) {
            fetch::parse_url(input)?;
            urls.push(input.clone());
        } else {
            bail!(
                "{input:?} is not an http(s) URL; use --file {input} for a file of headers or a HAR file"
            );
        }
    }
    if urls.is_empty() && !stdin && args.file.is_empty() {
        bail!("nothing to audit: give URLs, --file FILE, or - to read standard input");
    }
    Ok((urls, stdin))
}

/// Whether `input` starts with `http://` or `https://` (any case).
fn has_http_scheme(input: &str) -> bool {
    ["http://", "https://"].iter().any(|scheme| {
        input
            .get(..scheme.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(scheme))
    })
}

/// Fetch every URL in turn, with a progress bar on a terminal when there are several.
async fn fetch_all(
    fetcher: &fetch::Fetcher,
    urls: &[String],
    observed: &mut Vec<Observed>,
    errors: &mut Vec<InputError>,
) -> anyhow::Result<()> {
    let bar = progress(urls.len());
    for url in urls {
        bar.set_message(url.clone());
        match fetcher.fetch(url).await {
            Ok(found) => observed.extend(found),
            Err(err) => errors.push(InputError {
                source: url.clone(),
                error: format!("{err:#}"),
            }),
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(())
}

/// A bar for several URLs (none for one: it would only flicker).
fn progress(len: usize) -> ProgressBar {
    if len < 2 {
        return ProgressBar::hidden();
    }
    crate::progress::bar(len as u64, "{bar:30} {pos}/{len} {wide_msg}")
}

/// Parse, classify and check one header.
fn audit(observed: &Observed, now: i64) -> AuditedCookie {
    let cookie = SetCookie::parse(&observed.header);
    let subject = Subject {
        cookie: &cookie,
        session_like: looks::session_like(&cookie.name, &cookie.value),
        host: observed.host.as_deref(),
        lifetime: cookie.lifetime(now),
        bits: looks::estimated_bits(&cookie.value),
    };
    let findings = rules::check(&subject);
    AuditedCookie {
        source: observed.source.clone(),
        url: observed.url.clone(),
        removal: subject.is_removal(),
        session_like: subject.session_like,
        value_bytes: cookie.value.len(),
        estimated_bits: subject.bits,
        lifetime_seconds: subject.lifetime,
        findings,
        name: cookie.name,
        attributes: cookie.attributes,
    }
}

/// Exit 2 when an input failed, 3 when a finding reaches `--fail-on`, else 0.
fn status(report: &Report, fail_on: Option<Severity>) -> Status {
    if !report.errors.is_empty() {
        Status::Failed
    } else if fail_on.is_some_and(|level| report.worst().is_some_and(|w| w >= level)) {
        Status::Findings
    } else {
        Status::Success
    }
}

/// The long help: the rule table (generated from [`RULES`]) and the JSON format.
fn long_help() -> String {
    let severity = |s: Option<Severity>| s.map_or("-", Severity::as_str);
    let mut rules = format!("{:<8}  {:<7}  {:<7}  rule\n", "id", "session", "other");
    let all = std::iter::once(&rules::MALFORMED).chain(RULES.iter().map(|(r, _)| r));
    for rule in all {
        rules.push_str(&format!(
            "{:<8}  {:<7}  {:<7}  {}\n",
            rule.id,
            severity(rule.session),
            severity(rule.other),
            rule.title
        ));
    }
    format!(
        "Examples:
  latch audit https://example.com/ https://example.com/login
  latch audit --file headers.txt --fail-on medium
  curl -si https://example.com/ | latch audit -
  latch audit --file session.har --json

Rules (severity on session-like cookies / on others; - = not checked):
{rules}
A cookie is session-like when its name holds sess, sid, auth, token, jwt, login,
logged or remember (not csrf/xsrf), or its value is a JWT or a long random-looking token.
Removal cookies (Max-Age <= 0, Expires in the past) are checked only by the rules
that make browsers reject them: LATCH000, 005, 006, 007, 011.

Exit codes:
  0  no finding at or above --fail-on (always, without --fail-on)
  2  an input failed (unreadable file, URL that did not answer); usage error
  3  a finding at or above --fail-on

JSON (--json), version 1:
  {{\"version\": 1,
   \"cookies\": [{{\"source\": \"stdin:1\", \"url\": null, \"name\": \"sid\",
                \"attributes\": [{{\"name\": \"Path\", \"value\": \"/\"}}, {{\"name\": \"Secure\", \"value\": null}}],
                \"session_like\": true, \"removal\": false, \"value_bytes\": 32,
                \"estimated_bits\": 128, \"lifetime_seconds\": null,
                \"findings\": [{{\"rule\": \"LATCH002\", \"severity\": \"high\",
                               \"message\": \"...\", \"fix\": \"...\"}}]}}],
   \"errors\": [{{\"source\": \"https://...\", \"error\": \"...\"}}],
   \"summary\": {{\"cookies\": 1, \"findings\": 1, \"high\": 1, \"medium\": 0, \"low\": 0}}}}
Values are never printed. Fields are only ever added within a version."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_schemes_in_any_case() {
        assert!(has_http_scheme("HTTPS://example.com/"));
        assert!(has_http_scheme("http://127.0.0.1:1/"));
        assert!(!has_http_scheme("ftp://example.com/"));
        assert!(!has_http_scheme("cookies.txt"));
        assert!(!has_http_scheme("\u{1f512}"));
    }

    #[test]
    fn fail_on_compares_the_worst_finding() {
        let cookie = |line: &str| {
            audit(
                &Observed {
                    source: "t".into(),
                    url: None,
                    host: None,
                    header: line.into(),
                },
                0,
            )
        };
        let report = Report::new(vec![cookie("theme=dark; Secure")], vec![]);
        assert_eq!(report.worst(), Some(Severity::Low));
        assert_eq!(status(&report, None), Status::Success);
        assert_eq!(status(&report, Some(Severity::Low)), Status::Findings);
        assert_eq!(status(&report, Some(Severity::Medium)), Status::Success);
    }
}
