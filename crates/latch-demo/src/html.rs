//! Server-rendered pages: one layout, escaping, no external assets.

use std::fmt::Write as _;

use axum::response::{Html, IntoResponse, Response};
use http::StatusCode;
use latch::Flash;

/// Escape text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A Unix time as `2026-11-26 08:10:00 UTC`.
pub fn time(t: i64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&format).ok())
        .unwrap_or_else(|| t.to_string())
}

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem;color:#222}\
nav{display:flex;gap:1rem;align-items:center;border-bottom:1px solid #ddd;padding-bottom:.5rem;margin-bottom:1rem}\
nav .who{margin-left:auto}form.inline{display:inline}\
label{display:block;margin:.5rem 0}input[type=text],input[type=password]{width:100%;padding:.4rem;box-sizing:border-box}\
button{padding:.4rem .9rem;cursor:pointer}.flash{padding:.5rem 1rem;border-radius:4px;margin:.5rem 0}\
.flash.info,.flash.success{background:#e6f4ea}.flash.error{background:#fce8e6}\
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #eee;padding:.4rem;text-align:left;font-size:.9rem}\
.this{font-weight:bold;color:#1a7f37}";

/// What every page knows about its viewer.
pub struct Page<'a> {
    /// Page title.
    pub title: &'a str,
    /// The signed-in user, if any.
    pub user: Option<&'a str>,
    /// A CSRF token for the sign-out form (signed-in pages).
    pub csrf: Option<&'a str>,
    /// Flash messages to show once.
    pub flashes: &'a [Flash],
}

impl Page<'_> {
    /// The full page around `body` (already HTML).
    pub fn render(&self, body: &str) -> String {
        let mut nav = String::from("<a href=\"/\">Home</a>");
        match (self.user, self.csrf) {
            (Some(user), Some(csrf)) => {
                let _ = write!(
                    nav,
                    "<a href=\"/profile\">Profile</a><a href=\"/devices\">Devices</a>\
                     <span class=\"who\">Signed in as <b>{}</b></span>\
                     <form class=\"inline\" method=\"post\" action=\"/logout\">\
                     <input type=\"hidden\" name=\"csrf_token\" value=\"{}\">\
                     <button type=\"submit\">Sign out</button></form>",
                    escape(user),
                    escape(csrf)
                );
            }
            _ => nav.push_str(
                "<span class=\"who\"></span><a href=\"/login\">Sign in</a><a href=\"/signup\">Sign up</a>",
            ),
        }
        let flashes: String = self
            .flashes
            .iter()
            .map(|f| {
                format!(
                    "<p class=\"flash {}\">{}</p>",
                    escape(&f.level),
                    escape(&f.message)
                )
            })
            .collect();
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
             <title>{} · latch demo</title><style>{STYLE}</style></head>\
             <body><nav>{nav}</nav>{flashes}<main><h1>{}</h1>{body}</main></body></html>",
            escape(self.title),
            escape(self.title)
        )
    }

    /// The page as a response with `status`.
    pub fn respond(&self, status: StatusCode, body: &str) -> Response {
        (status, Html(self.render(body))).into_response()
    }
}

/// The username/password form for sign-in and sign-up.
pub fn credentials_form(
    action: &str,
    csrf: &str,
    remember_box: bool,
    message: Option<(&str, &str)>,
) -> String {
    let message = message
        .map(|(level, text)| format!("<p class=\"flash {}\">{}</p>", escape(level), escape(text)))
        .unwrap_or_default();
    let remember = if remember_box {
        "<label><input type=\"checkbox\" name=\"remember\" value=\"on\"> Remember me on this device</label>"
    } else {
        ""
    };
    let button = if action == "/login" {
        "Sign in"
    } else {
        "Create account"
    };
    format!(
        "{message}<form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{}\">\
         <label>Username <input type=\"text\" name=\"username\" autocomplete=\"username\" required></label>\
         <label>Password <input type=\"password\" name=\"password\" required></label>\
         {remember}<button type=\"submit\">{button}</button></form>",
        escape(csrf)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn formats_times() {
        assert_eq!(time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(time(1_800_000_000), "2027-01-15 08:00:00 UTC");
    }
}
