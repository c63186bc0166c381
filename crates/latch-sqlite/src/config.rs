//! What a [`SqliteStore`](crate::SqliteStore) is opened with.

/// How hard SQLite works to make each commit durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// With WAL, every commit survives the process being killed; the last
    /// commits before an operating-system crash or power loss may be lost. The
    /// default: sessions are cheap to lose in a power cut, and this avoids an
    /// fsync per request.
    #[default]
    Normal,
    /// Every commit is fsynced: survives power loss too, at the price of an
    /// fsync per write.
    Full,
}

impl Synchronous {
    pub(crate) fn pragma(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

/// The default bound on the write-ahead log file: 64 MiB.
pub const DEFAULT_WAL_LIMIT: u64 = 64 << 20;

/// Settings of one store, gathered by [`SqliteStoreBuilder`](crate::SqliteStoreBuilder).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    pub(crate) sync: Synchronous,
    pub(crate) wal_limit: u64,
    pub(crate) readers: usize,
    /// The most sessions the table may hold, if bounded.
    pub(crate) max_sessions: Option<u64>,
    /// The count past which sessions without a user are refused, if set.
    pub(crate) max_anonymous: Option<u64>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            sync: Synchronous::default(),
            wal_limit: DEFAULT_WAL_LIMIT,
            readers: std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8)),
            max_sessions: None,
            max_anonymous: None,
        }
    }
}
