//! Reading the session cookie out of a request's `Cookie` headers.

use cookie::Cookie;

/// What a request carried under the session cookie's name. Its `Debug` output
/// never shows the value (a session ID or a whole session).
#[derive(Clone, PartialEq, Eq)]
pub enum IncomingCookie {
    /// No cookie of that name.
    Absent,
    /// Exactly one cookie of that name, with this value.
    One(String),
    /// More than one cookie of that name (possible cookie tossing): none is used.
    Duplicate,
}

impl std::fmt::Debug for IncomingCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IncomingCookie::Absent => f.write_str("Absent"),
            IncomingCookie::One(value) => write!(f, "One(<{} bytes>)", value.len()),
            IncomingCookie::Duplicate => f.write_str("Duplicate"),
        }
    }
}

/// Find the cookie `name` in the values of every `Cookie` header of a request.
///
/// Headers split over several lines are all read. When the name appears more than
/// once, which happens when a related domain or a sub-path "tosses" a cookie of the
/// same name at the user, no value is trusted: the request is treated as carrying
/// no session ([`IncomingCookie::Duplicate`]), so an attacker cannot plant a
/// session of their choice.
///
/// # Example
/// ```
/// use latch::cookie::{IncomingCookie, find_session_cookie};
///
/// let headers = ["a=1; sid=xyz", "b=2"];
/// assert_eq!(find_session_cookie(headers, "sid"), IncomingCookie::One("xyz".into()));
/// assert_eq!(find_session_cookie(["sid=1", "sid=2"], "sid"), IncomingCookie::Duplicate);
/// ```
pub fn find_session_cookie<'a>(
    header_values: impl IntoIterator<Item = &'a str>,
    name: &str,
) -> IncomingCookie {
    let mut found = IncomingCookie::Absent;
    for header in header_values {
        for cookie in Cookie::split_parse(header).flatten() {
            if cookie.name() != name {
                continue;
            }
            found = match found {
                IncomingCookie::Absent => IncomingCookie::One(cookie.value().to_owned()),
                _ => return IncomingCookie::Duplicate,
            };
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_across_several_header_lines() {
        let found = find_session_cookie(["x=1", "y=2; __Host-session=abc"], "__Host-session");
        assert_eq!(found, IncomingCookie::One("abc".to_owned()));
    }

    #[test]
    fn duplicate_in_one_line_or_across_lines_is_refused() {
        assert_eq!(
            find_session_cookie(["s=a; s=b"], "s"),
            IncomingCookie::Duplicate
        );
        assert_eq!(
            find_session_cookie(["s=a", "t=1; s=a"], "s"),
            IncomingCookie::Duplicate
        );
    }

    #[test]
    fn names_match_exactly() {
        assert_eq!(
            find_session_cookie(["S=a; s2=b"], "s"),
            IncomingCookie::Absent
        );
    }

    #[test]
    fn garbage_header_is_absent_not_a_panic() {
        assert_eq!(
            find_session_cookie([";;;=; \u{7f}"], "s"),
            IncomingCookie::Absent
        );
    }
}
