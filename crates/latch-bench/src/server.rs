//! Running a configuration's server on loopback: in this process, on its own OS
//! thread with a tokio runtime of exactly one worker thread, or (for the one peer
//! that cannot be linked in) as a child process built the same way.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use axum::Router;
use tokio::sync::oneshot;

use crate::apps::{self, Config, Env};

/// A server listening on loopback until dropped.
#[derive(Debug)]
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Thread {
        stop: Option<oneshot::Sender<()>>,
        thread: Option<JoinHandle<()>>,
    },
    Child(Child),
}

/// A tokio runtime with exactly one worker thread (plus tokio's blocking pool,
/// which stores such as SQLite use for their calls).
///
/// # Errors
/// When the runtime cannot be built.
pub fn one_worker_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?)
}

impl Server {
    /// Start `config` in this process (every configuration but `ts-sqlite`).
    ///
    /// # Errors
    /// When the runtime, the store or the listener cannot be set up.
    pub fn start(config: Config, env: &Env, cell: usize) -> anyhow::Result<Self> {
        let env = env.clone();
        Self::start_with(move || async move { apps::router(config, &env, cell).await })
    }

    /// Start the router that `make` builds (inside the server's runtime).
    ///
    /// # Errors
    /// When the runtime, the router or the listener cannot be set up.
    pub fn start_with<F, Fut>(make: F) -> anyhow::Result<Self>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = anyhow::Result<Router>> + Send + 'static,
    {
        let (ready_tx, ready_rx) = mpsc::channel::<anyhow::Result<SocketAddr>>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("bench-server".into())
            .spawn(move || {
                let rt = match one_worker_runtime() {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                rt.block_on(async move {
                    let setup = async {
                        let app = make().await?;
                        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                        let addr = listener.local_addr()?;
                        anyhow::Ok((app, listener, addr))
                    };
                    let (app, listener, addr) = match setup.await {
                        Ok(parts) => parts,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    // Serve from a spawned task so that all request work runs on
                    // the one worker thread, not on this thread.
                    let (drain_tx, drain_rx) = oneshot::channel::<()>();
                    let serve = tokio::spawn(async move {
                        axum::serve(listener, app)
                            .with_graceful_shutdown(async move {
                                let _ = drain_rx.await;
                            })
                            .await
                    });
                    let _ = ready_tx.send(Ok(addr));
                    let _ = stop_rx.await;
                    let _ = drain_tx.send(());
                    // Connections still open after wrk has gone get 5 s to close.
                    let _ = tokio::time::timeout(Duration::from_secs(5), serve).await;
                });
                rt.shutdown_timeout(Duration::from_secs(2));
            })?;
        let addr = ready_rx
            .recv()
            .map_err(|_| anyhow!("the server thread ended before listening"))??;
        Ok(Self {
            addr,
            kind: Kind::Thread {
                stop: Some(stop_tx),
                thread: Some(thread),
            },
        })
    }

    /// Start the tower-sessions SQLite peer binary on `db`.
    ///
    /// # Errors
    /// When the binary is missing or does not report its address.
    pub fn start_child(binary: &Path, db: &Path) -> anyhow::Result<Self> {
        let mut child = Command::new(binary)
            .arg(db)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stdout = child.stdout.take().context("child stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|a| a.parse().ok());
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("{} did not report its address: {line:?}", binary.display());
        };
        Ok(Self {
            addr,
            kind: Kind::Child(child),
        })
    }

    /// The process the server runs in: this one, or the peer's child.
    pub fn pid(&self) -> u32 {
        match &self.kind {
            Kind::Thread { .. } => std::process::id(),
            Kind::Child(child) => child.id(),
        }
    }

    /// `http://addr/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        match &mut self.kind {
            Kind::Thread { stop, thread } => {
                if let Some(stop) = stop.take() {
                    let _ = stop.send(());
                }
                if let Some(thread) = thread.take() {
                    let _ = thread.join();
                }
            }
            Kind::Child(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
