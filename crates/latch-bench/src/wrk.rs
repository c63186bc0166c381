//! Running `wrk` and reading its report.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};

/// What one `wrk` run measured.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Sample {
    /// Requests per second over the whole run.
    pub rps: f64,
    /// Median latency in microseconds.
    pub p50_us: f64,
    /// 99th percentile latency in microseconds.
    pub p99_us: f64,
    /// Responses outside 2xx/3xx plus socket errors (connect, read, write, timeout).
    pub errors: u64,
    /// Requests completed.
    pub requests: u64,
    /// CPU time the server process spent per request, user and system, in
    /// microseconds (`NaN` when not measured). Unlike requests/s it does not
    /// move with what else the machine runs, so it is the steadier measure of
    /// a configuration's own cost.
    pub cpu_us: f64,
}

/// How wrk sends requests.
#[derive(Debug, Clone)]
pub enum Cookies<'a> {
    /// No `Cookie` header.
    None,
    /// The same `Cookie` header (`name=value`) on every request.
    Same(&'a str),
    /// A Lua script that picks one of the lines of this file per request.
    Script(&'a Path),
}

/// Drive `url` with `wrk -t1 -c{connections} --latency` for `duration`.
///
/// # Errors
/// When wrk cannot be started, fails, or prints a report this parser cannot read.
pub fn run(
    url: &str,
    cookies: &Cookies<'_>,
    duration: Duration,
    connections: u32,
) -> anyhow::Result<Sample> {
    let mut cmd = Command::new(wrk_binary());
    cmd.arg("-t1")
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .arg("--timeout")
        .arg("5s")
        .arg("--latency");
    match cookies {
        Cookies::None => {}
        Cookies::Same(cookie) => {
            cmd.arg("-H").arg(format!("Cookie: {cookie}"));
        }
        Cookies::Script(path) => {
            cmd.arg("-s").arg(path);
        }
    }
    cmd.arg(url);
    let out = cmd.output().context("starting wrk (is it installed?)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk failed ({}): {}{}",
            out.status,
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse(&text).with_context(|| format!("reading wrk's report:\n{text}"))
}

/// Fail early, with the fix, when wrk cannot be run.
///
/// # Errors
/// When `wrk --version` cannot be started.
pub fn check_installed() -> anyhow::Result<()> {
    Command::new(wrk_binary())
        .arg("--version")
        .output()
        .map(drop)
        .with_context(|| {
            format!(
                "cannot run {:?}: install wrk (Debian: `apt-get install wrk`) or point WRK at it",
                wrk_binary()
            )
        })
}

fn wrk_binary() -> String {
    std::env::var("WRK").unwrap_or_else(|_| "wrk".to_owned())
}

/// The Lua script for [`Cookies::Script`]: one cookie header value per line of
/// `list`, chosen at random (fixed seed) for every request.
pub fn cookie_script(list: &Path) -> String {
    format!(
        "local cookies = {{}}\n\
         for line in io.lines(\"{}\") do cookies[#cookies + 1] = line end\n\
         math.randomseed(12345)\n\
         request = function()\n  \
           return wrk.format(nil, nil, {{[\"Cookie\"] = cookies[math.random(#cookies)]}})\n\
         end\n",
        list.display()
    )
}

/// Parse wrk's text report (with `--latency`).
///
/// # Errors
/// When requests/s or the 50%/99% latency lines are missing or malformed.
pub fn parse(text: &str) -> anyhow::Result<Sample> {
    let mut sample = Sample::default();
    let (mut rps, mut p50, mut p99) = (None, None, None);
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("Requests/sec:") {
            rps = Some(rest.trim().parse::<f64>().context("Requests/sec")?);
        } else if let Some(rest) = line.strip_prefix("50%") {
            p50 = Some(duration_us(rest.trim())?);
        } else if let Some(rest) = line.strip_prefix("99%") {
            p99 = Some(duration_us(rest.trim())?);
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            sample.errors += rest.trim().parse::<u64>().context("Non-2xx count")?;
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            for part in rest.split(',') {
                let n = part.split_whitespace().last().unwrap_or("0");
                sample.errors += n.parse::<u64>().context("socket error count")?;
            }
        } else if let Some((n, _)) = line.split_once(" requests in ") {
            sample.requests = n.trim().parse().context("request count")?;
        }
    }
    sample.rps = rps.context("no Requests/sec line")?;
    sample.p50_us = p50.context("no 50% latency line (was --latency given?)")?;
    sample.p99_us = p99.context("no 99% latency line (was --latency given?)")?;
    Ok(sample)
}

/// `1.23ms`, `456.00us`, `2.00s`, `1.50m` → microseconds.
fn duration_us(text: &str) -> anyhow::Result<f64> {
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .with_context(|| format!("no unit in {text:?}"))?;
    let (num, unit) = text.split_at(split);
    let value: f64 = num.parse().with_context(|| format!("number in {text:?}"))?;
    let scale = match unit {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        "h" => 3600e6,
        other => bail!("unknown latency unit {other:?}"),
    };
    Ok(value * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 4s test @ http://127.0.0.1:40000/rw
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.21ms  310.55us  12.40ms   91.02%
    Req/Sec    26.51k     1.02k   28.00k    80.00%
  Latency Distribution
     50%    1.10ms
     75%    1.30ms
     90%    1.50ms
     99%  812.00us
  105512 requests in 4.00s, 12.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec:  26374.85
Transfer/sec:      3.00MB
";

    #[test]
    fn parses_rate_latencies_and_errors() {
        let s = parse(REPORT).unwrap();
        assert_eq!(s.rps, 26374.85);
        assert_eq!(s.p50_us, 1100.0);
        assert_eq!(s.p99_us, 812.0);
        assert_eq!(s.errors, 8);
        assert_eq!(s.requests, 105_512);
    }

    #[test]
    fn clean_run_has_no_errors() {
        let clean: String = REPORT
            .lines()
            .filter(|l| !l.contains("errors") && !l.contains("Non-2xx"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(parse(&clean).unwrap().errors, 0);
    }

    #[test]
    fn latency_units() {
        assert_eq!(duration_us("2.00s").unwrap(), 2e6);
        assert_eq!(duration_us("1.50m").unwrap(), 90e6);
        assert!(duration_us("3.0xs").is_err());
        assert!(duration_us("12").is_err());
    }

    #[test]
    fn report_without_latency_distribution_is_refused() {
        let err = parse("Requests/sec: 10.0\n").unwrap_err();
        assert!(err.to_string().contains("50%"), "{err}");
    }

    #[test]
    fn script_reads_the_list_and_sets_the_cookie() {
        let s = cookie_script(Path::new("/tmp/c.txt"));
        assert!(s.contains("io.lines(\"/tmp/c.txt\")"));
        assert!(s.contains("[\"Cookie\"]"));
    }
}
