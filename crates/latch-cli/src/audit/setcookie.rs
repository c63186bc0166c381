//! Parsing one `Set-Cookie` header value the way browsers do (RFC 6265bis
//! section 5.6): lenient, attribute names case-insensitive, the last of a
//! repeated attribute wins, unknown attributes kept, and no input can panic.

use serde::Serialize;

use super::date;

/// One attribute as written (`Secure`, `Path=/`, `Priority=High`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attribute {
    /// The name as written (matched case-insensitively).
    pub name: String,
    /// The value after `=`, trimmed; `None` for a flag such as `Secure`.
    pub value: Option<String>,
}

/// Why a header gives no usable cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// No `name=value` before the first `;`, or an empty name.
    NoPair,
    /// Control characters, which make browsers drop the whole header.
    ControlCharacters,
}

/// A parsed `Set-Cookie`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetCookie {
    /// The cookie name (empty when malformed).
    pub name: String,
    /// The value, with surrounding double quotes removed.
    pub value: String,
    /// Every attribute, in order.
    pub attributes: Vec<Attribute>,
    /// Set when browsers would not store the cookie as named.
    pub malformed: Option<Malformed>,
}

/// `SameSite` as browsers read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SameSite {
    /// `Strict`.
    Strict,
    /// `Lax`.
    Lax,
    /// `None`.
    None,
    /// A value browsers do not know (they apply their default); kept as written.
    Unknown(String),
}

impl SetCookie {
    /// Parse a header value (without the `Set-Cookie:` name).
    pub fn parse(header: &str) -> Self {
        let header = header.trim_matches(|c| c == ' ' || c == '\t');
        let (pair, rest) = header.split_once(';').unwrap_or((header, ""));
        let attributes = rest.split(';').filter_map(attribute).collect();
        let malformed = if header.chars().any(|c| c.is_control() && c != '\t') {
            Some(Malformed::ControlCharacters)
        } else {
            None
        };
        match pair.split_once('=') {
            Some((name, value)) if !trim(name).is_empty() => Self {
                name: trim(name).to_owned(),
                value: unquote(trim(value)).to_owned(),
                attributes,
                malformed,
            },
            _ => Self {
                name: String::new(),
                value: trim(pair).to_owned(),
                attributes,
                malformed: malformed.or(Some(Malformed::NoPair)),
            },
        }
    }

