//! # latch: secure-by-default sessions
//!
//! latch keeps users signed in without the usual mistakes: cookies are `Secure`,
//! `HttpOnly`, `SameSite=Lax` and `__Host-` prefixed by default; weak keys are
//! refused at start-up; idle and absolute timeouts are enforced by the server;
//! session IDs are renewed at login and really deleted at logout.
//!
//! This crate is the core: keys, cookie codecs, configuration, the session model
//! and the store trait. It depends on no web framework and no database. Use it
//! through an adapter such as `latch-axum`, with a store crate or the built-in
//! [`MemoryStore`].
//!
//! ## Session kinds
//! | kind | cookie holds | choose with |
//! |---|---|---|
//! | signed cookie | the data, HMAC-SHA256 signed | [`SessionManagerBuilder::signed_cookies`] |
//! | encrypted cookie | the data, AEAD sealed | [`SessionManagerBuilder::encrypted_cookies`] |
//! | server-side | a 256-bit random ID | [`SessionManagerBuilder::store`] |
//!
//! ## Example
//! ```
//! use latch::{Keyring, SecretKey, SessionManager};
//!
//! let key = SecretKey::generate(); // in production: SecretKey::from_env("LATCH_SECRET_KEY")?
//! let manager = SessionManager::builder()
//!     .encrypted_cookies(Keyring::new(key), latch::codec::Aead::default())
//!     .build()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The guides live in `docs/`: `architecture.md` explains the request flow and
//! `security.md` lists each guarantee with the test that proves it.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod codec;
pub mod cookie;
mod csrf;
pub mod dbsc;
mod engine;
mod error;
mod id;
mod key;
mod manager;
mod rand;
mod record;
mod session;
pub mod store;
pub mod throttle;
mod time;
mod wire;

pub use cookie::{CookieConfig, CookieConfigBuilder, SameSite};
pub use error::{Error, ErrorKind, Result};
pub use id::{SessionId, StoreKey};
pub use key::{Keyring, MIN_BITS, Purpose, SecretKey, Subkey};
pub use manager::{DEFAULT_MAX_RECORD_BYTES, PurgeTask, SessionManager, SessionManagerBuilder};
pub use record::{Data, DataIter, Record};
pub use session::{Flash, MAX_PENDING_FLASHES, Session, SessionFacts};
pub use store::{
    ExpiredDeletion, InProcess, MemoryStore, SaveOutcome, SessionInfo, SessionStore, UserIndex,
};
pub use time::{Clock, Expiry, MAX_COOKIE_LIFETIME, ManualClock, SystemClock, UnixTime};
pub use wire::{Finished, RawRequest, RequestMeta};
