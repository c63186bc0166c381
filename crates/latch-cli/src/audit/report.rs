//! The audit result: one entry per cookie, the inputs that failed, a summary;
//! printed as text or as the documented JSON.

use std::fmt::Write as _;
use std::io::Write as _;

use anyhow::Context as _;
use serde::Serialize;

use super::rules::{Finding, Severity};
use super::setcookie::Attribute;

/// Version of the JSON output; raised only when a field changes meaning or goes.
pub const JSON_VERSION: u32 = 1;

/// One audited cookie. The value itself is never printed: it may be a live session.
#[derive(Debug, Serialize)]
pub struct AuditedCookie {
    /// Where the header was found (`FILE:LINE`, `stdin:LINE`, `FILE entry N`, URL).
    pub source: String,
    /// The URL of the response that set it, when known.
    pub url: Option<String>,
    /// The cookie name (empty when malformed).
    pub name: String,
    /// Every attribute as written, in order, unknown ones included.
    pub attributes: Vec<Attribute>,
    /// Whether it was judged to be a session or login cookie.
    pub session_like: bool,
    /// Whether it removes a cookie (`Max-Age` <= 0 or `Expires` in the past).
    pub removal: bool,
    /// The length of the value in bytes.
    pub value_bytes: usize,
    /// The most bits the value can carry (length times bits per character).
    pub estimated_bits: u32,
    /// Seconds it lives (`Max-Age`, else `Expires`); `null` for a browser-session cookie.
    pub lifetime_seconds: Option<i64>,
    /// What is wrong with it, in rule order; empty for a clean cookie.
    pub findings: Vec<Finding>,
}

/// An input that could not be audited (a URL that failed).
#[derive(Debug, Serialize)]
pub struct InputError {
    /// The input.
    pub source: String,
    /// Why.
    pub error: String,
}

/// Counts for the whole run.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// Cookies audited.
    pub cookies: usize,
    /// Findings in all.
    pub findings: usize,
    /// High-severity findings.
    pub high: usize,
    /// Medium-severity findings.
    pub medium: usize,
    /// Low-severity findings.
    pub low: usize,
}

/// The whole result; the `--json` output.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Format version of this JSON (1).
    pub version: u32,
    /// Every cookie, in input order.
    pub cookies: Vec<AuditedCookie>,
    /// Inputs that failed.
    pub errors: Vec<InputError>,
    /// Counts.
    pub summary: Summary,
}

impl Report {
    /// The report on `cookies`, with the inputs that failed.
    pub fn new(cookies: Vec<AuditedCookie>, errors: Vec<InputError>) -> Self {
        let mut summary = Summary {
            cookies: cookies.len(),
            ..Summary::default()
        };
        for finding in cookies.iter().flat_map(|c| &c.findings) {
            summary.findings += 1;
            *match finding.severity {
                Severity::High => &mut summary.high,
                Severity::Medium => &mut summary.medium,
                Severity::Low => &mut summary.low,
            } += 1;
        }
        Self {
            version: JSON_VERSION,
            cookies,
            errors,
            summary,
        }
    }

    /// The most severe finding, if any.
    pub fn worst(&self) -> Option<Severity> {
        self.cookies
            .iter()
            .flat_map(|c| &c.findings)
            .map(|f| f.severity)
            .max()
    }

    /// Print the report on standard output (and, as text, the failed inputs on
    /// standard error).
    ///
    /// # Errors
    /// When standard output cannot be written.
    pub fn print(&self, json: bool) -> anyhow::Result<()> {
        let text = if json {
            serde_json::to_string_pretty(self).context("encoding the report")?
        } else {
            for error in &self.errors {
                eprintln!("latch: {}: {}", error.source, error.error);
            }
            self.text()
        };
        writeln!(std::io::stdout().lock(), "{text}").context("writing the report")
    }

    fn text(&self) -> String {
        let mut out = String::new();
        for cookie in &self.cookies {
            let name = if cookie.name.is_empty() {
                "(no name)"
            } else {
                &cookie.name
            };
            let verdict = if cookie.findings.is_empty() {
                "  ok"
            } else {
                ""
            };
            // Writing to a String cannot fail.
            let _ = writeln!(out, "{name}  ({}){verdict}", cookie.source);
            for f in &cookie.findings {
                let _ = writeln!(
                    out,
                    "  {:<6}  {}  {}",
                    f.severity.as_str(),
                    f.rule,
                    f.message
                );
                let _ = writeln!(out, "                    fix: {}", f.fix);
            }
        }
        let s = &self.summary;
        let _ = write!(
            out,
            "\n{} cookie{}, {} finding{} ({} high, {} medium, {} low)",
            s.cookies,
            plural(s.cookies),
            s.findings,
            plural(s.findings),
            s.high,
            s.medium,
            s.low
        );
        if !self.errors.is_empty() {
            let _ = write!(
                out,
                "; {} input{} failed",
                self.errors.len(),
                plural(self.errors.len())
            );
        }
        out
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
