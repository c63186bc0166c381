//! The cookie date format of `Expires`, parsed with the lenient algorithm of
//! RFC 6265 section 5.1.1, which browsers follow: tokens in any order, month
//! names by their first three letters, two-digit years.

/// `text` as Unix seconds, or `None` when browsers would ignore it.
pub fn parse(text: &str) -> Option<i64> {
    let mut found = Found::default();
    for token in text.split(is_delimiter).filter(|t| !t.is_empty()) {
        found.take(token);
    }
    found.finish()
}

/// RFC 6265 delimiters: every printable non-alphanumeric except `:`, plus tab.
fn is_delimiter(c: char) -> bool {
    matches!(c, '\t' | '\x20'..='\x2f' | '\x3b'..='\x40' | '\x5b'..='\x60' | '\x7b'..='\x7e')
}

#[derive(Default)]
struct Found {
    time: Option<(i64, i64, i64)>,
    day: Option<i64>,
    month: Option<i64>,
    year: Option<i64>,
}

impl Found {
    /// Each token fills the first still-missing part it can be, in the RFC's order.
    fn take(&mut self, token: &str) {
        if self.time.is_none() {
            if let Some(t) = time(token) {
                self.time = Some(t);
                return;
            }
        }
        if self.day.is_none() {
            if let Some(d) = leading_digits(token, 1, 2) {
                self.day = Some(d);
                return;
            }
        }
        if self.month.is_none() {
            if let Some(m) = month(token) {
                self.month = Some(m);
                return;
            }
        }
        if self.year.is_none() {
            self.year = leading_digits(token, 2, 4);
        }
    }

    fn finish(self) -> Option<i64> {
        let (h, mi, s) = self.time?;
        let day = self.day?;
        let month = self.month?;
        let year = match self.year? {
            y @ 70..=99 => y + 1900,
            y @ 0..=69 => y + 2000,
            y => y,
        };
        if !(1..=31).contains(&day) || year < 1601 || h > 23 || mi > 59 || s > 59 {
            return None;
        }
        if day > days_in_month(year, month) {
            return None;
        }
        Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + mi * 60 + s)
    }
}

/// `hh:mm:ss` (one or two digits each), possibly followed by non-digits.
fn time(token: &str) -> Option<(i64, i64, i64)> {
    let mut parts = token.splitn(3, ':');
    let h = all_digits(parts.next()?, 1, 2)?;
    let m = all_digits(parts.next()?, 1, 2)?;
    let s = leading_digits(parts.next()?, 1, 2)?;
    Some((h, m, s))
}

/// `min..=max` digits filling the whole of `s`.
fn all_digits(s: &str, min: usize, max: usize) -> Option<i64> {
    (s.len() >= min && s.len() <= max && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `min..=max` digits at the start of `s`, followed by a non-digit or nothing.
fn leading_digits(s: &str, min: usize, max: usize) -> Option<i64> {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    (n >= min && n <= max)
        .then(|| s[..n].parse().ok())
        .flatten()
}

fn month(token: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let head = token.get(..3)?.to_ascii_lowercase();
    MONTHS.iter().position(|m| *m == head).map(|i| i as i64 + 1)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usual_forms() {
        assert_eq!(parse("Wed, 21 Oct 2015 07:28:00 GMT"), Some(1_445_412_480));
        assert_eq!(
            parse("Wednesday, 21-Oct-15 07:28:00 GMT"),
            Some(1_445_412_480)
        );
        assert_eq!(parse("Wed Oct 21 07:28:00 2015"), Some(1_445_412_480));
        assert_eq!(parse("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse("Fri, 31 Dec 9999 23:59:59 GMT"),
            Some(253_402_300_799)
        );
        assert_eq!(parse("29 Feb 2024 12:00:00"), Some(1_709_208_000));
    }

    #[test]
    fn impossible_or_partial_dates_are_ignored() {
        for bad in [
            "",
            "tomorrow",
            "Wed, 21 Oct 2015",
            "31 Feb 2015 00:00:00",
            "29 Feb 2023 00:00:00",
            "21 Oct 1500 00:00:00",
            "21 Oct 2015 24:00:00",
            "2015-10-21T07:28:00Z",
            "\u{1f512}\u{1f512}\u{1f512}",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        // Tokens that match nothing are skipped, as browsers skip them.
        assert_eq!(parse("\u{1f512} 21 Oct 2015 07:28:00"), Some(1_445_412_480));
    }
}
