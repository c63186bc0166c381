//! The async runtime for the commands that talk to the network or a store.

use anyhow::Context as _;

/// Run `fut` to completion on a single-threaded tokio runtime: the CLI does one
/// thing at a time, and blocking database calls still get tokio's blocking pool.
///
/// # Errors
/// When the runtime cannot start, and whatever `fut` returns.
pub fn block_on<T>(fut: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(fut)
}
