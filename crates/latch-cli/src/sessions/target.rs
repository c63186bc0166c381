//! What the admin commands point at: the store (from its URL) and one session
//! (from its ID or store key).

use std::io::Read as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use latch::{SessionId, StoreKey};

/// A session store, from `--store`.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `sqlite:PATH`: a latch-sqlite database file.
    Sqlite(PathBuf),
    /// `redis://...` or `rediss://...`: a latch-redis server; or
    /// `redis+sentinel://...` / `rediss+sentinel://...`: the master that Redis
    /// Sentinel names (one server too, found through the sentinels).
    Redis(String),
    /// `redis-cluster://HOST:PORT,HOST:PORT,...`: a latch-redis store on a
    /// Redis Cluster, as the `redis://` URLs of the nodes given (the others are
    /// discovered from the cluster).
    RedisCluster(Vec<String>),
    /// `postgres://...` or `postgresql://...`: a latch-postgres database.
    Postgres(String),
}

impl std::fmt::Debug for StoreUrl {
    // Server URLs may carry a password: show only the kind.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreUrl::Sqlite(path) => write!(f, "Sqlite({})", path.display()),
            StoreUrl::Redis(_) => f.write_str("Redis(..)"),
            StoreUrl::RedisCluster(nodes) => write!(f, "RedisCluster({} nodes)", nodes.len()),
            StoreUrl::Postgres(_) => f.write_str("Postgres(..)"),
        }
    }
}

impl StoreUrl {
    /// Parse `--store`; the error never repeats the URL (it may hold a password).
    ///
    /// # Errors
    /// A form that is none of these.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        if let Some(path) = text.strip_prefix("sqlite:").filter(|p| !p.is_empty()) {
            return Ok(StoreUrl::Sqlite(PathBuf::from(path)));
        }
        // latch-redis reads the rest of these (TLS parameters, the sentinels).
        if REDIS_SCHEMES.iter().any(|s| text.starts_with(s)) {
            return Ok(StoreUrl::Redis(text.to_owned()));
        }
        if let Some(rest) = text.strip_prefix("redis-cluster://") {
            return cluster_nodes(rest).map(StoreUrl::RedisCluster);
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(StoreUrl::Postgres(text.to_owned()));
        }
        bail!(
            "--store must be sqlite:PATH, redis://HOST:PORT/DB, \
             redis+sentinel://HOST:PORT,HOST:PORT,.../MASTER[/DB], \
             redis-cluster://HOST:PORT,HOST:PORT,... or postgres://USER@HOST/DB \
             (rediss:// and rediss+sentinel:// for TLS; the scheme given is not \
             one of these)"
        )
    }
}

/// The schemes of a store on one Redis server: directly, or the master that
/// Redis Sentinel names; plain or TLS.
const REDIS_SCHEMES: [&str; 4] = [
    "redis://",
    "rediss://",
    "redis+sentinel://",
    "rediss+sentinel://",
];

