//! The Sentinel URL form, and the target it describes:
//! `redis+sentinel://[user:password@]host1[:port],host2[:port]/master-name[/db][?cacert=...]`.
//!
//! The form is the one of Python's `redis-sentinel-url` (and Kombu's): every
//! sentinel in the authority, comma-separated, port 26379 when none is given;
//! the master's name, then optionally its database, in the path.
//! `rediss+sentinel://` speaks TLS to the sentinels and to the master. The
//! user and password are the master's (and its replicas'), not the
//! sentinels': sentinels that require a password are given as URLs of their
//! own to [`RedisStore::sentinel_builder`](crate::RedisStore::sentinel_builder).
//! `?cacert=`, `?cert=` and `?key=` apply to every connection, as for one server.

use latch::{Error, Result};

/// The port sentinels listen on when the URL names none.
const DEFAULT_PORT: u16 = 26379;

/// The schemes of the Sentinel URL form, plain and TLS.
const SCHEMES: [(&str, bool); 2] = [("redis+sentinel://", false), ("rediss+sentinel://", true)];

/// Whether `url` is in the Sentinel form (rather than one server's URL).
pub(crate) fn is_sentinel_url(url: &str) -> bool {
    SCHEMES
        .iter()
        .any(|(scheme, _)| starts_with_ci(url, scheme))
}

fn starts_with_ci(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// Where the master is to be found, and how to talk to it once found.
#[derive(Clone)]
pub(crate) struct SentinelTarget {
    /// The name the sentinels monitor the master under.
    pub(crate) master_name: String,
    /// One `redis://` or `rediss://` URL per sentinel.
    pub(crate) sentinels: Vec<String>,
    /// The master's side of the URL: everything but its address.
    pub(crate) master: MasterTemplate,
}

/// A master URL without its address, which only the sentinels know.
#[derive(Clone, Default)]
pub(crate) struct MasterTemplate {
    /// `rediss://` rather than `redis://`.
    pub(crate) tls: bool,
    /// `user:password` as written (percent-encoded), or empty.
    pub(crate) userinfo: String,
    /// The database number, `0` unless the URL says otherwise.
    pub(crate) db: u32,
    /// The query string (`cacert=...`), or empty.
    pub(crate) query: String,
}

impl MasterTemplate {
    /// The URL of the master at `host:port`.
    pub(crate) fn url(&self, host: &str, port: u16) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        let at = if self.userinfo.is_empty() { "" } else { "@" };
        // An IPv6 address, as sentinels report them, needs brackets in a URL.
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let query = if self.query.is_empty() {
            String::new()
        } else {
            format!("?{}", self.query)
        };
        format!(
            "{scheme}://{}{at}{host}:{port}/{}{query}",
            self.userinfo, self.db
        )
    }
}

/// The error for a URL that is not in the form; it never echoes the URL,
/// which may hold a password.
fn malformed(what: &str) -> Error {
    Error::invalid_config(format!(
        "the Redis Sentinel URL is not valid: {what}; the form is \
         redis+sentinel://[user:password@]host1[:port],host2[:port]/master-name[/db]"
    ))
}

