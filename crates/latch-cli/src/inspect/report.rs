//! What `latch inspect` prints: the session, its deadlines and its status.

use std::io::Write as _;

use anyhow::Context as _;
use latch::codec::DecodedCookie;
use latch::{Data, Expiry, UnixTime};
use serde::Serialize;

use super::keys::KeySource;
use crate::timefmt::{span, utc};

/// How far in the future an issue time may be before latch refuses the cookie
/// (the clock skew latch tolerates between servers).
const MAX_CLOCK_SKEW: i64 = 60;

/// Version of the JSON output; raised only when a field changes meaning or goes.
const JSON_VERSION: u32 = 1;

/// Whether the cookie would be accepted now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Authentic and within both deadlines.
    Valid,
    /// Authentic, but past a deadline.
    Expired,
    /// Authentic, but issued in the future (or created after it was issued):
    /// latch refuses such a cookie.
    FromTheFuture,
}

/// Everything known about an authentic cookie; the `--json` output.
///
/// Times are Unix seconds.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Format version of this JSON (1).
    pub version: u32,
    /// The cookie name it was verified under.
    pub cookie: String,
    /// Which format opened it, e.g. `signed (HMAC-SHA256)`.
    pub kind: &'static str,
    /// Which key verified it: 0 is the current key.
    pub key_index: usize,
    /// Where that key came from (the option, never the key).
    pub key_source: String,
    /// When the cookie was issued (latch re-issues it as the session is used).
    pub issued_at: UnixTime,
    /// When the session was created.
    pub created_at: UnixTime,
    /// The signed-in user, if any.
    pub user_id: Option<String>,
    /// Whether the session is a remember-me one (longer timeouts).
    pub remember: bool,
    /// The idle timeout applied, in seconds.
    pub idle_timeout: u64,
    /// The absolute timeout applied, in seconds.
    pub absolute_timeout: u64,
    /// Issue time plus idle timeout: the first second the cookie is expired.
    pub idle_expires_at: UnixTime,
    /// Creation time plus absolute timeout.
    pub absolute_expires_at: UnixTime,
    /// The earlier of the two deadlines.
    pub expires_at: UnixTime,
    /// The time the verdict was reached at.
    pub now: UnixTime,
    /// Whether the cookie would be accepted now.
    pub status: Verdict,
    /// Whether it is past a deadline (`status` is `expired`).
    pub expired: bool,
    /// Which deadline passed first: `idle` or `absolute`.
    pub expired_by: Option<&'static str>,
    /// The session's data.
    pub data: Data,
}

impl Report {
    /// The report on `decoded`, judged under `policy` at `now`.
    pub fn new(
        cookie: &str,
        kind: &'static str,
        decoded: &DecodedCookie,
        sources: &[KeySource],
        policy: &Expiry,
        now: UnixTime,
    ) -> Self {
        let record = &decoded.record;
        let idle_at = record.idle_deadline(policy);
        let absolute_at = record.absolute_deadline(policy);
        let expired = record.is_expired(now, policy);
        let future =
            record.last_seen > now + MAX_CLOCK_SKEW || record.created_at > record.last_seen;
        let status = match (future, expired) {
            (true, _) => Verdict::FromTheFuture,
            (false, true) => Verdict::Expired,
            (false, false) => Verdict::Valid,
        };
        Self {
            version: JSON_VERSION,
            cookie: cookie.to_owned(),
            kind,
            key_index: decoded.key_index,
            key_source: sources
                .get(decoded.key_index)
                .map(ToString::to_string)
                .unwrap_or_default(),
            issued_at: record.last_seen,
            created_at: record.created_at,
            user_id: record.user_id.clone(),
            remember: record.remember,
            idle_timeout: policy.idle_timeout(record.remember).as_secs(),
            absolute_timeout: policy.absolute_timeout(record.remember).as_secs(),
            idle_expires_at: idle_at,
            absolute_expires_at: absolute_at,
            expires_at: idle_at.min(absolute_at),
            now,
            status,
            expired,
            expired_by: expired.then_some(if idle_at <= absolute_at {
                "idle"
            } else {
                "absolute"
            }),
            data: record.data.clone(),
        }
    }

    /// Print as JSON or as text on standard output.
    ///
    /// # Errors
    /// When standard output cannot be written.
    pub fn print(&self, json: bool) -> anyhow::Result<()> {
        let text = if json {
            serde_json::to_string_pretty(self).context("encoding the report")?
        } else {
            self.text()
        };
        writeln!(std::io::stdout().lock(), "{text}").context("writing the report")
    }

    fn text(&self) -> String {
        let when = |t: UnixTime| {
            let d = t - self.now;
            let rel = if d >= 0 {
                format!("in {}", span(d))
            } else {
                format!("{} ago", span(d))
            };
            format!("{} ({rel})", utc(t))
        };
        let key = if self.key_index == 0 {
            format!("0, the current key ({})", self.key_source)
        } else {
            format!(
                "{}, a previous key ({}): latch re-issues it under the current key",
                self.key_index, self.key_source
            )
        };
        let lines = [
            ("cookie", format!("{}, {}", self.cookie, self.kind)),
            ("key", key),
            ("issued", when(self.issued_at)),
            ("created", when(self.created_at)),
            (
                "user",
                self.user_id.clone().unwrap_or_else(|| "(none)".into()),
            ),
            (
                "remember",
                if self.remember { "yes" } else { "no" }.to_owned(),
            ),
            (
                "idle",
                format!(
                    "{}, {} after issue",
                    when(self.idle_expires_at),
                    span(self.idle_timeout as i64)
                ),
            ),
            (
                "absolute",
                format!(
                    "{}, {} after creation",
                    when(self.absolute_expires_at),
                    span(self.absolute_timeout as i64)
                ),
            ),
            ("status", self.status_text()),
        ];
        let mut out: String = lines
            .iter()
            .map(|(label, value)| format!("{label:<9} {value}\n"))
            .collect();
        out.push_str("data\n");
        out.push_str(&serde_json::to_string_pretty(&self.data).unwrap_or_default());
        out
    }

    fn status_text(&self) -> String {
        match self.status {
            Verdict::Valid => format!("valid, expires in {}", span(self.expires_at - self.now)),
            Verdict::Expired => format!(
                "EXPIRED {} ago ({} timeout); latch refuses it",
                span(self.now - self.expires_at),
                self.expired_by.unwrap_or("idle")
            ),
            Verdict::FromTheFuture => {
                "REFUSED: issued in the future (clock skew over 60 s, or created after it was \
                 issued)"
                    .to_owned()
            }
        }
    }
}
