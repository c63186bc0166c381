//! The audit rules: one table of stable ids, severities and fixes, and one
//! check function per rule.
//!
//! Severity can depend on whether the cookie looks like a session (a missing
//! `Secure` matters more on a login cookie than on a theme preference); a rule
//! with no severity for a kind of cookie is not checked on it. Removal cookies
//! (`Max-Age=0` or an `Expires` in the past) carry nothing worth stealing, so
//! only the rules that make browsers *reject* them (and the removal fail) apply.

use std::net::IpAddr;

use serde::Serialize;

use super::setcookie::{Malformed, SameSite, SetCookie};

/// How bad a finding is; `--fail-on` compares against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Hardening worth doing.
    Low,
    /// A real weakness.
    Medium,
    /// Exploitable, or the cookie does not work at all.
    High,
}

impl Severity {
    /// Lowercase name, as in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

/// One rule of the table.
#[derive(Debug)]
pub struct Rule {
    /// Stable id (`LATCH001`); never reused for another meaning.
    pub id: &'static str,
    /// Severity on a session-like cookie; `None`: not checked on those.
    pub session: Option<Severity>,
    /// Severity on any other cookie; `None`: not checked on those.
    pub other: Option<Severity>,
    /// Whether it is checked on removal cookies too.
    pub on_removal: bool,
    /// What the rule is about, for the rule table in `--help`.
    pub title: &'static str,
    /// How to fix a finding.
    pub fix: &'static str,
}

/// One problem with one cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule id.
    pub rule: &'static str,
    /// How bad it is for this cookie.
    pub severity: Severity,
    /// One line: what is wrong and why it matters.
    pub message: String,
    /// One line: what to change.
    pub fix: &'static str,
}

/// What the checks look at.
#[derive(Debug)]
pub struct Subject<'a> {
    /// The cookie.
    pub cookie: &'a SetCookie,
    /// Whether it looks like a session or login cookie.
    pub session_like: bool,
    /// The host that set it, when known (live URLs, HAR files).
    pub host: Option<&'a str>,
    /// Seconds it lives, if persistent.
    pub lifetime: Option<i64>,
    /// The most bits its value can carry.
    pub bits: u32,
}

impl Subject<'_> {
    /// A removal cookie: `Max-Age` of zero or less, or `Expires` in the past.
    pub fn is_removal(&self) -> bool {
        self.lifetime.is_some_and(|l| l <= 0)
    }
}

use Severity::{High, Low, Medium};

/// Browsers cap cookie lifetime at 400 days (RFC 6265bis).
const MAX_LIFETIME_DAYS: i64 = 400;
/// Longer than this, a session cookie outlives any reasonable sign-in.
const MAX_SESSION_DAYS: i64 = 30;
/// The bits a session token needs to resist guessing (OWASP: at least 64 of
/// entropy; latch uses 256; 128 is the floor this audit accepts).
const MIN_SESSION_BITS: u32 = 128;

/// LATCH000: not a cookie browsers would store as named.
#[rustfmt::skip]
pub const MALFORMED: Rule = Rule {
    id: "LATCH000", session: Some(Medium), other: Some(Medium), on_removal: true,
    title: "malformed Set-Cookie (no name=value pair, or control characters)",
    fix: "send `name=value` first, then the attributes, in printable ASCII",
};

