//! A PostgreSQL server of the test's own, on a free loopback port, that the test
//! may crash, freeze and restart. Stopped and deleted when dropped, even if the
//! test fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{CertFiles, free_port, run, temp_dir};

/// A running (or stopped) private server and its data directory.
#[derive(Debug)]
pub struct PrivatePostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    /// PostgreSQL refuses to run as root: run its tools as `postgres` then.
    as_postgres: bool,
    tls: Option<Tls>,
}

/// The TLS set-up of a [`PrivatePostgres::start_tls`] server.
#[derive(Debug)]
struct Tls {
    certs: CertFiles,
    require_client_cert: bool,
}

impl PrivatePostgres {
    /// `initdb` a fresh cluster in a temporary directory and start it.
    ///
    /// `Err` says why no server could be had (no binaries, no `postgres` user, ...).
    pub fn start() -> Result<Self, String> {
        Self::start_with(None)
    }

    /// Start one that accepts only TLS connections over TCP, with certificates
    /// made for it (see [`CertFiles`]); with `require_client_cert`, clients must
    /// also present a certificate signed by the test CA. It listens on
    /// `127.0.0.1` and `127.0.0.2`, and its certificate names only the first.
    ///
    /// `Err` says why no server could be had.
    pub fn start_tls(require_client_cert: bool) -> Result<Self, String> {
        Self::start_with(Some(require_client_cert))
    }

    fn start_with(tls: Option<bool>) -> Result<Self, String> {
        let bin = find_bin()?;
        let as_postgres = running_as_root()?;
        let port = free_port()?;
        let dir = temp_dir(&format!("pg-{port}"))?;
        // From here on, Drop stops the server and removes the directory.
        let mut server = Self {
            bin,
            dir,
            port,
            as_postgres,
            tls: None,
        };
        if let Some(require_client_cert) = tls {
            server.tls = Some(Tls {
                certs: CertFiles::generate(&server.dir)?,
                require_client_cert,
            });
        }
        if as_postgres {
            run(Command::new("chown")
                .arg("-R")
                .arg("postgres:")
                .arg(&server.dir))?;
        }
        let data = server.data();
        server.tool(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        if let Some(tls) = &server.tls {
            server.only_tls(tls)?;
        }
        server.resume()?;
        Ok(server)
    }

    /// Replace `pg_hba.conf` so that TCP clients must use TLS (and present a
    /// client certificate when required); the Unix socket stays open to the
    /// server's own tools.
    fn only_tls(&self, tls: &Tls) -> Result<(), String> {
        let client = if tls.require_client_cert {
            " clientcert=verify-ca"
        } else {
            ""
        };
        let hba = format!(
            "local all all trust\n\
             hostssl all all 127.0.0.0/8 trust{client}\n"
        );
        let path = self.dir.join("data").join("pg_hba.conf");
        std::fs::write(&path, hba).map_err(|e| format!("writing {}: {e}", path.display()))?;
        if self.as_postgres {
            run(Command::new("chown").arg("postgres:").arg(&path))?;
        }
        Ok(())
    }

    /// The certificates of a [`start_tls`](Self::start_tls) server.
    pub fn certs(&self) -> Option<&CertFiles> {
        self.tls.as_ref().map(|t| &t.certs)
    }

    /// The URL through `host` (`127.0.0.1`, or `127.0.0.2`, which the
    /// certificate does not name) with extra query parameters such as
    /// `sslmode=verify-full&sslrootcert=...`.
    pub fn url_via(&self, host: &str, query: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres?{query}", self.port)
    }

    /// Where to connect: the `postgres` database as the `postgres` superuser.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Kill the server the way a crash or power cut would: no shutdown
    /// checkpoint, every connection dropped.
    pub fn crash(&self) -> Result<(), String> {
        self.tool(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        )
    }

    /// Start the server (again) on the same port and data directory; returns once
    /// it accepts connections, after crash recovery.
    pub fn resume(&self) -> Result<(), String> {
        let mut options = format!("-p {} -k {}", self.port, self.dir.display());
        match &self.tls {
            None => options.push_str(" -c listen_addresses=127.0.0.1"),
            Some(tls) => options.push_str(&format!(
                " -c listen_addresses=127.0.0.1,127.0.0.2 -c ssl=on \
                 -c ssl_cert_file={} -c ssl_key_file={} -c ssl_ca_file={}",
                tls.certs.server_cert.display(),
                tls.certs.server_key.display(),
                tls.certs.ca.display()
            )),
        }
        let log = self.dir.join("server.log").display().to_string();
        self.tool(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
    }

    /// Stop every process of the server (SIGSTOP) without closing anything: the
    /// kernel still accepts connections and data, but nothing answers, as with a
    /// server that hangs or a network that drops replies.
    pub fn freeze(&self) -> Result<(), String> {
        // The postmaster first, so it starts no new process meanwhile.
        self.signal("STOP", &self.processes()?)
    }

    /// Let a frozen server run again.
    pub fn thaw(&self) -> Result<(), String> {
        let mut pids = self.processes()?;
        pids.reverse();
        self.signal("CONT", &pids)
    }

    /// The postmaster's process ID and those of its children.
    fn processes(&self) -> Result<Vec<String>, String> {
        let pid_file = self.dir.join("data").join("postmaster.pid");
        let text = std::fs::read_to_string(&pid_file)
            .map_err(|e| format!("reading {}: {e}", pid_file.display()))?;
        let postmaster = text.lines().next().unwrap_or_default().trim().to_owned();
        let mut pids = vec![postmaster.clone()];
        pids.extend(children_of(&postmaster));
        Ok(pids)
    }

    /// Signal the server's own processes, by ID.
    fn signal(&self, signal: &str, pids: &[String]) -> Result<(), String> {
        run(Command::new("kill").arg(format!("-{signal}")).args(pids))
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn tool(&self, name: &str, args: &[&str]) -> Result<(), String> {
        let path = self.bin.join(name);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        // Keep the tools from wandering into the caller's directory, which the
        // `postgres` user may not be allowed to enter.
        run(command.args(args).current_dir(&self.dir))
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // A frozen server would ignore the stop request until thawed.
        let _ = self.thaw();
        let _ = self.tool("pg_ctl", &["-D", &self.data(), "-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` that has `pg_ctl`.
fn find_bin() -> Result<PathBuf, String> {
    let root = Path::new("/usr/lib/postgresql");
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .map_err(|e| {
            format!(
                "no PostgreSQL server binaries under {}: {e}",
                root.display()
            )
        })?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("pg_ctl").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| format!("no pg_ctl under {}/*/bin", root.display()))
}

/// Process IDs whose parent is `parent`, from `/proc`.
fn children_of(parent: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // `pid (name) state ppid ...`; the name may contain spaces, so read
            // after its closing parenthesis.
            let after_name = &stat[stat.rfind(')')? + 1..];
            let ppid = after_name.split_whitespace().nth(1)?;
            (ppid == parent).then(|| entry.file_name().to_string_lossy().into_owned())
        })
        .collect()
}

fn running_as_root() -> Result<bool, String> {
    let out = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| format!("running id -u: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "0")
}
