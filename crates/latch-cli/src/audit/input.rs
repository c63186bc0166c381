//! Collecting `Set-Cookie` headers from text: a file or standard input of raw
//! header lines, or a HAR file (sniffed: a JSON object).

use std::io::Read as _;
use std::path::Path;

use anyhow::{Context as _, anyhow};
use serde_json::Value;

use super::setcookie::trim;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The most input read from one file or standard input; HAR files of a long
/// browsing session are big, but not this big.
const MAX_INPUT: u64 = 256 * 1024 * 1024;

/// One `Set-Cookie` header value and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// Where it came from: `FILE:LINE`, `stdin:LINE`, `FILE entry N`, or a URL.
    pub source: String,
    /// The URL of the response that set it, when known.
    pub url: Option<String>,
    /// That URL's host, for the `Domain` rules.
    pub host: Option<String>,
    /// The header value, without `Set-Cookie:`.
    pub header: String,
}

/// Read a file of header lines or a HAR file.
///
/// # Errors
/// An unreadable file, or a HAR file that is not valid JSON or has no entries.
pub fn read_file(path: &Path) -> anyhow::Result<Vec<Observed>> {
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_INPUT).read_to_string(&mut text))
        .with_context(|| format!("reading {}", path.display()))?;
    parse(&text, &path.display().to_string())
}

/// Read header lines or a HAR file from standard input.
///
/// # Errors
/// As [`read_file`].
pub fn read_stdin() -> anyhow::Result<Vec<Observed>> {
    let mut text = String::new();
    std::io::stdin()
        .take(MAX_INPUT)
        .read_to_string(&mut text)
        .context("reading standard input")?;
    parse(&text, "stdin")
}

/// A JSON object is a HAR file; anything else is header lines.
fn parse(text: &str, origin: &str) -> anyhow::Result<Vec<Observed>> {
    if text.trim_start().starts_with('{') {
        from_har(text, origin)
    } else {
        Ok(from_lines(text, origin))
    }
}

/// One cookie per line, with or without `Set-Cookie:`. Blank lines, `#`
/// comments, status lines and other headers (as in `curl -i` output) are skipped.
fn from_lines(text: &str, origin: &str) -> Vec<Observed> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let header = header_value(trim(line))?;
            Some(Observed {
                source: format!("{origin}:{}", i + 1),
                url: None,
                host: None,
                header: header.to_owned(),
            })
        })
        .collect()
}

/// The cookie text of a line, or `None` for a line that holds none.
fn header_value(line: &str) -> Option<&str> {
    if line.is_empty() || line.starts_with('#') || line.starts_with("HTTP/") {
        return None;
    }
    match line.split_once(':') {
        Some((name, rest)) if is_token(name) => {
            name.eq_ignore_ascii_case("set-cookie").then(|| trim(rest))
        }
        _ => Some(line),
    }
}

/// An HTTP header name (RFC 9110 token). A cookie line's text before its first
/// `:` always holds `=` or a space, so it is never a token.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Every response's `Set-Cookie` headers (several may share one header value,
/// separated by newlines, as browsers export them); a response without such
/// headers contributes its `cookies` list instead.
fn from_har(text: &str, origin: &str) -> anyhow::Result<Vec<Observed>> {
    let har: Value =
        serde_json::from_str(text).with_context(|| format!("reading {origin} as a HAR file"))?;
    let entries = har
        .pointer("/log/entries")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("{origin} is JSON but not a HAR file: it has no log.entries"))?;
    Ok(entries
        .iter()
        .enumerate()
        .flat_map(|(i, entry)| har_entry(entry, &format!("{origin} entry {}", i + 1)))
        .collect())
}

fn har_entry(entry: &Value, source: &str) -> Vec<Observed> {
    let url = entry.pointer("/request/url").and_then(Value::as_str);
    let host = url
        .and_then(|u| reqwest::Url::parse(u).ok())
        .and_then(|u| u.host_str().map(str::to_owned));
    let mut headers: Vec<String> = entry
        .pointer("/response/headers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|h| {
            h.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.eq_ignore_ascii_case("set-cookie"))
        })
        .filter_map(|h| h.get("value").and_then(Value::as_str))
        .flat_map(str::lines)
        .map(trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect();
    if headers.is_empty() {
        headers = entry
            .pointer("/response/cookies")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(har_cookie)
            .collect();
    }
    headers
        .into_iter()
        .map(|header| Observed {
            source: source.to_owned(),
            url: url.map(str::to_owned),
            host: host.clone(),
            header,
        })
        .collect()
}