/// Every rule but [`MALFORMED`], each with its check, in id order.
#[rustfmt::skip]
pub const RULES: &[(Rule, Check)] = &[
    (Rule { id: "LATCH001", session: Some(High), other: Some(Low), on_removal: false,
            title: "`Secure` missing",
            fix: "add `Secure`" },
     no_secure),
    (Rule { id: "LATCH002", session: Some(High), other: None, on_removal: false,
            title: "`HttpOnly` missing on a session cookie",
            fix: "add `HttpOnly`" },
     no_http_only),
    (Rule { id: "LATCH003", session: Some(Medium), other: Some(Low), on_removal: false,
            title: "`SameSite` missing or not a known value",
            fix: "add `SameSite=Lax` (or `Strict`)" },
     no_same_site),
    (Rule { id: "LATCH004", session: Some(Medium), other: Some(Low), on_removal: false,
            title: "`SameSite=None`",
            fix: "use `SameSite=Lax`; keep `None` only for cookies that must work inside other sites, \
             with CSRF protection and `Partitioned`" },
     same_site_none),
    (Rule { id: "LATCH005", session: Some(High), other: Some(High), on_removal: true,
            title: "`SameSite=None` without `Secure` (rejected)",
            fix: "add `Secure`, or use `SameSite=Lax`" },
     none_without_secure),
    (Rule { id: "LATCH006", session: Some(High), other: Some(High), on_removal: true,
            title: "`__Host-` prefix without `Secure`, `Path=/`, or with `Domain` (rejected)",
            fix: "send `__Host-` cookies with `Secure; Path=/` and no `Domain`" },
     host_prefix),
    (Rule { id: "LATCH007", session: Some(High), other: Some(High), on_removal: true,
            title: "`__Secure-` prefix without `Secure` (rejected)",
            fix: "add `Secure`" },
     secure_prefix),
    (Rule { id: "LATCH008", session: Some(Low), other: None, on_removal: false,
            title: "session cookie without a `__Host-` or `__Secure-` prefix",
            fix: "name it `__Host-<name>` and send it with `Secure; Path=/` and no `Domain`" },
     no_prefix),
    (Rule { id: "LATCH009", session: Some(Medium), other: None, on_removal: false,
            title: "`Domain` on a session cookie",
            fix: "drop `Domain`, so only the host that set the cookie receives it" },
     session_domain),
    (Rule { id: "LATCH010", session: None, other: Some(Low), on_removal: false,
            title: "`Domain` is a parent of the host (URL known)",
            fix: "drop `Domain`, or set it to the host itself" },
     parent_domain),
    (Rule { id: "LATCH011", session: Some(High), other: Some(High), on_removal: true,
            title: "`Domain` does not cover the host (rejected; URL known)",
            fix: "drop `Domain`, or use the host or one of its parent domains" },
     foreign_domain),
    (Rule { id: "LATCH012", session: Some(Medium), other: Some(Medium), on_removal: false,
            title: "lifetime over 400 days",
            fix: "set `Max-Age` to at most 34560000 (400 days)" },
     over_400_days),
    (Rule { id: "LATCH013", session: Some(Medium), other: None, on_removal: false,
            title: "session cookie kept over 30 days",
            fix: "end the cookie with the browser session (no `Max-Age`/`Expires`) or within days; \
             sign users in again for longer" },
     long_session),
    (Rule { id: "LATCH014", session: Some(Medium), other: Some(Medium), on_removal: false,
            title: "name and value over 4096 bytes (dropped)",
            fix: "keep the data server-side and put only a session ID in the cookie" },
     oversized),
    (Rule { id: "LATCH015", session: Some(High), other: None, on_removal: false,
            title: "session value below 128 bits",
            fix: "use at least 128 random bits; latch uses 32 random bytes in base64url (43 characters)" },
     short_value),
];

