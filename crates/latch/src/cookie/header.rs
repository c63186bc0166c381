//! Reading the session cookie out of a request's `Cookie` headers.
//!
//! Written by hand rather than with the `cookie` crate's `split_parse`, because
//! that trims names and values with [`str::trim`], which strips *Unicode*
//! whitespace: a cookie named `\u{a0}__Host-session` was then taken for
//! `__Host-session`. Browsers do not treat such a name as `__Host-`
//! prefixed, so any page that can set a cookie for the host (another port, a
//! sibling subdomain, a plain-http man-in-the-middle) could plant one. RFC 6265
//! (section 5.2, and 6265bis 5.6) removes only SP and HTAB around a name and
//! value, and that is all this module removes; names are then compared byte
//! for byte.

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

/// `bytes` without the SP and HTAB at either end: the only whitespace RFC 6265
/// lets a cookie parser remove around a name or value.
///
/// # Example
/// ```
/// use latch::cookie::trim_ows;
///
/// assert_eq!(trim_ows(b" \tsid "), b"sid");
/// // U+00A0 (NO-BREAK SPACE) is part of the name, not whitespace around it.
/// assert_eq!(trim_ows("\u{a0}sid".as_bytes()), "\u{a0}sid".as_bytes());
/// ```
pub fn trim_ows(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// The `name=value` pairs of one `Cookie` header value, each trimmed of SP and
/// HTAB only. Pieces without `=` carry no name and are skipped.
///
/// # Example
/// ```
/// use latch::cookie::cookie_pairs;
///
/// let pairs: Vec<_> = cookie_pairs(b"a=1; b = 2 ;flag; =x").collect();
/// assert_eq!(pairs, [(&b"a"[..], &b"1"[..]), (b"b", b"2"), (b"", b"x")]);
/// ```
pub fn cookie_pairs(header: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    header.split(|b| *b == b';').filter_map(|piece| {
        let eq = piece.iter().position(|b| *b == b'=')?;
        Some((trim_ows(&piece[..eq]), trim_ows(&piece[eq + 1..])))
    })
}

/// Find the cookie `name` in the values of every `Cookie` header of a request.
///
/// Headers split over several lines are all read. The name must match byte
/// for byte after SP/HTAB trimming (no case folding, no Unicode whitespace, no
/// percent-decoding), so a cookie the browser did not treat as `__Host-`
/// prefixed never stands in for one. When the name appears more than once,
/// which happens when a related domain or a sub-path "tosses" a cookie of the
/// same name at the user, no value is trusted: the request is treated as
/// carrying no session ([`IncomingCookie::Duplicate`]), so an attacker cannot
/// plant a session of their choice.
///
/// # Example
/// ```
/// use latch::cookie::{IncomingCookie, find_session_cookie};
///
/// let headers = ["a=1; sid=xyz", "b=2"];
/// assert_eq!(find_session_cookie(headers, "sid"), IncomingCookie::One("xyz".into()));
/// assert_eq!(find_session_cookie(["sid=1", "sid=2"], "sid"), IncomingCookie::Duplicate);
/// assert_eq!(find_session_cookie(["\u{a0}sid=1"], "sid"), IncomingCookie::Absent);
/// ```
pub fn find_session_cookie<'a>(
    header_values: impl IntoIterator<Item = &'a str>,
    name: &str,
) -> IncomingCookie {
    find_session_cookie_bytes(header_values.into_iter().map(str::as_bytes), name)
}

/// [`find_session_cookie`] over raw header bytes (header values need not be
/// UTF-8). Bytes that are not UTF-8 in the session cookie's own value are kept
/// as U+FFFD, so the value is then refused as malformed, never mistaken.
pub fn find_session_cookie_bytes<'a>(
    header_values: impl IntoIterator<Item = &'a [u8]>,
    name: &str,
) -> IncomingCookie {
    let mut found = IncomingCookie::Absent;
    for header in header_values {
        for value in values_named(header, name.as_bytes()) {
            found = match found {
                IncomingCookie::Absent => IncomingCookie::One(match std::str::from_utf8(value) {
                    Ok(text) => text.to_owned(),
                    // Only for a malformed value: the lossy scan is several
                    // times slower than validating, on every request.
                    Err(_) => String::from_utf8_lossy(value).into_owned(),
                }),
                _ => return IncomingCookie::Duplicate,
            };
        }
    }
    found
}

/// The values of the pairs of `header` whose name is `name`: what
/// [`cookie_pairs`] filtered by name yields, found faster (this runs on every
/// request). Pieces are cut at `;` with `memchr`; a piece names `name` when,
/// after leading SP/HTAB, it starts with `name` followed by SP/HTAB and `=`.
/// Nothing else is scanned, values included. `name` is a cookie-name token,
/// so it holds no `=`, `;` or whitespace.
fn values_named<'h>(header: &'h [u8], name: &'h [u8]) -> impl Iterator<Item = &'h [u8]> {
    let ends = memchr::memchr_iter(b';', header).chain(std::iter::once(header.len()));
    let mut start = 0;
    ends.filter_map(move |end| {
        let piece = &header[start..end];
        start = end + 1;
        let rest = trim_ows(piece).strip_prefix(name)?;
        let rest = trim_ows(rest).strip_prefix(b"=")?;
        Some(trim_ows(rest))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_that_are_not_utf8_are_kept_as_replacement_characters() {
        assert_eq!(
            find_session_cookie_bytes([&b"s=a\xffb; t=\xfe"[..]], "s"),
            IncomingCookie::One("a\u{fffd}b".to_owned())
        );
        assert_eq!(
            find_session_cookie_bytes([&b"t=\xfe; s=plain"[..]], "s"),
            IncomingCookie::One("plain".to_owned())
        );
    }

    proptest::proptest! {
        /// The fast scan finds exactly what the plain pair parser finds.
        #[test]
        fn the_fast_scan_agrees_with_the_pair_parser(
            header in proptest::collection::vec(
                proptest::sample::select(&b"s2S=; \t\xa0x"[..]), 0..40),
            name in proptest::sample::select(&["s", "s2", "S"][..]),
        ) {
            let fast: Vec<_> = values_named(&header, name.as_bytes()).collect();
            let plain: Vec<_> = cookie_pairs(&header)
                .filter(|(n, _)| *n == name.as_bytes())
                .map(|(_, v)| v)
                .collect();
            proptest::prop_assert_eq!(fast, plain);
        }
    }

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
