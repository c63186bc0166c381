//! Redis: the keyspace of a latch-redis store, read with `SCAN` (every session
//! hash under the prefix) and the expiry index (what a purge would remove).
//! On a Redis Cluster every master is scanned, and each session is read from
//! the master that listed it.
//!
//! Layout (see latch-redis): `{prefix}s:{hex key}` hashes with fields `rec`
//! (the record as JSON), `seen`, `exp` and `user`; `{prefix}expiry`, a sorted
//! set of hex keys scored by expiry.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Context as _;
use latch::{Record, StoreKey, UnixTime};
use redis::aio::MultiplexedConnection;
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Client, ConnectionAddr, IntoConnectionInfo};

use super::{Row, Stats};

/// Keys asked for per `SCAN` call.
const SCAN_COUNT: usize = 1000;
/// Per-command timeout: an admin command should fail, not hang.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Connections to the nodes holding a store's keys, and its key prefix.
pub struct RedisInventory {
    /// The server, or each master of the cluster: `SCAN` and the `HMGET`s of
    /// what it listed go to each.
    nodes: Vec<MultiplexedConnection>,
    /// Where a command on one named key goes (the expiry index).
    router: Router,
    prefix: String,
}

enum Router {
    Server(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for RedisInventory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisInventory")
            .field("prefix", &self.prefix)
            .field("nodes", &self.nodes.len())
            .finish_non_exhaustive()
    }
}

/// One session's fields, in the order asked for (`None` when missing).
type Fields = Vec<Option<String>>;

/// A connection to the server at `info`, with the admin timeouts.
async fn connect_node(info: redis::ConnectionInfo) -> anyhow::Result<MultiplexedConnection> {
    connect_client(Client::open(info).context("the Redis URL is not valid")?).await
}

/// A connection through `client`, with the admin timeouts.
async fn connect_client(client: Client) -> anyhow::Result<MultiplexedConnection> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(TIMEOUT))
        .set_response_timeout(Some(TIMEOUT));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .context("connecting to Redis")
}

impl RedisInventory {
    /// Connect to the server at `url` for the store using `prefix`; for a
    /// `redis+sentinel://` URL, to the master the sentinels name now (one
    /// command runs on one master, so a failover mid-run fails it, not more).
    ///
    /// # Errors
    /// A bad URL, an unreachable server, or a master name no sentinel knows
    /// (the message never holds the URL).
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        // The store's own reading of the URL: rediss://, ?cacert=, ?cert=&key=,
        // and the Sentinel forms.
        let client = latch_redis::master_client(url).await?;
        let conn = connect_client(client).await?;
        Ok(Self {
            nodes: vec![conn.clone()],
            router: Router::Server(conn),
            prefix: prefix.to_owned(),
        })
    }

    /// Connect to the Redis Cluster that `urls` (one or more of its nodes)
    /// belong to: every master the first reachable node knows of is scanned,
    /// with the credentials of that node's URL.
    ///
    /// # Errors
    /// Bad URLs, no reachable node, or a node that is not in cluster mode.
    pub async fn connect_cluster(urls: &[String], prefix: &str) -> anyhow::Result<Self> {
        let router = ClusterClientBuilder::new(urls.iter().map(String::as_str))
            .connection_timeout(TIMEOUT)
            .response_timeout(TIMEOUT)
            .build()
            .context("a Redis node URL is not valid")?
            .get_async_connection()
            .await
            .context("connecting to the Redis Cluster")?;
        let mut last_error = None;
        for url in urls {
            let info = url
                .as_str()
                .into_connection_info()
                .context("a Redis node URL is not valid")?;
            let described = async {
                let mut seed = connect_node(info.clone()).await?;
                let nodes: String = redis::cmd("CLUSTER")
                    .arg("NODES")
                    .query_async(&mut seed)
                    .await
                    .context("asking a node for the cluster's masters (CLUSTER NODES)")?;
                Ok::<_, anyhow::Error>(nodes)
            };
            match described.await {
                Ok(description) => {
                    let mut nodes = Vec::new();
                    for (host, port) in masters(&description) {
                        let addr = ConnectionAddr::Tcp(host, port);
                        nodes.push(connect_node(info.clone().set_addr(addr)).await?);
                    }
                    anyhow::ensure!(!nodes.is_empty(), "the cluster reports no master");
                    return Ok(Self {
                        nodes,
                        router: Router::Cluster(router),
                        prefix: prefix.to_owned(),
                    });
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("no cluster node given")))
    }

    pub async fn stats(&self, now: UnixTime) -> anyhow::Result<Stats> {
        let mut stats = Stats::default();
        let mut users = BTreeSet::new();
        for (_, fields) in self.sessions(&["exp", "user"]).await? {
            let [exp, user] = <[Option<String>; 2]>::try_from(fields).unwrap_or_default();
            // No `exp`: Redis expired the session by TTL since the scan.
            let Some(exp) = exp.and_then(|e| e.parse::<i64>().ok()) else {
                continue;
            };
            stats.total += 1;
            if exp <= now {
                stats.expired += 1;
                continue;
            }
            stats.live += 1;
            match user {
                Some(user) => {
                    users.insert(user);
                }
                None => stats.anonymous += 1,
            }
        }
        stats.users = users.len() as u64;
        Ok(stats)
    }

    pub async fn list(&self, now: UnixTime, limit: usize) -> anyhow::Result<Vec<Row>> {
        let mut rows = Vec::new();
        for (key, fields) in self.sessions(&["rec", "seen", "exp"]).await? {
            let [rec, seen, exp] = <[Option<String>; 3]>::try_from(fields).unwrap_or_default();
            let number = |v: Option<String>| v.and_then(|v| v.parse::<i64>().ok());
            let (Some(rec), Some(seen), Some(exp)) = (rec, number(seen), number(exp)) else {
                continue; // expired by TTL since the scan
            };
            let record: Record = serde_json::from_str(&rec)
                .with_context(|| format!("the stored session {key} is not a latch record"))?;
            rows.push(Row {
                key,
                user_id: record.user_id,
                created_at: record.created_at,
                last_seen: seen,
                expires_at: exp,
                expired: exp <= now,
                user_agent: record.user_agent,
                ip: record.ip,
                device_proved_at: None,
            });
        }
        rows.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then(a.key.cmp(&b.key)));
        rows.truncate(limit);
        Ok(rows)
    }

    /// What `purge_expired(now, ..)` would remove and count: the sessions
    /// named by expiry-index entries due at `now` that are gone (dropped by
    /// their TTL) or expired at `now`. An entry can come due before its session
    /// does (a save that extends a session leaves the entry where it was), so
    /// the entries alone overcount: each is checked against its session.
    pub async fn purgeable(&self, now: UnixTime) -> anyhow::Result<u64> {
        let mut due = redis::cmd("ZRANGEBYSCORE");
        due.arg(format!("{}expiry", self.prefix))
            .arg("-inf")
            .arg(latch_redis::expiry_due_before(now));
        let due: Vec<String> = match &self.router {
            Router::Server(conn) => due.query_async(&mut conn.clone()).await,
            Router::Cluster(conn) => due.query_async(&mut conn.clone()).await,
        }
        .context("reading the expiry index")?;
        let due: BTreeSet<StoreKey> = due.iter().filter_map(|m| StoreKey::from_hex(m)).collect();
        if due.is_empty() {
            return Ok(0);
        }
        let live: BTreeSet<StoreKey> = self
            .sessions(&["exp"])
            .await?
            .into_iter()
            .filter(|(_, fields)| {
                let exp = fields.first().cloned().flatten();
                exp.and_then(|e| e.parse::<UnixTime>().ok())
                    .is_some_and(|exp| exp > now)
            })
            .map(|(key, _)| key)
            .collect();
        Ok(due.difference(&live).count() as u64)
    }

    /// `fields` of every session hash under the prefix, on every node. `SCAN`
    /// visits a node's whole keyspace, a thousand keys per round trip; each
    /// batch's fields are read from the same node in one pipelined round trip.
    async fn sessions(&self, fields: &[&str]) -> anyhow::Result<Vec<(StoreKey, Fields)>> {
        let pattern = format!("{}s:*", glob_escape(&self.prefix));
        let mut found = Vec::new();
        for node in &self.nodes {
            let mut cursor: u64 = 0;
            loop {
                let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(SCAN_COUNT)
                    .query_async(&mut node.clone())
                    .await
                    .context("scanning for sessions")?;
                let tail = |k: &String| k.get(self.prefix.len() + 2..).and_then(StoreKey::from_hex);
                let keys: Vec<StoreKey> = batch.iter().filter_map(tail).collect();
                found.extend(
                    keys.iter()
                        .copied()
                        .zip(self.read(node, &keys, fields).await?),
                );
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        // SCAN may return a key more than once.
        found.sort_by_key(|(key, _)| *key);
        found.dedup_by_key(|(key, _)| *key);
        Ok(found)
    }

    /// `HMGET` of `fields` on each session in one pipeline to `node`.
    async fn read(
        &self,
        node: &MultiplexedConnection,
        keys: &[StoreKey],
        fields: &[&str],
    ) -> anyhow::Result<Vec<Fields>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for key in keys {
            pipe.cmd("HMGET")
                .arg(format!("{}s:{}", self.prefix, key.to_hex()))
                .arg(fields);
        }
        pipe.query_async(&mut node.clone())
            .await
            .context("reading sessions")
    }
}