/// Parse a URL in the Sentinel form.
pub(crate) fn parse(url: &str) -> Result<SentinelTarget> {
    let (scheme, tls) = SCHEMES
        .iter()
        .find(|(scheme, _)| starts_with_ci(url, scheme))
        .ok_or_else(|| {
            malformed("it does not start with redis+sentinel:// or rediss+sentinel://")
        })?;
    let rest = &url[scheme.len()..];
    if rest.contains('#') {
        return Err(malformed("it has a #fragment"));
    }
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = rest
        .split_once('/')
        .ok_or_else(|| malformed("it names no master (the path is empty)"))?;
    let (userinfo, hosts) = authority.rsplit_once('@').unwrap_or(("", authority));
    let sentinel_scheme = if *tls { "rediss" } else { "redis" };
    let sentinels = hosts
        .split(',')
        .map(|host| sentinel_address(host).map(|a| format!("{sentinel_scheme}://{a}/")))
        .map(|url| url.map(|u| with_query(u, query)))
        .collect::<Result<Vec<_>>>()?;
    let mut parts = path.split('/');
    let master_name = parts.next().unwrap_or_default();
    if master_name.is_empty() {
        return Err(malformed("it names no master (the path is empty)"));
    }
    let db = match (parts.next(), parts.next()) {
        (None | Some(""), None) => 0,
        (Some(db), None) => db
            .parse()
            .map_err(|_| malformed("the database after the master's name is not a number"))?,
        _ => return Err(malformed("the path has more than master-name/db")),
    };
    Ok(SentinelTarget {
        master_name: master_name.to_owned(),
        sentinels,
        master: MasterTemplate {
            tls: *tls,
            userinfo: userinfo.to_owned(),
            db,
            query: query.to_owned(),
        },
    })
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`, with the default port filled in.
fn sentinel_address(host: &str) -> Result<String> {
    let (name, port) = match host.strip_prefix('[') {
        Some(v6) => {
            let (addr, after) = v6
                .split_once(']')
                .ok_or_else(|| malformed("an IPv6 sentinel address lacks its `]`"))?;
            (format!("[{addr}]"), after.strip_prefix(':'))
        }
        None => match host.split_once(':') {
            Some((name, port)) => (name.to_owned(), Some(port)),
            None => (host.to_owned(), None),
        },
    };
    if name.is_empty() || name == "[]" {
        return Err(malformed("a sentinel address is empty"));
    }
    let port = match port {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| malformed("a sentinel's port is not a number"))?,
        None => DEFAULT_PORT,
    };
    Ok(format!("{name}:{port}"))
}

fn with_query(url: String, query: &str) -> String {
    if query.is_empty() {
        url
    } else {
        format!("{url}?{query}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_full_form_is_understood() {
        let t = parse("rediss+sentinel://app:pw@s1,s2:26380,[::1]:26381/mymaster/3?cacert=/ca.pem")
            .unwrap();
        assert_eq!(t.master_name, "mymaster");
        assert_eq!(
            t.sentinels,
            [
                "rediss://s1:26379/?cacert=/ca.pem",
                "rediss://s2:26380/?cacert=/ca.pem",
                "rediss://[::1]:26381/?cacert=/ca.pem",
            ]
        );
        assert_eq!(
            t.master.url("10.0.0.5", 6379),
            "rediss://app:pw@10.0.0.5:6379/3?cacert=/ca.pem"
        );
        assert_eq!(
            t.master.url("::1", 6379),
            "rediss://app:pw@[::1]:6379/3?cacert=/ca.pem"
        );
    }

    #[test]
    fn the_short_form_has_defaults() {
        let t = parse("redis+sentinel://127.0.0.1:5000/mymaster").unwrap();
        assert_eq!(t.sentinels, ["redis://127.0.0.1:5000/"]);
        assert_eq!(t.master.url("127.0.0.1", 7000), "redis://127.0.0.1:7000/0");
        assert!(is_sentinel_url("REDIS+SENTINEL://h/m"));
        assert!(!is_sentinel_url("redis://h/"));
    }

    #[test]
    fn malformed_urls_are_refused_without_echoing_them() {
        for url in [
            "redis+sentinel://pw@h1",
            "redis+sentinel://pw@h1/",
            "redis+sentinel://pw@h1:port/m",
            "redis+sentinel://pw@h1,,h2/m",
            "redis+sentinel://pw@h1/m/x",
            "redis+sentinel://pw@h1/m/1/2",
            "redis+sentinel://pw@h1/m#insecure",
        ] {
            let Err(err) = parse(url) else {
                panic!("accepted: {url}");
            };
            assert_eq!(err.kind(), &latch::ErrorKind::InvalidConfig, "{url}");
            assert!(!err.to_string().contains("pw"), "{err}");
        }
    }
}
