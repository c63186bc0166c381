//! A `redis-server` of the test's own, on its own port and directory, with
//! every write fsynced to its append-only file before it is acknowledged, so a
//! test may kill (or freeze) and restart it and expect every acknowledged
//! write back.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{CertFiles, free_port, run, temp_dir};

/// A private `redis-server`; killed and its directory removed when dropped.
#[derive(Debug)]
pub struct PrivateRedis {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    tls: Option<Tls>,
    /// More `redis-server` arguments (a cluster node's).
    extra: Vec<String>,
}

/// The TLS side of a [`PrivateRedis::start_tls`] server.
#[derive(Debug, Clone)]
pub(super) struct Tls {
    port: u16,
    certs: CertFiles,
    require_client_cert: bool,
}

impl PrivateRedis {
    /// Start one on a free loopback port.
    ///
    /// # Errors
    /// Why there is none: `redis-server` is not installed or did not start.
    pub fn start() -> Result<Self, String> {
        Self::start_with(None, Vec::new())
    }

    /// Start one with TLS set up as `tls` says (if at all) and `extra`
    /// arguments for `redis-server`.
    pub(super) fn start_with(tls: Option<Tls>, extra: Vec<String>) -> Result<Self, String> {
        Command::new("redis-server")
            .arg("--version")
            .output()
            .map_err(|e| format!("redis-server is not installed: {e}"))?;
        let port = free_port()?;
        let dir = temp_dir(&format!("redis-{port}"))?;
        let server = Self {
            child: None,
            port,
            dir,
            tls,
            extra,
        };
        server.first_start()
    }