/// A rule's check: the one-line message when the rule is broken.
pub type Check = fn(&Subject<'_>) -> Option<String>;

/// Every finding for `s`, in rule-id order.
pub fn check(s: &Subject<'_>) -> Vec<Finding> {
    if let Some(malformed) = s.cookie.malformed {
        let message = match malformed {
            Malformed::NoPair => {
                "no `name=value` before the first `;`: browsers ignore it or keep a nameless cookie"
            }
            Malformed::ControlCharacters => {
                "control characters in the header: browsers drop the whole cookie"
            }
        };
        return vec![finding(&MALFORMED, Medium, message.to_owned())];
    }
    RULES
        .iter()
        .filter(|(rule, _)| rule.on_removal || !s.is_removal())
        .filter_map(|(rule, check)| {
            let severity = if s.session_like {
                rule.session
            } else {
                rule.other
            }?;
            check(s).map(|message| finding(rule, severity, message))
        })
        .collect()
}

fn finding(rule: &Rule, severity: Severity, message: String) -> Finding {
    Finding {
        rule: rule.id,
        severity,
        message,
        fix: rule.fix,
    }
}

fn no_secure(s: &Subject<'_>) -> Option<String> {
    (!s.cookie.secure()).then(|| {
        "no `Secure`: the cookie is also sent over plain http, where anyone on the network \
         can read it"
            .to_owned()
    })
}

fn no_http_only(s: &Subject<'_>) -> Option<String> {
    (!s.cookie.http_only()).then(|| {
        "no `HttpOnly`: page scripts can read it, so one XSS bug leaks the session".to_owned()
    })
}

fn no_same_site(s: &Subject<'_>) -> Option<String> {
    const DEFAULTS: &str = "browsers disagree on the default (Lax in Chromium, None in Firefox \
                            and Safari), so it may be sent on cross-site requests";
    match s.cookie.same_site() {
        None => Some(format!("no `SameSite`: {DEFAULTS}")),
        Some(SameSite::Unknown(value)) => Some(format!(
            "`SameSite={value}` is not Strict, Lax or None, so browsers ignore it: {DEFAULTS}"
        )),
        Some(_) => None,
    }
}

fn same_site_none(s: &Subject<'_>) -> Option<String> {
    (s.cookie.same_site() == Some(SameSite::None) && s.cookie.secure()).then(|| {
        "`SameSite=None`: sent on requests from any other site, which can then act with it \
         (CSRF) or probe it"
            .to_owned()
    })
}

fn none_without_secure(s: &Subject<'_>) -> Option<String> {
    (s.cookie.same_site() == Some(SameSite::None) && !s.cookie.secure())
        .then(|| "`SameSite=None` without `Secure`: browsers reject the cookie".to_owned())
}

fn has_prefix(name: &str, prefix: &str) -> bool {
    name.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

fn host_prefix(s: &Subject<'_>) -> Option<String> {
    let c = s.cookie;
    if !has_prefix(&c.name, "__Host-") {
        return None;
    }
    let mut broken = Vec::new();
    if !c.secure() {
        broken.push("no `Secure`");
    }
    if c.path() != Some("/") {
        broken.push("no `Path=/`");
    }
    if c.attr("Domain").is_some() {
        broken.push("has `Domain`");
    }
    (!broken.is_empty()).then(|| {
        format!(
            "`__Host-` cookie with {}: browsers reject it",
            broken.join(", ")
        )
    })
}

fn secure_prefix(s: &Subject<'_>) -> Option<String> {
    (has_prefix(&s.cookie.name, "__Secure-") && !s.cookie.secure())
        .then(|| "`__Secure-` cookie without `Secure`: browsers reject it".to_owned())
}

fn no_prefix(s: &Subject<'_>) -> Option<String> {
    let name = &s.cookie.name;
    (!has_prefix(name, "__Host-") && !has_prefix(name, "__Secure-")).then(|| {
        "no `__Host-` prefix: a sibling subdomain or a plain-http page can plant a cookie of \
         this name (cookie tossing, session fixation)"
            .to_owned()
    })
}

fn session_domain(s: &Subject<'_>) -> Option<String> {
    let domain = s.cookie.domain()?;
    Some(format!(
        "`Domain={domain}` shares the session with every subdomain of {domain}"
    ))
}

fn parent_domain(s: &Subject<'_>) -> Option<String> {
    let (domain, host) = (s.cookie.domain()?, normal_host(s.host?));
    (domain != host && domain_matches(&host, &domain)).then(|| {
        format!("`Domain={domain}` is wider than the host {host}: every subdomain of {domain} receives it")
    })
}

fn foreign_domain(s: &Subject<'_>) -> Option<String> {
    let (domain, host) = (s.cookie.domain()?, normal_host(s.host?));
    (!domain_matches(&host, &domain)).then(|| {
        format!("`Domain={domain}` does not cover the host {host}: browsers reject the cookie")
    })
}

fn over_400_days(s: &Subject<'_>) -> Option<String> {
    let days = s.lifetime? / 86_400;
    (s.lifetime? > MAX_LIFETIME_DAYS * 86_400)
        .then(|| format!("lives {days} days, but browsers cap cookies at {MAX_LIFETIME_DAYS} days"))
}

fn long_session(s: &Subject<'_>) -> Option<String> {
    let days = s.lifetime? / 86_400;
    (s.lifetime? > MAX_SESSION_DAYS * 86_400)
        .then(|| format!("session cookie kept {days} days: a stolen copy works that long"))
}

fn oversized(s: &Subject<'_>) -> Option<String> {
    let size = s.cookie.size();
    (size > latch::codec::MAX_COOKIE_BYTES).then(|| {
        format!(
            "name and value take {size} bytes; browsers drop cookies over {}",
            latch::codec::MAX_COOKIE_BYTES
        )
    })
}

fn short_value(s: &Subject<'_>) -> Option<String> {
    (s.bits < MIN_SESSION_BITS).then(|| {
        format!(
            "the value can hold at most {} bits, below the {MIN_SESSION_BITS} a session token \
             needs to resist guessing",
            s.bits
        )
    })
}

/// Lowercase, without a trailing dot or IPv6 brackets.
fn normal_host(host: &str) -> String {
    host.trim_end_matches('.')
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

/// RFC 6265 domain matching: the host is the domain, or a name under it (never
/// for IP addresses).
fn domain_matches(host: &str, domain: &str) -> bool {
    host == domain
        || (host.parse::<IpAddr>().is_err()
            && host
                .strip_suffix(domain)
                .is_some_and(|head| head.ends_with('.')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_ordered_and_every_rule_applies_somewhere() {
        let ids: Vec<&str> = RULES.iter().map(|(r, _)| r.id).collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(ids, sorted);
        assert!(
            RULES
                .iter()
                .all(|(r, _)| r.session.is_some() || r.other.is_some())
        );
        assert_eq!(MALFORMED.id, "LATCH000");
    }

    #[test]
    fn domain_matching() {
        assert!(domain_matches("a.example.com", "example.com"));
        assert!(domain_matches("example.com", "example.com"));
        assert!(!domain_matches("badexample.com", "example.com"));
        assert!(!domain_matches("example.com", "a.example.com"));
        assert!(!domain_matches("10.0.0.1", "0.0.1"));
        assert_eq!(normal_host("[::1]"), "::1");
        assert_eq!(normal_host("Example.COM."), "example.com");
    }

    #[test]
    fn severities_order_for_fail_on() {
        assert!(Low < Medium && Medium < High);
    }
}
