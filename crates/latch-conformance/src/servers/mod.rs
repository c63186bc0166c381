//! Private servers for tests that crash, freeze or restart their store's server:
//! a `redis-server` and a PostgreSQL cluster of the test's own, on free loopback
//! ports, in temporary directories removed when dropped; optionally serving
//! TLS with certificates made at test time ([`CertFiles`]). The shared servers
//! (`LATCH_REDIS_URL`, `LATCH_POSTGRES_URL`) are never touched.

mod certs;
mod cluster;
mod postgres;
mod redis;
mod sentinel;

use std::process::Command;

pub use certs::CertFiles;
pub use cluster::{ClusterSite, PrivateCluster};
pub use postgres::PrivatePostgres;
pub use redis::PrivateRedis;
pub use sentinel::{MASTER_NAME, PrivateSentinel};

/// A loopback port nothing listens on right now.
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("binding a loopback port: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("reading a bound address: {e}"))?
        .port();
    Ok(port)
}

/// A fresh, empty temporary directory whose name says what made it.
///
/// # Errors
/// When it cannot be created.
pub fn temp_dir(tag: &str) -> Result<std::path::PathBuf, String> {
    let dir = std::env::temp_dir().join(format!(
        "latch-{tag}-{}-{}",
        std::process::id(),
        &latch::SessionId::generate().store_key().to_hex()[..8]
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Run `command`; its output is the error when it fails.
fn run(command: &mut Command) -> Result<(), String> {
    let out = command
        .output()
        .map_err(|e| format!("running {command:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
