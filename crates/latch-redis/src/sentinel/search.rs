//! [`Finder`]: one search for the master through the sentinels, shared by the
//! store's [`SentinelConn`](super::SentinelConn) (which searches again after
//! a failover) and [`master_client`] (which searches once, for tools).

use std::time::Duration;

use futures_util::future::join_all;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ErrorKind, RedisError, Value};

use super::url::SentinelTarget;
use crate::tls::{self, TlsSettings};

/// The sentinels of one target, and how to reach the master they name.
pub(crate) struct Finder {
    sentinels: Vec<redis::Client>,
    target: SentinelTarget,
    tls: TlsSettings,
    config: AsyncConnectionConfig,
    /// The most one step of a search (one sentinel's answer, one check of a
    /// master) may take.
    step_timeout: Duration,
}

/// The master a search found: a client for it, and a connection already
/// checked to be the master's.
pub(crate) struct Found {
    pub(crate) client: redis::Client,
    pub(crate) conn: MultiplexedConnection,
}

impl Finder {
    /// Check `target` and `tls` (so a mistake is a configuration error at
    /// start-up, not a 503 later) and make the sentinels' clients.
    ///
    /// # Errors
    /// [`latch::ErrorKind::InvalidConfig`] for no sentinel, or a URL or TLS
    /// setting that is not valid.
    pub(crate) fn new(
        target: SentinelTarget,
        tls: TlsSettings,
        connection_timeout: Duration,
        response_timeout: Duration,
    ) -> latch::Result<Self> {
        if target.sentinels.is_empty() {
            return Err(latch::Error::invalid_config(
                "Redis Sentinel needs the address of at least one sentinel",
            ));
        }
        let mut sentinels = Vec::with_capacity(target.sentinels.len());
        for url in &target.sentinels {
            sentinels.push(tls::client(tls::prepare(url, &tls)?)?);
        }
        // The master's URL is checked with a stand-in address.
        tls::client(tls::prepare(&target.master.url("127.0.0.1", 6379), &tls)?)?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connection_timeout))
            .set_response_timeout(Some(response_timeout));
        Ok(Self {
            sentinels,
            target,
            tls,
            config,
            step_timeout: connection_timeout,
        })
    }

    /// The name the sentinels monitor the master under.
    pub(crate) fn master_name(&self) -> &str {
        &self.target.master_name
    }

    /// The database of the master connection.
    pub(crate) fn db(&self) -> i64 {
        i64::from(self.target.master.db)
    }

    /// The start-up error for a failed search: an unknown master name is a
    /// configuration error, anything else the store's.
    pub(crate) fn startup_error(&self, err: RedisError) -> latch::Error {
        let name = self.master_name();
        if err.kind() == ErrorKind::MasterNameNotFoundBySentinel {
            return latch::Error::invalid_config(format!(
                "no Redis sentinel knows a master named {name:?}: check the name \
                 after the sentinels in the URL (it must match `sentinel monitor \
                 <name> ...` in the sentinels' configuration)"
            ))
            .with_source(err);
        }
        tls::connect_error(self.target.master.tls, err).context(format!(
            "finding the Redis master {name:?} through Sentinel"
        ))
    }

    /// Ask every sentinel at once for the master's address, then connect to
    /// the first address (most often named first) whose server says it is
    /// the master. Each step is bounded by the connection timeout, so a
    /// search takes at most twice that.
    pub(crate) async fn search(&self) -> Result<Found, RedisError> {
        let answers = join_all(self.sentinels.iter().map(|s| self.ask(s))).await;
        let mut addresses: Vec<(String, u16)> = Vec::new();
        let mut last_err = None;
        for answer in answers {
            match answer {
                Ok(Some(addr)) if !addresses.contains(&addr) => addresses.push(addr),
                Ok(_) => {}
                Err(err) => last_err = Some(err),
            }
        }
        if addresses.is_empty() {
            return Err(last_err.unwrap_or_else(|| {
                RedisError::from((
                    ErrorKind::MasterNameNotFoundBySentinel,
                    "no sentinel knows a master by this name",
                ))
            }));
        }
        let checks = join_all(addresses.iter().map(|(h, p)| self.check_master(h, *p))).await;
        let mut last_err = None;
        for check in checks {
            match check {
                Ok(found) => return Ok(found),
                Err(err) => last_err = Some(err),
            }
        }
        // OK because `addresses` is not empty, so neither is `checks`.
        Err(last_err.expect("one check per address"))
    }

    /// One sentinel's answer to `SENTINEL GET-MASTER-ADDR-BY-NAME`.
    async fn ask(&self, sentinel: &redis::Client) -> Result<Option<(String, u16)>, RedisError> {
        self.step(async {
            let mut conn = sentinel
                .get_multiplexed_async_connection_with_config(&self.config)
                .await?;
            redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(self.master_name())
                .query_async(&mut conn)
                .await
        })
        .await
    }

    /// Connect to `host:port` and keep the connection if `ROLE` says master:
    /// a sentinel that has not yet heard of a failover names the old master,
    /// which may have come back as a replica.
    async fn check_master(&self, host: &str, port: u16) -> Result<Found, RedisError> {
        let url = self.target.master.url(host, port);
        let client = tls::client(tls::prepare(&url, &self.tls).map_err(config_error)?)
            .map_err(config_error)?;
        self.step(async {
            let mut conn = client
                .get_multiplexed_async_connection_with_config(&self.config)
                .await?;
            let role: Vec<Value> = redis::cmd("ROLE").query_async(&mut conn).await?;
            match role.first() {
                Some(Value::BulkString(r)) if r == b"master" => Ok(conn),
                _ => Err(RedisError::from((
                    ErrorKind::Io,
                    "the server the sentinels name is not (or no longer) the master",
                    format!("{host}:{port}"),
                ))),
            }
        })
        .await
        .map(|conn| Found { client, conn })
    }

    async fn step<T>(
        &self,
        work: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, RedisError> {
        match tokio::time::timeout(self.step_timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no answer within the connection timeout",
            ))),
        }
    }
}

/// A master URL that does not parse, met during a search (it parsed at
/// start-up with a stand-in address, so this is a sentinel's odd answer).
fn config_error(err: latch::Error) -> RedisError {
    RedisError::from((
        ErrorKind::InvalidClientConfig,
        "the master address from Sentinel makes no valid URL",
        err.to_string(),
    ))
}

/// A `redis::Client` for the master that `target`'s sentinels name now,
/// found by one search bounded by about twice `step_timeout` (see
/// [`crate::master_client`]).
///
/// # Errors
/// As [`Finder::new`]; [`latch::ErrorKind::InvalidConfig`] when every
/// sentinel that answered knows no master by that name;
/// [`latch::ErrorKind::Store`] when no sentinel or no master answers in time.
pub(crate) async fn master_client(
    target: SentinelTarget,
    tls: TlsSettings,
    step_timeout: Duration,
) -> latch::Result<redis::Client> {
    let finder = Finder::new(target, tls, step_timeout, step_timeout)?;
    // Each step of the search is bounded already; this outer bound, a little
    // later so the steps' own errors come first, holds whatever the steps miss.
    let limit = step_timeout * 2 + Duration::from_millis(500);
    match tokio::time::timeout(limit, finder.search()).await {
        Ok(Ok(found)) => Ok(found.client),
        Ok(Err(err)) => Err(finder.startup_error(err)),
        Err(elapsed) => Err(latch::Error::store(
            format!(
                "finding the Redis master {:?} through Sentinel: no answer within {} ms",
                finder.master_name(),
                limit.as_millis()
            ),
            elapsed,
        )),
    }
}
