//! C6: the session cookie is found by its exact name, byte for byte. Only SP
//! and HTAB around a name are removed (RFC 6265); no Unicode whitespace, case,
//! percent-encoding or other variant of the name is ever taken for it, so a
//! cookie the browser did not treat as `__Host-` can never stand in for one.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use latch::cookie::{IncomingCookie, find_session_cookie, find_session_cookie_bytes, trim_ows};
use proptest::prelude::*;

const NAME: &str = "__Host-session";

/// Every character Unicode calls whitespace (what `str::trim` removes), plus
/// look-alikes that are not whitespace but render as nothing.
const UNICODE_SPACES: &[char] = &[
    '\u{0B}', '\u{0C}', '\u{0D}', '\u{0A}', '\u{85}', '\u{A0}', '\u{1680}', '\u{2000}', '\u{2001}',
    '\u{2002}', '\u{2003}', '\u{2004}', '\u{2005}', '\u{2006}', '\u{2007}', '\u{2008}', '\u{2009}',
    '\u{200A}', '\u{2028}', '\u{2029}', '\u{202F}', '\u{205F}', '\u{3000}', '\u{200B}', '\u{FEFF}',
    '\u{180E}',
];

/// The name as the attack of issue 11 planted it, with each Unicode space
/// before, after and around it.
#[test]
fn c6_unicode_whitespace_around_the_name_is_not_the_name() {
    for space in UNICODE_SPACES {
        for planted in [
            format!("{space}{NAME}"),
            format!("{NAME}{space}"),
            format!("{space}{NAME}{space}"),
            format!(" {space}{NAME}"),
        ] {
            let header = format!("{planted}=attacker");
            assert_eq!(
                find_session_cookie([header.as_str()], NAME),
                IncomingCookie::Absent,
                "{:?} was taken for the session cookie",
                planted
            );
            // Beside the real cookie it is neither a duplicate (which would
            // sign the victim out) nor a replacement.
            let both = format!("{planted}=attacker; {NAME}=real");
            assert_eq!(
                find_session_cookie([both.as_str()], NAME),
                IncomingCookie::One("real".into()),
                "{planted:?}"
            );
        }
    }
}

#[test]
fn c6_sp_and_htab_are_the_only_whitespace_removed() {
    for header in [
        format!("{NAME}=v"),
        format!(" {NAME}=v"),
        format!("\t{NAME} \t= v\t"),
        format!("a=1;{NAME}=v;b=2"),
    ] {
        assert_eq!(
            find_session_cookie([header.as_str()], NAME),
            IncomingCookie::One("v".into()),
            "{header:?}"
        );
    }
}

#[test]
fn c6_case_encoding_and_lookalike_variants_are_not_the_name() {
    for variant in [
        "__host-session",
        "__HOST-session",
        "__Host-Session",
        "__Host%2Dsession",
        "%5F_Host-session",
        "__Host-session%00",
        "__Host-session\0",
        "__Host\u{2010}session", // HYPHEN
        "__Host\u{2011}session", // NON-BREAKING HYPHEN
        "\u{FF3F}_Host-session", // FULLWIDTH LOW LINE
        "__Ноst-session",        // Cyrillic "Н" and "о"
        "\"__Host-session\"",
    ] {
        let header = format!("{variant}=attacker");
        assert_eq!(
            find_session_cookie([header.as_str()], NAME),
            IncomingCookie::Absent,
            "{variant:?}"
        );
    }
}

#[test]
fn c6_bytes_that_are_not_utf8_never_match_or_hide_the_name() {
    let header: &[u8] = b"\xa0__Host-session=x; \xc2__Host-session=y; __Host-session=real";
    assert_eq!(
        find_session_cookie_bytes([header], NAME),
        IncomingCookie::One("real".into())
    );
}

/// A name made of pieces likely to confuse a parser: the real name, parts of
/// it, whitespace of every kind, separators, case changes.
fn tricky_name() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just(NAME.to_owned()),
        Just("__Host-".to_owned()),
        Just("session".to_owned()),
        prop::sample::select(UNICODE_SPACES.to_vec()).prop_map(String::from),
        Just(" ".to_owned()),
        Just("\t".to_owned()),
        Just("\"".to_owned()),
        Just("%20".to_owned()),
        any::<char>()
            .prop_filter("no separators", |c| *c != ';' && *c != '=')
            .prop_map(String::from),
        Just(NAME.to_uppercase()),
    ];
    prop::collection::vec(piece, 1..5).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// No name other than the exact one (after SP/HTAB trim) is ever taken.
    #[test]
    fn c6_only_the_exact_name_is_ever_taken(
        name in tricky_name(),
        others in prop::collection::vec(tricky_name(), 0..3),
    ) {
        let mut header = format!("{name}=planted");
        for other in &others {
            header.push_str(&format!("; {other}=other"));
        }
        let exact = trim_ows(name.as_bytes()) == NAME.as_bytes();
        let others_exact = others
            .iter()
            .filter(|o| trim_ows(o.as_bytes()) == NAME.as_bytes())
            .count();
        let found = find_session_cookie([header.as_str()], NAME);
        let expected = match usize::from(exact) + others_exact {
            0 => IncomingCookie::Absent,
            1 if exact => IncomingCookie::One("planted".into()),
            1 => IncomingCookie::One("other".into()),
            _ => IncomingCookie::Duplicate,
        };
        prop_assert_eq!(found, expected, "header {:?}", header);
    }

    /// Whatever the bytes, the parser answers without panicking, and a match
    /// is always a pair whose trimmed name is exactly the name.
    #[test]
    fn c6_arbitrary_bytes_never_panic(header in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = find_session_cookie_bytes([header.as_slice()], NAME);
    }
}
