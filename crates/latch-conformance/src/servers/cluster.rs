//! A Redis Cluster of the test's own: three master nodes (no replicas) on free
//! loopback ports, every slot assigned, optionally serving TLS too (the
//! cluster bus then runs over TLS, and TLS clients are told the nodes' TLS
//! ports). Stopped and removed when dropped.

use std::process::Command;
use std::time::{Duration, Instant};

use super::redis::Tls;
use super::{CertFiles, PrivateRedis, run, temp_dir};

/// How many nodes: the fewest `redis-cli --cluster create` accepts.
const NODES: usize = 3;

/// A private three-node Redis Cluster.
#[derive(Debug)]
pub struct PrivateCluster {
    nodes: Vec<PrivateRedis>,
    certs: Option<CertFiles>,
    dir: std::path::PathBuf,
}

impl PrivateCluster {
    /// Start the nodes, join them and assign the slots; returns once every
    /// node reports `cluster_state:ok`. With `tls`, each node also serves TLS
    /// with certificates made for the cluster ([`certs`](Self::certs)).
    ///
    /// # Errors
    /// Why there is none: no `redis-server`/`redis-cli`, or the cluster did not
    /// form within 20 s.
    pub fn start(tls: bool) -> Result<Self, String> {
        let dir = temp_dir("cluster")?;
        let certs = if tls {
            Some(CertFiles::generate(&dir)?)
        } else {
            None
        };
        let mut extra = vec![
            "--cluster-enabled".to_owned(),
            "yes".to_owned(),
            "--cluster-config-file".to_owned(),
            "nodes.conf".to_owned(),
            "--cluster-node-timeout".to_owned(),
            "2000".to_owned(),
        ];
        if tls {
            extra.extend(["--tls-cluster".to_owned(), "yes".to_owned()]);
        }
        let mut nodes = Vec::with_capacity(NODES);
        for _ in 0..NODES {
            let node_tls = match &certs {
                Some(certs) => Some(Tls::new(certs.clone(), false)?),
                None => None,
            };
            // The bus port defaults to the client port + 10000, which for a
            // free ephemeral port may not exist: name one.
            let mut args = extra.clone();
            args.extend(["--cluster-port".to_owned(), super::free_port()?.to_string()]);
            nodes.push(PrivateRedis::start_with(node_tls, args)?);
        }
        let cluster = Self { nodes, certs, dir };
        // redis-cli waits for the nodes to join without a limit of its own.
        let mut create = Command::new("timeout");
        create.args(["30", "redis-cli", "--cluster", "create"]);
        for node in &cluster.nodes {
            create.arg(format!("127.0.0.1:{}", node.port()));
        }
        run(create.arg("--cluster-yes"))?;
        cluster.wait_until_ok()?;
        Ok(cluster)
    }

    fn wait_until_ok(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let all_ok = self.nodes.iter().all(|node| {
                Command::new("redis-cli")
                    .args(["-p", &node.port().to_string(), "CLUSTER", "INFO"])
                    .output()
                    .is_ok_and(|out| {
                        String::from_utf8_lossy(&out.stdout).contains("cluster_state:ok")
                    })
            });
            if all_ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(
                    "the private Redis Cluster did not reach cluster_state:ok in 20 s".into(),
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The nodes' plain-text URLs.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(PrivateRedis::url).collect()
    }

    /// The nodes' `rediss://` URLs, for a cluster started with TLS.
    pub fn tls_urls(&self) -> Option<Vec<String>> {
        self.nodes.iter().map(PrivateRedis::tls_url).collect()
    }

    /// The certificates of a cluster started with TLS.
    pub fn certs(&self) -> Option<&CertFiles> {
        self.certs.as_ref()
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        self.nodes.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster to test against: the one `LATCH_REDIS_CLUSTER_URLS` names
/// (comma-separated node URLs), or else a [`PrivateCluster`] started for the
/// test, so the plain `cargo test` runs the cluster tests too.
#[derive(Debug)]
pub struct ClusterSite {
    /// The node URLs to give the store.
    pub urls: Vec<String>,
    /// The private cluster, when one was started; stopped when dropped.
    pub private: Option<PrivateCluster>,
}

impl ClusterSite {
    /// The cluster of `LATCH_REDIS_CLUSTER_URLS`, or a private one.
    ///
    /// # Errors
    /// Why neither is available.
    pub fn get() -> Result<Self, String> {
        if let Ok(list) = std::env::var("LATCH_REDIS_CLUSTER_URLS") {
            let urls: Vec<String> = list
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_owned)
                .collect();
            if !urls.is_empty() {
                return Ok(Self {
                    urls,
                    private: None,
                });
            }
        }
        let private = PrivateCluster::start(false).map_err(|e| {
            format!(
                "LATCH_REDIS_CLUSTER_URLS is not set and no private cluster could be \
                 started: {e}"
            )
        })?;
        Ok(Self {
            urls: private.urls(),
            private: Some(private),
        })
    }
}