/// A HAR `cookies` entry written back as the `Set-Cookie` it stands for.
fn har_cookie(cookie: &Value) -> Option<String> {
    let text = |key: &str| cookie.get(key).and_then(Value::as_str);
    let flag = |key: &str| cookie.get(key).and_then(Value::as_bool) == Some(true);
    let mut header = format!("{}={}", text("name")?, text("value").unwrap_or_default());
    for (attr, key) in [
        ("Path", "path"),
        ("Domain", "domain"),
        ("SameSite", "sameSite"),
    ] {
        if let Some(value) = text(key).filter(|v| !v.is_empty()) {
            header.push_str(&format!("; {attr}={value}"));
        }
    }
    if let Some(expires) = text("expires").and_then(cookie_date) {
        header.push_str(&format!("; Expires={expires}"));
    }
    for (attr, key) in [("Secure", "secure"), ("HttpOnly", "httpOnly")] {
        if flag(key) {
            header.push_str(&format!("; {attr}"));
        }
    }
    Some(header)
}

/// HAR writes `expires` in ISO 8601; a cookie header writes a cookie date.
fn cookie_date(iso: &str) -> Option<String> {
    let t = OffsetDateTime::parse(iso, &Rfc3339).ok()?;
    let t = t.to_offset(time::UtcOffset::UTC);
    Some(format!(
        "{:02} {} {} {:02}:{:02}:{:02} GMT",
        t.day(),
        t.month(),
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_with_and_without_header_name() {
        let text = "HTTP/1.1 302 Found\nLocation: /x\nSet-Cookie: a=1; Secure\n\n# note\n\
                    set-cookie:b=2\nc=3; Expires=Wed, 21 Oct 2015 07:28:00 GMT\n";
        let got: Vec<(String, String)> = from_lines(text, "f")
            .into_iter()
            .map(|o| (o.source, o.header))
            .collect();
        assert_eq!(
            got,
            [
                ("f:3".to_owned(), "a=1; Secure".to_owned()),
                ("f:6".to_owned(), "b=2".to_owned()),
                (
                    "f:7".to_owned(),
                    "c=3; Expires=Wed, 21 Oct 2015 07:28:00 GMT".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn unicode_space_before_a_name_is_kept_for_the_rules_to_see() {
        // C6: a browser stores `\u{a0}__Host-s` as a different, unprefixed name.
        let text = "\u{a0}__Host-s=1; Secure; Path=/\nSet-Cookie: \u{2000}__Host-t=2\n";
        let got: Vec<String> = from_lines(text, "f")
            .into_iter()
            .map(|o| o.header)
            .collect();
        assert_eq!(
            got,
            ["\u{a0}__Host-s=1; Secure; Path=/", "\u{2000}__Host-t=2"]
        );
    }

    #[test]
    fn har_cookies_become_headers() {
        let cookie = serde_json::json!({
            "name": "sid", "value": "v", "path": "/", "domain": ".example.com",
            "expires": "2030-01-02T03:04:05.000Z", "httpOnly": true, "secure": false,
        });
        assert_eq!(
            har_cookie(&cookie).unwrap(),
            "sid=v; Path=/; Domain=.example.com; Expires=02 January 2030 03:04:05 GMT; HttpOnly"
        );
        let date = cookie_date("2030-01-02T03:04:05.000Z").unwrap();
        assert_eq!(super::super::date::parse(&date), Some(1_893_553_445));
    }

    #[test]
    fn har_without_entries_is_an_error() {
        let err = parse("{\"log\": {}}", "x.har").unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.har is JSON but not a HAR file: it has no log.entries"
        );
        assert!(parse("{not json", "x.har").is_err());
    }
}