/// The addresses of the masters that serve slots, from `CLUSTER NODES` output
/// (`id host:port@cport[,hostname] flags master ping pong epoch link slot...`).
fn masters(description: &str) -> Vec<(String, u16)> {
    description
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let flags = fields.get(2)?.split(',').collect::<Vec<_>>();
            let serving = fields.len() > 8
                && flags.contains(&"master")
                && !flags
                    .iter()
                    .any(|f| matches!(*f, "fail" | "handshake" | "noaddr"));
            if !serving {
                return None;
            }
            let address = fields.get(1)?.split(['@', ',']).next()?;
            let (host, port) = address.rsplit_once(':')?;
            Some((host.to_owned(), port.parse().ok()?)).filter(|(host, _)| !host.is_empty())
        })
        .collect()
}

/// `prefix` with the glob characters of `SCAN MATCH` escaped.
fn glob_escape(prefix: &str) -> String {
    prefix
        .chars()
        .flat_map(|c| {
            let escape = matches!(c, '*' | '?' | '[' | ']' | '\\').then_some('\\');
            escape.into_iter().chain(std::iter::once(c))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masters_serving_slots_are_found() {
        let nodes = "\
a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460
a2 127.0.0.1:7002@17002,node2.example master - 0 1700000000000 2 connected 5461-10922
a3 ::1:7003@17003 master - 0 1700000000000 3 connected 10923-16383
r1 127.0.0.1:7004@17004 slave a1 0 1700000000000 1 connected
f1 127.0.0.1:7005@17005 master,fail - 0 1700000000000 4 disconnected 100
e1 127.0.0.1:7006@17006 master - 0 1700000000000 5 connected
n1 :0@0 master,noaddr - 0 0 6 disconnected 200
";
        assert_eq!(
            masters(nodes),
            [
                ("127.0.0.1".to_owned(), 7001),
                ("127.0.0.1".to_owned(), 7002),
                ("::1".to_owned(), 7003)
            ]
        );
    }

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(glob_escape("latch:"), "latch:");
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
