//! The demo as a child process: started, watched, killed and restarted.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running demo process. SIGKILLed when dropped.
///
/// Its stdout (where the demo logs) and stderr (where a panic would go) are
/// copied to `stdout.log` / `stderr.log` in the data directory, so nothing
/// blocks on a full pipe and a test can look for panics afterwards.
#[derive(Debug)]
pub struct Demo {
    child: Child,
    /// `http://127.0.0.1:PORT` (the demo listens on IPv4 loopback only, so the
    /// client is not left to guess what `localhost` means).
    pub base: String,
    logs: PathBuf,
}

impl Demo {
    /// Start `bin` with `--listen 127.0.0.1:0 --data-dir DATA_DIR` and `args`,
    /// and wait (up to 60 s) for its `serving http://...` line.
    ///
    /// # Panics
    /// When it cannot be started or does not say it is serving.
    pub fn start<I, S>(bin: &Path, data_dir: &Path, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Self::start_limited(bin, data_dir, args, None)
    }

    /// [`start`](Self::start) with the process's open-files limit
    /// (`ulimit -n`) set to `open_files`, as on a host with a modest limit.
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub fn start_limited<I, S>(
        bin: &Path,
        data_dir: &Path,
        args: I,
        open_files: Option<u32>,
    ) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        std::fs::create_dir_all(data_dir).expect("create the data directory");
        let stderr = append(&data_dir.join("stderr.log"));
        let mut command = match open_files {
            Some(n) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let mut child = command
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(args)
            .env_remove("LATCH_SECRET_KEY")
            .env_remove("LATCH_STORE")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let base = wait_for_serving(stdout, &data_dir.join("stdout.log"));
        let Some(base) = base else {
            let _ = child.kill();
            let _ = child.wait();
            let err = std::fs::read_to_string(data_dir.join("stderr.log")).unwrap_or_default();
            panic!("the demo did not start: {err}");
        };
        Self {
            child,
            base,
            logs: data_dir.to_owned(),
        }
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: no shutdown, no flush, no chance to finish anything.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Resident memory in KiB (`VmRSS` in `/proc/PID/status`), if readable.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Lines of everything the process wrote to stderr that mention a panic.
    pub fn panics(&self) -> Vec<String> {
        ["stderr.log", "stdout.log"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(self.logs.join(f)).ok())
            .flat_map(|text| {
                text.lines()
                    .filter(|l| l.contains("panicked"))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn append(path: &Path) -> File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()))
}

/// Read stdout until the `serving` line (or EOF, or 60 s), then keep copying it
/// to `log` on a thread. Returns the base URL.
fn wait_for_serving(stdout: impl std::io::Read + Send + 'static, log: &Path) -> Option<String> {
    let mut out = append(log);
    let mut reader = BufReader::new(stdout);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut base = None;
    let mut line = String::new();
    while Instant::now() < deadline {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let _ = out.write_all(line.as_bytes());
        if let Some(rest) = line.split("serving ").nth(1) {
            base = rest
                .split_whitespace()
                .next()
                .map(|url| url.replace("//localhost:", "//127.0.0.1:"));
            break;
        }
    }
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || out.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    base
}
