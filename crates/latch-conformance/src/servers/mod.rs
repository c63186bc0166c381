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

/// A loopback port nothing listens on right now, for a server a test starts.
///
/// Chosen below the kernel's ephemeral range (`ip_local_port_range`), and never
/// the same twice in one process: a port the kernel hands out for `bind(0)` is
/// also one it may give the next outgoing connection's local end, and with
/// many clients connecting while a server starts, that connection can take
/// the port first (`Address already in use`, the server exits and the test
/// fails as "did not answer"). Ports the kernel never picks by itself can only
/// collide with another test's pick, which binding here rules out within this
/// process. Falls back to `bind(0)` when the ephemeral range leaves no room.
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> Result<u16, String> {
    use std::collections::HashSet;
    use std::hash::{BuildHasher as _, RandomState};
    use std::sync::Mutex;

    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let bindable = |port: u16| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u16, ephemeral_low);
    let mut given = GIVEN
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let given = given.get_or_insert_with(HashSet::new);
    if high > low + 1000 {
        let random = RandomState::new();
        for attempt in 0u32..200 {
            let span = u64::from(high - low);
            let port = low + u16::try_from(random.hash_one(attempt) % span).unwrap_or(0);
            if !given.contains(&port) && bindable(port) {
                given.insert(port);
                return Ok(port);
            }
        }
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("binding a loopback port: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("reading a bound address: {e}"))?
        .port();
    given.insert(port);
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
