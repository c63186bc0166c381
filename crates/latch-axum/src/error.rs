//! Turning latch errors into HTTP responses that tell the client nothing internal.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use latch::ErrorKind;
use std::sync::atomic::{AtomicU64, Ordering};

/// A session failure as an HTTP answer.
///
/// Store outages and timeouts become `503 Service Unavailable` with
/// `Retry-After: 1`; everything else `500`. The body is plain text without
/// internal detail; the full error chain goes to the log.
///
/// # Example
/// ```
/// use axum::response::IntoResponse;
/// use latch_axum::SessionError;
///
/// let response = SessionError::from(latch::Error::store_msg("connection refused")).into_response();
/// assert_eq!(response.status(), 503);
/// ```
#[derive(Debug)]
pub struct SessionError(latch::Error);

impl SessionError {
    /// The latch error inside.
    pub fn inner(&self) -> &latch::Error {
        &self.0
    }
}

impl From<latch::Error> for SessionError {
    fn from(err: latch::Error) -> Self {
        Self(err)
    }
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SessionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// A warning that can repeat once per request, logged at most once a second
/// with how many were left out since: during an outage (or a flood while the
/// store is full) a line per 503 filled the log's disk, 236 MB in 30 s in a
/// black-box attack. For apps that log their own repeated 503s the same way.
///
/// Hand-written: what it needs is two atomics; the log-sampling crates around
/// are built for whole subscribers, not one call site.
///
/// # Example
/// ```
/// use latch_axum::OncePerSecond;
///
/// static BUSY: OncePerSecond = OncePerSecond::new();
/// if let Some(left_out) = BUSY.admit() {
///     eprintln!("every worker is busy; answering 503 ({left_out} more since the last line)");
/// }
/// ```
#[derive(Debug, Default)]
pub struct OncePerSecond {
    /// The Unix second of the last line logged, plus one (0: none yet).
    second: AtomicU64,
    left_out: AtomicU64,
}

impl OncePerSecond {
    /// Nothing logged yet.
    pub const fn new() -> Self {
        Self {
            second: AtomicU64::new(0),
            left_out: AtomicU64::new(0),
        }
    }

    /// `Some(n)` when this occurrence is to be logged, `n` being how many
    /// were left out since the last one logged; `None` when it is left out.
    pub fn admit(&self) -> Option<u64> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.admit_at(now)
    }

    fn admit_at(&self, unix_second: u64) -> Option<u64> {
        let stamp = unix_second.saturating_add(1);
        let last = self.second.load(Ordering::Relaxed);
        if last != stamp
            && self
                .second
                .compare_exchange(last, stamp, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            Some(self.left_out.swap(0, Ordering::Relaxed))
        } else {
            self.left_out.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

/// The store-outage warning, once a second at most.
static STORE_UNAVAILABLE: OncePerSecond = OncePerSecond::new();

/// The error and its causes on one line, for the log.
fn chain(err: &latch::Error) -> String {
    let mut out = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

impl IntoResponse for SessionError {
    fn into_response(self) -> Response {
        let (status, body) = if self.0.is_unavailable() {
            if let Some(left_out) = STORE_UNAVAILABLE.admit() {
                tracing::warn!(
                    error = %chain(&self.0),
                    left_out,
                    "session store unavailable; answering 503 (left_out: as many more since the last line)"
                );
            }
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "Service temporarily unavailable; please try again shortly.\n".to_owned(),
            )
        } else if let ErrorKind::CookieTooLarge { size, limit } = self.0.kind() {
            tracing::error!(error = %chain(&self.0), "session too large for a cookie");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "Internal Server Error: session cookie of {size} bytes exceeds the {limit}-byte limit\n"
                ),
            )
        } else if self.0.kind() == &ErrorKind::UpdateRefused {
            tracing::info!(error = %chain(&self.0), "a session change no longer applies");
            (
                StatusCode::CONFLICT,
                "Conflict: this change does not apply to the session as it is now (a limit was \
                 reached, perhaps by another request at the same time). Nothing was saved.\n"
                    .to_owned(),
            )
        } else if let ErrorKind::RecordTooLarge { size, limit } = self.0.kind() {
            tracing::error!(error = %chain(&self.0), "session record over its size limit");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "Internal Server Error: session of {size} bytes exceeds the {limit}-byte limit\n"
                ),
            )
        } else {
            tracing::error!(error = %chain(&self.0), "session error");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error\n".to_owned(),
            )
        };
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            http::HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(RETRY_AFTER, http::HeaderValue::from_static("1"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::OncePerSecond;

    #[test]
    fn a_repeated_warning_is_logged_once_a_second_with_what_was_left_out() {
        let warning = OncePerSecond::new();
        assert_eq!(warning.admit_at(100), Some(0));
        for _ in 0..5000 {
            assert_eq!(warning.admit_at(100), None);
        }
        assert_eq!(warning.admit_at(101), Some(5000));
        assert_eq!(warning.admit_at(101), None);
        assert_eq!(warning.admit_at(105), Some(1));
        // The very first second of the epoch counts too.
        assert_eq!(OncePerSecond::new().admit_at(0), Some(0));
    }
}
