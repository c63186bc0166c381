//! A minimal HTTP/1.1 client for setting up a benchmark: one GET, and the
//! session cookie from its `Set-Cookie` header.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context as _, bail};

/// GET `path` (with an optional `Cookie` header); returns the status line's code
/// and the `name=value` of the first `Set-Cookie`, if any.
///
/// # Errors
/// On connection errors or a response that is not HTTP.
pub fn get(
    addr: SocketAddr,
    path: &str,
    cookie: Option<&str>,
) -> anyhow::Result<(u16, Option<String>)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let cookie = cookie
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{cookie}Connection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    parse_response(&text)
}

fn parse_response(text: &str) -> anyhow::Result<(u16, Option<String>)> {
    let mut lines = text.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .context("no HTTP status line")?;
    let mut cookie = None;
    for line in lines {
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            bail!("malformed header line {line:?}");
        };
        if cookie.is_none() && name.eq_ignore_ascii_case("set-cookie") {
            let pair = value.trim().split(';').next().unwrap_or_default();
            cookie = Some(pair.to_owned());
        }
    }
    Ok((status, cookie))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_first_set_cookie_pair() {
        let text = "HTTP/1.1 200 OK\r\nvary: Cookie\r\nset-cookie: __Host-session=abc_-1; Path=/; Secure\r\n\
                    Set-Cookie: other=x\r\n\r\n1";
        assert_eq!(
            parse_response(text).unwrap(),
            (200, Some("__Host-session=abc_-1".to_owned()))
        );
        assert_eq!(
            parse_response("HTTP/1.1 503 x\r\n\r\n").unwrap(),
            (503, None)
        );
        assert!(parse_response("garbage").is_err());
    }
}
