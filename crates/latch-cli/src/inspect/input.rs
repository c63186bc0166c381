//! Reading the cookie to inspect: from the argument or standard input, as a bare
//! value or `name=value`.

use std::io::Read as _;

use anyhow::{Context as _, bail};

use super::kind::Kind;
use crate::audit::setcookie::{trim, unquote};

/// More than any cookie can be; the codecs refuse anything over 4096 bytes anyway.
const MAX_INPUT: u64 = 64 * 1024;

/// The cookie to inspect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieInput {
    /// The cookie name (bound into the MAC, so it must be the right one).
    pub name: String,
    /// The cookie value.
    pub value: String,
}

/// Read the COOKIE argument (`-` is standard input) and split it.
///
/// # Errors
/// Unreadable standard input, an empty cookie, or a name that contradicts `--name`.
pub fn read(arg: &str, name: Option<&str>, kind: Kind) -> anyhow::Result<CookieInput> {
    let text = if arg == "-" {
        let mut text = String::new();
        std::io::stdin()
            .take(MAX_INPUT)
            .read_to_string(&mut text)
            .context("reading the cookie from standard input")?;
        text
    } else {
        arg.to_owned()
    };
    parse(&text, name, kind)
}

/// Split `text` into name and value. A pasted `Cookie:` or `Set-Cookie:` line
/// is accepted: the header name and any attributes after the first `;` are
/// dropped. A bare value takes the name from `--name` or the kind's default.
fn parse(text: &str, name: Option<&str>, kind: Kind) -> anyhow::Result<CookieInput> {
    let text = strip_header_name(text.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n')));
    let pair = trim(text.split(';').next().unwrap_or_default());
    if pair.is_empty() {
        bail!("no cookie given: pass its value, name=value, or - to read standard input");
    }
    let Some((given, value)) = pair.split_once('=') else {
        return Ok(CookieInput {
            name: name.unwrap_or(kind.default_cookie_name()).to_owned(),
            value: unquote(pair).to_owned(),
        });
    };
    let given = trim(given);
    if let Some(flag) = name.filter(|flag| *flag != given) {
        bail!(
            "the cookie is named {given:?} but --name says {flag:?}; the name is bound into \
             the signature, so give one name"
        );
    }
    Ok(CookieInput {
        name: given.to_owned(),
        value: unquote(trim(value)).to_owned(),
    })
}

/// Drop a leading `Cookie:` or `Set-Cookie:` (any case).
fn strip_header_name(text: &str) -> &str {
    for header in ["set-cookie:", "cookie:"] {
        if text
            .get(..header.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(header))
        {
            return trim(&text[header.len()..]);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str, name: Option<&str>) -> (String, String) {
        let c = parse(text, name, Kind::Auto).unwrap();
        (c.name, c.value)
    }

    #[test]
    fn bare_values_take_the_default_or_given_name() {
        assert_eq!(
            ok(" AQAB \n", None),
            ("__Host-session".into(), "AQAB".into())
        );
        assert_eq!(ok("AQAB", Some("sid")), ("sid".into(), "AQAB".into()));
    }

    #[test]
    fn pairs_headers_and_attributes() {
        assert_eq!(ok("sid=AQAB", None), ("sid".into(), "AQAB".into()));
        assert_eq!(
            ok("Set-Cookie: __Host-s=\"AQAB\"; Secure; Path=/", None),
            ("__Host-s".into(), "AQAB".into())
        );
        assert_eq!(
            ok("cookie: sid=AQAB", Some("sid")),
            ("sid".into(), "AQAB".into())
        );
    }

    #[test]
    fn contradicting_name_and_empty_input_are_errors() {
        let err = parse("a=AQAB", Some("b"), Kind::Auto).unwrap_err();
        assert!(err.to_string().contains("--name says \"b\""), "{err}");
        assert!(parse("  ", None, Kind::Auto).is_err());
        assert!(parse("Set-Cookie:", None, Kind::Auto).is_err());
    }

    #[test]
    fn unicode_space_before_the_name_is_part_of_the_name() {
        // C6: only SP and HTAB are trimmed, so the report names the cookie the
        // browser actually stored, which is not `__Host-` prefixed.
        let (name, _) = ok("\u{a0}__Host-session=AQAB", None);
        assert_eq!(name, "\u{a0}__Host-session");
        let (name, _) = ok("Cookie: \u{3000}__Host-session=AQAB", None);
        assert_eq!(name, "\u{3000}__Host-session");
    }
}
