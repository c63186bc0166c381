//! The two text forms of a datetime: Flask's HTTP date and RFC 3339.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Werkzeug's `http_date`: `Wed, 21 Oct 2015 07:28:00 GMT` (IMF-fixdate).
const HTTP_DATE: &[time::format_description::BorrowedFormatItem<'static>] = format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// Years Flask writes and reads back unchanged: `email.utils.parsedate_to_datetime`
/// turns two-digit years into 19xx/20xx, and Python has no year 10000.
pub(super) const YEARS: std::ops::RangeInclusive<i32> = 100..=9999;

/// Why a datetime could not be written or read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct DateError(pub(super) &'static str);

fn check_year(dt: OffsetDateTime) -> Result<OffsetDateTime, DateError> {
    if YEARS.contains(&dt.year()) {
        Ok(dt)
    } else {
        Err(DateError(
            "datetime outside the years 100..=9999 that Flask reads back unchanged",
        ))
    }
}

/// Werkzeug's `http_date`: the instant in UTC, to the second (sub-seconds are
/// dropped, as Flask drops them).
pub(super) fn format_http(dt: OffsetDateTime) -> Result<String, DateError> {
    let utc = check_year(dt)?.to_offset(UtcOffset::UTC);
    utc.format(HTTP_DATE)
        .map_err(|_| DateError("datetime cannot be written as an HTTP date"))
}

/// RFC 3339 in UTC, for instants with sub-seconds (they come from Flask-Session's
/// msgpack timestamps, which keep them).
pub(super) fn format_rfc3339(dt: OffsetDateTime) -> Result<String, DateError> {
    let utc = check_year(dt)?.to_offset(UtcOffset::UTC);
    utc.format(&Rfc3339)
        .map_err(|_| DateError("datetime cannot be written as RFC 3339"))
}

/// Read either form; anything else is refused.
pub(super) fn parse(text: &str) -> Result<OffsetDateTime, DateError> {
    let dt = if text.ends_with(" GMT") {
        PrimitiveDateTime::parse(text, HTTP_DATE)
            .map_err(|_| DateError("invalid HTTP date"))?
            .assume_utc()
    } else {
        OffsetDateTime::parse(text, &Rfc3339).map_err(|_| DateError("invalid RFC 3339 date"))?
    };
    check_year(dt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn http_date_as_werkzeug_writes_it() {
        // werkzeug.http.http_date(datetime(2015, 10, 21, 7, 28, tzinfo=timezone.utc))
        let dt = datetime!(2015-10-21 07:28:00.5 UTC);
        assert_eq!(format_http(dt).unwrap(), "Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(
            format_http(datetime!(0100-01-01 00:00 UTC)).unwrap(),
            "Fri, 01 Jan 0100 00:00:00 GMT"
        );
        assert!(format_http(datetime!(0099-12-31 00:00 UTC)).is_err());
    }

    #[test]
    fn parse_reads_both_forms_and_refuses_others() {
        assert_eq!(
            parse("Wed, 21 Oct 2015 07:28:00 GMT").unwrap(),
            datetime!(2015-10-21 07:28:00 UTC)
        );
        assert_eq!(
            parse("2015-10-21T07:28:00.000123Z").unwrap(),
            datetime!(2015-10-21 07:28:00.000123 UTC)
        );
        for bad in ["21 Oct 2015", "Wed, 21 Oct 2015 07:28:00 UTC", ""] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
