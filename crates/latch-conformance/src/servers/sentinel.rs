//! A Redis Sentinel set-up of the test's own: one master, one replica and
//! three sentinels (quorum 2) on free loopback ports, with short failure
//! detection (`down-after-milliseconds` 1000) so a test can kill the master
//! and watch the replica take over within seconds. Everything is killed and
//! its directories removed when dropped, even when the test panics.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::redis::Tls;
use super::{CertFiles, PrivateRedis, free_port, temp_dir};

/// The name the sentinels monitor the master under.
pub const MASTER_NAME: &str = "latchmaster";

/// How many sentinels, and how many must agree the master is down.
const SENTINELS: usize = 3;
const QUORUM: usize = 2;

/// How long each step of the start may take. Generous: on a loaded 2-core CI
/// machine several test binaries start set-ups at once, and sentinels only
/// greet each other every 2 s.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// A private master, replica and three sentinels.
#[derive(Debug)]
pub struct PrivateSentinel {
    // Declared first, so dropped first: sentinels must not fail over while
    // the servers are being stopped.
    sentinels: Vec<SentinelProcess>,
    master: PrivateRedis,
    replica: PrivateRedis,
    certs: Option<CertFiles>,
    dir: PathBuf,
}

/// One `redis-server --sentinel` process.
#[derive(Debug)]
struct SentinelProcess {
    child: Child,
    port: u16,
    /// Its TLS port, in a TLS set-up.
    tls_port: Option<u16>,
}

impl PrivateSentinel {
    /// Start the master, its replica and the sentinels; returns once the
    /// replica is in sync and every sentinel knows the replica and the other
    /// sentinels (so a failover can be agreed on).
    ///
    /// # Errors
    /// Why there is none: no `redis-server`/`redis-cli`, or the set-up was not
    /// ready within a minute.
    pub fn start() -> Result<Self, String> {
        let dir = temp_dir("sentinel")?;
        let master = PrivateRedis::start()?;
        let replica = PrivateRedis::start_with(
            None,
            vec![
                "--replicaof".to_owned(),
                format!("127.0.0.1 {}", master.port()),
            ],
        )?;
        Self::assemble(master, replica, None, dir)
    }

    /// The same over TLS: the master, the replica (replicating over TLS) and
    /// the sentinels (monitoring over TLS) each also serve TLS with
    /// certificates made for the set-up ([`certs`](Self::certs)); the
    /// sentinels name the servers' TLS ports.
    ///
    /// # Errors
    /// As [`start`](Self::start), or no `redis-server` with TLS.
    pub fn start_tls() -> Result<Self, String> {
        let dir = temp_dir("sentinel-tls")?;
        let certs = CertFiles::generate(&dir)?;
        let master = PrivateRedis::start_with(Some(Tls::new(certs.clone(), false)?), Vec::new())?;
        let replica = PrivateRedis::start_with(
            Some(Tls::new(certs.clone(), false)?),
            vec![
                "--tls-replication".to_owned(),
                "yes".to_owned(),
                "--replicaof".to_owned(),
                format!("127.0.0.1 {}", tls_port_of(&master)?),
            ],
        )?;
        Self::assemble(master, replica, Some(certs), dir)
    }

    fn assemble(
        master: PrivateRedis,
        replica: PrivateRedis,
        certs: Option<CertFiles>,
        dir: PathBuf,
    ) -> Result<Self, String> {
        let mut setup = Self {
            sentinels: Vec::with_capacity(SENTINELS),
            master,
            replica,
            certs,
            dir,
        };
        // The replica first: a sentinel learns of replicas from the master's
        // INFO, which it asks for on connecting and then only every 10 s, so
        // a replica that connects after the sentinels would cost 10 s more.
        setup.wait_for(|| setup.replica_in_sync(), "the replica in sync")?;
        for n in 0..SENTINELS {
            let sentinel = setup.start_sentinel(n)?;
            setup.sentinels.push(sentinel);
        }
        setup.wait_for(
            || setup.sentinels_know_everyone(),
            "every sentinel knowing the replica and the other sentinels",
        )?;
        Ok(setup)
    }

