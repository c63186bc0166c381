//! # latch-sqlite: the embedded session store
//!
//! Sessions in one SQLite file, the default store of latch: no server to run, and
//! sessions survive restarts. The file uses write-ahead logging (WAL), so readers
//! never wait for the writer, and a process killed mid-write loses no committed
//! session. The schema is versioned (`PRAGMA user_version`) and migrated at open.
//!
//! Only the SHA-256 of each session ID is stored, so a copied database file gives
//! no usable session. All SQLite calls run on tokio's blocking thread pool, never
//! on the async executor's threads.
//!
//! ## Example
//! ```
//! use latch::SessionManager;
//! use latch_sqlite::SqliteStore;
//!
//! # let dir = std::env::temp_dir().join(format!("latch-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! let store = SqliteStore::open(dir.join("sessions.db"))?;
//! let manager = SessionManager::builder().store(store).build()?;
//! # std::fs::remove_dir_all(dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Table
//! `latch_sessions(key BLOB PRIMARY KEY, version, data TEXT (JSON), created_at,
//! last_seen, expires_at, remember, user_id, user_agent, ip)`, indexed on
//! `expires_at` (purging costs what expired) and on `user_id` (listing a user's
//! devices costs what that user has). `latch_session_count(n)` holds how many
//! rows the table has, kept by triggers on insert and delete, in files a
//! store with a limit ([`SqliteStoreBuilder::max_sessions`]) has opened.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
mod migrate;
mod pool;
mod store;

pub use config::{DEFAULT_WAL_LIMIT, Synchronous};
pub use store::{SqliteStore, SqliteStoreBuilder};