    /// The last attribute called `name` (any case), as browsers use it.
    pub fn attr(&self, name: &str) -> Option<&Attribute> {
        self.attributes
            .iter()
            .rev()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// Whether `Secure` is set.
    pub fn secure(&self) -> bool {
        self.attr("Secure").is_some()
    }

    /// Whether `HttpOnly` is set.
    pub fn http_only(&self) -> bool {
        self.attr("HttpOnly").is_some()
    }

    /// `SameSite`, if the attribute is present.
    pub fn same_site(&self) -> Option<SameSite> {
        let value = self.attr("SameSite")?.value.clone().unwrap_or_default();
        Some(match value.to_ascii_lowercase().as_str() {
            "strict" => SameSite::Strict,
            "lax" => SameSite::Lax,
            "none" => SameSite::None,
            _ => SameSite::Unknown(value),
        })
    }

    /// The `Domain`, lowercased and without a leading dot; `None` when absent or
    /// empty (browsers ignore an empty Domain).
    pub fn domain(&self) -> Option<String> {
        let value = self.attr("Domain")?.value.as_deref()?;
        let domain = value
            .strip_prefix('.')
            .unwrap_or(value)
            .to_ascii_lowercase();
        (!domain.is_empty()).then_some(domain)
    }

    /// The `Path`, when it is one browsers use (starts with `/`).
    pub fn path(&self) -> Option<&str> {
        self.attr("Path")?
            .value
            .as_deref()
            .filter(|p| p.starts_with('/'))
    }

    /// Seconds the cookie lives from `now`: `Max-Age` when valid, else `Expires`.
    /// `None` for a session cookie (deleted when the browser closes).
    pub fn lifetime(&self, now: i64) -> Option<i64> {
        self.max_age()
            .or_else(|| self.expires().map(|at| at.saturating_sub(now)))
    }

    /// `Max-Age` in seconds, when it is a valid number (RFC 6265bis 5.6.2).
    fn max_age(&self) -> Option<i64> {
        let value = self.attr("Max-Age")?.value.as_deref()?;
        let digits = value.strip_prefix('-').unwrap_or(value);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // A number too large to hold means "very long"; browsers clamp it anyway.
        let n = digits.parse::<i64>().unwrap_or(i64::MAX);
        Some(if value.starts_with('-') { -n } else { n })
    }

    /// `Expires` as Unix seconds, when it parses as a cookie date.
    fn expires(&self) -> Option<i64> {
        date::parse(self.attr("Expires")?.value.as_deref()?)
    }

    /// The bytes browsers count against their 4096-byte limit.
    pub fn size(&self) -> usize {
        self.name.len() + self.value.len()
    }
}

fn attribute(text: &str) -> Option<Attribute> {
    let text = trim(text);
    if text.is_empty() {
        return None;
    }
    Some(match text.split_once('=') {
        Some((name, value)) => Attribute {
            name: trim(name).to_owned(),
            value: Some(trim(value).to_owned()),
        },
        None => Attribute {
            name: text.to_owned(),
            value: None,
        },
    })
}

/// Cookie whitespace is only space and tab (RFC 6265): a name that starts with
/// U+00A0 or another Unicode space is a different name, which browsers do not
/// treat as `__Host-` prefixed, and the audit must see it as such.
pub(crate) fn trim(s: &str) -> &str {
    s.trim_matches(|c| c == ' ' || c == '\t')
}

/// Cookie values may be sent in double quotes (RFC 6265); the quotes are not part
/// of the value.
pub(crate) fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The audit parser reads attacker-controlled headers: any input parses
        /// without panicking, and a well-formed pair is always recovered.
        #[test]
        fn any_header_parses_and_pairs_survive(
            junk in ".{0,300}",
            name in "[A-Za-z0-9_-]{1,20}",
            value in "[A-Za-z0-9_-]{0,40}",
        ) {
            let _ = SetCookie::parse(&junk);
            let parsed = SetCookie::parse(&format!("{name}={value}; {junk}"));
            if parsed.malformed.is_none() {
                prop_assert_eq!(&parsed.name, &name);
                prop_assert_eq!(&parsed.value, &value);
            }
        }
    }

    use super::*;

    #[test]
    fn attributes_are_case_insensitive_last_wins_unknown_kept() {
        let c = SetCookie::parse(
            " sid = \"abc\" ;secure; HTTPONLY;samesite=strict; SameSite=lax ; Priority=High;;",
        );
        assert_eq!((c.name.as_str(), c.value.as_str()), ("sid", "abc"));
        assert!(c.secure() && c.http_only());
        assert_eq!(c.same_site(), Some(SameSite::Lax));
        assert_eq!(c.attr("priority").unwrap().value.as_deref(), Some("High"));
        assert_eq!(c.attributes.len(), 5);
        assert_eq!(c.malformed, None);
    }

    #[test]
    fn domain_path_and_lifetime() {
        let c = SetCookie::parse(
            "a=1; Domain=.Example.COM; Path=/app; Max-Age=60; Expires=Wed, 21 Oct 2015 07:28:00 GMT",
        );
        assert_eq!(c.domain().as_deref(), Some("example.com"));
        assert_eq!(c.path(), Some("/app"));
        assert_eq!(c.lifetime(0), Some(60), "Max-Age wins over Expires");
        let c =
            SetCookie::parse("a=1; Expires=Wed, 21 Oct 2015 07:28:00 GMT; Max-Age=soon; Path=x");
        assert_eq!(c.lifetime(1_445_412_480), Some(0));
        assert_eq!(c.path(), None);
        assert_eq!(SetCookie::parse("a=1; Max-Age=-5").lifetime(0), Some(-5));
        assert_eq!(
            SetCookie::parse("a=1; Max-Age=99999999999999999999999").lifetime(0),
            Some(i64::MAX)
        );
        assert_eq!(SetCookie::parse("a=1; Domain=").domain(), None);
    }

    #[test]
    fn junk_is_malformed_never_a_panic() {
        for junk in [
            "",
            ";",
            "=",
            "=x",
            "novalue",
            "; Secure",
            "a=b\u{0}c",
            "\u{1f512}=\u{1f512}; \u{1f512}",
        ] {
            let c = SetCookie::parse(junk);
            let _ = (
                c.secure(),
                c.same_site(),
                c.domain(),
                c.path(),
                c.lifetime(0),
                c.size(),
            );
        }
        assert_eq!(
            SetCookie::parse("novalue").malformed,
            Some(Malformed::NoPair)
        );
        assert_eq!(SetCookie::parse("=x").malformed, Some(Malformed::NoPair));
        assert_eq!(
            SetCookie::parse("a=b\u{1}").malformed,
            Some(Malformed::ControlCharacters)
        );
        assert_eq!(SetCookie::parse("a=").malformed, None);
    }
}