    fn start_sentinel(&self, n: usize) -> Result<SentinelProcess, String> {
        let port = free_port()?;
        let dir = self.dir.join(format!("sentinel-{n}"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        // Sentinels rewrite their configuration file as they learn: it must be
        // a writable file of their own.
        let config = dir.join("sentinel.conf");
        let (master, tls_port, tls) = match &self.certs {
            Some(certs) => {
                let tls_port = free_port()?;
                let tls = format!(
                    "tls-port {tls_port}\ntls-replication yes\ntls-auth-clients no\n\
                     tls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\n",
                    certs.server_cert.display(),
                    certs.server_key.display(),
                    certs.ca.display()
                );
                (tls_port_of(&self.master)?, Some(tls_port), tls)
            }
            None => (self.master.port(), None, String::new()),
        };
        let text = format!(
            "port {port}\nbind 127.0.0.1\ndir {dir}\nlogfile {log}\n{tls}\
             sentinel monitor {MASTER_NAME} 127.0.0.1 {master} {QUORUM}\n\
             sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
             sentinel failover-timeout {MASTER_NAME} 3000\n\
             sentinel parallel-syncs {MASTER_NAME} 1\n",
            dir = dir.display(),
            log = dir.join("sentinel.log").display(),
        );
        std::fs::write(&config, text).map_err(|e| format!("writing {}: {e}", config.display()))?;
        let child = Command::new("redis-server")
            .arg(&config)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting redis-server --sentinel: {e}"))?;
        Ok(SentinelProcess {
            child,
            port,
            tls_port,
        })
    }

    /// Poll `ready` every 100 ms until it holds, for at most [`READY_WITHIN`].
    fn wait_for(&self, ready: impl Fn() -> Result<(), String>, what: &str) -> Result<(), String> {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let last = match ready() {
                Ok(()) => return Ok(()),
                Err(why) => why,
            };
            if Instant::now() > deadline {
                return Err(format!(
                    "the private Redis Sentinel set-up was not ready within {} s, \
                     waiting for {what}: {last}",
                    READY_WITHIN.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn replica_in_sync(&self) -> Result<(), String> {
        match cli(self.replica.port(), &["INFO", "replication"]) {
            Some(out) if out.contains("master_link_status:up") => Ok(()),
            Some(_) => Err("master_link_status is not up".to_owned()),
            None => Err("the replica does not answer".to_owned()),
        }
    }

    fn sentinels_know_everyone(&self) -> Result<(), String> {
        for s in &self.sentinels {
            let out = cli(s.port, &["SENTINEL", "MASTER", MASTER_NAME])
                .ok_or_else(|| format!("sentinel on port {} does not answer", s.port))?;
            let fields: Vec<&str> = out.lines().collect();
            let field = |name: &str| {
                fields
                    .iter()
                    .position(|l| *l == name)
                    .and_then(|i| fields.get(i + 1).copied())
                    .unwrap_or("?")
            };
            let (replicas, others) = (field("num-slaves"), field("num-other-sentinels"));
            if replicas != "1" || others != (SENTINELS - 1).to_string() {
                return Err(format!(
                    "sentinel on port {} knows {replicas} replica(s) and {others} other sentinel(s)",
                    s.port
                ));
            }
        }
        Ok(())
    }

    /// `redis+sentinel://127.0.0.1:{p1},127.0.0.1:{p2},127.0.0.1:{p3}/latchmaster`.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        format!("redis+sentinel://{}/{MASTER_NAME}", hosts.join(","))
    }

    /// One `redis://` URL per sentinel.
    pub fn sentinel_urls(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|s| format!("redis://127.0.0.1:{}/", s.port))
            .collect()
    }

    /// `rediss+sentinel://` through the sentinels' TLS ports, for a set-up
    /// started with [`start_tls`](Self::start_tls).
    pub fn tls_url(&self) -> Option<String> {
        let hosts = self
            .sentinels
            .iter()
            .map(|s| s.tls_port.map(|p| format!("127.0.0.1:{p}")))
            .collect::<Option<Vec<String>>>()?;
        Some(format!(
            "rediss+sentinel://{}/{MASTER_NAME}",
            hosts.join(",")
        ))
    }

    /// The certificates of a TLS set-up.
    pub fn certs(&self) -> Option<&CertFiles> {
        self.certs.as_ref()
    }

    /// The URL of the server that was the master at start.
    pub fn first_master_url(&self) -> String {
        self.master.url()
    }

    /// The URL of the server that was the replica at start (the master after
    /// a failover, as it is the only replica).
    pub fn first_replica_url(&self) -> String {
        self.replica.url()
    }

    /// SIGKILL the server that was the master at start.
    pub fn kill_master(&mut self) {
        self.master.kill();
    }

    /// Start the server that was the master at start again, on its port and
    /// with its data, as a replica of the current master (as an operator
    /// would; the sentinels would get there too, but only after some 10 s).
    ///
    /// # Errors
    /// As [`PrivateRedis::resume`], or when no sentinel names a master.
    pub fn revive_first_master(&mut self) -> Result<(), String> {
        let master = self.master_port().ok_or("no sentinel names a master")?;
        self.master.resume()?;
        cli(
            self.master.port(),
            &["REPLICAOF", "127.0.0.1", &master.to_string()],
        )
        .map(drop)
        .ok_or_else(|| "REPLICAOF on the revived master failed".to_owned())
    }

    /// The port of the master as the first sentinel that answers names it.
    pub fn master_port(&self) -> Option<u16> {
        self.sentinels.iter().find_map(|s| {
            let out = cli(
                s.port,
                &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME],
            )?;
            out.lines().nth(1)?.trim().parse().ok()
        })
    }

    /// Wait until the sentinels name the first replica as the master and it
    /// says so itself; returns how long that took.
    ///
    /// # Errors
    /// When that has not happened within `limit`.
    pub fn wait_for_failover(&self, limit: Duration) -> Result<Duration, String> {
        let started = Instant::now();
        loop {
            let promoted = self.master_port() == Some(self.replica.port())
                && cli(self.replica.port(), &["ROLE"])
                    .is_some_and(|out| out.lines().next() == Some("master"));
            if promoted {
                return Ok(started.elapsed());
            }
            if started.elapsed() > limit {
                return Err(format!("no failover within {limit:?}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The TLS port of a server started with TLS.
fn tls_port_of(server: &PrivateRedis) -> Result<u16, String> {
    server
        .tls_url()
        .and_then(|url| url.rsplit(':').next()?.trim_end_matches('/').parse().ok())
        .ok_or_else(|| "the server has no TLS port".to_owned())
}

/// `redis-cli -p port args...`'s output, or `None` when it fails.
fn cli(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("timeout")
        .args(["5", "redis-cli", "-p", &port.to_string()])
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Drop for SentinelProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateSentinel {
    fn drop(&mut self) {
        self.sentinels.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