    /// A plain server replicating `master`.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn start_replica_of(master: &PrivateRedis) -> Result<Self, String> {
        Self::start_with(
            None,
            vec![
                "--replicaof".to_owned(),
                format!("127.0.0.1 {}", master.port()),
            ],
        )
    }

    /// The plain-text port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Start one that also serves TLS on a second port ([`tls_url`](Self::tls_url)),
    /// with certificates made for it (see [`CertFiles`]); with
    /// `require_client_cert`, TLS clients must present a certificate signed by
    /// the test CA. It listens on `127.0.0.1` and `127.0.0.2`, and its certificate
    /// names only the first: connecting to the second proves host names are
    /// checked. The plain port stays open for the test's own checks.
    ///
    /// # Errors
    /// Why there is none: no `redis-server` with TLS, or it did not start.
    pub fn start_tls(require_client_cert: bool) -> Result<Self, String> {
        let port = free_port()?;
        let dir = temp_dir(&format!("redis-tls-{port}"))?;
        let certs = CertFiles::generate(&dir)?;
        let server = Self {
            child: None,
            port,
            dir,
            tls: Some(Tls::new(certs, require_client_cert)?),
            extra: Vec::new(),
        };
        server.first_start()
    }

    /// [`resume`](Self::resume) for the first time; when a port turns out to
    /// be taken after all (by a process outside this one), try fresh ones.
    fn first_start(mut self) -> Result<Self, String> {
        let mut attempts = 0;
        loop {
            match self.resume() {
                Ok(()) => return Ok(self),
                Err(why) if why.contains("Address already in use") && attempts < 3 => {
                    attempts += 1;
                    self.kill();
                    self.port = free_port()?;
                    if let Some(tls) = &mut self.tls {
                        tls.port = free_port()?;
                    }
                }
                Err(why) => return Err(why),
            }
        }
    }

    /// The certificates of a [`start_tls`](Self::start_tls) server.
    pub fn certs(&self) -> Option<&CertFiles> {
        self.tls.as_ref().map(|t| &t.certs)
    }

    /// `rediss://127.0.0.1:{tls port}/` for a [`start_tls`](Self::start_tls) server.
    pub fn tls_url(&self) -> Option<String> {
        self.tls_url_via("127.0.0.1")
    }

    /// The TLS URL carrying the test CA and the client certificate and key in
    /// its query (`?cacert=...&cert=...&key=...`), as a URL-only tool takes it.
    pub fn tls_url_with_files(&self) -> Option<String> {
        let certs = self.certs()?;
        Some(format!(
            "{}?cacert={}&cert={}&key={}",
            self.tls_url()?,
            certs.ca.display(),
            certs.client_cert.display(),
            certs.client_key.display()
        ))
    }

    /// The TLS URL through another address of the server, such as `127.0.0.2`,
    /// which its certificate does not name.
    pub fn tls_url_via(&self, host: &str) -> Option<String> {
        let tls = self.tls.as_ref()?;
        Some(format!("rediss://{host}:{}/", tls.port))
    }

    /// Where to connect.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Start the server (again) on the same port and directory; returns once it
    /// has loaded its append-only file and answers `PING`.
    ///
    /// # Errors
    /// When it cannot be started or does not answer within 10 s.
    pub fn resume(&mut self) -> Result<(), String> {
        let mut command = Command::new("redis-server");
        command.args(["--port", &self.port.to_string()]);
        if let Some(tls) = &self.tls {
            command
                .args(["--bind", "127.0.0.1 127.0.0.2"])
                .args(["--tls-port", &tls.port.to_string()])
                .arg("--tls-cert-file")
                .arg(&tls.certs.server_cert)
                .arg("--tls-key-file")
                .arg(&tls.certs.server_key)
                .arg("--tls-ca-cert-file")
                .arg(&tls.certs.ca)
                .args([
                    "--tls-auth-clients",
                    if tls.require_client_cert { "yes" } else { "no" },
                ]);
        } else {
            command.args(["--bind", "127.0.0.1"]);
        }
        command.args(&self.extra);
        let child = command
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .args(["--save", ""])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.dir.join("redis.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting redis-server: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return Err(format!(
                    "the private redis-server on port {} exited ({status}); the end of its log: {}",
                    self.port,
                    self.log_tail()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the private redis-server on port {} did not answer within 10 s; \
                     the end of its log: {}",
                    self.port,
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// The last lines of the server's log, for an error message.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    }

    /// SIGKILL: no shutdown, no final save; what was acknowledged is already in
    /// the append-only file.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: the kernel still accepts connections and data, but nothing
    /// answers, as with a server that hangs or a network that drops replies.
    ///
    /// # Errors
    /// When the server is not running or `kill` fails.
    pub fn freeze(&self) -> Result<(), String> {
        self.signal("STOP")
    }

    /// SIGCONT: let a frozen server run again.
    ///
    /// # Errors
    /// When the server is not running or `kill` fails.
    pub fn thaw(&self) -> Result<(), String> {
        self.signal("CONT")
    }

    fn signal(&self, name: &str) -> Result<(), String> {
        let pid = self
            .child
            .as_ref()
            .ok_or("the private redis-server is not running")?
            .id()
            .to_string();
        run(Command::new("kill").arg(format!("-{name}")).arg(pid))
    }

    /// Whether a fresh connection gets `+PONG` (not `-LOADING`, not refused).
    pub fn answers(&self) -> bool {
        let Ok(mut conn) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
        if conn.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut reply = [0u8; 7];
        conn.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
    }
}

impl Tls {
    /// TLS on a free port with `certs`.
    pub(super) fn new(certs: CertFiles, require_client_cert: bool) -> Result<Self, String> {
        Ok(Self {
            port: free_port()?,
            certs,
            require_client_cert,
        })
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        // A frozen server would not die of SIGKILL any later, but its child
        // handle must be reaped either way.
        let _ = self.thaw();
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::PrivateRedis;

    /// A server whose port was taken while it was down says so, with its
    /// log, at once: not "did not answer" after a 10 s wait.
    #[test]
    fn a_taken_port_is_named_from_the_servers_log() {
        let Some(mut server) = PrivateRedis::start()
            .map_or_else(|why| crate::skip_or_fail("redis-server", &why), Some)
        else {
            return;
        };
        server.kill();
        let _squatter = std::net::TcpListener::bind(("127.0.0.1", server.port())).unwrap();
        let started = std::time::Instant::now();
        let why = server.resume().unwrap_err();
        assert!(why.contains("Address already in use"), "{why}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{why}"
        );
    }

    /// Ports handed out are outside the kernel's ephemeral range and never
    /// repeat within a process.
    #[test]
    fn free_ports_do_not_repeat_and_avoid_the_ephemeral_range() {
        let low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|r| r.split_whitespace().next()?.parse().ok())
            .unwrap_or(32768);
        let ports: Vec<u16> = (0..200)
            .map(|_| super::super::free_port().unwrap())
            .collect();
        let distinct: std::collections::HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len());
        if low > 11_000 {
            assert!(ports.iter().all(|&p| p < low), "{ports:?}");
        }
    }
}
