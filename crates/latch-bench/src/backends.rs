//! The servers the store configurations talk to: a private redis-server started
//! for the run, and private PostgreSQL schemas/databases dropped afterwards, so
//! the shared servers are never filled.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// A redis-server child on a loopback port, without persistence; killed on drop.
#[derive(Debug)]
pub struct PrivateRedis {
    child: Child,
    /// Its port.
    pub port: u16,
    /// Its TLS port (`port + 1`), so TLS is measured against the same server.
    pub tls_port: u16,
    /// The certificates of its TLS port (made for the run).
    certs: latch_conformance::servers::CertFiles,
    _dir: TempDir,
}

impl PrivateRedis {
    /// Start `redis-server` on `port` and wait until it answers `PING`.
    ///
    /// # Errors
    /// When redis-server is missing or does not answer within 10 s.
    pub fn start(port: u16) -> anyhow::Result<Self> {
        let dir = TempDir::new(&format!("redis-tls-{port}"))?;
        let certs = latch_conformance::servers::CertFiles::generate(&dir.0)
            .map_err(|e| anyhow::anyhow!(e))?;
        let tls_port = port + 1;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--tls-port",
                &tls_port.to_string(),
                "--tls-auth-clients",
                "no",
            ])
            .arg("--tls-cert-file")
            .arg(&certs.server_cert)
            .arg("--tls-key-file")
            .arg(&certs.server_key)
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting redis-server (is it installed?)")?;
        let mut redis = Self {
            child,
            port,
            tls_port,
            certs,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if redis.ping() {
                return Ok(redis);
            }
            if let Some(status) = redis.child.try_wait()? {
                bail!("redis-server on port {port} exited at start ({status}); is the port taken?");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("redis-server on port {port} did not answer PING within 10 s")
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    /// `redis://127.0.0.1:port/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// `rediss://127.0.0.1:tls_port/?cacert=...`: the same server over TLS.
    pub fn tls_url(&self) -> String {
        format!(
            "rediss://127.0.0.1:{}/?cacert={}",
            self.tls_port,
            self.certs.ca.display()
        )
    }

    /// The server's resident memory in bytes (`INFO memory` → `used_memory_rss`).
    pub fn rss(&self) -> Option<u64> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.write_all(b"INFO memory\r\nQUIT\r\n").ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("used_memory_rss:"))
            .and_then(|v| v.trim().parse().ok())
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The PostgreSQL URL: `LATCH_POSTGRES_URL`, else the local test server.
pub fn postgres_url() -> String {
    std::env::var("LATCH_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A plain PostgreSQL client (its connection task runs on the current runtime).
///
/// # Errors
/// When the server cannot be reached.
pub async fn pg_client(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .context("connecting to PostgreSQL")?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// Drop `schema` (and everything in it) if it exists.
///
/// # Errors
/// When the statement fails.
pub async fn drop_schema(url: &str, schema: &str) -> anyhow::Result<()> {
    let client = pg_client(url).await?;
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await?;
    Ok(())
}

/// A private directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Create `latch-bench-{what}-{pid}` under the temp dir (or `$LATCH_BENCH_TMP`).
    ///
    /// # Errors
    /// When it cannot be created.
    pub fn new(what: &str) -> anyhow::Result<Self> {
        let base =
            std::env::var_os("LATCH_BENCH_TMP").map_or_else(std::env::temp_dir, PathBuf::from);
        let dir = base.join(format!("latch-bench-{what}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Remove an SQLite file and its WAL/shared-memory companions.
pub fn remove_sqlite(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}
