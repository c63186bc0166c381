//! Times and durations as people read them.

use latch::UnixTime;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `t` as an RFC 3339 UTC time (`2025-11-26T08:00:00Z`), or the raw number when it
/// is outside the years the calendar can show.
pub fn utc(t: UnixTime) -> String {
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("@{t}"))
}

/// A span of seconds in its two largest units: `2d 3h`, `29m 12s`, `5s`.
pub fn span(secs: i64) -> String {
    const UNITS: [(i64, &str); 4] = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let secs = secs.unsigned_abs();
    let parts: Vec<String> = UNITS
        .iter()
        .scan(secs, |left, &(size, unit)| {
            let size = size.unsigned_abs();
            let n = *left / size;
            *left %= size;
            Some((n, unit))
        })
        .skip_while(|(n, _)| *n == 0)
        .take(2)
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if parts.is_empty() {
        "0s".to_owned()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_is_rfc3339() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_764_144_000), "2025-11-26T08:00:00Z");
        assert_eq!(utc(i64::MAX), format!("@{}", i64::MAX));
    }

    #[test]
    fn spans_show_two_units() {
        assert_eq!(span(0), "0s");
        assert_eq!(span(5), "5s");
        assert_eq!(span(1752), "29m 12s");
        assert_eq!(span(3600), "1h");
        assert_eq!(span(2 * 86_400 + 3 * 3600 + 7), "2d 3h");
        assert_eq!(span(-90), "1m 30s");
    }
}