/// The `redis://` URL of each node in `[USER:PASS@]HOST:PORT,HOST:PORT[/]`, every
/// one with the same credentials. Errors never repeat the text (a password).
fn cluster_nodes(rest: &str) -> anyhow::Result<Vec<String>> {
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (credentials, hosts) = match rest.rsplit_once('@') {
        Some((credentials, hosts)) => (format!("{credentials}@"), hosts),
        None => (String::new(), rest),
    };
    let nodes: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .map(|host| {
            let port = host.rsplit_once(':').map(|(_, port)| port);
            match port.and_then(|p| p.parse::<u16>().ok()) {
                Some(_) if !host.contains(['/', '@', '?', '#']) => {
                    Ok(format!("redis://{credentials}{host}/"))
                }
                _ => bail!(
                    "redis-cluster:// takes a comma-separated list of HOST:PORT \
                     (one node is enough, the others are discovered)"
                ),
            }
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(nodes)
}

/// The store key a session ID argument stands for.
///
/// Accepts the session ID as the cookie carries it (43 base64url characters,
/// optionally as `name=value`), which is hashed here with SHA-256 like latch
/// does, or the 64-hex store key itself. `-` reads it from standard input, which
/// keeps a live session ID out of shell history and process lists. The error
/// never repeats the argument.
///
/// # Errors
/// Unreadable standard input, or text that is neither form.
pub fn store_key(arg: &str) -> anyhow::Result<StoreKey> {
    let text = if arg == "-" {
        let mut text = String::new();
        std::io::stdin()
            .take(4096)
            .read_to_string(&mut text)
            .context("reading the session ID from standard input")?;
        text
    } else {
        arg.to_owned()
    };
    parse_key(text.trim())
}

fn parse_key(text: &str) -> anyhow::Result<StoreKey> {
    let value = text.rsplit_once('=').map_or(text, |(_, v)| v.trim());
    if let Some(id) = SessionId::parse(value) {
        return Ok(id.store_key());
    }
    if let Some(key) = StoreKey::from_hex(text) {
        return Ok(key);
    }
    bail!(
        "the ID is neither a session ID (the cookie value: 43 base64url characters) nor a \
         store key (64 hex digits)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls() {
        assert_eq!(
            StoreUrl::parse("sqlite:/x/s.db").unwrap(),
            StoreUrl::Sqlite("/x/s.db".into())
        );
        assert!(matches!(
            StoreUrl::parse("redis://h:1/0").unwrap(),
            StoreUrl::Redis(_)
        ));
        for url in [
            "rediss://h:1/0?cacert=/ca.pem",
            "redis+sentinel://:pw@s1:26379,s2:26379/mymaster/2",
            "rediss+sentinel://s1,s2/mymaster?cacert=/ca.pem",
        ] {
            assert_eq!(
                StoreUrl::parse(url).unwrap(),
                StoreUrl::Redis(url.into()),
                "{url}"
            );
        }
        assert_eq!(
            format!(
                "{:?}",
                StoreUrl::parse("redis+sentinel://:pw@s1/m").unwrap()
            ),
            "Redis(..)"
        );
        assert!(matches!(
            StoreUrl::parse("postgresql://u@h/d").unwrap(),
            StoreUrl::Postgres(_)
        ));
        for bad in [
            "mysql://root:hunter2@h/d",
            "redis+cluster://root:hunter2@h/d",
        ] {
            let err = StoreUrl::parse(bad).unwrap_err().to_string();
            assert!(!err.contains("hunter2"), "{err}");
            assert!(
                err.starts_with(
                    "--store must be sqlite:PATH, redis://HOST:PORT/DB, \
                     redis+sentinel://HOST:PORT,HOST:PORT,.../MASTER[/DB], "
                ),
                "{err}"
            );
        }
        assert!(StoreUrl::parse("sqlite:").is_err());
        assert_eq!(
            StoreUrl::parse("redis-cluster://a:7001, b:7002/").unwrap(),
            StoreUrl::RedisCluster(vec!["redis://a:7001/".into(), "redis://b:7002/".into()])
        );
        assert_eq!(
            StoreUrl::parse("redis-cluster://u:p@w@a:7001").unwrap(),
            StoreUrl::RedisCluster(vec!["redis://u:p@w@a:7001/".into()])
        );
        for bad in [
            "redis-cluster://",
            "redis-cluster://a",
            "redis-cluster://:secret@a:70001",
            "redis-cluster://a:1/2",
        ] {
            let err = StoreUrl::parse(bad).unwrap_err().to_string();
            assert!(
                err.contains("HOST:PORT") && !err.contains("secret"),
                "{bad}: {err}"
            );
        }
        assert_eq!(
            format!(
                "{:?}",
                StoreUrl::parse("redis-cluster://:pw@a:1,b:2").unwrap()
            ),
            "RedisCluster(2 nodes)"
        );
        assert_eq!(
            format!("{:?}", StoreUrl::Redis("redis://:pw@h/".into())),
            "Redis(..)"
        );
    }

    #[test]
    fn ids_and_keys() {
        let id = SessionId::generate();
        let key = id.store_key();
        assert_eq!(parse_key(&id.encode()).unwrap(), key);
        assert_eq!(
            parse_key(&format!("__Host-session={}", id.encode())).unwrap(),
            key
        );
        assert_eq!(parse_key(&key.to_hex()).unwrap(), key);
        assert_eq!(parse_key(&key.to_hex().to_uppercase()).unwrap(), key);
        let err = parse_key("not-an-id").unwrap_err().to_string();
        assert!(!err.contains("not-an-id"), "{err}");
    }
}
